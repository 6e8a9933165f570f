//! PATCH (RFC 7644 §3.5.2): parsing of PatchOp requests and their application to a resource
//! document, in memory and all-or-nothing (the caller keeps the original until every operation
//! has applied and the result has validated).
//!
//! Liberal in what it accepts, as the real clients need: operation names in any case
//! (`"Replace"`), path-less operations whose value object carries plain, dotted (`name.givenName`)
//! or URN-qualified keys, booleans as strings, and `remove` with a `value` list instead of a
//! filter. Group membership is not applied here: operations on `members` are handed to the
//! caller as [`MemberChange`]s so that a change costs one row, not a rewrite of the member list.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{self, AttrPath, CompareOp, CompareValue, Filter};
use super::resource::{Document, normalize_value, same_value};
use super::schema::{Attribute, AttributeType, Mutability, Registry, ResourceType};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

/// A PATCH path (RFC 7644 §3.5.2 `PATH`): `attr[.sub]`, or `attr[filter][.sub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `emails[type eq "work"].value`.
    pub sub_after_filter: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let object = body.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(
            "the PATCH body must be a JSON object with 'schemas' and 'Operations'",
        )
    })?;
    let schemas = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "the PATCH body must have \"schemas\": [\"{PATCH_OP_SCHEMA}\"]"
            ))
        })?;
    if !schemas.iter().any(|s| {
        s.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
    }) {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' of a PATCH body must be [\"{PATCH_OP_SCHEMA}\"]"
        )));
    }
    let operations = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimError::invalid_syntax("the PATCH body must have an 'Operations' array")
        })?;
    if operations.is_empty() {
        return Err(ScimError::invalid_syntax(
            "'Operations' is empty: send at least one operation",
        ));
    }
    operations
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(i, op))
        .collect()
}

fn parse_operation(index: usize, raw: &Value) -> Result<Operation, ScimError> {
    let n = index + 1;
    let object = raw.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "operation {n} must be an object with 'op', 'path' and 'value'"
        ))
    })?;
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let op = match field("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => OpKind::Add,
        Some("remove") => OpKind::Remove,
        Some("replace") => OpKind::Replace,
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {n}: '{other}' is not an op; use add, remove or replace"
            )));
        }
        None => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {n} has no 'op' (add, remove or replace)"
            )));
        }
    };
    let path = match field("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(
            parse_path(p).map_err(|e| ScimError::invalid_path(format!("operation {n}: {e}")))?,
        ),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "operation {n}: 'path' must be a string"
            )));
        }
    };
    let value = field("value").filter(|v| !v.is_null()).cloned();
    match (op, &path, &value) {
        (OpKind::Remove, None, _) => Err(ScimError::no_target(format!(
            "operation {n}: remove needs a 'path'"
        ))),
        (OpKind::Add | OpKind::Replace, _, None) => Err(ScimError::invalid_value(format!(
            "operation {n}: {} needs a 'value'",
            if op == OpKind::Add { "add" } else { "replace" }
        ))),
        (OpKind::Add | OpKind::Replace, None, Some(v)) if !v.is_object() => {
            Err(ScimError::invalid_value(format!(
                "operation {n}: without a 'path', 'value' must be an object of attributes"
            )))
        }
        _ => Ok(Operation { op, path, value }),
    }
}

/// Parses a PATCH path: `name.givenName`, `urn:…:User:department`, `emails[type eq "work"].value`,
/// `members[value eq "2819c223"]`.
pub fn parse_path(text: &str) -> Result<PatchPath, String> {
    let text = text.trim();
    let Some(open) = text.find('[') else {
        let attr = filter::parse_attr_path(text)?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub_after_filter: None,
        });
    };
    let close = text
        .rfind(']')
        .ok_or_else(|| format!("'{text}': '[' is not closed by ']'"))?;
    if close < open {
        return Err(format!("'{text}': ']' before '['"));
    }
    let attr = filter::parse_attr_path(&text[..open])?;
    if attr.sub_attr.is_some() {
        return Err(format!(
            "'{text}': a value filter applies to an attribute, not a sub-attribute"
        ));
    }
    let inner = filter::parse(&text[open + 1..close]).map_err(|e| e.detail)?;
    let rest = &text[close + 1..];
    let sub_after_filter = match rest {
        "" => None,
        _ => match rest.strip_prefix('.') {
            Some(sub) if !sub.is_empty() && !sub.contains('.') => Some(sub.to_string()),
            _ => {
                return Err(format!(
                    "'{text}': expected '.subAttribute' or nothing after ']'"
                ));
            }
        },
    };
    Ok(PatchPath {
        attr,
        filter: Some(inner),
        sub_after_filter,
    })
}

/// A change of group membership, in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add these members (their `value` ids, with `type` if given).
    Add(Vec<Value>),
    /// Remove the members matching this filter (`members[value eq "…"]`).
    RemoveMatching(Filter),
    /// Remove these member ids.
    Remove(Vec<String>),
    /// Remove every member.
    RemoveAll,
    /// Replace the member list with these.
    ReplaceAll(Vec<Value>),
}

/// Applies operations to `doc` (the stored document of a resource of type `rt`). Operations on
/// `members` are not applied: they are returned, in order, for the caller to apply to the
/// membership table.
pub fn apply(
    registry: &Registry,
    rt: &ResourceType,
    doc: &mut Document,
    operations: &[Operation],
) -> Result<Vec<MemberChange>, ScimError> {
    let mut members = Vec::new();
    for (i, op) in operations.iter().enumerate() {
        let n = i + 1;
        apply_one(registry, rt, doc, op, &mut members).map_err(|mut e| {
            e.detail = format!("operation {n}: {}", e.detail);
            e
        })?;
    }
    Ok(members)
}

fn apply_one(
    registry: &Registry,
    rt: &ResourceType,
    doc: &mut Document,
    op: &Operation,
    members: &mut Vec<MemberChange>,
) -> Result<(), ScimError> {
    match &op.path {
        None => {
            let Some(Value::Object(values)) = &op.value else {
                return Err(ScimError::invalid_value(
                    "without a 'path', 'value' must be an object",
                ));
            };
            for (key, value) in values {
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                if let Some(ext) = registry.extension_schema(rt, key) {
                    let Value::Object(inner) = value else {
                        return Err(ScimError::invalid_value(format!(
                            "'{}' must be an object of its attributes",
                            ext.id
                        )));
                    };
                    apply_extension_values(registry, rt, doc, op.op, &ext.id, inner, members)?;
                    continue;
                }
                // Keys may be plain, dotted (`name.givenName`) or URN-qualified.
                let path = parse_path(key).map_err(ScimError::invalid_path)?;
                // Read-only attributes in a path-less value (a client echoing `id` or `meta`
                // beside what it changes, as in a group rename) are ignored, as in a PUT.
                let read_only = registry
                    .resolve(rt, path.attr.urn.as_deref(), &path.attr.attr)
                    .is_ok_and(|r| r.attribute.mutability == Mutability::ReadOnly);
                if read_only {
                    continue;
                }
                apply_path(registry, rt, doc, op.op, &path, Some(value), members)?;
            }
            Ok(())
        }
        Some(path) => apply_path(registry, rt, doc, op.op, path, op.value.as_ref(), members),
    }
}

fn apply_path(
    registry: &Registry,
    rt: &ResourceType,
    doc: &mut Document,
    op: OpKind,
    path: &PatchPath,
    value: Option<&Value>,
    members: &mut Vec<MemberChange>,
) -> Result<(), ScimError> {
    if path.filter.is_none()
        && path.attr.sub_attr.is_none()
        && let Some(ext) = registry.extension_schema(rt, &path.attr.to_string())
    {
        // The whole extension as the target: `"path": "urn:…:enterprise:2.0:User"`.
        return match (op, value) {
            (OpKind::Remove, _) => {
                doc.remove(&ext.id);
                Ok(())
            }
            (_, Some(Value::Object(values))) => {
                if op == OpKind::Replace {
                    doc.remove(&ext.id);
                }
                apply_extension_values(registry, rt, doc, op, &ext.id, values, members)?;
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "the value for '{}' must be an object of its attributes",
                ext.id
            ))),
        };
    }
    let resolved = registry.resolve(rt, path.attr.urn.as_deref(), &path.attr.attr)?;
    let attribute = resolved.attribute;
    let label = path.attr.to_string();

    if rt.name == "Group" && attribute.name == "members" && !resolved.in_extension {
        return member_change(op, path, value, members);
    }
    if attribute.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!("'{label}' is read-only")));
    }

    let container = if resolved.in_extension {
        let key = resolved.schema.unwrap_or_default().to_string();
        let entry = doc.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry
            .as_object_mut()
            .ok_or_else(|| ScimError::invalid_value("extension is not an object"))?
    } else {
        &mut *doc
    };

    // The sub-attribute addressed, if any: `name.givenName` or `emails[…].value`.
    let sub_name = path
        .attr
        .sub_attr
        .as_deref()
        .or(path.sub_after_filter.as_deref());
    let sub = match sub_name {
        Some(s) => Some(attribute.sub_attribute(s).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "'{s}' is not a sub-attribute of '{}'",
                attribute.name
            ))
        })?),
        None => None,
    };
    if let Some(sub) = sub
        && sub.mutability == Mutability::ReadOnly
    {
        return Err(ScimError::mutability(format!(
            "'{}.{}' is read-only",
            attribute.name, sub.name
        )));
    }

    match (&path.filter, sub) {
        (None, None) => apply_whole(container, attribute, op, value, &label),
        (None, Some(sub)) => apply_sub_of_single(container, attribute, sub, op, value, &label),
        (Some(filter), sub) => apply_filtered(container, attribute, filter, sub, op, value, &label),
    }
}

/// Applies each attribute of an extension's value object (`{"department": "…", …}`) as an
/// operation on `urn:…:department`; a `schemas` key inside it carries nothing.
fn apply_extension_values(
    registry: &Registry,
    rt: &ResourceType,
    doc: &mut Document,
    op: OpKind,
    urn: &str,
    values: &Map<String, Value>,
    members: &mut Vec<MemberChange>,
) -> Result<(), ScimError> {
    for (name, v) in values {
        if name.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let path = PatchPath {
            attr: AttrPath {
                urn: Some(urn.to_string()),
                attr: name.clone(),
                sub_attr: None,
            },
            filter: None,
            sub_after_filter: None,
        };
        apply_path(registry, rt, doc, op, &path, Some(v), members)?;
    }
    Ok(())
}

fn check_immutable(
    attribute: &Attribute,
    current: Option<&Value>,
    new: Option<&Value>,
    label: &str,
) -> Result<(), ScimError> {
    if attribute.mutability != Mutability::Immutable {
        return Ok(());
    }
    match (current, new) {
        (None, _) => Ok(()),
        (Some(c), Some(n)) if same_value(attribute, c, n) => Ok(()),
        _ => Err(ScimError::mutability(format!(
            "'{label}' is immutable and cannot be changed once set"
        ))),
    }
}

fn apply_whole(
    container: &mut Map<String, Value>,
    attribute: &Attribute,
    op: OpKind,
    value: Option<&Value>,
    label: &str,
) -> Result<(), ScimError> {
    let name = attribute.name.clone();
    match op {
        OpKind::Remove => {
            check_immutable(attribute, container.get(&name), None, label)?;
            if attribute.multi_valued
                && let Some(Value::Array(to_remove)) = value.map(as_array)
            {
                // `remove` with a value list: drop the listed values.
                if let Some(Value::Array(items)) = container.get_mut(&name) {
                    items.retain(|item| {
                        !to_remove
                            .iter()
                            .any(|r| item_matches_value(attribute, item, r))
                    });
                    if items.is_empty() {
                        container.remove(&name);
                    }
                }
                return Ok(());
            }
            container.remove(&name);
            Ok(())
        }
        OpKind::Add | OpKind::Replace => {
            let value = value
                .ok_or_else(|| ScimError::invalid_value(format!("'{label}' needs a value")))?;
            if attribute.multi_valued {
                let incoming = normalize_value(attribute, &as_array(value), label)?;
                let incoming = match incoming {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                if op == OpKind::Replace || !container.contains_key(&name) {
                    check_immutable(
                        attribute,
                        container.get(&name),
                        Some(&Value::Array(incoming.clone())),
                        label,
                    )?;
                    if incoming.is_empty() {
                        container.remove(&name);
                    } else {
                        container.insert(name, Value::Array(incoming));
                    }
                    return Ok(());
                }
                let existing = container
                    .entry(name)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = existing {
                    let new_primary = incoming.iter().any(is_primary);
                    if new_primary {
                        for item in items.iter_mut() {
                            if let Some(obj) = item.as_object_mut() {
                                obj.remove("primary");
                            }
                        }
                    }
                    for item in incoming {
                        if !items.iter().any(|existing| existing == &item) {
                            items.push(item);
                        }
                    }
                }
                return Ok(());
            }
            // A complex attribute given as a bare string means its `value` (the enterprise
            // `manager` as some clients send it: `"value": "<manager id>"`).
            let wrapped;
            let value = match value {
                Value::String(s)
                    if attribute.kind == AttributeType::Complex
                        && attribute.sub_attribute("value").is_some() =>
                {
                    wrapped = serde_json::json!({ "value": s });
                    &wrapped
                }
                other => other,
            };
            let normalized = normalize_value(attribute, value, label)?;
            match (attribute.kind, normalized) {
                (_, None) => {
                    check_immutable(attribute, container.get(&name), None, label)?;
                    container.remove(&name);
                }
                (AttributeType::Complex, Some(Value::Object(incoming))) => {
                    // RFC 7644 §3.5.2.1 and §3.5.2.3: sub-attributes given replace, others stay.
                    let entry = container
                        .entry(name)
                        .or_insert_with(|| Value::Object(Map::new()));
                    match entry {
                        Value::Object(existing) => existing.extend(incoming),
                        other => *other = Value::Object(incoming),
                    }
                }
                (_, Some(v)) => {
                    check_immutable(attribute, container.get(&name), Some(&v), label)?;
                    container.insert(name, v);
                }
            }
            Ok(())
        }
    }
}

fn apply_sub_of_single(
    container: &mut Map<String, Value>,
    attribute: &Attribute,
    sub: &Attribute,
    op: OpKind,
    value: Option<&Value>,
    label: &str,
) -> Result<(), ScimError> {
    if attribute.multi_valued {
        // `emails.value` without a filter addresses every value (RFC 7644 §3.5.2.3).
        let Some(Value::Array(items)) = container.get_mut(&attribute.name) else {
            return match op {
                OpKind::Remove => Ok(()),
                _ => Err(ScimError::no_target(format!(
                    "'{label}': '{}' has no values to change",
                    attribute.name
                ))),
            };
        };
        for item in items.iter_mut() {
            set_sub(item, sub, op, value, label)?;
        }
        return Ok(());
    }
    let entry = container
        .entry(attribute.name.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    set_sub(entry, sub, op, value, label)?;
    if entry.as_object().is_some_and(Map::is_empty) {
        container.remove(&attribute.name);
    }
    Ok(())
}

fn set_sub(
    item: &mut Value,
    sub: &Attribute,
    op: OpKind,
    value: Option<&Value>,
    label: &str,
) -> Result<(), ScimError> {
    if !item.is_object() {
        *item = Value::Object(Map::new());
    }
    let Some(object) = item.as_object_mut() else {
        return Ok(());
    };
    match op {
        OpKind::Remove => {
            check_immutable(sub, object.get(&sub.name), None, label)?;
            object.remove(&sub.name);
        }
        OpKind::Add | OpKind::Replace => {
            let value = value
                .ok_or_else(|| ScimError::invalid_value(format!("'{label}' needs a value")))?;
            match normalize_value(sub, value, label)? {
                Some(v) => {
                    check_immutable(sub, object.get(&sub.name), Some(&v), label)?;
                    object.insert(sub.name.clone(), v);
                }
                None => {
                    object.remove(&sub.name);
                }
            }
        }
    }
    Ok(())
}

fn apply_filtered(
    container: &mut Map<String, Value>,
    attribute: &Attribute,
    filter: &Filter,
    sub: Option<&Attribute>,
    op: OpKind,
    value: Option<&Value>,
    label: &str,
) -> Result<(), ScimError> {
    if !attribute.multi_valued || attribute.kind != AttributeType::Complex {
        return Err(ScimError::invalid_path(format!(
            "'{label}': a value filter needs a multi-valued complex attribute"
        )));
    }
    let name = attribute.name.clone();
    let mut items = match container.remove(&name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| filter::matches(filter, &items[i], attribute))
        .collect();
    let result = (|| {
        match (op, sub) {
            (OpKind::Remove, None) => {
                let mut index = 0;
                items.retain(|_| {
                    let keep = !matched.contains(&index);
                    index += 1;
                    keep
                });
            }
            (OpKind::Remove, Some(sub)) => {
                for &i in &matched {
                    set_sub(&mut items[i], sub, op, None, label)?;
                }
            }
            (_, Some(sub)) => {
                if matched.is_empty() {
                    // `emails[type eq "work"].value` with no work e-mail yet: create it from the
                    // filter's equalities, as clients that send this form expect.
                    let mut created = seed_from_filter(filter).ok_or_else(|| {
                        ScimError::no_target(format!(
                            "'{label}' matches no value of '{}'",
                            attribute.name
                        ))
                    })?;
                    set_sub(&mut created, sub, OpKind::Add, value, label)?;
                    let created = normalize_value(attribute, &Value::Array(vec![created]), label)?;
                    if let Some(Value::Array(mut created)) = created {
                        items.append(&mut created);
                    }
                } else {
                    for &i in &matched {
                        set_sub(&mut items[i], sub, op, value, label)?;
                    }
                }
            }
            (_, None) => {
                let value = value
                    .ok_or_else(|| ScimError::invalid_value(format!("'{label}' needs a value")))?;
                let replacement = match normalize_value(attribute, &as_array(value), label)? {
                    Some(Value::Array(mut v)) if v.len() == 1 => v.remove(0),
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "'{label}': the value must be one object"
                        )));
                    }
                };
                if matched.is_empty() {
                    return Err(ScimError::no_target(format!(
                        "'{label}' matches no value of '{}'",
                        attribute.name
                    )));
                }
                for &i in &matched {
                    match (&mut items[i], &replacement) {
                        (Value::Object(existing), Value::Object(new)) if op == OpKind::Add => {
                            existing.extend(new.clone())
                        }
                        (slot, new) => *slot = new.clone(),
                    }
                }
            }
        }
        Ok(())
    })();
    // Making a matched value primary takes the flag from the others (RFC 7643 §2.4: at most one
    // primary value).
    if result.is_ok()
        && op != OpKind::Remove
        && matched
            .iter()
            .any(|&i| items.get(i).is_some_and(is_primary))
    {
        for (i, item) in items.iter_mut().enumerate() {
            if !matched.contains(&i)
                && let Some(obj) = item.as_object_mut()
            {
                obj.remove("primary");
            }
        }
    }
    if !items.is_empty() {
        container.insert(name, Value::Array(items));
    }
    result
}

/// `type eq "work" and primary eq true` → `{"type":"work","primary":true}`; `None` when the filter
/// is anything but a conjunction of equalities.
fn seed_from_filter(filter: &Filter) -> Option<Value> {
    fn collect(filter: &Filter, out: &mut Map<String, Value>) -> bool {
        match filter {
            Filter::And(a, b) => collect(a, out) && collect(b, out),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.sub_attr.is_none() && path.urn.is_none() => {
                let v = match value {
                    CompareValue::Str(s) => Value::String(s.clone()),
                    CompareValue::Bool(b) => Value::Bool(*b),
                    CompareValue::Number(n) => Value::Number(n.clone()),
                    CompareValue::Null => return false,
                };
                out.insert(path.attr.clone(), v);
                true
            }
            _ => false,
        }
    }
    let mut out = Map::new();
    collect(filter, &mut out).then_some(Value::Object(out))
}

fn member_change(
    op: OpKind,
    path: &PatchPath,
    value: Option<&Value>,
    members: &mut Vec<MemberChange>,
) -> Result<(), ScimError> {
    if path.attr.sub_attr.is_some() || path.sub_after_filter.is_some() {
        return Err(ScimError::invalid_path(
            "members can only be added or removed whole; their sub-attributes are immutable",
        ));
    }
    match (op, &path.filter) {
        (OpKind::Remove, Some(filter)) => {
            members.push(MemberChange::RemoveMatching(filter.clone()))
        }
        (OpKind::Remove, None) => match value {
            Some(v) => {
                let ids = member_ids(&as_array(v))?;
                members.push(MemberChange::Remove(ids));
            }
            None => members.push(MemberChange::RemoveAll),
        },
        (OpKind::Add, None) => members.push(MemberChange::Add(member_values(value)?)),
        (OpKind::Replace, None) => members.push(MemberChange::ReplaceAll(member_values(value)?)),
        (_, Some(filter)) => {
            // `replace members[value eq "x"]` with a new member: remove the match, add the value.
            members.push(MemberChange::RemoveMatching(filter.clone()));
            members.push(MemberChange::Add(member_values(value)?));
        }
    }
    Ok(())
}

fn member_values(value: Option<&Value>) -> Result<Vec<Value>, ScimError> {
    let value = value.ok_or_else(|| ScimError::invalid_value("members: a value is needed"))?;
    let items = match as_array(value) {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    for item in &items {
        if !item.get("value").is_some_and(Value::is_string) {
            return Err(ScimError::invalid_value(
                "each member must be an object with a string 'value' (the member's id)",
            ));
        }
    }
    Ok(items)
}

fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    member_values(Some(value))?
        .iter()
        .map(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ScimError::invalid_value("member without 'value'"))
        })
        .collect()
}

fn as_array(value: &Value) -> Value {
    match value {
        Value::Array(_) => value.clone(),
        other => Value::Array(vec![other.clone()]),
    }
}

fn is_primary(item: &Value) -> bool {
    item.get("primary").and_then(Value::as_bool) == Some(true)
}

fn item_matches_value(attribute: &Attribute, item: &Value, wanted: &Value) -> bool {
    match (item.get("value"), wanted.get("value")) {
        (Some(a), Some(b)) => attribute
            .sub_attribute("value")
            .map_or(a == b, |sub| same_value(sub, a, b)),
        _ => item == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use serde_json::json;

    fn setup() -> (Registry, ResourceType, Document) {
        let registry = Registry::load().unwrap();
        let rt = registry.resource_type("User").unwrap().clone();
        let Value::Object(doc) = json!({
            "schemas": [USER_SCHEMA],
            "userName": "ana@example.com",
            "name": {"givenName": "Ana", "familyName": "Silva"},
            "emails": [{"value": "ana@example.com", "type": "work", "primary": true}],
            "active": true
        }) else {
            unreachable!()
        };
        (registry, rt, doc)
    }

    fn patch(doc: &mut Document, ops: Value) -> Result<Vec<MemberChange>, ScimError> {
        let (registry, rt, _) = setup();
        let ops = parse_request(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops}))?;
        apply(&registry, &rt, doc, &ops)
    }

    #[test]
    fn pathless_replace_with_dotted_and_string_booleans() {
        let (_, _, mut doc) = setup();
        patch(
            &mut doc,
            json!([{"op": "Replace", "value": {"active": "False", "name.givenName": "Anna"}}]),
        )
        .unwrap();
        assert_eq!(doc["active"], false);
        assert_eq!(
            doc["name"],
            json!({"givenName": "Anna", "familyName": "Silva"})
        );
    }

    #[test]
    fn value_filter_paths() {
        let (_, _, mut doc) = setup();
        patch(&mut doc, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ANA@example.com"}])).unwrap();
        assert_eq!(doc["emails"][0]["value"], "ANA@example.com");
        patch(&mut doc, json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "ana@home.org"}])).unwrap();
        assert_eq!(
            doc["emails"][1],
            json!({"type": "home", "value": "ana@home.org"})
        );
        patch(
            &mut doc,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        )
        .unwrap();
        assert_eq!(doc["emails"][1]["primary"], true);
        assert!(
            doc["emails"][0].get("primary").is_none(),
            "one primary at a time"
        );
        patch(
            &mut doc,
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        )
        .unwrap();
        assert_eq!(doc["emails"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn immutable_user_name() {
        let (_, _, mut doc) = setup();
        patch(
            &mut doc,
            json!([{"op": "replace", "path": "userName", "value": "ANA@EXAMPLE.COM"}]),
        )
        .unwrap();
        let e = patch(
            &mut doc,
            json!([{"op": "replace", "path": "userName", "value": "bob@example.com"}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(crate::scim::error::ScimType::Mutability));
    }

    #[test]
    fn extension_paths_and_errors() {
        let (_, _, mut doc) = setup();
        patch(&mut doc, json!([{"op": "add", "path": format!("{ENTERPRISE_USER_SCHEMA}:department"), "value": "Sales"}])).unwrap();
        assert_eq!(doc[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
        patch(
            &mut doc,
            json!([{"op": "add", "value": {ENTERPRISE_USER_SCHEMA: {"costCenter": "7"}}}]),
        )
        .unwrap();
        assert_eq!(doc[ENTERPRISE_USER_SCHEMA]["costCenter"], "7");
        patch(&mut doc, json!([{"op": "Add", "path": format!("{ENTERPRISE_USER_SCHEMA}:manager"), "value": "boss-id"}])).unwrap();
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "boss-id"})
        );
        assert!(patch(&mut doc, json!([{"op": "remove"}])).is_err());
        assert!(patch(&mut doc, json!([{"op": "jump", "path": "x"}])).is_err());
        assert_eq!(
            patch(
                &mut doc,
                json!([{"op": "add", "path": "bogus", "value": 1}])
            )
            .unwrap_err()
            .scim_type,
            Some(crate::scim::error::ScimType::InvalidPath)
        );
        assert_eq!(
            patch(
                &mut doc,
                json!([{"op": "replace", "path": "groups", "value": []}])
            )
            .unwrap_err()
            .scim_type,
            Some(crate::scim::error::ScimType::Mutability)
        );
        assert_eq!(
            patch(
                &mut doc,
                json!([{"op": "replace", "path": "active", "value": 3}])
            )
            .unwrap_err()
            .scim_type,
            Some(crate::scim::error::ScimType::InvalidValue)
        );
    }

    #[test]
    fn pathless_values_ignore_read_only_attributes() {
        let (_, _, mut doc) = setup();
        patch(&mut doc, json!([{"op": "replace", "value": {"id": "x", "meta": {"version": "1"}, "title": "Lead"}}])).unwrap();
        assert_eq!(doc["title"], "Lead");
        assert!(!doc.contains_key("id") && !doc.contains_key("meta"));
    }

    #[test]
    fn group_member_operations_are_handed_back() {
        let registry = Registry::load().unwrap();
        let rt = registry.resource_type("Group").unwrap().clone();
        let mut doc = Document::new();
        let ops = parse_request(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
            {"op": "remove", "path": "members[value eq \"a\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "b"}]},
        ]}))
        .unwrap();
        let changes = apply(&registry, &rt, &mut doc, &ops).unwrap();
        assert_eq!(changes.len(), 3);
        assert!(matches!(&changes[2], MemberChange::Remove(ids) if ids == &vec!["b".to_string()]));
    }
}
