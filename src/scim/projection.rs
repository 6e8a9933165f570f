//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) together with each attribute's
//! `returned` characteristic (RFC 7643 §7): which parts of a resource a response carries. The
//! provisioning layer also asks a projection whether an expensive attribute (a group's
//! `members`, a user's `groups`) is wanted at all before loading it.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::parse_attr_path;
use super::schema::{Attribute, Registry, ResourceType, Returned, split_urn};

/// One entry of an `attributes` / `excludedAttributes` list, resolved against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    /// Canonical key of the attribute in the resource JSON: its schema URN for extension
    /// attributes, `None` for core and common ones.
    extension: Option<String>,
    /// Canonical attribute name; `None` selects the whole extension.
    attr: Option<String>,
    sub_attr: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Projection {
    attributes: Vec<Selector>,
    excluded: Vec<Selector>,
}

impl Projection {
    /// Parses the comma-separated lists. Names that match no attribute are ignored, as RFC 7644
    /// §3.9 lets a server do for attributes it does not return.
    pub fn parse(
        registry: &Registry,
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        Ok(Projection {
            attributes: parse_list(registry, rt, attributes)?,
            excluded: parse_list(registry, rt, excluded)?,
        })
    }

    /// Whether the response will contain the top-level attribute `attr` of the core schema (or of
    /// `extension`), so that the caller can skip loading it.
    pub fn wants(&self, extension: Option<&str>, attribute: &Attribute) -> bool {
        let key = extension.map(str::to_string);
        match attribute.returned {
            Returned::Never => false,
            Returned::Always => true,
            Returned::Request => self.attributes.iter().any(|s| {
                s.extension == key
                    && (s.attr.as_deref() == Some(&attribute.name)
                        || s.attr.is_none() && key.is_some())
            }),
            Returned::Default => {
                if !self.attributes.is_empty() {
                    self.attributes.iter().any(|s| {
                        s.extension == key
                            && (s.attr.is_none() || s.attr.as_deref() == Some(&attribute.name))
                    })
                } else {
                    !self.excluded.iter().any(|s| {
                        s.extension == key
                            && s.sub_attr.is_none()
                            && (s.attr.is_none() || s.attr.as_deref() == Some(&attribute.name))
                    })
                }
            }
        }
    }

    /// Applies the projection to a full resource representation.
    pub fn apply(
        &self,
        registry: &Registry,
        rt: &ResourceType,
        resource: Map<String, Value>,
    ) -> Map<String, Value> {
        let mut out = Map::with_capacity(resource.len());
        let core = registry.core_schema(rt);
        for (key, value) in resource {
            if key == "schemas" {
                out.insert(key, value);
                continue;
            }
            if let Some(ext) = registry.extension_schema(rt, &key) {
                let Value::Object(inner) = value else {
                    continue;
                };
                let mut kept = Map::new();
                for (name, v) in inner {
                    if let Some(attribute) = ext.attribute(&name)
                        && let Some(v) = self.project_attribute(Some(&ext.id), attribute, v)
                    {
                        kept.insert(name, v);
                    }
                }
                if !kept.is_empty() {
                    out.insert(key, Value::Object(kept));
                }
                continue;
            }
            let attribute = registry
                .common_attribute(&key)
                .or_else(|| core.and_then(|c| c.attribute(&key)));
            if let Some(attribute) = attribute
                && let Some(v) = self.project_attribute(None, attribute, value)
            {
                out.insert(key, v);
            }
        }
        out
    }

    fn project_attribute(
        &self,
        extension: Option<&str>,
        attribute: &Attribute,
        value: Value,
    ) -> Option<Value> {
        if !self.wants(extension, attribute) && !self.wants_some_sub(extension, attribute) {
            return None;
        }
        if attribute.sub_attributes.is_empty() {
            return Some(value);
        }
        let key = extension.map(str::to_string);
        let whole_requested = self.attributes.is_empty()
            || self.attributes.iter().any(|s| {
                s.extension == key
                    && (s.attr.is_none()
                        || s.attr.as_deref() == Some(&attribute.name) && s.sub_attr.is_none())
            });
        let filter_item = |item: Value| -> Option<Value> {
            let Value::Object(map) = item else {
                return Some(item);
            };
            let kept: Map<String, Value> = map
                .into_iter()
                .filter(|(name, _)| {
                    let sub = attribute.sub_attribute(name);
                    if sub.is_some_and(|s| s.returned == Returned::Never) {
                        return false;
                    }
                    if sub.is_some_and(|s| s.returned == Returned::Always) {
                        return true;
                    }
                    let selected = |list: &[Selector]| {
                        list.iter().any(|s| {
                            s.extension == key
                                && s.attr.as_deref() == Some(&attribute.name)
                                && s.sub_attr
                                    .as_deref()
                                    .is_some_and(|x| x.eq_ignore_ascii_case(name))
                        })
                    };
                    if whole_requested {
                        !selected(&self.excluded)
                    } else {
                        selected(&self.attributes)
                    }
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        };
        match value {
            Value::Array(items) => {
                let items: Vec<Value> = items.into_iter().filter_map(filter_item).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            other => filter_item(other),
        }
    }

    fn wants_some_sub(&self, extension: Option<&str>, attribute: &Attribute) -> bool {
        let key = extension.map(str::to_string);
        self.attributes.iter().any(|s| {
            s.extension == key && s.attr.as_deref() == Some(&attribute.name) && s.sub_attr.is_some()
        })
    }
}

fn parse_list(
    registry: &Registry,
    rt: &ResourceType,
    list: Option<&str>,
) -> Result<Vec<Selector>, ScimError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut selectors = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(ext) = registry.extension_schema(rt, item) {
            selectors.push(Selector {
                extension: Some(ext.id.clone()),
                attr: None,
                sub_attr: None,
            });
            continue;
        }
        let (urn, _) = split_urn(item);
        let path = parse_attr_path(item)
            .map_err(|e| ScimError::invalid_value(format!("attributes list: {e}")))?;
        let Ok(resolved) = registry.resolve(rt, urn, &path.attr) else {
            continue;
        };
        let sub_attr = match &path.sub_attr {
            Some(sub) => match resolved.attribute.sub_attribute(sub) {
                Some(s) => Some(s.name.clone()),
                None => continue,
            },
            None => None,
        };
        selectors.push(Selector {
            extension: resolved
                .in_extension
                .then(|| resolved.schema.unwrap_or_default().to_string()),
            attr: Some(resolved.attribute.name.clone()),
            sub_attr,
        });
    }
    Ok(selectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::ENTERPRISE_USER_SCHEMA;
    use serde_json::json;

    fn run(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let registry = Registry::load().unwrap();
        let rt = registry.resource_type("User").unwrap().clone();
        let resource = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1",
            "userName": "ana",
            "name": {"givenName": "Ana", "familyName": "Silva"},
            "emails": [{"value": "ana@x", "type": "work"}],
            "password": "secret",
            ENTERPRISE_USER_SCHEMA: {"department": "Sales", "costCenter": "7"},
            "meta": {"resourceType": "User"}
        });
        let Value::Object(map) = resource else {
            unreachable!()
        };
        let p = Projection::parse(&registry, &rt, attributes, excluded).unwrap();
        Value::Object(p.apply(&registry, &rt, map))
    }

    #[test]
    fn returned_never_is_never_returned() {
        assert!(run(None, None).get("password").is_none());
        assert!(run(Some("password"), None).get("password").is_none());
    }

    #[test]
    fn attributes_keeps_always_and_listed() {
        let v = run(Some("name.givenName,emails"), None);
        assert_eq!(v["id"], "1");
        assert_eq!(v["userName"], "ana");
        assert_eq!(v["name"], json!({"givenName": "Ana"}));
        assert!(v.get("emails").is_some());
        assert!(v.get("meta").is_none());
        assert!(v.get(ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn excluded_attributes_drop_default_ones_only() {
        let v = run(
            None,
            Some(
                "userName,emails,name.familyName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            ),
        );
        assert_eq!(v["userName"], "ana");
        assert!(v.get("emails").is_none());
        assert_eq!(v["name"], json!({"givenName": "Ana"}));
        assert_eq!(v[ENTERPRISE_USER_SCHEMA], json!({"costCenter": "7"}));
    }
}
