//! The telephony of a user: the extension (kept, checked, or the next free one of the
//! account's range), the emergency location (by id or exact name), the phone number (from the
//! account's inventory, needing the phone licence) and SMS on it.
//!
//! The rules are pure functions ([`parse_extension`], [`plan_extension`], [`extension_taken`],
//! [`plan_location`], [`resolve_location`], [`ask_number`], [`plan_number`],
//! [`claim_refused`], [`check_sms`]): no store, no I/O. The `Provisioner` methods load what
//! they need (the extension's holder, the locations, a free number, the number's row), call
//! them, and apply the outcome.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::domain::E164Number;
use crate::provisioning::user_doc::{ext_str, extension, extension_mut};
use crate::provisioning::{Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{AccountPolicy, EmergencyLocation, PhoneNumber, Tx, UserRecord};

/// The product whose licence a phone number requires.
pub const PHONE_PRODUCT: &str = "phone";
/// Released numbers wait this long before anyone else can have them.
pub const NUMBER_QUARANTINE_MICROS: i64 = 72 * 3_600 * 1_000_000;

/// An explicit `extensionNumber`: digits only, within the account's range.
pub(crate) fn parse_extension(digits: &str, policy: &AccountPolicy) -> Result<i64> {
    let number = digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "extensionNumber '{digits}' must be digits (or \"auto\" for the next free one)"
            ))
        })?;
    if number < policy.extension_first || number > policy.extension_last {
        return Err(ScimError::invalid_value(format!(
            "extensionNumber {number} is outside the account's range {}–{}",
            policy.extension_first, policy.extension_last
        ))
        .into());
    }
    Ok(number)
}

/// What becomes of a user's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtensionPlan {
    /// None: an inactive user whose hold ran out, not asking for a number.
    Released,
    /// The user's current extension (or the one asked, which is the current one).
    Keep(i64),
    /// Another number asked for explicitly: free unless someone else holds it.
    Check(i64),
    /// The next free number of the range.
    Allocate,
}

/// The extension decision. `asked` is `extensionNumber` as sent (trimmed; absent, empty and
/// `"auto"` mean the current one, or the next free one); `was_active` is whether the stored user
/// was active (`None` for a new user), `current` their extension, `active` what the write leaves.
pub(crate) fn plan_extension(
    asked: Option<&str>,
    was_active: Option<bool>,
    current: Option<i64>,
    active: bool,
    policy: &AccountPolicy,
) -> Result<ExtensionPlan> {
    let automatic = matches!(asked, None | Some("") | Some("auto"));
    // An inactive user whose hold ran out has no extension until they come back (asking for
    // a number explicitly is still allowed).
    let hold_released = was_active == Some(false) && current.is_none();
    if !active && hold_released && automatic {
        return Ok(ExtensionPlan::Released);
    }
    match asked {
        Some(digits) if !automatic => {
            let number = parse_extension(digits, policy)?;
            Ok(if Some(number) == current {
                ExtensionPlan::Keep(number)
            } else {
                ExtensionPlan::Check(number)
            })
        }
        _ => Ok(current.map_or(ExtensionPlan::Allocate, ExtensionPlan::Keep)),
    }
}

/// An extension asked for explicitly is refused when another user of the account holds it.
pub(crate) fn extension_taken(
    number: i64,
    holder: Option<Uuid>,
    user_id: Uuid,
) -> Result<(), ScimError> {
    match holder {
        Some(holder) if holder != user_id => Err(ScimError::uniqueness(format!(
            "extension {number} is already assigned to another user of this account; send \"auto\" (or nothing) to get the next free one"
        ))),
        _ => Ok(()),
    }
}

/// Every extension of the range is taken.
fn range_exhausted(policy: &AccountPolicy) -> ScimError {
    ScimError::new(
        409,
        None,
        format!(
            "every extension of the account's range {}–{} is taken; widen the range in the admin API",
            policy.extension_first, policy.extension_last
        ),
    )
}

/// What becomes of `emergencyLocation`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LocationPlan {
    /// None asked: no resolved name either.
    Clear,
    /// The stored reference sent back (by id or name): the stored id and name stay as they are,
    /// even if the location was deleted since.
    KeepStored {
        id: Option<Value>,
        name: Option<Value>,
    },
    /// Resolve it among the account's locations ([`resolve_location`]).
    Resolve(String),
}

/// The location decision: `asked` is `emergencyLocation` as sent, `stored` the stored user's
/// extension object. A deactivation must never fail on a reference an admin removed.
pub(crate) fn plan_location(
    asked: Option<&str>,
    stored: Option<&Map<String, Value>>,
) -> LocationPlan {
    let Some(asked) = asked else {
        return LocationPlan::Clear;
    };
    let stored_as = |name: &str| stored.and_then(|e| e.get(name)).and_then(Value::as_str);
    if stored_as("emergencyLocation") == Some(asked)
        || stored_as("emergencyLocationName") == Some(asked)
    {
        return LocationPlan::KeepStored {
            id: stored.and_then(|e| e.get("emergencyLocation")).cloned(),
            name: stored.and_then(|e| e.get("emergencyLocationName")).cloned(),
        };
    }
    LocationPlan::Resolve(asked.to_string())
}

/// The location `asked` names among the account's: by id (any letter case) first, else by
/// exact name.
pub(crate) fn resolve_location<'l>(
    asked: &str,
    locations: &'l [EmergencyLocation],
) -> Result<&'l EmergencyLocation, ScimError> {
    locations
        .iter()
        .find(|l| l.id.to_string() == asked.to_ascii_lowercase())
        .or_else(|| locations.iter().find(|l| l.name == asked))
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "emergencyLocation '{asked}' is neither the id nor the exact name of an emergency location of this account"
            ))
        })
}

/// `directNumber` as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NumberAsk {
    /// Absent or empty: no number.
    None,
    /// `"auto"`: the number held, else any free one.
    Auto,
    /// A number, in E.164.
    Number(String),
}

/// Reads `directNumber` (trimmed): absent/empty, `"auto"`, or a valid number in E.164.
pub(crate) fn ask_number(asked: Option<&str>) -> Result<NumberAsk, ScimError> {
    match asked {
        None | Some("") => Ok(NumberAsk::None),
        Some("auto") => Ok(NumberAsk::Auto),
        Some(number) => E164Number::parse(number)
            .map(|n| NumberAsk::Number(n.into_string()))
            .map_err(|e| ScimError::invalid_value(e.to_string())),
    }
}

/// `directNumber: "auto"` and the account has no free number.
fn no_free_number() -> ScimError {
    ScimError::invalid_value(
        "directNumber 'auto': the account has no free phone number; add numbers to the inventory in the admin API",
    )
}

/// What becomes of the user's phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NumberPlan {
    /// No number wanted, none held.
    None,
    /// The number held stays.
    Keep(String),
    /// The number held goes back to the pool (quarantined), none wanted.
    Release,
    /// A number to claim from the inventory, after releasing the one held if any.
    Claim { number: String, release_held: bool },
}

/// The number decision: `wanted` the number the user should have (`"auto"` already resolved),
/// `held` the one they hold, `licences` the products they hold (or would, when inactive), and
/// `active`. An inactive user keeps (holds) their number without a seat; a new assignment
/// needs the phone licence, and an active user needs it held.
pub(crate) fn plan_number(
    wanted: Option<&str>,
    held: Option<&str>,
    licences: &[String],
    active: bool,
) -> Result<NumberPlan, ScimError> {
    let must_be_licensed = wanted.is_some() && (active || wanted != held);
    if must_be_licensed && !licences.iter().any(|l| l == PHONE_PRODUCT) {
        return Err(ScimError::invalid_value(format!(
            "a directNumber needs the '{PHONE_PRODUCT}' licence; add {{\"value\": \"{PHONE_PRODUCT}\", \"type\": \"License\"}} to entitlements"
        )));
    }
    Ok(match (wanted, held) {
        (None, None) => NumberPlan::None,
        (None, Some(_)) => NumberPlan::Release,
        (Some(w), Some(h)) if w == h => NumberPlan::Keep(w.to_string()),
        (Some(w), held) => NumberPlan::Claim {
            number: w.to_string(),
            release_held: held.is_some(),
        },
    })
}

/// Why claiming `number` failed, from its inventory row: not in the inventory, someone else's,
/// or in quarantine.
pub(crate) fn claim_refused(number: &str, row: Option<&PhoneNumber>) -> ScimError {
    match row {
        None => ScimError::invalid_value(format!(
            "directNumber {number} is not in this account's number inventory"
        )),
        Some(n) if n.user_id.is_some() => ScimError::uniqueness(format!(
            "directNumber {number} is already assigned to another user"
        )),
        Some(n) => ScimError::invalid_value(format!(
            "directNumber {number} was released recently and is in quarantine until {}",
            super::render::timestamp(n.available_at.unwrap_or_default())
        )),
    }
}

/// The SMS rule: `smsEnabled` needs a number (`wanted`) that can send SMS (`capable`).
pub(crate) fn check_sms(sms: bool, wanted: Option<&str>, capable: bool) -> Result<(), ScimError> {
    if !sms {
        return Ok(());
    }
    match wanted {
        Some(_) if capable => Ok(()),
        Some(number) => Err(ScimError::invalid_value(format!(
            "smsEnabled: number {number} cannot send SMS"
        ))),
        None => Err(ScimError::invalid_value("smsEnabled needs a directNumber")),
    }
}

impl Provisioner {
    /// Keeps, validates or allocates the extension; writes it back as digits.
    pub(crate) async fn settle_extension(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
        existing: Option<&UserRecord>,
        doc: &mut Document,
        policy: &AccountPolicy,
    ) -> Result<Option<i64>> {
        let asked = ext_str(doc, "extensionNumber").map(str::trim);
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        let plan = plan_extension(
            asked,
            existing.map(|e| e.active),
            existing.and_then(|e| e.extension),
            active,
            policy,
        )?;
        let number = match plan {
            ExtensionPlan::Released => {
                extension_mut(doc).remove("extensionNumber");
                return Ok(None);
            }
            ExtensionPlan::Keep(number) => number,
            ExtensionPlan::Check(number) => {
                let holder = tx.extension_holder(account_id, number).await?;
                extension_taken(number, holder, user_id)?;
                number
            }
            ExtensionPlan::Allocate => self
                .extensions
                .allocate(
                    tx,
                    account_id,
                    policy.extension_first,
                    policy.extension_last,
                )
                .await?
                .ok_or_else(|| range_exhausted(policy))?,
        };
        extension_mut(doc).insert("extensionNumber".into(), json!(number.to_string()));
        Ok(Some(number))
    }

    /// Resolves `emergencyLocation` (id or exact name) to the location's id, and its name.
    pub(crate) async fn settle_location(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        existing: Option<&UserRecord>,
        doc: &mut Document,
    ) -> Result<()> {
        let plan = plan_location(
            ext_str(doc, "emergencyLocation"),
            existing.and_then(|e| extension(&e.doc)),
        );
        match plan {
            LocationPlan::Clear => {
                extension_mut(doc).remove("emergencyLocationName");
            }
            LocationPlan::KeepStored { id, name } => {
                let ext = extension_mut(doc);
                if let Some(id) = id {
                    ext.insert("emergencyLocation".into(), id);
                }
                if let Some(name) = name {
                    ext.insert("emergencyLocationName".into(), name);
                }
            }
            LocationPlan::Resolve(asked) => {
                let locations = tx.emergency_locations(account_id).await?;
                let found = resolve_location(&asked, &locations)?;
                let ext = extension_mut(doc);
                ext.insert("emergencyLocation".into(), json!(found.id.to_string()));
                ext.insert("emergencyLocationName".into(), json!(found.name));
            }
        }
        Ok(())
    }

    /// `directNumber` and `smsEnabled`: claims, keeps or releases the user's number.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn settle_number(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
        doc: &mut Document,
        licences: &[String],
        held: Option<String>,
        active: bool,
        now: i64,
    ) -> Result<()> {
        let wanted = match ask_number(ext_str(doc, "directNumber").map(str::trim))? {
            NumberAsk::None => None,
            NumberAsk::Number(number) => Some(number),
            NumberAsk::Auto => match &held {
                Some(number) => Some(number.clone()),
                None => Some(
                    tx.free_phone_number(account_id, now)
                        .await?
                        .ok_or_else(no_free_number)?,
                ),
            },
        };
        match plan_number(wanted.as_deref(), held.as_deref(), licences, active)? {
            NumberPlan::None | NumberPlan::Keep(_) => {}
            NumberPlan::Release => {
                tx.release_phone_number(account_id, user_id, now + NUMBER_QUARANTINE_MICROS)
                    .await?;
            }
            NumberPlan::Claim {
                number,
                release_held,
            } => {
                if release_held {
                    tx.release_phone_number(account_id, user_id, now + NUMBER_QUARANTINE_MICROS)
                        .await?;
                }
                if !tx
                    .claim_phone_number(account_id, &number, user_id, now)
                    .await?
                {
                    let row = tx.phone_number(account_id, &number).await?;
                    return Err(claim_refused(&number, row.as_ref()).into());
                }
            }
        }
        let sms = extension(doc)
            .and_then(|e| e.get("smsEnabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let capable = match &wanted {
            Some(number) if sms => tx
                .phone_number(account_id, number)
                .await?
                .is_some_and(|n| n.sms_capable),
            _ => false,
        };
        check_sms(sms, wanted.as_deref(), capable)?;
        let ext = extension_mut(doc);
        match wanted {
            Some(number) => ext.insert("directNumber".into(), json!(number)),
            None => ext.remove("directNumber"),
        };
        Ok(())
    }
}

#[cfg(test)]
// The rule tables are vectors of tuples, one row per case.
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use serde_json::json;
    use sqlx::types::Json;

    fn policy() -> AccountPolicy {
        AccountPolicy {
            extension_first: 100,
            extension_last: 199,
            quarantine_days: 30,
            retain_licences: false,
        }
    }

    fn scim(e: crate::provisioning::Error) -> ScimError {
        match e {
            crate::provisioning::Error::Scim(e) => e,
            other => panic!("not a SCIM error: {other}"),
        }
    }

    /// SPEC "a given one must be free and in range, else … 400 invalidValue"; digits only.
    #[test]
    fn extension_must_be_digits_within_the_range() {
        let rows: Vec<(&str, &str, std::result::Result<i64, &str>)> = vec![
            ("first_of_range", "100", Ok(100)),
            ("last_of_range", "199", Ok(199)),
            ("leading_zeros_read_as_digits", "0150", Ok(150)),
            (
                "below_range_refused",
                "99",
                Err("extensionNumber 99 is outside the account's range 100–199"),
            ),
            (
                "above_range_refused",
                "200",
                Err("extensionNumber 200 is outside the account's range 100–199"),
            ),
            (
                "letters_refused",
                "12a",
                Err("extensionNumber '12a' must be digits (or \"auto\" for the next free one)"),
            ),
            ("sign_refused", "+150", Err("must be digits")),
            ("negative_refused", "-150", Err("must be digits")),
            ("inner_space_refused", "1 50", Err("must be digits")),
            (
                "too_long_for_a_number_refused",
                "99999999999999999999",
                Err("must be digits"),
            ),
        ];
        for (name, digits, want) in rows {
            match (want, parse_extension(digits, &policy())) {
                (Ok(n), Ok(got)) => assert_eq!(got, n, "{name}"),
                (Err(detail), Err(e)) => {
                    let e = scim(e);
                    assert_eq!(e.status, 400, "{name}");
                    assert!(e.detail.contains(detail), "{name}: {}", e.detail);
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {:?}", got.map_err(scim)),
            }
        }
    }

    /// SPEC/§2.4 extensionNumber: absent, empty or "auto" → the current one or the next free
    /// one; an explicit one is checked unless it is the user's own; §2.7 an inactive user whose
    /// hold ran out has none unless they ask for one.
    #[test]
    fn extension_is_kept_checked_allocated_or_released() {
        use ExtensionPlan::{Allocate, Check, Keep, Released};
        let rows: Vec<(
            &str,
            Option<&str>,
            Option<bool>,
            Option<i64>,
            bool,
            std::result::Result<ExtensionPlan, &str>,
        )> = vec![
            (
                "new_user_without_number_allocates",
                None,
                None,
                None,
                true,
                Ok(Allocate),
            ),
            (
                "new_user_auto_allocates",
                Some("auto"),
                None,
                None,
                true,
                Ok(Allocate),
            ),
            (
                "new_user_empty_allocates",
                Some(""),
                None,
                None,
                true,
                Ok(Allocate),
            ),
            (
                "new_user_explicit_is_checked",
                Some("150"),
                None,
                None,
                true,
                Ok(Check(150)),
            ),
            (
                "new_inactive_user_still_gets_one",
                None,
                None,
                None,
                false,
                Ok(Allocate),
            ),
            (
                "missing_keeps_current",
                None,
                Some(true),
                Some(120),
                true,
                Ok(Keep(120)),
            ),
            (
                "auto_keeps_current",
                Some("auto"),
                Some(true),
                Some(120),
                true,
                Ok(Keep(120)),
            ),
            (
                "own_number_sent_back_is_kept",
                Some("120"),
                Some(true),
                Some(120),
                true,
                Ok(Keep(120)),
            ),
            (
                "other_number_is_checked",
                Some("121"),
                Some(true),
                Some(120),
                true,
                Ok(Check(121)),
            ),
            (
                "deactivation_keeps_held_extension",
                None,
                Some(true),
                Some(120),
                false,
                Ok(Keep(120)),
            ),
            (
                "inactive_with_hold_keeps_it",
                None,
                Some(false),
                Some(120),
                false,
                Ok(Keep(120)),
            ),
            (
                "hold_released_stays_without",
                None,
                Some(false),
                None,
                false,
                Ok(Released),
            ),
            (
                "hold_released_auto_stays_without",
                Some("auto"),
                Some(false),
                None,
                false,
                Ok(Released),
            ),
            (
                "hold_released_explicit_is_checked",
                Some("130"),
                Some(false),
                None,
                false,
                Ok(Check(130)),
            ),
            (
                "hold_released_reactivation_allocates",
                None,
                Some(false),
                None,
                true,
                Ok(Allocate),
            ),
            (
                "active_user_without_extension_allocates",
                None,
                Some(true),
                None,
                true,
                Ok(Allocate),
            ),
            (
                "explicit_out_of_range_refused",
                Some("500"),
                Some(true),
                Some(120),
                true,
                Err("outside the account's range"),
            ),
            (
                "explicit_not_digits_refused",
                Some("ext1"),
                None,
                None,
                true,
                Err("must be digits"),
            ),
        ];
        for (name, asked, was_active, current, active, want) in rows {
            let got = plan_extension(asked, was_active, current, active, &policy()).map_err(scim);
            match (want, got) {
                (Ok(plan), Ok(got)) => assert_eq!(got, plan, "{name}"),
                (Err(detail), Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert!(e.detail.contains(detail), "{name}: {}", e.detail);
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    /// SPEC: no two users of an account share an extension → 409 uniqueness.
    #[test]
    fn extension_held_by_another_user_is_a_uniqueness_conflict() {
        let me = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let rows: Vec<(&str, Option<Uuid>, bool)> = vec![
            ("free_number_allowed", None, true),
            ("own_number_allowed", Some(me), true),
            ("another_users_number_refused", Some(other), false),
        ];
        for (name, holder, allowed) in rows {
            let got = extension_taken(150, holder, me);
            assert_eq!(got.is_ok(), allowed, "{name}");
            if let Err(e) = got {
                assert_eq!(e.status, 409, "{name}");
                assert_eq!(
                    e.scim_type.map(|t| t.as_str()),
                    Some("uniqueness"),
                    "{name}"
                );
                assert!(
                    e.detail.starts_with("extension 150 is already assigned"),
                    "{name}"
                );
            }
        }
        let e = range_exhausted(&policy());
        assert_eq!(e.status, 409);
        assert!(
            e.detail
                .contains("every extension of the account's range 100–199 is taken")
        );
    }

    fn location(id: u128, name: &str) -> EmergencyLocation {
        EmergencyLocation {
            id: Uuid::from_u128(id),
            account_id: Uuid::from_u128(99),
            name: name.into(),
            address: Json(json!({})),
            created_at: 0,
        }
    }

    /// §2.4 emergencyLocation: the stored reference sent back stays as it is (even if deleted
    /// since); anything else is resolved; nothing asked clears the name.
    #[test]
    fn location_sent_back_stays_else_it_is_resolved() {
        let stored_id = Uuid::from_u128(7).to_string();
        let stored = json!({"emergencyLocation": stored_id, "emergencyLocationName": "HQ"});
        let stored = stored.as_object();
        let keep = LocationPlan::KeepStored {
            id: Some(json!(stored_id)),
            name: Some(json!("HQ")),
        };
        let rows: Vec<(
            &str,
            Option<&str>,
            Option<&Map<String, Value>>,
            LocationPlan,
        )> = vec![
            ("none_asked_clears", None, stored, LocationPlan::Clear),
            (
                "stored_id_sent_back_kept",
                Some(&stored_id),
                stored,
                keep.clone(),
            ),
            ("stored_name_sent_back_kept", Some("HQ"), stored, keep),
            (
                "other_name_resolved",
                Some("Branch"),
                stored,
                LocationPlan::Resolve("Branch".into()),
            ),
            (
                "new_user_resolved",
                Some("HQ"),
                None,
                LocationPlan::Resolve("HQ".into()),
            ),
            (
                "name_in_other_case_resolved",
                Some("hq"),
                stored,
                LocationPlan::Resolve("hq".into()),
            ),
        ];
        for (name, asked, stored, want) in rows {
            assert_eq!(plan_location(asked, stored), want, "{name}");
        }
    }

    /// §2.4 emergencyLocation: id or exact display name of a location of the account, else
    /// 400 invalidValue.
    #[test]
    fn location_resolves_by_id_or_exact_name() {
        let locations = vec![
            location(1, "HQ"),
            location(2, "Branch"),
            location(3, "00000000-0000-0000-0000-000000000001"),
        ];
        let id1 = Uuid::from_u128(1).to_string();
        let rows: Vec<(&str, String, Option<u128>)> = vec![
            ("by_id", id1.clone(), Some(1)),
            ("by_id_in_upper_case", id1.to_uppercase(), Some(1)),
            ("by_exact_name", "Branch".into(), Some(2)),
            (
                "id_wins_over_a_name_equal_to_it",
                "00000000-0000-0000-0000-000000000001".into(),
                Some(1),
            ),
            ("name_in_other_case_refused", "branch".into(), None),
            ("name_with_spaces_refused", " HQ".into(), None),
            ("unknown_refused", "Moon base".into(), None),
        ];
        for (name, asked, want) in rows {
            match (want, resolve_location(&asked, &locations)) {
                (Some(id), Ok(found)) => assert_eq!(found.id, Uuid::from_u128(id), "{name}"),
                (None, Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert_eq!(
                        e.detail,
                        format!(
                            "emergencyLocation '{asked}' is neither the id nor the exact name of an emergency location of this account"
                        ),
                        "{name}"
                    );
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {:?}", got.map(|l| l.id)),
            }
        }
    }

    /// §2.4 directNumber: absent/empty → none, "auto" → the held or any free number, otherwise
    /// an E.164 number (normalised), else 400.
    #[test]
    fn direct_number_is_none_auto_or_e164() {
        let rows: Vec<(&str, Option<&str>, Option<NumberAsk>)> = vec![
            ("absent_is_none", None, Some(NumberAsk::None)),
            ("empty_is_none", Some(""), Some(NumberAsk::None)),
            ("auto", Some("auto"), Some(NumberAsk::Auto)),
            (
                "e164_kept",
                Some("+14155550123"),
                Some(NumberAsk::Number("+14155550123".into())),
            ),
            (
                "formatted_normalised",
                Some("+1 (415) 555-0123"),
                Some(NumberAsk::Number("+14155550123".into())),
            ),
            ("no_country_code_refused", Some("4155550123"), None),
            ("not_a_number_refused", Some("call me"), None),
            ("auto_in_capitals_is_no_keyword", Some("AUTO"), None),
        ];
        for (name, asked, want) in rows {
            match (want, ask_number(asked)) {
                (Some(ask), Ok(got)) => assert_eq!(got, ask, "{name}"),
                (None, Err(e)) => assert_eq!(e.status, 400, "{name}"),
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
        assert_eq!(no_free_number().status, 400);
    }

    /// §2.4 directNumber requires the phone licence (an inactive user holds theirs without a
    /// seat); §2.7 clearing it returns it to the quarantined pool.
    #[test]
    fn number_is_kept_released_claimed_or_needs_the_phone_licence() {
        const A: &str = "+14155550123";
        const B: &str = "+14155550124";
        let phone = vec![PHONE_PRODUCT.to_string()];
        let meeting = vec!["meeting".to_string()];
        let none: Vec<String> = Vec::new();
        let claim = |n: &str, release_held| NumberPlan::Claim {
            number: n.into(),
            release_held,
        };
        let rows: Vec<(
            &str,
            Option<&str>,
            Option<&str>,
            &Vec<String>,
            bool,
            Option<NumberPlan>,
        )> = vec![
            (
                "nothing_wanted_nothing_held",
                None,
                None,
                &none,
                true,
                Some(NumberPlan::None),
            ),
            (
                "cleared_releases_held",
                None,
                Some(A),
                &none,
                true,
                Some(NumberPlan::Release),
            ),
            (
                "cleared_while_inactive_releases",
                None,
                Some(A),
                &none,
                false,
                Some(NumberPlan::Release),
            ),
            (
                "held_kept_with_licence",
                Some(A),
                Some(A),
                &phone,
                true,
                Some(NumberPlan::Keep(A.into())),
            ),
            (
                "held_kept_while_inactive_without_seat",
                Some(A),
                Some(A),
                &none,
                false,
                Some(NumberPlan::Keep(A.into())),
            ),
            (
                "new_number_claimed",
                Some(A),
                None,
                &phone,
                true,
                Some(claim(A, false)),
            ),
            (
                "other_number_replaces_held",
                Some(B),
                Some(A),
                &phone,
                true,
                Some(claim(B, true)),
            ),
            (
                "inactive_claim_with_licence_asked",
                Some(B),
                None,
                &phone,
                false,
                Some(claim(B, false)),
            ),
            (
                "active_held_without_licence_refused",
                Some(A),
                Some(A),
                &none,
                true,
                None,
            ),
            (
                "new_number_without_licence_refused",
                Some(A),
                None,
                &meeting,
                true,
                None,
            ),
            (
                "inactive_new_number_without_licence_refused",
                Some(B),
                Some(A),
                &none,
                false,
                None,
            ),
        ];
        for (name, wanted, held, licences, active, want) in rows {
            match (want, plan_number(wanted, held, licences, active)) {
                (Some(plan), Ok(got)) => assert_eq!(got, plan, "{name}"),
                (None, Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert!(
                        e.detail
                            .starts_with("a directNumber needs the 'phone' licence"),
                        "{name}"
                    );
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    /// §2.4 directNumber must be an unassigned number of the inventory (400), not someone
    /// else's (409 uniqueness), and not in its 72 h quarantine (§2.7, settled decision 8).
    #[test]
    fn number_claim_refusals_say_why() {
        let row = |user: Option<u128>, available_at: Option<i64>| PhoneNumber {
            number: "+14155550123".into(),
            account_id: Uuid::from_u128(99),
            sms_capable: true,
            user_id: user.map(Uuid::from_u128),
            available_at,
            added_at: 0,
        };
        let rows: Vec<(&str, Option<PhoneNumber>, u16, &str)> = vec![
            (
                "not_in_inventory",
                None,
                400,
                "directNumber +14155550123 is not in this account's number inventory",
            ),
            (
                "assigned_to_another_user",
                Some(row(Some(2), None)),
                409,
                "directNumber +14155550123 is already assigned to another user",
            ),
            (
                "in_quarantine",
                Some(row(None, Some(0))),
                400,
                "directNumber +14155550123 was released recently and is in quarantine until 1970-01-01T00:00:00Z",
            ),
        ];
        for (name, number_row, status, detail) in rows {
            let e = claim_refused("+14155550123", number_row.as_ref());
            assert_eq!(e.status, status, "{name}");
            assert_eq!(e.detail, detail, "{name}");
        }
    }

    /// §2.4 smsEnabled requires a directNumber on an SMS-capable number, else 400.
    #[test]
    fn sms_needs_a_capable_direct_number() {
        let rows: Vec<(&str, bool, Option<&str>, bool, Option<&str>)> = vec![
            ("sms_off_without_number", false, None, false, None),
            (
                "sms_off_on_incapable_number",
                false,
                Some("+14155550123"),
                false,
                None,
            ),
            (
                "sms_on_capable_number",
                true,
                Some("+14155550123"),
                true,
                None,
            ),
            (
                "sms_on_incapable_number_refused",
                true,
                Some("+14155550123"),
                false,
                Some("smsEnabled: number +14155550123 cannot send SMS"),
            ),
            (
                "sms_without_number_refused",
                true,
                None,
                false,
                Some("smsEnabled needs a directNumber"),
            ),
        ];
        for (name, sms, wanted, capable, refused) in rows {
            match (refused, check_sms(sms, wanted, capable)) {
                (None, Ok(())) => {}
                (Some(detail), Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert_eq!(e.detail, detail, "{name}");
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }
}
