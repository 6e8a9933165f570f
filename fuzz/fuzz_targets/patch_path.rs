//! Fuzzes the PATCH path parser and the whole PatchOp pipeline: no input may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchboard::scim::patch::{apply, parse_path, parse_request};
use switchboard::scim::schema::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_path(text);
    // The same text as a path, and as a whole request body, against a real user document.
    let Ok(registry) = Registry::load() else { return };
    let Some(rt) = registry.resource_type("User").cloned() else { return };
    let Value::Object(mut doc) = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ana@example.com",
        "emails": [{"value": "ana@example.com", "type": "work", "primary": true}],
    }) else {
        return;
    };
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": text, "value": "x"}]});
    if let Ok(ops) = parse_request(&body) {
        let _ = apply(&registry, &rt, &mut doc, &ops);
    }
    if let Ok(body) = serde_json::from_str::<Value>(text) {
        if let Ok(ops) = parse_request(&body) {
            let _ = apply(&registry, &rt, &mut doc, &ops);
        }
    }
});
