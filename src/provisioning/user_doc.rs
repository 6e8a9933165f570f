//! The Switchboard extensions inside SCIM documents: their URNs, their accessors, and the
//! values of the state the server keeps in them.

use serde_json::{Map, Value, json};

use crate::scim::resource::Document;

pub const USER_EXTENSION: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:User";
pub const GROUP_EXTENSION: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:Group";

/// `accountStatus` of a user who declined a transfer: shown as suspended, holds no seat.
pub const TRANSFER_DECLINED: &str = "transferDeclined";

/// The built-in template name, for both settings and welcome e-mails.
pub const SYSTEM_TEMPLATE: &str = "system";

/// The user extension object of a document, created if absent.
pub fn extension_mut(doc: &mut Document) -> &mut Map<String, Value> {
    let entry = doc
        .entry(USER_EXTENSION.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(map) => map,
        _ => unreachable!("the extension entry was just made an object"),
    }
}

pub fn extension(doc: &Document) -> Option<&Map<String, Value>> {
    doc.get(USER_EXTENSION).and_then(Value::as_object)
}

pub(crate) fn ext_str<'d>(doc: &'d Document, name: &str) -> Option<&'d str> {
    extension(doc)?.get(name)?.as_str()
}

/// Adds `urn` to the document's `schemas` and puts the list in one order (the core schema
/// first, extensions sorted), so that equal documents compare equal whatever order a client or
/// the database's JSON type gave them.
pub(crate) fn list_schema(doc: &mut Document, urn: &str) {
    if let Some(Value::Array(schemas)) = doc.get_mut("schemas") {
        if !schemas.iter().any(|s| s.as_str() == Some(urn)) {
            schemas.push(json!(urn));
        }
        if let Some((_, extensions)) = schemas.split_first_mut() {
            extensions.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}
