//! What a group write means for the platform: the group extension (licences and settings
//! template granted to every member below, managers who must hold a manage-groups role), the
//! licences to re-derive for the users a change reaches, and the group's computed attributes.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::domain::AccountRole;
use crate::provisioning::licences::{Entitlement, parse_entitlements};
use crate::provisioning::user_doc::{GROUP_EXTENSION, list_schema};
use crate::provisioning::users::{resolve_template, stored_role};
use crate::provisioning::{Context, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::Tx;

/// What a group write changed that licence inheritance depends on.
pub struct GroupChange<'a> {
    pub group_id: Uuid,
    pub old_doc: Option<&'a Document>,
    pub new_doc: Option<&'a Document>,
    /// Members (users or groups) whose row the write inserted or deleted.
    pub added: &'a [Uuid],
    pub removed: &'a [Uuid],
}

pub(crate) fn group_entitlements(doc: Option<&Document>) -> Option<&Value> {
    doc?.get(GROUP_EXTENSION)?.get("entitlements")
}

impl Provisioner {
    /// Validates the group extension (licences, template, managers) and completes its
    /// server-owned attributes.
    pub(crate) async fn settle_group(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        existing: Option<&Document>,
        doc: &mut Document,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let mut ext = match doc.remove(GROUP_EXTENSION) {
            Some(Value::Object(ext)) => ext,
            _ => Map::new(),
        };
        // What the group already had is not checked again (the catalogue may have changed
        // since): a membership sync must never fail on it.
        let stored = existing
            .and_then(|d| d.get(GROUP_EXTENSION))
            .and_then(Value::as_object);
        let unchanged = |name: &str, ext: &Map<String, Value>| {
            ext.get(name).is_some() && stored.and_then(|s| s.get(name)) == ext.get(name)
        };
        let manager_ids = |value: Option<&Value>| -> Vec<String> {
            let mut ids: Vec<String> = value
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|m| m.get("value").and_then(Value::as_str))
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids
        };
        let managers_unchanged = ext.get("managers").is_some()
            && manager_ids(ext.get("managers"))
                == manager_ids(stored.and_then(|s| s.get("managers")));
        if managers_unchanged && let Some(kept) = stored.and_then(|s| s.get("managers")) {
            ext.insert("managers".into(), kept.clone());
        }
        if let Some(Value::Array(items)) = ext
            .get("entitlements")
            .filter(|_| !unchanged("entitlements", &ext))
        {
            let parsed = parse_entitlements(items, "entitlements")?;
            for e in &parsed {
                let (code, feature) = match e {
                    Entitlement::License(code) => (code, None),
                    Entitlement::Feature(code, feature) => (code, Some(feature)),
                };
                let product = tx.product_by_code(account_id, code).await?.ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "licence '{code}' is not a product of this account; GET /Entitlements lists them"
                    ))
                })?;
                if let Some(feature) = feature
                    && !product.features.0.contains(feature)
                {
                    return Err(ScimError::invalid_value(format!(
                        "'{feature}' is not a feature of product '{code}'"
                    ))
                    .into());
                }
            }
        }
        if let Some(template) = ext
            .get("productSettingsTemplate")
            .filter(|_| !unchanged("productSettingsTemplate", &ext))
            .cloned()
        {
            let templates: Vec<(Uuid, String)> = tx
                .settings_templates(account_id)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            let name = resolve_template(&template, &templates, "productSettingsTemplate")?;
            ext.insert("productSettingsTemplate".into(), json!(name));
        }
        if let Some(Value::Array(managers)) =
            ext.get_mut("managers").filter(|_| !managers_unchanged)
        {
            for manager in managers.iter_mut() {
                let id = manager
                    .get("value")
                    .and_then(Value::as_str)
                    .and_then(|v| Uuid::parse_str(v).ok());
                let user = match id {
                    Some(id) => tx.user(account_id, id, false).await?,
                    None => None,
                };
                let Some(user) = user else {
                    return Err(ScimError::invalid_value(format!(
                        "manager {} is not a user of this account",
                        manager.get("value").unwrap_or(&Value::Null)
                    ))
                    .into());
                };
                let may_manage = match stored_role(&user)? {
                    AccountRole::Custom(role_id) => tx
                        .custom_role(account_id, role_id.into_uuid())
                        .await?
                        .is_some_and(|r| r.permissions.0.iter().any(|p| p == "manageGroups")),
                    _ => false,
                };
                if !may_manage {
                    return Err(ScimError::invalid_value(format!(
                        "user {} cannot manage groups: a group manager needs a custom role with the manageGroups permission",
                        user.user_name
                    ))
                    .into());
                }
                *manager = json!({
                    "value": user.id.to_string(),
                    "$ref": format!("{}/Users/{}", ctx.scim_base, user.id),
                    "display": user.display_name.as_deref().unwrap_or(&user.user_name),
                });
            }
        }
        let managed_by = existing
            .and_then(|d| d.get(GROUP_EXTENSION))
            .and_then(|e| e.get("managedBy"))
            .cloned()
            .unwrap_or(json!("scim"));
        ext.insert("managedBy".into(), managed_by);
        doc.insert(GROUP_EXTENSION.into(), Value::Object(ext));
        list_schema(doc, GROUP_EXTENSION);
        Ok(())
    }

    /// Re-derives inherited licences for the users a group write reaches. Nothing to do (and
    /// nothing read) when neither the group nor any group above it grants licences.
    pub(crate) async fn group_changed(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        change: GroupChange<'_>,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let grants_changed =
            group_entitlements(change.old_doc) != group_entitlements(change.new_doc);
        let membership_changed = !change.added.is_empty() || !change.removed.is_empty();
        if !grants_changed && !membership_changed {
            return Ok(());
        }
        let grants = grants_changed
            || group_entitlements(change.old_doc).is_some()
            || match change.new_doc {
                Some(doc) => {
                    self.licences_flow_through(tx, ctx, change.group_id, doc)
                        .await?
                }
                None => false,
            };
        if !grants {
            return Ok(());
        }
        let mut users: Vec<Uuid> = Vec::new();
        if grants_changed {
            users.extend(tx.users_below_group(account_id, change.group_id).await?);
        }
        for id in change.added.iter().chain(change.removed) {
            if tx.group(account_id, *id, false).await?.is_some() {
                users.extend(tx.users_below_group(account_id, *id).await?);
            } else {
                users.push(*id);
            }
        }
        users.sort_unstable();
        users.dedup();
        self.refresh_inherited(tx, ctx, &users).await
    }

    /// Whether the group, or a group above it, grants licences.
    pub(crate) async fn licences_flow_through(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        group_id: Uuid,
        doc: &Document,
    ) -> Result<bool> {
        if group_entitlements(Some(doc)).is_some() {
            return Ok(true);
        }
        let account_id = ctx.principal.account_id;
        for (ancestor, _) in tx.ancestor_groups(account_id, group_id).await? {
            if let Some(group) = tx.group(account_id, ancestor, false).await?
                && group_entitlements(Some(&group.doc.0)).is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The group's computed read-only extension attributes — each only when the response
    /// carries it (`attributes` / `excludedAttributes`), since some cost a walk of the nesting.
    pub(crate) async fn add_group_extras(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        group: &crate::store::GroupRecord,
        projection: &crate::scim::projection::Projection,
        rendered: &mut Map<String, Value>,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let schema = self.registry.schema(GROUP_EXTENSION);
        let wants = |name: &str| {
            schema
                .and_then(|s| s.attribute(name))
                .is_some_and(|a| projection.wants(Some(GROUP_EXTENSION), a))
        };
        let mut computed = Map::new();
        let direct = if wants("memberCount") || wants("effectiveMemberCount") {
            Some(tx.direct_member_counts(group.id).await?)
        } else {
            None
        };
        if let Some(direct) = direct.filter(|_| wants("memberCount")) {
            computed.insert("memberCount".into(), json!(direct.users + direct.groups));
        }
        if let Some(direct) = direct.filter(|_| wants("effectiveMemberCount")) {
            // Without nested groups, the effective members are the user members; with them, the
            // nesting is walked (a user in two member groups counts once).
            let count = if direct.groups == 0 {
                direct.users
            } else {
                tx.count_users_below_group(account_id, group.id).await?
            };
            computed.insert("effectiveMemberCount".into(), json!(count));
        }
        if wants("licenseErrors") {
            // Only a group that grants licences can have members waiting for a seat.
            let errors = if group_entitlements(Some(&group.doc.0)).is_some() {
                tx.pending_licences_from_group(account_id, group.id).await?
            } else {
                0
            };
            computed.insert("licenseErrors".into(), json!(errors));
        }
        if wants("parent") {
            let parent = tx
                .ancestor_groups(account_id, group.id)
                .await?
                .into_iter()
                .filter(|(_, depth)| *depth == 1)
                .map(|(id, _)| id)
                .min();
            if let Some(id) = parent
                && let Some(g) = tx.group(account_id, id, false).await?
            {
                computed.insert(
                    "parent".into(),
                    json!({
                        "value": g.id.to_string(),
                        "$ref": format!("{}/Groups/{}", ctx.scim_base, g.id),
                        "display": g.display_name,
                    }),
                );
            }
        }
        let ext = rendered
            .entry(GROUP_EXTENSION.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ext) = ext {
            ext.extend(computed);
            ext.entry("managedBy").or_insert(json!("scim"));
        }
        list_schema(rendered, GROUP_EXTENSION);
        Ok(())
    }
}
