//! The telephony of a user: the extension (kept, checked, or the next free one of the
//! account's range), the emergency location (by id or exact name), the phone number (from the
//! account's inventory, needing the phone licence) and SMS on it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::E164Number;
use crate::provisioning::user_doc::{ext_str, extension, extension_mut};
use crate::provisioning::{Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{AccountPolicy, Tx, UserRecord};

/// The product whose licence a phone number requires.
pub const PHONE_PRODUCT: &str = "phone";
/// Released numbers wait this long before anyone else can have them.
pub const NUMBER_QUARANTINE_MICROS: i64 = 72 * 3_600 * 1_000_000;

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
        let asked = ext_str(doc, "extensionNumber")
            .map(str::trim)
            .map(str::to_string);
        let current = existing.and_then(|e| e.extension);
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        // An inactive user whose hold ran out has no extension until they come back (asking for
        // a number explicitly is still allowed).
        let hold_released = existing.is_some_and(|e| !e.active && e.extension.is_none());
        if !active && hold_released && matches!(asked.as_deref(), None | Some("") | Some("auto")) {
            extension_mut(doc).remove("extensionNumber");
            return Ok(None);
        }
        let wanted = match asked.as_deref() {
            None | Some("") | Some("auto") => current,
            Some(digits) => {
                let number = parse_extension(digits, policy)?;
                if Some(number) != current
                    && let Some(holder) = tx.extension_holder(account_id, number).await?
                    && holder != user_id
                {
                    return Err(ScimError::uniqueness(format!(
                        "extension {number} is already assigned to another user of this account; send \"auto\" (or nothing) to get the next free one"
                    ))
                    .into());
                }
                Some(number)
            }
        };
        let number = match wanted {
            Some(n) => n,
            None => {
                self.extensions
                    .allocate(tx, account_id, policy.extension_first, policy.extension_last)
                    .await?
                    .ok_or_else(|| {
                        ScimError::new(
                            409,
                            None,
                            format!(
                                "every extension of the account's range {}–{} is taken; widen the range in the admin API",
                                policy.extension_first, policy.extension_last
                            ),
                        )
                    })?
            }
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
        let Some(asked) = ext_str(doc, "emergencyLocation").map(str::to_string) else {
            extension_mut(doc).remove("emergencyLocationName");
            return Ok(());
        };
        // The stored location sent back stays as it is, even if it was deleted since: a
        // deactivation must never fail on a reference an admin removed.
        let stored = existing.and_then(|e| extension(&e.doc));
        let stored_as = |name: &str| stored.and_then(|e| e.get(name)).and_then(Value::as_str);
        if stored_as("emergencyLocation") == Some(&asked)
            || stored_as("emergencyLocationName") == Some(&asked)
        {
            if let Some(id) = stored.and_then(|e| e.get("emergencyLocation")).cloned() {
                extension_mut(doc).insert("emergencyLocation".into(), id);
            }
            if let Some(name) = stored.and_then(|e| e.get("emergencyLocationName")).cloned() {
                extension_mut(doc).insert("emergencyLocationName".into(), name);
            }
            return Ok(());
        }
        let locations = tx.emergency_locations(account_id).await?;
        let found = locations
            .iter()
            .find(|l| l.id.to_string() == asked.to_ascii_lowercase())
            .or_else(|| locations.iter().find(|l| l.name == asked))
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "emergencyLocation '{asked}' is neither the id nor the exact name of an emergency location of this account"
                ))
            })?;
        let ext = extension_mut(doc);
        ext.insert("emergencyLocation".into(), json!(found.id.to_string()));
        ext.insert("emergencyLocationName".into(), json!(found.name));
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
        let asked = ext_str(doc, "directNumber")
            .map(str::trim)
            .map(str::to_string);
        let wanted = match asked.as_deref() {
            None | Some("") => None,
            Some("auto") => match &held {
                Some(number) => Some(number.clone()),
                None => Some(tx.free_phone_number(account_id, now).await?.ok_or_else(|| {
                    ScimError::invalid_value(
                        "directNumber 'auto': the account has no free phone number; add numbers to the inventory in the admin API",
                    )
                })?),
            },
            Some(number) => Some(E164Number::parse(number)?.into_string()),
        };
        // An inactive user keeps (holds) their number without a seat; a new assignment needs the
        // licence asked for, and an active user needs it held.
        let must_be_licensed = wanted.is_some() && (active || wanted != held);
        if must_be_licensed && !licences.iter().any(|l| l == PHONE_PRODUCT) {
            return Err(ScimError::invalid_value(format!(
                "a directNumber needs the '{PHONE_PRODUCT}' licence; add {{\"value\": \"{PHONE_PRODUCT}\", \"type\": \"License\"}} to entitlements"
            ))
            .into());
        }
        if held != wanted {
            if held.is_some() {
                tx.release_phone_number(account_id, user_id, now + NUMBER_QUARANTINE_MICROS)
                    .await?;
            }
            if let Some(number) = &wanted
                && !tx
                    .claim_phone_number(account_id, number, user_id, now)
                    .await?
            {
                let row = tx.phone_number(account_id, number).await?;
                return Err(match row {
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
                .into());
            }
        }
        let sms = extension(doc)
            .and_then(|e| e.get("smsEnabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if sms {
            let capable = match &wanted {
                Some(number) => tx
                    .phone_number(account_id, number)
                    .await?
                    .is_some_and(|n| n.sms_capable),
                None => false,
            };
            if !capable {
                return Err(ScimError::invalid_value(match &wanted {
                    Some(number) => format!("smsEnabled: number {number} cannot send SMS"),
                    None => "smsEnabled needs a directNumber".to_string(),
                })
                .into());
            }
        }
        let ext = extension_mut(doc);
        match wanted {
            Some(number) => ext.insert("directNumber".into(), json!(number)),
            None => ext.remove("directNumber"),
        };
        Ok(())
    }
}
