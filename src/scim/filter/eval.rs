//! Evaluates a value filter (`emails[type eq "work"]`, `members[value eq "…"]`) against one value
//! of a multi-valued complex attribute, in memory. Used by PATCH paths; list queries compile
//! filters to SQL instead.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ast::{CompareOp, CompareValue, Filter};
use crate::scim::schema::{Attribute, AttributeType};

/// True when `item` (one value of the complex attribute `attribute`) satisfies `filter`, whose
/// attribute paths name sub-attributes of `attribute`.
pub fn matches(filter: &Filter, item: &Value, attribute: &Attribute) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, item, attribute) && matches(b, item, attribute),
        Filter::Or(a, b) => matches(a, item, attribute) || matches(b, item, attribute),
        Filter::Not(a) => !matches(a, item, attribute),
        Filter::Present(path) => lookup(item, &path.attr).is_some_and(|v| !is_empty(v)),
        Filter::Compare { path, op, value } => {
            let definition = attribute.sub_attribute(&path.attr);
            let actual = lookup(item, &path.attr);
            compare(actual, *op, value, definition)
        }
        // Value filters do not nest (the parser refuses it).
        Filter::ValuePath { .. } => false,
    }
}

fn lookup<'a>(item: &'a Value, name: &str) -> Option<&'a Value> {
    match item {
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v),
        // A simple multi-valued attribute's values are addressed as `value`.
        other if name.eq_ignore_ascii_case("value") => Some(other),
        _ => None,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn compare(
    actual: Option<&Value>,
    op: CompareOp,
    expected: &CompareValue,
    definition: Option<&Attribute>,
) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    match (actual, expected) {
        (None, CompareValue::Null) => op == CompareOp::Eq,
        (Some(_), CompareValue::Null) => op == CompareOp::Ne,
        (None, _) => op == CompareOp::Ne,
        (Some(Value::Bool(a)), CompareValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        (Some(Value::Number(a)), CompareValue::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => ordered(a.partial_cmp(&b), op),
            _ => false,
        },
        (Some(Value::String(a)), CompareValue::Str(b)) => {
            let is_date_time = definition.is_some_and(|d| d.kind == AttributeType::DateTime);
            // Date-times compare as instants, whatever their offset or precision.
            if is_date_time
                && !op.is_substring()
                && let (Ok(a), Ok(b)) = (
                    OffsetDateTime::parse(a, &Rfc3339),
                    OffsetDateTime::parse(b, &Rfc3339),
                )
            {
                return ordered(Some(a.cmp(&b)), op);
            }
            let case_exact = definition.is_some_and(|d| d.case_exact);
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordered(Some(a.cmp(&b)), op),
            }
        }
        _ => op == CompareOp::Ne,
    }
}

fn ordered(ordering: Option<std::cmp::Ordering>, op: CompareOp) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (ordering, op),
        (Some(Equal), CompareOp::Eq | CompareOp::Ge | CompareOp::Le)
            | (Some(Less), CompareOp::Lt | CompareOp::Le | CompareOp::Ne)
            | (Some(Greater), CompareOp::Gt | CompareOp::Ge | CompareOp::Ne)
            | (None, CompareOp::Ne)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;
    use crate::scim::schema::Registry;
    use serde_json::json;

    #[test]
    fn evaluates_value_filters_with_schema_case_rules() {
        let registry = Registry::load().unwrap();
        let user = registry.resource_type("User").unwrap();
        let emails = registry.resolve(user, None, "emails").unwrap().attribute;
        let item = json!({"value": "Ana@Example.com", "type": "work", "primary": true});
        let inner = |f: &str| match parse(f).unwrap() {
            Filter::ValuePath { filter, .. } => *filter,
            other => other,
        };
        assert!(matches(&inner(r#"emails[type eq "WORK"]"#), &item, emails));
        assert!(matches(
            &inner(r#"emails[value eq "ana@example.com" and primary eq true]"#),
            &item,
            emails
        ));
        assert!(!matches(&inner(r#"emails[type eq "home"]"#), &item, emails));
        assert!(matches(
            &inner(r#"emails[not (type eq "home")]"#),
            &item,
            emails
        ));
        assert!(matches(&inner(r#"emails[display eq null]"#), &item, emails));
    }
}
