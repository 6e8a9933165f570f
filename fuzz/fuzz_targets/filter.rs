//! Fuzzes the SCIM filter parser: no input may panic, and whatever parses must print back to a
//! filter that parses to the same AST.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::scim::filter::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(ast) = parse(text) {
        let printed = ast.to_string();
        match parse(&printed) {
            Ok(again) => assert_eq!(again, ast, "{printed}"),
            Err(e) => panic!("printed filter {printed:?} does not parse: {e}"),
        }
    }
});
