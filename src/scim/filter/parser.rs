//! Recursive-descent parser for the filter grammar of RFC 7644 §3.4.2.2, with the precedence the
//! RFC gives (`not` and grouping bind tighter than `and`, which binds tighter than `or`).
//! Keywords, operators and attribute names are case-insensitive. Errors name the column (1-based,
//! in characters) and what was expected there.

use serde_json::Number;

use super::ast::{AttrPath, CompareOp, CompareValue, Filter};
use crate::scim::error::ScimError;
use crate::scim::schema::split_urn;

/// Longest filter accepted, in bytes: far above any IdP's lookups, low enough to bound the work.
pub const MAX_LENGTH: usize = 8 * 1024;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "'('".into(),
            Token::RParen => "')'".into(),
            Token::LBracket => "'['".into(),
            Token::RBracket => "']'".into(),
            Token::Str(s) => format!("string {}", serde_json::Value::String(s.clone())),
            Token::Word(w) => format!("'{w}'"),
        }
    }
}

struct Lexed {
    token: Token,
    column: usize,
}

fn lex(input: &str) -> Result<Vec<Lexed>, ScimError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Lexed {
                    token: Token::LParen,
                    column,
                });
                i += 1;
            }
            ')' => {
                tokens.push(Lexed {
                    token: Token::RParen,
                    column,
                });
                i += 1;
            }
            '[' => {
                tokens.push(Lexed {
                    token: Token::LBracket,
                    column,
                });
                i += 1;
            }
            ']' => {
                tokens.push(Lexed {
                    token: Token::RBracket,
                    column,
                });
                i += 1;
            }
            '"' => {
                // A JSON string literal: find its end honouring escapes, then let serde decode it.
                let start = i;
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => i += 2,
                        '"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                if !closed {
                    return Err(err(column, "string starting here is not closed with '\"'"));
                }
                let literal: String = chars[start..i].iter().collect();
                let value: String = serde_json::from_str(&literal)
                    .map_err(|_| err(column, "string literal has an invalid escape sequence"))?;
                if value.contains('\0') {
                    return Err(err(column, "string literal contains a NUL character"));
                }
                tokens.push(Lexed {
                    token: Token::Str(value),
                    column,
                });
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | '[' | ']' | '"')
                {
                    i += 1;
                }
                tokens.push(Lexed {
                    token: Token::Word(chars[start..i].iter().collect()),
                    column,
                });
            }
        }
    }
    Ok(tokens)
}

fn err(column: usize, what: impl std::fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!("invalid filter at column {column}: {what}"))
}

/// Parses a filter expression.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    if input.len() > MAX_LENGTH {
        return Err(ScimError::invalid_filter(format!(
            "filter is {} bytes long; the limit is {MAX_LENGTH}",
            input.len()
        )));
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(ScimError::invalid_filter("filter is empty"));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end_column: input.chars().count() + 1,
    };
    let filter = parser.or_expr(0, false)?;
    if let Some(extra) = parser.tokens.get(parser.pos) {
        return Err(err(
            extra.column,
            format!(
                "expected 'and', 'or' or the end of the filter, found {}",
                extra.token.describe()
            ),
        ));
    }
    Ok(filter)
}

/// Parses an attribute path `[urn:]attr[.sub]` as used by filters, PATCH paths and the
/// `attributes` / `sortBy` parameters.
pub fn parse_attr_path(text: &str) -> Result<AttrPath, String> {
    let (urn, rest) = split_urn(text);
    let mut parts = rest.split('.');
    let attr = parts.next().unwrap_or_default();
    let sub_attr = parts.next();
    if parts.next().is_some() {
        return Err(format!("'{text}' has more than one sub-attribute level"));
    }
    if !is_attr_name(attr) {
        return Err(format!("'{text}' is not a valid attribute name"));
    }
    if let Some(sub) = sub_attr
        && !is_attr_name(sub)
    {
        return Err(format!("'{text}' has an invalid sub-attribute name"));
    }
    Ok(AttrPath {
        urn: urn.map(str::to_string),
        attr: attr.to_string(),
        sub_attr: sub_attr.map(str::to_string),
    })
}

/// RFC 7643 §2.1 ATTRNAME (plus `$ref`, which the RFC uses as a sub-attribute name).
fn is_attr_name(name: &str) -> bool {
    if name == "$ref" {
        return true;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

struct Parser {
    tokens: Vec<Lexed>,
    pos: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|l| &l.token)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.end_column, |l| l.column)
    }

    fn found(&self) -> String {
        self.peek()
            .map_or("the end of the filter".to_string(), Token::describe)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn expect(&mut self, token: Token, what: &str) -> Result<(), ScimError> {
        if self.peek() == Some(&token) {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(
                self.column(),
                format!("expected {what}, found {}", self.found()),
            ))
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, ScimError> {
        if depth >= MAX_DEPTH {
            Err(err(
                self.column(),
                format!("filter is nested more than {MAX_DEPTH} levels deep"),
            ))
        } else {
            Ok(depth + 1)
        }
    }

    fn or_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, ScimError> {
        let mut left = self.and_expr(depth, in_value)?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and_expr(depth, in_value)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, ScimError> {
        let mut left = self.unary(depth, in_value)?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.unary(depth, in_value)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize, in_value: bool) -> Result<Filter, ScimError> {
        if self.peek_keyword("not")
            && matches!(
                self.tokens.get(self.pos + 1).map(|l| &l.token),
                Some(Token::LParen)
            )
        {
            self.pos += 1;
            let depth = self.deeper(depth)?;
            self.expect(Token::LParen, "'(' after 'not'")?;
            let inner = self.or_expr(depth, in_value)?;
            self.expect(Token::RParen, "')'")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let depth = self.deeper(depth)?;
            let inner = self.or_expr(depth, in_value)?;
            self.expect(Token::RParen, "')'")?;
            return Ok(inner);
        }
        self.attr_expr(depth, in_value)
    }

    fn attr_path(&mut self) -> Result<AttrPath, ScimError> {
        let column = self.column();
        match self.peek().cloned() {
            Some(Token::Word(word)) => {
                self.pos += 1;
                parse_attr_path(&word)
                    .map_err(|e| err(column, format!("expected an attribute path: {e}")))
            }
            _ => Err(err(
                column,
                format!("expected an attribute path, found {}", self.found()),
            )),
        }
    }

    fn attr_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, ScimError> {
        let path_column = self.column();
        let path = self.attr_path()?;
        if self.peek() == Some(&Token::LBracket) {
            if in_value {
                return Err(err(
                    self.column(),
                    "a value filter cannot contain another value filter",
                ));
            }
            if path.sub_attr.is_some() {
                return Err(err(
                    path_column,
                    format!(
                        "'{path}': a value filter applies to an attribute, not a sub-attribute"
                    ),
                ));
            }
            self.pos += 1;
            let depth = self.deeper(depth)?;
            let inner = self.or_expr(depth, true)?;
            self.expect(Token::RBracket, "']' closing the value filter")?;
            // `emails[type eq "work"].value eq "x"`: a sub-attribute comparison after the
            // brackets narrows the same value, so it joins the inner filter.
            if let Some(Token::Word(word)) = self.peek().cloned()
                && let Some(sub) = word.strip_prefix('.')
            {
                let column = self.column();
                if !is_attr_name(sub) {
                    return Err(err(
                        column,
                        format!("'{sub}' is not a valid sub-attribute name"),
                    ));
                }
                self.pos += 1;
                let sub_path = AttrPath::simple(sub);
                let tail = self.comparison(sub_path)?;
                return Ok(Filter::ValuePath {
                    path,
                    filter: Box::new(Filter::And(Box::new(inner), Box::new(tail))),
                });
            }
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
            });
        }
        if in_value && path.urn.is_some() {
            return Err(err(
                path_column,
                "attributes inside a value filter are sub-attributes and take no schema URN",
            ));
        }
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        let column = self.column();
        let op_word = match self.peek() {
            Some(Token::Word(w)) => w.clone(),
            _ => {
                return Err(err(
                    column,
                    format!(
                        "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{path}', found {}",
                        self.found()
                    ),
                ));
            }
        };
        self.pos += 1;
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op_word).ok_or_else(|| {
            err(column, format!("'{op_word}' is not an operator; expected eq, ne, co, sw, ew, gt, ge, lt, le or pr"))
        })?;
        let value = self.value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn value(&mut self) -> Result<CompareValue, ScimError> {
        let column = self.column();
        let value = match self.peek().cloned() {
            Some(Token::Str(s)) => CompareValue::Str(s),
            Some(Token::Word(w)) if w == "true" || w.eq_ignore_ascii_case("true") => {
                CompareValue::Bool(true)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => CompareValue::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => CompareValue::Null,
            Some(Token::Word(w)) => match serde_json::from_str::<Number>(&w) {
                Ok(n) => CompareValue::Number(n),
                Err(_) => {
                    return Err(err(
                        column,
                        format!(
                            "expected a value (a \"quoted string\", number, true, false or null), found '{w}'"
                        ),
                    ));
                }
            },
            _ => {
                return Err(err(
                    column,
                    format!(
                        "expected a value (a \"quoted string\", number, true, false or null), found {}",
                        self.found()
                    ),
                ));
            }
        };
        self.pos += 1;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Filter {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_rfc_examples() {
        for f in [
            r#"userName Eq "john""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            p(f);
        }
    }

    #[test]
    fn precedence_and_over_or() {
        let f = p(r#"a eq 1 or b eq 2 and c eq 3"#);
        assert!(matches!(f, Filter::Or(_, ref r) if matches!(**r, Filter::And(_, _))));
    }

    #[test]
    fn value_path_with_trailing_sub_attribute() {
        let f = p(r#"emails[type eq "work"].value eq "a@b.c""#);
        match f {
            Filter::ValuePath { path, filter } => {
                assert_eq!(path.attr, "emails");
                assert!(matches!(*filter, Filter::And(_, _)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse(r#"userName eq"#).unwrap_err();
        assert!(e.detail.contains("column 12"), "{}", e.detail);
        let e = parse(r#"userName foo "x""#).unwrap_err();
        assert!(
            e.detail.contains("column 10") && e.detail.contains("'foo' is not an operator"),
            "{}",
            e.detail
        );
        let e = parse(r#"(userName eq "x""#).unwrap_err();
        assert!(e.detail.contains("expected ')'"), "{}", e.detail);
        let e = parse(r#"userName eq "x" garbage"#).unwrap_err();
        assert!(e.detail.contains("column 17"), "{}", e.detail);
        assert!(parse(r#"userName eq "unterminated"#).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let deep = format!(
            "{}a pr{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep).unwrap_err().detail.contains("nested"));
        let long = format!("a eq \"{}\"", "x".repeat(MAX_LENGTH));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn long_chains_print_flat() {
        // Found by the fuzzer: printing must not add nesting the parser would then refuse.
        let chain = (0..100)
            .map(|i| format!("a{i} pr"))
            .collect::<Vec<_>>()
            .join(" and ");
        let ast = p(&chain);
        assert_eq!(ast.to_string(), chain);
        assert_eq!(p(&ast.to_string()), ast);
    }

    #[test]
    fn literals() {
        assert_eq!(
            p("active eq true"),
            Filter::Compare {
                path: AttrPath::simple("active"),
                op: CompareOp::Eq,
                value: CompareValue::Bool(true)
            }
        );
        assert!(matches!(
            p("x eq 1.5"),
            Filter::Compare {
                value: CompareValue::Number(_),
                ..
            }
        ));
        assert!(matches!(
            p("x eq null"),
            Filter::Compare {
                value: CompareValue::Null,
                ..
            }
        ));
        assert!(
            matches!(p(r#"x eq "a\"b""#), Filter::Compare { value: CompareValue::Str(ref s), .. } if s == "a\"b")
        );
    }

    #[test]
    fn display_round_trips() {
        for f in [
            r#"userName eq "a" and not (b pr or c.d lt 3)"#,
            r#"emails[type eq "work"] and x ge false"#,
            // Found by the fuzzer: a float must print and parse back to the same value.
            "e- ne 8888888888888888333333888888888888888888888888833888",
            "a pr and (b pr or c pr) or d pr and not (e pr or f pr)",
        ] {
            let ast = p(f);
            assert_eq!(p(&ast.to_string()), ast);
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::parse;
    use crate::scim::filter::{AttrPath, CompareOp, CompareValue, Filter};

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}".prop_filter("not a keyword", |n| {
            !["and", "or", "not", "true", "false", "null", "pr"]
                .contains(&n.to_ascii_lowercase().as_str())
        })
    }

    fn path(relative: bool) -> impl Strategy<Value = AttrPath> {
        let urn = if relative {
            Just(None).boxed()
        } else {
            prop_oneof![
                Just(None),
                Just(Some(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()
                ))
            ]
            .boxed()
        };
        let sub = if relative {
            Just(None).boxed()
        } else {
            proptest::option::of(name()).boxed()
        };
        (urn, name(), sub).prop_map(|(urn, attr, sub_attr)| AttrPath {
            urn,
            attr,
            sub_attr,
        })
    }

    fn value() -> impl Strategy<Value = CompareValue> {
        prop_oneof![
            any::<String>().prop_map(CompareValue::Str),
            any::<i64>().prop_map(|n| CompareValue::Number(n.into())),
            any::<bool>().prop_map(CompareValue::Bool),
            Just(CompareValue::Null),
        ]
    }

    fn op() -> impl Strategy<Value = CompareOp> {
        use CompareOp::*;
        prop_oneof![
            Just(Eq),
            Just(Ne),
            Just(Co),
            Just(Sw),
            Just(Ew),
            Just(Gt),
            Just(Ge),
            Just(Lt),
            Just(Le)
        ]
    }

    fn filter(relative: bool) -> BoxedStrategy<Filter> {
        let leaf = prop_oneof![
            path(relative).prop_map(Filter::Present),
            (path(relative), op(), value()).prop_map(|(path, op, value)| Filter::Compare {
                path,
                op,
                value
            }),
        ];
        let tree = leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        });
        if relative {
            return tree.boxed();
        }
        prop_oneof![
            4 => tree,
            1 => (name(), filter(true)).prop_map(|(attr, f)| Filter::ValuePath { path: AttrPath::simple(attr), filter: Box::new(f) }),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn parse_of_print_is_identity(ast in filter(false)) {
            let printed = ast.to_string();
            prop_assert_eq!(parse(&printed).map_err(|e| e.detail), Ok(ast), "{}", printed);
        }

        #[test]
        fn arbitrary_input_never_panics(input in any::<String>()) {
            let _ = parse(&input);
        }
    }
}
