//! The schema registry: the SCIM schemas and resource types of `schemas/`, embedded at build time
//! (RFC 7643 §7 and §6). It is the single source of truth for validation (types, required,
//! mutability, `caseExact`), for projection (`returned`) and for discovery (`/Schemas`,
//! `/ResourceTypes`), so what we advertise and what we enforce cannot drift apart.

use serde::Deserialize;
use serde_json::Value;

use super::error::ScimError;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

const SCHEMA_FILES: &[(&str, &str)] = &[
    ("User.json", include_str!("../../schemas/User.json")),
    ("Group.json", include_str!("../../schemas/Group.json")),
    (
        "EnterpriseUser.json",
        include_str!("../../schemas/EnterpriseUser.json"),
    ),
    (
        "SwitchboardUser.json",
        include_str!("../../schemas/SwitchboardUser.json"),
    ),
    (
        "SwitchboardGroup.json",
        include_str!("../../schemas/SwitchboardGroup.json"),
    ),
    ("Role.json", include_str!("../../schemas/Role.json")),
    (
        "Entitlement.json",
        include_str!("../../schemas/Entitlement.json"),
    ),
];

const RESOURCE_TYPE_FILES: &[(&str, &str)] = &[
    (
        "resource-types/User.json",
        include_str!("../../schemas/resource-types/User.json"),
    ),
    (
        "resource-types/Group.json",
        include_str!("../../schemas/resource-types/Group.json"),
    ),
    (
        "resource-types/Role.json",
        include_str!("../../schemas/resource-types/Role.json"),
    ),
    (
        "resource-types/Entitlement.json",
        include_str!("../../schemas/resource-types/Entitlement.json"),
    ),
];

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default)]
    pub canonical_values: Vec<String>,
    #[serde(default)]
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// Sub-attribute by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    fn common(
        name: &str,
        kind: AttributeType,
        mutability: Mutability,
        returned: Returned,
        case_exact: bool,
    ) -> Self {
        Attribute {
            name: name.into(),
            kind,
            multi_valued: false,
            required: false,
            case_exact,
            mutability,
            returned,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
}

/// A schema (RFC 7643 §7): its id (URN) and attributes, plus the JSON we serve for it.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: String,
    pub attributes: Vec<Attribute>,
    pub representation: Value,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    pub schema: String,
    #[serde(default)]
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub schema: String,
    pub extensions: Vec<SchemaExtension>,
    pub representation: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSchema {
    id: String,
    attributes: Vec<Attribute>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResourceType {
    id: String,
    name: String,
    endpoint: String,
    schema: String,
    #[serde(default)]
    schema_extensions: Vec<SchemaExtension>,
}

/// Every schema and resource type the server knows, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct Registry {
    schemas: Vec<Schema>,
    resource_types: Vec<ResourceType>,
    /// `id`, `externalId` and `meta`: the common attributes of RFC 7643 §3.1, which the schemas
    /// themselves do not list.
    common: Vec<Attribute>,
}

/// Where an attribute name of a request resolves to.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The schema URN the attribute belongs to; `None` for the common attributes.
    pub schema: Option<&'a str>,
    /// True when the attribute lives under an extension URN key in the resource JSON.
    pub in_extension: bool,
    pub attribute: &'a Attribute,
}

impl Registry {
    /// Parses the embedded JSON. Fails only if `schemas/` itself is broken, which a unit test
    /// catches before any release.
    pub fn load() -> Result<Self, String> {
        let mut schemas = Vec::new();
        for (file, text) in SCHEMA_FILES {
            let representation: Value =
                serde_json::from_str(text).map_err(|e| format!("schemas/{file}: {e}"))?;
            let raw: RawSchema = serde_json::from_value(representation.clone())
                .map_err(|e| format!("schemas/{file}: {e}"))?;
            schemas.push(Schema {
                id: raw.id,
                attributes: raw.attributes,
                representation,
            });
        }
        let mut resource_types = Vec::new();
        for (file, text) in RESOURCE_TYPE_FILES {
            let representation: Value =
                serde_json::from_str(text).map_err(|e| format!("schemas/{file}: {e}"))?;
            let raw: RawResourceType = serde_json::from_value(representation.clone())
                .map_err(|e| format!("schemas/{file}: {e}"))?;
            for urn in
                std::iter::once(&raw.schema).chain(raw.schema_extensions.iter().map(|e| &e.schema))
            {
                if !schemas.iter().any(|s| &s.id == urn) {
                    return Err(format!("schemas/{file}: unknown schema {urn}"));
                }
            }
            resource_types.push(ResourceType {
                id: raw.id,
                name: raw.name,
                endpoint: raw.endpoint,
                schema: raw.schema,
                extensions: raw.schema_extensions,
                representation,
            });
        }
        let meta = Attribute {
            sub_attributes: vec![
                Attribute::common(
                    "resourceType",
                    AttributeType::String,
                    Mutability::ReadOnly,
                    Returned::Default,
                    true,
                ),
                Attribute::common(
                    "created",
                    AttributeType::DateTime,
                    Mutability::ReadOnly,
                    Returned::Default,
                    false,
                ),
                Attribute::common(
                    "lastModified",
                    AttributeType::DateTime,
                    Mutability::ReadOnly,
                    Returned::Default,
                    false,
                ),
                Attribute::common(
                    "location",
                    AttributeType::Reference,
                    Mutability::ReadOnly,
                    Returned::Default,
                    true,
                ),
                Attribute::common(
                    "version",
                    AttributeType::String,
                    Mutability::ReadOnly,
                    Returned::Default,
                    true,
                ),
            ],
            ..Attribute::common(
                "meta",
                AttributeType::Complex,
                Mutability::ReadOnly,
                Returned::Default,
                false,
            )
        };
        let common = vec![
            Attribute::common(
                "id",
                AttributeType::String,
                Mutability::ReadOnly,
                Returned::Always,
                true,
            ),
            Attribute::common(
                "externalId",
                AttributeType::String,
                Mutability::ReadWrite,
                Returned::Default,
                true,
            ),
            meta,
        ];
        Ok(Registry {
            schemas,
            resource_types,
            common,
        })
    }

    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    pub fn schema(&self, urn: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    pub fn common_attribute(&self, name: &str) -> Option<&Attribute> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The core schema of a resource type.
    pub fn core_schema(&self, rt: &ResourceType) -> Option<&Schema> {
        self.schema(&rt.schema)
    }

    /// The extension schema of a resource type whose URN matches `urn` case-insensitively.
    pub fn extension_schema(&self, rt: &ResourceType, urn: &str) -> Option<&Schema> {
        rt.extensions
            .iter()
            .find(|e| e.schema.eq_ignore_ascii_case(urn))
            .and_then(|e| self.schema(&e.schema))
    }

    /// Resolves a top-level attribute reference of a filter, PATCH path or `attributes`
    /// parameter: `userName`, `name` or `urn:…:User:userName` or `urn:…:enterprise:2.0:User:department`.
    pub fn resolve<'a>(
        &'a self,
        rt: &'a ResourceType,
        urn: Option<&str>,
        name: &str,
    ) -> Result<Resolved<'a>, ScimError> {
        let unknown = || {
            let qualified = match urn {
                Some(u) => format!("{u}:{name}"),
                None => name.to_string(),
            };
            ScimError::invalid_path(format!("'{qualified}' is not an attribute of {}", rt.name))
        };
        match urn {
            None => {
                if let Some(attribute) = self.common_attribute(name) {
                    return Ok(Resolved {
                        schema: None,
                        in_extension: false,
                        attribute,
                    });
                }
                let core = self.core_schema(rt).ok_or_else(unknown)?;
                let attribute = core.attribute(name).ok_or_else(unknown)?;
                Ok(Resolved {
                    schema: Some(&core.id),
                    in_extension: false,
                    attribute,
                })
            }
            Some(urn) if urn.eq_ignore_ascii_case(&rt.schema) => {
                let core = self.core_schema(rt).ok_or_else(unknown)?;
                if let Some(attribute) = self.common_attribute(name) {
                    return Ok(Resolved {
                        schema: None,
                        in_extension: false,
                        attribute,
                    });
                }
                let attribute = core.attribute(name).ok_or_else(unknown)?;
                Ok(Resolved {
                    schema: Some(&core.id),
                    in_extension: false,
                    attribute,
                })
            }
            Some(urn) => {
                let ext = self.extension_schema(rt, urn).ok_or_else(unknown)?;
                let attribute = ext.attribute(name).ok_or_else(unknown)?;
                Ok(Resolved {
                    schema: Some(&ext.id),
                    in_extension: true,
                    attribute,
                })
            }
        }
    }
}

/// Splits `urn:…:User:name.givenName` into its schema URN (if any) and the rest. A URN is
/// recognised by its `urn:` prefix; it ends at the last `:` (attribute names contain no `:`, but
/// URNs contain dots, as in `…:enterprise:2.0:User`).
pub fn split_urn(path: &str) -> (Option<&str>, &str) {
    if path.len() > 4
        && path
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"))
        && let Some(idx) = path.rfind(':')
    {
        return (Some(&path[..idx]), &path[idx + 1..]);
    }
    (None, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schemas_load_and_resolve() {
        let registry = Registry::load().unwrap();
        let user = registry.resource_type("User").unwrap();
        assert_eq!(user.id, "User");
        let r = registry.resolve(user, None, "USERNAME").unwrap();
        assert_eq!(r.attribute.name, "userName");
        assert_eq!(r.attribute.mutability, Mutability::Immutable);
        assert!(!r.attribute.case_exact);
        let r = registry
            .resolve(user, Some(ENTERPRISE_USER_SCHEMA), "department")
            .unwrap();
        assert!(r.in_extension);
        assert!(registry.resolve(user, None, "nope").is_err());
        let group = registry.resource_type("group").unwrap();
        assert!(
            registry
                .resolve(group, None, "members")
                .unwrap()
                .attribute
                .multi_valued
        );
    }

    #[test]
    fn switchboard_extensions_roles_and_entitlements_load() {
        const UC_USER: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:User";
        const UC_GROUP: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:Group";
        let registry = Registry::load().unwrap();
        let user = registry.resource_type("User").unwrap();
        assert_eq!(
            user.extensions
                .iter()
                .map(|e| e.schema.as_str())
                .collect::<Vec<_>>(),
            [ENTERPRISE_USER_SCHEMA, UC_USER]
        );
        assert!(user.extensions.iter().all(|e| !e.required));
        let ext = registry
            .resolve(user, Some(UC_USER), "EXTENSIONNUMBER")
            .unwrap();
        assert!(ext.in_extension);
        assert_eq!(ext.attribute.returned, Returned::Always);
        assert_eq!(ext.attribute.uniqueness, Uniqueness::Server);
        assert_eq!(ext.attribute.mutability, Mutability::ReadWrite);
        let status = registry
            .resolve(user, Some(UC_USER), "accountStatus")
            .unwrap();
        assert_eq!(status.attribute.mutability, Mutability::ReadOnly);
        assert!(
            status
                .attribute
                .canonical_values
                .iter()
                .any(|v| v == "transferDeclined")
        );
        let template = registry
            .resolve(user, Some(UC_USER), "productSettingsTemplate")
            .unwrap();
        assert_eq!(template.attribute.mutability, Mutability::Immutable);
        let licenses = registry
            .resolve(user, Some(UC_USER), "licenseStatus")
            .unwrap()
            .attribute;
        assert!(licenses.multi_valued);
        assert_eq!(licenses.kind, AttributeType::Complex);
        assert!(licenses.sub_attribute("state").is_some());
        let roles = registry.resolve(user, None, "roles").unwrap().attribute;
        assert!(
            roles
                .sub_attribute("value")
                .unwrap()
                .canonical_values
                .iter()
                .any(|v| v == "pbx:superAdministrator")
        );
        let entitlements = registry.resolve(user, None, "entitlements").unwrap();
        assert_eq!(
            entitlements
                .attribute
                .sub_attribute("type")
                .unwrap()
                .canonical_values,
            ["License", "Feature"]
        );

        let group = registry.resource_type("Group").unwrap();
        let granted = registry
            .resolve(group, Some(UC_GROUP), "entitlements")
            .unwrap()
            .attribute;
        assert!(granted.multi_valued);
        assert!(granted.sub_attribute("value").unwrap().required);
        let parent = registry
            .resolve(group, Some(UC_GROUP), "parent")
            .unwrap()
            .attribute;
        assert!(!parent.multi_valued);
        assert_eq!(parent.mutability, Mutability::ReadOnly);
        assert!(
            registry
                .resolve(group, Some(UC_USER), "extensionNumber")
                .is_err()
        );

        for (name, endpoint, urn) in [
            (
                "Role",
                "/Roles",
                "urn:switchboard:scim:schemas:core:1.0:Role",
            ),
            (
                "Entitlement",
                "/Entitlements",
                "urn:switchboard:scim:schemas:core:1.0:Entitlement",
            ),
        ] {
            let rt = registry.resource_type(name).unwrap();
            assert_eq!(rt.id, rt.name);
            assert_eq!(rt.endpoint, endpoint);
            assert_eq!(rt.schema, urn);
            let value = registry.resolve(rt, None, "value").unwrap().attribute;
            assert_eq!(value.returned, Returned::Always);
            assert_eq!(value.mutability, Mutability::ReadOnly);
        }
    }

    /// Every embedded schema and resource type is served as written: its `meta.location` names
    /// its id, and every attribute spells out all the characteristics of RFC 7643 §7.
    #[test]
    fn embedded_files_are_complete() {
        fn check(schema: &str, attribute: &Value) {
            for key in [
                "name",
                "type",
                "multiValued",
                "description",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(
                    attribute.get(key).is_some(),
                    "{schema}: {} lacks {key}",
                    attribute["name"]
                );
            }
            if attribute["type"] == "reference" {
                assert!(
                    attribute["referenceTypes"].is_array(),
                    "{schema}: {}",
                    attribute["name"]
                );
            }
            for sub in attribute["subAttributes"].as_array().into_iter().flatten() {
                check(schema, sub);
            }
        }
        let registry = Registry::load().unwrap();
        for schema in registry.schemas() {
            let json = &schema.representation;
            assert_eq!(json["meta"]["resourceType"], "Schema");
            assert_eq!(json["meta"]["location"], format!("/Schemas/{}", schema.id));
            assert!(json["name"].is_string() && json["description"].is_string());
            for attribute in json["attributes"].as_array().unwrap() {
                check(&schema.id, attribute);
            }
        }
        for rt in registry.resource_types() {
            let json = &rt.representation;
            assert_eq!(json["meta"]["resourceType"], "ResourceType");
            assert_eq!(
                json["meta"]["location"],
                format!("/ResourceTypes/{}", rt.id)
            );
            assert_eq!(rt.id, rt.name);
        }
    }

    #[test]
    fn split_urn_keeps_dots_of_the_urn() {
        assert_eq!(
            split_urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            (
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
                "manager.value"
            )
        );
        assert_eq!(split_urn("name.givenName"), (None, "name.givenName"));
        assert_eq!(
            split_urn("ü:x:y"),
            (None, "ü:x:y"),
            "a multi-byte start is no URN, and no panic"
        );
    }
}
