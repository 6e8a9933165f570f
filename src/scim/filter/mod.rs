//! SCIM filters (RFC 7644 §3.4.2.2): the AST, a parser that reports where it went wrong, and an
//! in-memory evaluator for the value filters of PATCH paths. Pure: the store compiles the same
//! AST to SQL.

mod ast;
mod eval;
mod parser;

pub use ast::{AttrPath, CompareOp, CompareValue, Filter};
pub use eval::matches;
pub use parser::{MAX_DEPTH, MAX_LENGTH, parse, parse_attr_path};
