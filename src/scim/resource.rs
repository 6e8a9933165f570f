//! Validation of resource bodies against the schema registry (RFC 7643 §2, §3; RFC 7644 §3.3,
//! §3.5.1): attribute names are matched case-insensitively and rewritten to their canonical
//! spelling, values are type-checked, read-only attributes sent by the client are ignored,
//! required attributes are enforced, and unknown attributes are refused (interop profile).
//!
//! The output is the resource's *stored document*: client-owned attributes only, in canonical
//! form, without `id` and `meta`, which the server owns.

use base64::Engine;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ScimError;
use super::schema::{Attribute, AttributeType, Mutability, Registry, ResourceType, Schema};

/// A validated resource document: canonical attribute names, checked types, no read-only data.
pub type Document = Map<String, Value>;

/// Longest string value accepted for any attribute, in characters.
pub const MAX_STRING_CHARS: usize = 4096;

/// Refuses text no database column can hold as given: NUL characters (PostgreSQL text cannot
/// store them) and values over `max` characters.
pub fn check_text(s: &str, label: &str, max: usize) -> Result<(), ScimError> {
    if s.contains('\0') {
        return Err(ScimError::invalid_value(format!(
            "'{label}' contains a NUL character"
        )));
    }
    if s.chars().count() > max {
        return Err(ScimError::invalid_value(format!(
            "'{label}' is longer than {max} characters"
        )));
    }
    Ok(())
}

/// Validates a POST or PUT body and returns the stored document (RFC 7644 §3.3, §3.5.1).
pub fn normalize(
    registry: &Registry,
    rt: &ResourceType,
    body: &Value,
) -> Result<Document, ScimError> {
    let object = body.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "the request body must be a JSON object describing a {}",
            rt.name
        ))
    })?;
    let core = registry
        .core_schema(rt)
        .ok_or_else(|| ScimError::invalid_syntax(format!("no schema for {}", rt.name)))?;

    declared_schemas(registry, rt, object)?;
    let mut document = Document::new();
    let mut extensions_present: Vec<&str> = Vec::new();

    for (key, value) in object {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = registry.extension_schema(rt, key) {
            let normalized = normalize_extension(ext, value)?;
            if !normalized.is_empty() {
                extensions_present.push(&ext.id);
                document.insert(ext.id.clone(), Value::Object(normalized));
            }
            continue;
        }
        if key.eq_ignore_ascii_case(&rt.schema) {
            // Core attributes nested under the core URN key: accepted, flattened.
            let nested = value.as_object().ok_or_else(|| {
                ScimError::invalid_syntax(format!(
                    "'{key}' must be an object of {} attributes",
                    rt.name
                ))
            })?;
            for (k, v) in nested {
                insert_attribute(registry, core, &mut document, k, v, &rt.name)?;
            }
            continue;
        }
        insert_attribute(registry, core, &mut document, key, value, &rt.name)?;
    }

    check_required(&core.attributes, &document, "")?;
    for ext in &rt.extensions {
        if let Some(schema) = registry.schema(&ext.schema) {
            match document.get(&schema.id).and_then(Value::as_object) {
                Some(values) => {
                    check_required(&schema.attributes, values, &format!("{}:", schema.id))?
                }
                None if ext.required => {
                    return Err(ScimError::invalid_value(format!(
                        "the extension {} is required",
                        schema.id
                    )));
                }
                None => {}
            }
        }
    }

    // `schemas` lists the core schema and the extensions the resource has values for.
    let mut schemas = vec![Value::String(core.id.clone())];
    for urn in extensions_present {
        if !schemas.iter().any(|s| s.as_str() == Some(urn)) {
            schemas.push(Value::String(urn.to_string()));
        }
    }
    let mut out = Document::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.extend(document);
    Ok(out)
}

/// Checks the `schemas` attribute of a request body (RFC 7643 §3): present, a list of URNs the
/// resource type knows, including its core schema. The `schemas` of the stored resource are
/// recomputed from the values it holds.
fn declared_schemas(
    registry: &Registry,
    rt: &ResourceType,
    object: &Map<String, Value>,
) -> Result<(), ScimError> {
    let schemas = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "the request body has no 'schemas'; a {} must list \"{}\"",
                rt.name, rt.schema
            ))
        })?;
    let list = schemas
        .as_array()
        .ok_or_else(|| ScimError::invalid_syntax("'schemas' must be an array of schema URNs"))?;
    let mut has_core = false;
    for urn in list {
        let urn = urn.as_str().ok_or_else(|| {
            ScimError::invalid_syntax("'schemas' must be an array of schema URNs")
        })?;
        if urn.eq_ignore_ascii_case(&rt.schema) {
            has_core = true;
        } else if registry.extension_schema(rt, urn).is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "'{urn}' in 'schemas' is not a schema of {}",
                rt.name
            )));
        }
    }
    if !has_core {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must include \"{}\"",
            rt.schema
        )));
    }
    Ok(())
}

fn normalize_extension(schema: &Schema, value: &Value) -> Result<Document, ScimError> {
    if value.is_null() {
        return Ok(Document::new());
    }
    let object = value.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "'{}' must be an object of its attributes",
            schema.id
        ))
    })?;
    let mut out = Document::new();
    for (key, v) in object {
        // A client may repeat the extension's URN inside its object (as in a PATCH of the whole
        // extension); it carries nothing.
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let attribute = schema.attribute(key).ok_or_else(|| {
            ScimError::invalid_syntax(format!("'{key}' is not an attribute of {}", schema.id))
        })?;
        if attribute.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) =
            normalize_value(attribute, v, &format!("{}:{}", schema.id, attribute.name))?
        {
            out.insert(attribute.name.clone(), v);
        }
    }
    Ok(out)
}

fn insert_attribute(
    registry: &Registry,
    core: &Schema,
    document: &mut Document,
    key: &str,
    value: &Value,
    type_name: &str,
) -> Result<(), ScimError> {
    if let Some(common) = registry.common_attribute(key) {
        if common.mutability == Mutability::ReadOnly {
            return Ok(());
        }
        if let Some(v) = normalize_value(common, value, &common.name)? {
            document.insert(common.name.clone(), v);
        }
        return Ok(());
    }
    let attribute = core.attribute(key).ok_or_else(|| {
        ScimError::invalid_syntax(format!("'{key}' is not an attribute of {type_name}"))
    })?;
    if attribute.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    if let Some(v) = normalize_value(attribute, value, &attribute.name)? {
        document.insert(attribute.name.clone(), v);
    }
    Ok(())
}

/// Validates one attribute value; `None` means "unassigned" (null, or an empty array / object).
pub fn normalize_value(
    attribute: &Attribute,
    value: &Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attribute.multi_valued {
        let items = match value {
            Value::Array(items) => items,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'{label}' is multi-valued: send an array"
                )));
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = normalize_single(attribute, item, label)? {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        let primaries = out
            .iter()
            .filter(|v| v.get("primary").and_then(Value::as_bool) == Some(true))
            .count();
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "'{label}' has {primaries} values marked primary; at most one may be"
            )));
        }
        return Ok(Some(Value::Array(out)));
    }
    if value.is_array() {
        return Err(ScimError::invalid_value(format!(
            "'{label}' is single-valued: send one value, not an array"
        )));
    }
    normalize_single(attribute, value, label)
}

fn normalize_single(
    attribute: &Attribute,
    value: &Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let type_error = |expected: &str| {
        ScimError::invalid_value(format!(
            "'{label}' must be {expected}, got {}",
            json_kind(value)
        ))
    };
    let out = match attribute.kind {
        AttributeType::Complex => {
            if value.is_null() {
                return Ok(None);
            }
            let object = value.as_object().ok_or_else(|| type_error("an object"))?;
            let mut out = Map::new();
            for (key, v) in object {
                let sub = attribute.sub_attribute(key).ok_or_else(|| {
                    ScimError::invalid_syntax(format!(
                        "'{key}' is not a sub-attribute of '{label}'"
                    ))
                })?;
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = normalize_single(sub, v, &format!("{label}.{}", sub.name))? {
                    out.insert(sub.name.clone(), v);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            check_required(&attribute.sub_attributes, &out, &format!("{label}."))?;
            Value::Object(out)
        }
        AttributeType::String | AttributeType::Reference => match value {
            Value::String(s) => {
                check_text(s, label, MAX_STRING_CHARS)?;
                value.clone()
            }
            _ => return Err(type_error("a string")),
        },
        AttributeType::Boolean => match value {
            Value::Bool(_) => value.clone(),
            // Some IdPs send booleans as the strings "True" / "False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(type_error("a boolean")),
        },
        AttributeType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            _ => return Err(type_error("an integer")),
        },
        AttributeType::Decimal => match value {
            Value::Number(_) => value.clone(),
            _ => return Err(type_error("a number")),
        },
        AttributeType::DateTime => match value {
            Value::String(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => value.clone(),
            Value::String(s) => {
                return Err(ScimError::invalid_value(format!(
                    "'{label}' must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z, got \"{s}\""
                )));
            }
            _ => return Err(type_error("an RFC 3339 date-time string")),
        },
        AttributeType::Binary => match value {
            Value::String(s) if base64::engine::general_purpose::STANDARD.decode(s).is_ok() => {
                value.clone()
            }
            Value::String(_) => {
                return Err(ScimError::invalid_value(format!(
                    "'{label}' must be base64-encoded binary"
                )));
            }
            _ => return Err(type_error("a base64 string")),
        },
    };
    Ok(Some(out))
}

fn check_required(
    attributes: &[Attribute],
    values: &Map<String, Value>,
    prefix: &str,
) -> Result<(), ScimError> {
    for attribute in attributes {
        if attribute.required
            && attribute.mutability != Mutability::ReadOnly
            && !values.contains_key(&attribute.name)
        {
            return Err(ScimError::invalid_value(format!(
                "'{prefix}{}' is required",
                attribute.name
            )));
        }
    }
    Ok(())
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Compares two values of `attribute` as the schema says: strings case-insensitively unless
/// `caseExact`.
pub fn same_value(attribute: &Attribute, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !attribute.case_exact => {
            x.to_lowercase() == y.to_lowercase()
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use serde_json::json;

    fn user(body: Value) -> Result<Document, ScimError> {
        let registry = Registry::load().unwrap();
        let rt = registry.resource_type("User").unwrap().clone();
        normalize(&registry, &rt, &body)
    }

    #[test]
    fn canonicalises_names_and_drops_read_only() {
        let doc = user(json!({
            "schemas": [USER_SCHEMA],
            "USERNAME": "ana@example.com",
            "id": "client-chosen",
            "groups": [{"value": "x"}],
            "Name": {"GivenName": "Ana"},
            "active": "True",
            "emails": [{"value": "ana@example.com", "type": "work", "primary": true}],
        }))
        .unwrap();
        assert_eq!(doc["userName"], "ana@example.com");
        assert_eq!(doc["name"]["givenName"], "Ana");
        assert_eq!(doc["active"], true);
        assert!(!doc.contains_key("id") && !doc.contains_key("groups"));
    }

    #[test]
    fn refuses_bad_bodies() {
        let e = user(json!({"userName": "a"})).unwrap_err();
        assert_eq!(
            e.scim_type,
            Some(crate::scim::error::ScimType::InvalidSyntax)
        );
        let e = user(json!({"schemas": [USER_SCHEMA]})).unwrap_err();
        assert!(e.detail.contains("userName"), "{}", e.detail);
        let e = user(json!({"schemas": [USER_SCHEMA], "userName": 5})).unwrap_err();
        assert_eq!(
            e.scim_type,
            Some(crate::scim::error::ScimType::InvalidValue)
        );
        let e = user(json!({"schemas": [USER_SCHEMA], "userName": "a", "bogus": 1})).unwrap_err();
        assert!(e.detail.contains("bogus"));
        let e = user(json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": {"value": "x"}}))
            .unwrap_err();
        assert!(e.detail.contains("array"));
        let e = user(json!({"schemas": ["urn:x"], "userName": "a"})).unwrap_err();
        assert!(e.detail.contains("urn:x"));
        let e = user(json!({"schemas": [USER_SCHEMA], "userName": "a",
            "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}))
        .unwrap_err();
        assert!(e.detail.contains("primary"));
    }

    #[test]
    fn extension_keys_add_their_schema() {
        let doc = user(json!({
            "schemas": [USER_SCHEMA],
            "userName": "a",
            ENTERPRISE_USER_SCHEMA: {"department": "Sales"}
        }))
        .unwrap();
        assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert_eq!(doc[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
        let doc = user(json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "a"}))
            .unwrap();
        assert_eq!(
            doc["schemas"],
            json!([USER_SCHEMA]),
            "an extension without values is not listed"
        );
    }
}
