//! Licences and seats: the entitlements a user asks for, the bundle's, and those inherited from
//! every group above them; seats taken and released to match (a guarded update on the product
//! row never oversells), a direct licence without a seat refused, an inherited one waiting in
//! `pendingSeat` for the next seat that frees.
//!
//! The rules are pure functions ([`parse_entitlements`], [`licences_known_before`],
//! [`check_bundle`], [`wanted_licences`], [`holds_no_seat`], [`plan_reconcile`] and
//! [`PlannedLicence::state`]): no store, no I/O. The `Provisioner` methods load what they need
//! (the user's licence rows, the bundle, the groups above, the catalogue), call them, and apply
//! the plan (rows deleted and written, seats released and taken: taking a seat is the guarded
//! update on the product row, so its outcome comes back to [`PlannedLicence::state`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::provisioning::user_doc::{GROUP_EXTENSION, TRANSFER_DECLINED, USER_EXTENSION, ext_str};
use crate::provisioning::{Context, Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{AccountPolicy, LicenceRow, Product, Tx};

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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    sources: Vec<String>,
    features: Vec<String>,
    /// Asked for directly (entitlements or bundle): no seat means the request is refused.
    required: bool,
}

/// The licence codes a user had before this write (the licences of the stored document's
/// `entitlements` and the licence rows held): a reference to one of them that the catalogue no
/// longer has is dropped quietly instead of refused.
pub(crate) fn licences_known_before(
    previous: Option<&Document>,
    current: &[LicenceRow],
) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = match previous.and_then(|p| p.get("entitlements")) {
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
    known.extend(current.iter().map(|l| l.code.clone()));
    known
}

/// `licenseBundle` names a bundle of the account (`found`), or the one the user already had
/// (dropped quietly if removed since); anything else is refused.
pub(crate) fn check_bundle(
    name: &str,
    found: bool,
    previous_bundle: Option<&str>,
) -> Result<(), ScimError> {
    if found || previous_bundle == Some(name) {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "licenseBundle '{name}' is not a licence bundle of this account"
    )))
}

/// The licences a user should hold: the direct entitlements and the bundle's (required: no
/// seat refuses the write), those inherited from each group above (`(group id, items)`, not
/// required), each with its sources (`direct`, `bundle`, group ids) and features. A feature
/// whose licence none of them gives is refused.
pub(crate) fn wanted_licences(
    direct: &[Entitlement],
    bundle: &[Entitlement],
    inherited: &[(Uuid, Vec<Entitlement>)],
) -> Result<BTreeMap<String, Wanted>, ScimError> {
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    let given = [(direct, "direct"), (bundle, "bundle")];
    for (items, source) in given {
        for e in items {
            if let Entitlement::License(code) = e {
                let w = wanted.entry(code.clone()).or_default();
                w.required = true;
                w.sources.push(source.into());
            }
        }
    }
    for (group_id, items) in inherited {
        for e in items {
            if let Entitlement::License(code) = e {
                wanted
                    .entry(code.clone())
                    .or_default()
                    .sources
                    .push(group_id.to_string());
            }
        }
    }
    let asked = direct
        .iter()
        .chain(bundle)
        .chain(inherited.iter().flat_map(|(_, items)| items));
    for e in asked {
        if let Entitlement::Feature(product, feature) = e {
            let Some(w) = wanted.get_mut(product) else {
                return Err(ScimError::invalid_value(format!(
                    "feature '{product}:{feature}' needs the '{product}' licence, which this user is not given"
                )));
            };
            if !w.features.contains(feature) {
                w.features.push(feature.clone());
            }
        }
    }
    Ok(wanted)
}

/// Settled decisions 3 and 5: an inactive user (unless the account retains licences) and a
/// user who declined a transfer hold no seat.
pub(crate) fn holds_no_seat(active: bool, retain_licences: bool, declined: bool) -> bool {
    (!active && !retain_licences) || declined
}

/// A licence row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedLicence {
    pub code: String,
    pub product_id: Uuid,
    pub sources: Vec<String>,
    pub features: Vec<String>,
    /// Asked for directly: no seat refuses the write.
    pub required: bool,
    /// The product's seats and seats used, for the refusal.
    pub seats: i64,
    pub seats_used: i64,
    /// The row's state and since, if the user had one.
    pub previous: Option<(String, i64)>,
}

impl PlannedLicence {
    /// Already assigned: keeps its seat; otherwise one must be taken.
    pub(crate) fn needs_seat(&self) -> bool {
        !matches!(&self.previous, Some((state, _)) if state == "assigned")
    }

    /// The row's state once a seat was tried for (`took_seat`; false when none was needed and
    /// none tried): assigned with a seat, else `pendingSeat` — or, for a required licence, the
    /// settled decision 1 refusal (403, "no free seat for product …: n of m used").
    pub(crate) fn state(&self, took_seat: bool) -> Result<&'static str, ScimError> {
        if !self.needs_seat() || took_seat {
            return Ok("assigned");
        }
        if self.required {
            return Err(ScimError::forbidden(format!(
                "no free seat for product {}: {} of {} used; free a seat or add seats before assigning it",
                self.code, self.seats_used, self.seats
            )));
        }
        Ok("pendingSeat")
    }

    /// The row to write in `state`; `since` stays while the state does.
    pub(crate) fn into_row(self, user_id: Uuid, state: &str, now: i64) -> LicenceRow {
        let since = self
            .previous
            .as_ref()
            .filter(|(s, _)| s == state)
            .map_or(now, |(_, since)| *since);
        LicenceRow {
            user_id,
            product_id: self.product_id,
            code: self.code,
            state: state.to_string(),
            sources: Json(self.sources),
            features: Json(self.features),
            since,
        }
    }
}

/// How a user's licence rows go from `current` to `wanted`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LicencePlan {
    /// Rows no longer wanted: the product, and whether the row held a seat to free.
    pub remove: Vec<(Uuid, bool)>,
    /// Rows to write, in code order.
    pub put: Vec<PlannedLicence>,
}

/// The reconcile plan. `products` is the account's catalogue; a wanted code it lacks is
/// refused unless `tolerated` (the user had it before: dropped). A feature the product lacks is
/// refused unless the user's row already had it (dropped).
pub(crate) fn plan_reconcile(
    current: &[LicenceRow],
    wanted: BTreeMap<String, Wanted>,
    products: &[Product],
    tolerated: &BTreeSet<String>,
) -> Result<LicencePlan, ScimError> {
    let remove = current
        .iter()
        .filter(|r| !wanted.contains_key(&r.code))
        .map(|r| (r.product_id, r.state == "assigned"))
        .collect();
    let mut put = Vec::with_capacity(wanted.len());
    for (code, w) in wanted {
        let Some(product) = products.iter().find(|p| p.code == code) else {
            if tolerated.contains(&code) {
                continue;
            }
            return Err(ScimError::invalid_value(format!(
                "licence '{code}' is not a product of this account; GET /Entitlements lists them"
            )));
        };
        let previous = current.iter().find(|r| r.product_id == product.id);
        let mut features = Vec::with_capacity(w.features.len());
        for feature in w.features {
            if product.features.0.contains(&feature) {
                features.push(feature);
            } else if !previous.is_some_and(|p| p.features.0.contains(&feature)) {
                return Err(ScimError::invalid_value(format!(
                    "'{feature}' is not a feature of product '{code}' (its features: {})",
                    product.features.0.join(", ")
                )));
            }
        }
        put.push(PlannedLicence {
            code,
            product_id: product.id,
            sources: w.sources,
            features,
            required: w.required,
            seats: product.seats,
            seats_used: product.seats_used,
            previous: previous.map(|p| (p.state.clone(), p.since)),
        });
    }
    Ok(LicencePlan { remove, put })
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
        // A user being created holds nothing and belongs to no group yet: nothing to read.
        let is_new = previous.is_none();
        let current = if is_new {
            Vec::new()
        } else {
            tx.licences_of_users(account_id, &[user_id]).await?
        };
        let known_before = licences_known_before(previous, &current);
        let previous_bundle = previous
            .and_then(|p| p.get(USER_EXTENSION))
            .and_then(|e| e.get("licenseBundle"))
            .and_then(Value::as_str);
        let direct = match doc.get("entitlements") {
            Some(Value::Array(items)) => parse_entitlements(items, "entitlements")?,
            _ => Vec::new(),
        };
        let bundle_items = match ext_str(doc, "licenseBundle") {
            Some(name) => {
                let bundle = tx.bundle_by_name(account_id, name).await?;
                check_bundle(name, bundle.is_some(), previous_bundle)?;
                match bundle {
                    Some(bundle) => parse_entitlements(&bundle.entitlements.0, "licenseBundle")?,
                    None => Vec::new(),
                }
            }
            None => Vec::new(),
        };
        let inherited = if is_new {
            Vec::new()
        } else {
            self.inherited_entitlements(tx, account_id, user_id).await?
        };
        let wanted = wanted_licences(&direct, &bundle_items, &inherited)?;
        let declined = ext_str(doc, "accountStatus") == Some(TRANSFER_DECLINED);
        if holds_no_seat(active, policy.retain_licences, declined) {
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
        // Load: the catalogue, when anything is wanted.
        let products = if wanted.is_empty() {
            Vec::new()
        } else {
            tx.products(account_id).await?
        };
        // Decide.
        let plan = plan_reconcile(current, wanted, &products, tolerated)?;
        // Apply.
        for (product_id, frees_seat) in plan.remove {
            tx.delete_licence(user_id, product_id).await?;
            if frees_seat {
                self.free_seat(tx, product_id).await?;
            }
        }
        let mut held = Vec::new();
        for licence in plan.put {
            let took_seat = licence.needs_seat() && tx.take_seat(licence.product_id).await?;
            let state = licence.state(took_seat)?;
            if state == "assigned" {
                held.push(licence.code.clone());
            }
            let row = licence.into_row(user_id, state, now);
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
// The rule tables are vectors of tuples, one row per case.
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lic(code: &str) -> Entitlement {
        Entitlement::License(code.into())
    }

    fn feat(product: &str, feature: &str) -> Entitlement {
        Entitlement::Feature(product.into(), feature.into())
    }

    fn scim(e: Error) -> ScimError {
        match e {
            Error::Scim(e) => e,
            other => panic!("not a SCIM error: {other}"),
        }
    }

    fn product(n: u128, code: &str, seats: i64, used: i64, features: &[&str]) -> Product {
        Product {
            id: Uuid::from_u128(n),
            account_id: Uuid::from_u128(99),
            code: code.into(),
            display: None,
            seats,
            seats_used: used,
            features: Json(features.iter().map(|f| f.to_string()).collect()),
            created_at: 0,
        }
    }

    fn row(n: u128, code: &str, state: &str, features: &[&str]) -> LicenceRow {
        LicenceRow {
            user_id: Uuid::from_u128(1000),
            product_id: Uuid::from_u128(n),
            code: code.into(),
            state: state.into(),
            sources: Json(vec!["direct".into()]),
            features: Json(features.iter().map(|f| f.to_string()).collect()),
            since: 42,
        }
    }

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

    /// §2.5 entitlements: `type` License / Feature (any case; inferred when absent: a
    /// `product:feature` value is a feature), a feature written `product:feature`, a value on
    /// every item.
    #[test]
    fn entitlements_parse_as_licences_and_features() {
        let rows: Vec<(&str, Value, std::result::Result<Entitlement, &str>)> = vec![
            (
                "licence_typed",
                json!({"value": "phone", "type": "License"}),
                Ok(lic("phone")),
            ),
            (
                "licence_type_lower_case",
                json!({"value": "phone", "type": "license"}),
                Ok(lic("phone")),
            ),
            (
                "licence_type_upper_case",
                json!({"value": "phone", "type": "LICENSE"}),
                Ok(lic("phone")),
            ),
            (
                "licence_inferred",
                json!({"value": "meeting"}),
                Ok(lic("meeting")),
            ),
            (
                "licence_value_trimmed",
                json!({"value": "  webinar "}),
                Ok(lic("webinar")),
            ),
            (
                "feature_inferred_from_colon",
                json!({"value": "phone:sms"}),
                Ok(feat("phone", "sms")),
            ),
            (
                "feature_typed_any_case",
                json!({"value": "phone:sms", "type": "fEaTuRe"}),
                Ok(feat("phone", "sms")),
            ),
            (
                "feature_splits_at_first_colon",
                json!({"value": "phone:a:b"}),
                Ok(feat("phone", "a:b")),
            ),
            (
                "licence_typed_with_colon_is_a_licence",
                json!({"value": "phone:sms", "type": "License"}),
                Ok(lic("phone:sms")),
            ),
            (
                "feature_without_product_refused",
                json!({"value": "sms", "type": "Feature"}),
                Err(
                    "feature entitlement 'sms' must be written 'product:feature', e.g. 'phone:sms'",
                ),
            ),
            (
                "unknown_type_refused",
                json!({"value": "phone", "type": "Seat"}),
                Err("'entitlements' type 'Seat' is not one of License, Feature"),
            ),
            (
                "missing_value_refused",
                json!({"type": "License"}),
                Err("every 'entitlements' item needs a 'value'"),
            ),
            (
                "blank_value_refused",
                json!({"value": "   "}),
                Err("every 'entitlements' item needs a 'value'"),
            ),
            (
                "non_string_value_refused",
                json!({"value": 3}),
                Err("every 'entitlements' item needs a 'value'"),
            ),
        ];
        for (name, item, want) in rows {
            let got = parse_entitlements(&[item], "entitlements").map_err(scim);
            match (want, got) {
                (Ok(e), Ok(got)) => assert_eq!(got, vec![e], "{name}"),
                (Err(detail), Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert_eq!(e.detail, detail, "{name}");
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
        let e = parse_entitlements(&[json!({})], "licenseBundle").map_err(scim);
        assert_eq!(
            e.err().map(|e| e.detail),
            Some("every 'licenseBundle' item needs a 'value'".to_string())
        );
    }

    /// §2.5: effective licences = direct ∪ bundle ∪ inherited, each with its sources; direct
    /// and bundle ones are required (settled decision 1), inherited ones are not; a feature
    /// without its licence → 400.
    #[test]
    fn wanted_licences_union_direct_bundle_and_inherited() {
        let g1 = Uuid::from_u128(11);
        let g2 = Uuid::from_u128(12);
        let refused = "needs the 'phone' licence, which this user is not given";
        let rows: Vec<(
            &str,
            Vec<Entitlement>,
            Vec<Entitlement>,
            Vec<(Uuid, Vec<Entitlement>)>,
            std::result::Result<Vec<(&str, Vec<String>, Vec<&str>, bool)>, &str>,
        )> = vec![
            ("nothing_wanted", vec![], vec![], vec![], Ok(vec![])),
            (
                "direct_is_required",
                vec![lic("phone")],
                vec![],
                vec![],
                Ok(vec![("phone", vec!["direct".into()], vec![], true)]),
            ),
            (
                "bundle_is_required",
                vec![],
                vec![lic("meeting")],
                vec![],
                Ok(vec![("meeting", vec!["bundle".into()], vec![], true)]),
            ),
            (
                "inherited_is_not_required",
                vec![],
                vec![],
                vec![(g1, vec![lic("phone")])],
                Ok(vec![("phone", vec![g1.to_string()], vec![], false)]),
            ),
            (
                "sources_accumulate_in_order",
                vec![lic("phone")],
                vec![lic("phone")],
                vec![(g1, vec![lic("phone")]), (g2, vec![lic("phone")])],
                Ok(vec![(
                    "phone",
                    vec![
                        "direct".into(),
                        "bundle".into(),
                        g1.to_string(),
                        g2.to_string(),
                    ],
                    vec![],
                    true,
                )]),
            ),
            (
                "inherited_and_direct_is_required",
                vec![lic("phone")],
                vec![],
                vec![(g1, vec![lic("phone")])],
                Ok(vec![(
                    "phone",
                    vec!["direct".into(), g1.to_string()],
                    vec![],
                    true,
                )]),
            ),
            (
                "feature_with_its_licence",
                vec![lic("phone"), feat("phone", "sms")],
                vec![],
                vec![],
                Ok(vec![("phone", vec!["direct".into()], vec!["sms"], true)]),
            ),
            (
                "feature_before_its_licence_in_the_list",
                vec![feat("phone", "sms"), lic("phone")],
                vec![],
                vec![],
                Ok(vec![("phone", vec!["direct".into()], vec!["sms"], true)]),
            ),
            (
                "feature_from_group_on_direct_licence",
                vec![lic("phone")],
                vec![],
                vec![(g1, vec![feat("phone", "record")])],
                Ok(vec![("phone", vec!["direct".into()], vec!["record"], true)]),
            ),
            (
                "feature_deduplicated",
                vec![lic("phone"), feat("phone", "sms")],
                vec![feat("phone", "sms")],
                vec![],
                Ok(vec![("phone", vec!["direct".into()], vec!["sms"], true)]),
            ),
            (
                "codes_in_order",
                vec![lic("webinar"), lic("meeting")],
                vec![],
                vec![],
                Ok(vec![
                    ("meeting", vec!["direct".into()], vec![], true),
                    ("webinar", vec!["direct".into()], vec![], true),
                ]),
            ),
            (
                "feature_without_licence_refused",
                vec![feat("phone", "sms")],
                vec![],
                vec![],
                Err(refused),
            ),
            (
                "group_feature_without_licence_refused",
                vec![lic("meeting")],
                vec![],
                vec![(g1, vec![feat("phone", "sms")])],
                Err(refused),
            ),
        ];
        for (name, direct, bundle, inherited, want) in rows {
            let got = wanted_licences(&direct, &bundle, &inherited);
            match (want, got) {
                (Ok(want), Ok(got)) => {
                    let want: BTreeMap<String, Wanted> = want
                        .into_iter()
                        .map(|(code, sources, features, required)| {
                            let features = features.iter().map(|f| f.to_string()).collect();
                            (
                                code.to_string(),
                                Wanted {
                                    sources,
                                    features,
                                    required,
                                },
                            )
                        })
                        .collect();
                    assert_eq!(got, want, "{name}");
                }
                (Err(detail), Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert!(e.detail.contains(detail), "{name}: {}", e.detail);
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    /// §2.4 licenseBundle: a bundle of the account, or the one the user already had (removed
    /// since: dropped so an IdP can always update the user), else 400.
    #[test]
    fn bundle_must_exist_unless_already_held() {
        let rows: Vec<(&str, &str, bool, Option<&str>, bool)> = vec![
            ("known_bundle", "Sales", true, None, true),
            ("known_bundle_changed", "Sales", true, Some("Support"), true),
            (
                "removed_bundle_already_held",
                "Sales",
                false,
                Some("Sales"),
                true,
            ),
            ("unknown_bundle_refused", "Sales", false, None, false),
            (
                "unknown_bundle_other_held_refused",
                "Sales",
                false,
                Some("Support"),
                false,
            ),
            (
                "bundle_name_case_matters",
                "sales",
                false,
                Some("Sales"),
                false,
            ),
        ];
        for (name, bundle, found, previous, allowed) in rows {
            let got = check_bundle(bundle, found, previous);
            assert_eq!(got.is_ok(), allowed, "{name}");
            if let Err(e) = got {
                assert_eq!(e.status, 400, "{name}");
                assert_eq!(
                    e.detail,
                    format!("licenseBundle '{bundle}' is not a licence bundle of this account"),
                    "{name}"
                );
            }
        }
    }

    /// Settled decisions 3 and 5: inactive (unless the account retains licences) or transfer
    /// declined → no seat.
    #[test]
    fn inactive_or_transfer_declined_holds_no_seat() {
        let rows: Vec<(&str, bool, bool, bool, bool)> = vec![
            ("active_holds", true, false, false, false),
            ("active_retaining_holds", true, true, false, false),
            ("inactive_releases", false, false, false, true),
            ("inactive_retaining_keeps", false, true, false, false),
            ("declined_releases", true, false, true, true),
            ("declined_releases_even_retaining", true, true, true, true),
            ("inactive_and_declined_releases", false, true, true, true),
        ];
        for (name, active, retain, declined, none) in rows {
            assert_eq!(holds_no_seat(active, retain, declined), none, "{name}");
        }
    }

    /// What the user had before is tolerated when the catalogue lost it.
    #[test]
    fn licences_known_before_are_the_stored_licences_and_rows() {
        let previous: Document = serde_json::from_value(json!({
            "entitlements": [{"value": "meeting"}, {"value": "phone:sms"}]
        }))
        .unwrap();
        let rows = [row(1, "webinar", "pendingSeat", &[])];
        let known = licences_known_before(Some(&previous), &rows);
        assert_eq!(
            known,
            BTreeSet::from(["meeting".to_string(), "webinar".to_string()])
        );
        assert!(licences_known_before(None, &[]).is_empty());
        let broken: Document = serde_json::from_value(json!({"entitlements": [{}]})).unwrap();
        assert!(licences_known_before(Some(&broken), &[]).is_empty());
    }

    fn wanted(items: &[(&str, &[&str], bool)]) -> BTreeMap<String, Wanted> {
        items
            .iter()
            .map(|(code, features, required)| {
                let w = Wanted {
                    sources: vec!["direct".into()],
                    features: features.iter().map(|f| f.to_string()).collect(),
                    required: *required,
                };
                (code.to_string(), w)
            })
            .collect()
    }

    /// §2.5 seats: rows no longer wanted are deleted (a seat freed if assigned), kept ones
    /// keep their seat, new ones need one; an unknown product or feature is refused unless the
    /// user had it before.
    #[test]
    fn reconcile_plans_deletions_kept_seats_and_new_seats() {
        let catalogue = vec![
            product(1, "phone", 10, 3, &["sms", "record"]),
            product(2, "meeting", 5, 5, &[]),
            product(3, "webinar", 1, 0, &[]),
        ];
        let tolerated = BTreeSet::from(["gone".to_string()]);
        // (name, current rows, wanted, Ok((removed, [(code, needs seat, features)])) or refusal)
        let rows: Vec<(
            &str,
            Vec<LicenceRow>,
            BTreeMap<String, Wanted>,
            std::result::Result<(Vec<(u128, bool)>, Vec<(&str, bool, Vec<&str>)>), &str>,
        )> = vec![
            (
                "nothing_to_nothing",
                vec![],
                wanted(&[]),
                Ok((vec![], vec![])),
            ),
            (
                "new_licence_needs_a_seat",
                vec![],
                wanted(&[("phone", &[], true)]),
                Ok((vec![], vec![("phone", true, vec![])])),
            ),
            (
                "assigned_licence_keeps_its_seat",
                vec![row(1, "phone", "assigned", &[])],
                wanted(&[("phone", &[], true)]),
                Ok((vec![], vec![("phone", false, vec![])])),
            ),
            (
                "pending_licence_tries_again",
                vec![row(2, "meeting", "pendingSeat", &[])],
                wanted(&[("meeting", &[], false)]),
                Ok((vec![], vec![("meeting", true, vec![])])),
            ),
            (
                "unwanted_assigned_row_frees_its_seat",
                vec![row(1, "phone", "assigned", &[])],
                wanted(&[]),
                Ok((vec![(1, true)], vec![])),
            ),
            (
                "unwanted_pending_row_frees_nothing",
                vec![row(2, "meeting", "pendingSeat", &[])],
                wanted(&[]),
                Ok((vec![(2, false)], vec![])),
            ),
            (
                "swap_products",
                vec![row(1, "phone", "assigned", &[])],
                wanted(&[("webinar", &[], true)]),
                Ok((vec![(1, true)], vec![("webinar", true, vec![])])),
            ),
            (
                "known_features_kept",
                vec![],
                wanted(&[("phone", &["record", "sms"], true)]),
                Ok((vec![], vec![("phone", true, vec!["record", "sms"])])),
            ),
            (
                "feature_removed_from_catalogue_but_held_dropped",
                vec![row(1, "phone", "assigned", &["fax"])],
                wanted(&[("phone", &["fax", "sms"], true)]),
                Ok((vec![], vec![("phone", false, vec!["sms"])])),
            ),
            (
                "product_removed_from_catalogue_but_held_dropped",
                vec![],
                wanted(&[("gone", &[], true), ("phone", &[], true)]),
                Ok((vec![], vec![("phone", true, vec![])])),
            ),
            (
                "unknown_product_refused",
                vec![],
                wanted(&[("fax", &[], true)]),
                Err("licence 'fax' is not a product of this account; GET /Entitlements lists them"),
            ),
            (
                "unknown_feature_refused",
                vec![],
                wanted(&[("phone", &["fax"], true)]),
                Err("'fax' is not a feature of product 'phone' (its features: sms, record)"),
            ),
            (
                "feature_held_on_another_product_refused",
                vec![row(3, "webinar", "assigned", &["fax"])],
                wanted(&[("phone", &["fax"], true)]),
                Err("'fax' is not a feature of product 'phone'"),
            ),
        ];
        for (name, current, wanted, want) in rows {
            let got = plan_reconcile(&current, wanted, &catalogue, &tolerated);
            match (want, got) {
                (Ok((removed, puts)), Ok(plan)) => {
                    let removed: Vec<(Uuid, bool)> = removed
                        .into_iter()
                        .map(|(n, f)| (Uuid::from_u128(n), f))
                        .collect();
                    assert_eq!(plan.remove, removed, "{name}");
                    let got: Vec<(&str, bool, Vec<&str>)> = plan
                        .put
                        .iter()
                        .map(|l| {
                            (
                                l.code.as_str(),
                                l.needs_seat(),
                                l.features.iter().map(String::as_str).collect(),
                            )
                        })
                        .collect();
                    assert_eq!(got, puts, "{name}");
                }
                (Err(detail), Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert!(e.detail.starts_with(detail), "{name}: {}", e.detail);
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    /// Settled decision 1: a direct licence without a free seat → 403 with the count; an
    /// inherited one waits in pendingSeat.
    #[test]
    fn seat_outcome_assigned_pending_or_refused() {
        let planned = |required: bool, previous: Option<&str>| PlannedLicence {
            code: "phone".into(),
            product_id: Uuid::from_u128(1),
            sources: vec!["direct".into()],
            features: vec![],
            required,
            seats: 50,
            seats_used: 50,
            previous: previous.map(|s| (s.to_string(), 42)),
        };
        let rows: Vec<(&str, PlannedLicence, bool, std::result::Result<&str, ()>)> = vec![
            (
                "seat_taken_assigned",
                planned(true, None),
                true,
                Ok("assigned"),
            ),
            (
                "already_assigned_stays_assigned",
                planned(true, Some("assigned")),
                false,
                Ok("assigned"),
            ),
            (
                "inherited_without_seat_waits",
                planned(false, None),
                false,
                Ok("pendingSeat"),
            ),
            (
                "inherited_pending_still_waits",
                planned(false, Some("pendingSeat")),
                false,
                Ok("pendingSeat"),
            ),
            (
                "pending_gets_the_seat",
                planned(false, Some("pendingSeat")),
                true,
                Ok("assigned"),
            ),
            (
                "direct_without_seat_refused",
                planned(true, None),
                false,
                Err(()),
            ),
            (
                "direct_pending_without_seat_refused",
                planned(true, Some("pendingSeat")),
                false,
                Err(()),
            ),
        ];
        for (name, licence, took, want) in rows {
            match (want, licence.state(took)) {
                (Ok(state), Ok(got)) => assert_eq!(got, state, "{name}"),
                (Err(()), Err(e)) => {
                    assert_eq!(e.status, 403, "{name}");
                    assert_eq!(
                        e.detail,
                        "no free seat for product phone: 50 of 50 used; free a seat or add seats before assigning it",
                        "{name}"
                    );
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
        // `since` stays while the state does.
        let kept = planned(true, Some("assigned")).into_row(Uuid::from_u128(7), "assigned", 1000);
        assert_eq!((kept.since, kept.state.as_str()), (42, "assigned"));
        let moved =
            planned(false, Some("pendingSeat")).into_row(Uuid::from_u128(7), "assigned", 1000);
        assert_eq!(moved.since, 1000);
        assert_eq!(moved.user_id, Uuid::from_u128(7));
    }
}
