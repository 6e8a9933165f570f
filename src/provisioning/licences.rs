//! Licences and seats: the entitlements a user asks for, the bundle's, and those inherited from
//! every group above them; seats taken and released to match (a guarded update on the product
//! row never oversells), a direct licence without a seat refused, an inherited one waiting in
//! `pendingSeat` for the next seat that frees.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::provisioning::user_doc::{GROUP_EXTENSION, TRANSFER_DECLINED, USER_EXTENSION, ext_str};
use crate::provisioning::{Context, Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{AccountPolicy, LicenceRow, Tx};

/// One entitlement asked for: a licence (`phone`) or a feature of one (`phone:sms`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Entitlement {
    License(String),
    Feature(String, String),
}

/// Parses SCIM entitlement objects; `type` is case-insensitive and, when absent, inferred from
/// the value (`product:feature` is a feature).
pub(crate) fn parse_entitlements(items: &[Value], label: &str) -> Result<Vec<Entitlement>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let value = item
            .get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_value(format!("every '{label}' item needs a 'value'"))
            })?;
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        let feature = value.split_once(':');
        let entitlement = if kind.eq_ignore_ascii_case("feature")
            || (kind.is_empty() && feature.is_some())
        {
            let (product, name) = feature.ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "feature entitlement '{value}' must be written 'product:feature', e.g. 'phone:sms'"
                ))
            })?;
            Entitlement::Feature(product.to_string(), name.to_string())
        } else if kind.is_empty() || kind.eq_ignore_ascii_case("license") {
            Entitlement::License(value.to_string())
        } else {
            return Err(ScimError::invalid_value(format!(
                "'{label}' type '{kind}' is not one of License, Feature"
            ))
            .into());
        };
        out.push(entitlement);
    }
    Ok(out)
}

/// Where a wanted licence comes from.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    sources: Vec<String>,
    features: Vec<String>,
    /// Asked for directly (entitlements or bundle): no seat means the request is refused.
    required: bool,
}

impl Provisioner {
    /// The licences the user should hold: direct entitlements, the bundle's, and those of every
    /// group above them; then seats are taken and released to match. Returns the codes held — or,
    /// for a user who holds none by policy (inactive, transfer declined), the codes asked for.
    ///
    /// References the user already had (a bundle, a product) that were removed from the
    /// catalogue since are dropped quietly, so that an IdP can always deactivate or update the
    /// user; a new reference to something unknown is `400`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn settle_licences(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_id: Uuid,
        previous: Option<&Document>,
        doc: &mut Document,
        active: bool,
        policy: &AccountPolicy,
    ) -> Result<Vec<String>> {
        let account_id = ctx.principal.account_id;
        let mut known_before: BTreeSet<String> = match previous.and_then(|p| p.get("entitlements"))
        {
            Some(Value::Array(items)) => parse_entitlements(items, "entitlements")
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| match e {
                    Entitlement::License(code) => Some(code),
                    Entitlement::Feature(..) => None,
                })
                .collect(),
            _ => BTreeSet::new(),
        };
        // A user being created holds nothing and belongs to no group yet: nothing to read.
        let is_new = previous.is_none();
        let current = if is_new {
            Vec::new()
        } else {
            tx.licences_of_users(account_id, &[user_id]).await?
        };
        known_before.extend(current.iter().map(|l| l.code.clone()));
        let previous_bundle = previous
            .and_then(|p| p.get(USER_EXTENSION))
            .and_then(|e| e.get("licenseBundle"))
            .and_then(Value::as_str);
        let mut asked = match doc.get("entitlements") {
            Some(Value::Array(items)) => parse_entitlements(items, "entitlements")?,
            _ => Vec::new(),
        };
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for e in &asked {
            if let Entitlement::License(code) = e {
                let w = wanted.entry(code.clone()).or_default();
                w.required = true;
                w.sources.push("direct".into());
            }
        }
        let bundle_name = ext_str(doc, "licenseBundle").map(str::to_string);
        let bundle = match &bundle_name {
            Some(name) => match tx.bundle_by_name(account_id, name).await? {
                Some(bundle) => Some(bundle),
                None if previous_bundle == Some(name.as_str()) => None,
                None => {
                    return Err(ScimError::invalid_value(format!(
                        "licenseBundle '{name}' is not a licence bundle of this account"
                    ))
                    .into());
                }
            },
            None => None,
        };
        if let Some(bundle) = bundle {
            let items = parse_entitlements(&bundle.entitlements.0, "licenseBundle")?;
            for e in &items {
                if let Entitlement::License(code) = e {
                    let w = wanted.entry(code.clone()).or_default();
                    w.required = true;
                    w.sources.push("bundle".into());
                }
            }
            asked.extend(items);
        }
        let inherited = if is_new {
            Vec::new()
        } else {
            self.inherited_entitlements(tx, account_id, user_id).await?
        };
        for (group_id, items) in inherited {
            for e in &items {
                if let Entitlement::License(code) = e {
                    wanted
                        .entry(code.clone())
                        .or_default()
                        .sources
                        .push(group_id.to_string());
                }
            }
            asked.extend(items);
        }
        for e in &asked {
            if let Entitlement::Feature(product, feature) = e {
                let Some(w) = wanted.get_mut(product) else {
                    return Err(ScimError::invalid_value(format!(
                        "feature '{product}:{feature}' needs the '{product}' licence, which this user is not given"
                    ))
                    .into());
                };
                if !w.features.contains(feature) {
                    w.features.push(feature.clone());
                }
            }
        }
        let declined = ext_str(doc, "accountStatus") == Some(TRANSFER_DECLINED);
        if (!active && !policy.retain_licences) || declined {
            // Asked for, not held: what the user would hold, as far as the phone number's
            // licence check is concerned.
            let requested: Vec<String> = wanted.keys().cloned().collect();
            self.reconcile_licences(
                tx,
                account_id,
                user_id,
                &current,
                BTreeMap::new(),
                &known_before,
            )
            .await?;
            return Ok(requested);
        }
        self.reconcile_licences(tx, account_id, user_id, &current, wanted, &known_before)
            .await
    }

    /// Entitlements granted by the groups above the user (direct and nested memberships).
    pub(crate) async fn inherited_entitlements(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<(Uuid, Vec<Entitlement>)>> {
        let memberships = tx.groups_of_users(account_id, &[user_id]).await?;
        let ids: Vec<Uuid> = memberships.iter().map(|m| m.group_id).collect();
        let mut groups = tx.groups_by_ids(account_id, &ids).await?;
        groups.sort_by_key(|g| ids.iter().position(|id| *id == g.id));
        let mut out = Vec::new();
        for group in groups {
            if let Some(Value::Array(items)) = group
                .doc
                .get(GROUP_EXTENSION)
                .and_then(|e| e.get("entitlements"))
            {
                out.push((group.id, parse_entitlements(items, "entitlements")?));
            }
        }
        Ok(out)
    }

    /// Brings the user's licence rows from `current` to `wanted`, taking and releasing seats. A
    /// product or feature in `tolerated` (the user had it before) that the catalogue no longer
    /// has is dropped instead of refused.
    pub(crate) async fn reconcile_licences(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
        current: &[LicenceRow],
        wanted: BTreeMap<String, Wanted>,
        tolerated: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        let now = crate::store::now_micros();
        for row in current.iter().filter(|r| !wanted.contains_key(&r.code)) {
            tx.delete_licence(user_id, row.product_id).await?;
            if row.state == "assigned" {
                self.free_seat(tx, row.product_id).await?;
            }
        }
        let mut held = Vec::new();
        for (code, mut w) in wanted {
            let Some(product) = tx.product_by_code(account_id, &code).await? else {
                if tolerated.contains(&code) {
                    continue;
                }
                return Err(ScimError::invalid_value(format!(
                    "licence '{code}' is not a product of this account; GET /Entitlements lists them"
                ))
                .into());
            };
            let previous = current.iter().find(|r| r.product_id == product.id);
            let mut features = Vec::with_capacity(w.features.len());
            for feature in w.features.drain(..) {
                if product.features.0.contains(&feature) {
                    features.push(feature);
                } else if !previous.is_some_and(|p| p.features.0.contains(&feature)) {
                    return Err(ScimError::invalid_value(format!(
                        "'{feature}' is not a feature of product '{code}' (its features: {})",
                        product.features.0.join(", ")
                    ))
                    .into());
                }
            }
            w.features = features;
            let state = match previous.map(|r| r.state.as_str()) {
                Some("assigned") => "assigned",
                _ if tx.take_seat(product.id).await? => "assigned",
                _ if w.required => {
                    return Err(ScimError::forbidden(format!(
                        "no free seat for product {code}: {} of {} used; free a seat or add seats before assigning it",
                        product.seats_used, product.seats
                    ))
                    .into());
                }
                _ => "pendingSeat",
            };
            if state == "assigned" {
                held.push(code.clone());
            }
            let row = LicenceRow {
                user_id,
                product_id: product.id,
                code,
                state: state.to_string(),
                sources: Json(w.sources),
                features: Json(w.features),
                since: previous
                    .filter(|p| p.state == state)
                    .map_or(now, |p| p.since),
            };
            tx.put_licence(account_id, &row).await?;
        }
        Ok(held)
    }

    /// Releases one seat and gives it to whoever has waited longest for one.
    pub(crate) async fn free_seat(&self, tx: &mut Tx, product_id: Uuid) -> Result<()> {
        tx.release_seat(product_id).await?;
        if let Some(waiting) = tx.oldest_pending_licence(product_id).await?
            && tx.take_seat(product_id).await?
        {
            tx.set_licence_assigned(waiting, product_id).await?;
        }
        Ok(())
    }

    /// Releases every licence of a user (deletion).
    pub(crate) async fn release_licences(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<()> {
        let current = tx.licences_of_users(account_id, &[user_id]).await?;
        self.reconcile_licences(
            tx,
            account_id,
            user_id,
            &current,
            BTreeMap::new(),
            &BTreeSet::new(),
        )
        .await
        .map(|_| ())
    }

    /// Re-derives the licences of users whose group memberships or groups changed. Inherited
    /// licences that find no seat wait; nothing here refuses the group write.
    pub(crate) async fn refresh_inherited(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_ids: &[Uuid],
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let policy = tx
            .account_policy(account_id)
            .await?
            .ok_or_else(|| Error::Internal("the caller's account has no row".into()))?;
        for user_id in user_ids {
            let Some(user) = tx.user(account_id, *user_id, false).await? else {
                continue;
            };
            let mut doc = user.doc.0.clone();
            // Direct licences the user already holds stay held; a direct one without a seat
            // (seats lowered since) is not this write's to refuse.
            let result = self
                .settle_licences(
                    tx,
                    ctx,
                    user.id,
                    Some(&user.doc.0),
                    &mut doc,
                    user.active,
                    &policy,
                )
                .await;
            match result {
                Ok(_) => {}
                Err(Error::Scim(e)) if e.status == 403 || e.status == 400 => {
                    tracing::warn!(user = %user.id, detail = %e.detail, "inherited licences left as they were");
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entitlement_types_are_inferred_and_case_insensitive() {
        let parsed = parse_entitlements(
            &[
                json!({"value": "phone", "type": "license"}),
                json!({"value": "phone:sms"}),
                json!({"value": "meeting"}),
            ],
            "entitlements",
        )
        .ok();
        assert_eq!(
            parsed,
            Some(vec![
                Entitlement::License("phone".into()),
                Entitlement::Feature("phone".into(), "sms".into()),
                Entitlement::License("meeting".into()),
            ])
        );
        assert!(parse_entitlements(&[json!({"value": "x", "type": "Seat"})], "e").is_err());
    }
}
