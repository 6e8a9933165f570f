//! The account's catalogue — what SCIM attributes refer to but SCIM does not manage: the
//! account policy, licence products and bundles, custom roles, emergency locations, settings and
//! e-mail templates, the phone-number inventory and devices.

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreError, Tx, now_micros, on_conn};

/// The account's provisioning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountPolicy {
    pub extension_first: i64,
    pub extension_last: i64,
    pub quarantine_days: i64,
    pub retain_licences: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Product {
    pub id: Uuid,
    pub account_id: Uuid,
    pub code: String,
    pub display: Option<String>,
    pub seats: i64,
    pub seats_used: i64,
    pub features: Json<Vec<String>>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bundle {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    /// SCIM entitlement objects: `{"value": …, "type": "License" | "Feature"}`.
    pub entitlements: Json<Vec<Value>>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomRole {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Json<Vec<String>>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmergencyLocation {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub address: Json<Value>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SettingsTemplate {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub settings: Json<Value>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailTemplate {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PhoneNumber {
    pub number: String,
    pub account_id: Uuid,
    pub sms_capable: bool,
    pub user_id: Option<Uuid>,
    pub available_at: Option<i64>,
    pub added_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub account_id: Uuid,
    pub mac: String,
    pub model: Option<String>,
    pub display: Option<String>,
    pub user_id: Option<Uuid>,
    pub created_at: i64,
}

const PRODUCT_COLUMNS: &str =
    "id, account_id, code, display, seats, seats_used, features, created_at";
const DEVICE_COLUMNS: &str = "id, account_id, mac, model, display, user_id, created_at";

impl Tx {
    pub async fn account_policy(
        &mut self,
        account_id: Uuid,
    ) -> Result<Option<AccountPolicy>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, AccountPolicy>(
                "SELECT extension_first, extension_last, quarantine_days, retain_licences FROM accounts WHERE id = $1",
            )
            .bind(account_id)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn set_account_policy(
        &mut self,
        account_id: Uuid,
        policy: &AccountPolicy,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE accounts SET extension_first = $1, extension_last = $2, quarantine_days = $3, retain_licences = $4 WHERE id = $5",
            )
            .bind(policy.extension_first)
            .bind(policy.extension_last)
            .bind(policy.quarantine_days)
            .bind(policy.retain_licences)
            .bind(account_id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    // ---- products and seats

    pub async fn products(&mut self, account_id: Uuid) -> Result<Vec<Product>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE account_id = $1 ORDER BY code"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Product>(sql)
                .bind(account_id)
                .fetch_all(conn)
                .await?
        }))
    }

    pub async fn product_by_code(
        &mut self,
        account_id: Uuid,
        code: &str,
    ) -> Result<Option<Product>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE account_id = $1 AND code = $2"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Product>(sql)
                .bind(account_id)
                .bind(code)
                .fetch_optional(conn)
                .await?
        }))
    }

    /// Creates the product or updates its display, seats and features; seats already taken stay
    /// taken even if `seats` drops below them (no new assignment until enough are freed).
    pub async fn upsert_product(
        &mut self,
        account_id: Uuid,
        code: &str,
        display: Option<&str>,
        seats: i64,
        features: &[String],
    ) -> Result<Product, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO products (id, account_id, code, display, seats, seats_used, features, created_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)
             ON CONFLICT (account_id, code) DO UPDATE SET display = excluded.display, seats = excluded.seats, features = excluded.features
             RETURNING {PRODUCT_COLUMNS}"
        ));
        let features = Json(features.to_vec());
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Product>(sql)
                .bind(Uuid::now_v7())
                .bind(account_id)
                .bind(code)
                .bind(display)
                .bind(seats)
                .bind(&features)
                .bind(now_micros())
                .fetch_one(conn)
                .await?
        }))
    }

    /// Deletes a product nobody holds or waits for; false if it is in use or absent.
    pub async fn delete_product(
        &mut self,
        account_id: Uuid,
        code: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "DELETE FROM products WHERE account_id = $1 AND code = $2
                 AND NOT EXISTS (SELECT 1 FROM user_licences l WHERE l.product_id = products.id)",
            )
            .bind(account_id)
            .bind(code)
            .execute(conn)
            .await?
            .rows_affected()
        }) == 1)
    }

    /// Takes one seat of the product if one is free. The guarded UPDATE locks the product row,
    /// so concurrent takers queue on it and each re-checks the count: seats are never oversold.
    pub async fn take_seat(&mut self, product_id: Uuid) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE products SET seats_used = seats_used + 1 WHERE id = $1 AND seats_used < seats",
            )
            .bind(product_id)
            .execute(conn)
            .await?
            .rows_affected()
        }) == 1)
    }

    pub async fn release_seat(&mut self, product_id: Uuid) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE products SET seats_used = seats_used - 1 WHERE id = $1 AND seats_used > 0",
            )
            .bind(product_id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    // ---- bundles

    pub async fn bundles(&mut self, account_id: Uuid) -> Result<Vec<Bundle>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Bundle>(
                "SELECT id, account_id, name, entitlements, created_at FROM licence_bundles WHERE account_id = $1 ORDER BY name",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn bundle_by_name(
        &mut self,
        account_id: Uuid,
        name: &str,
    ) -> Result<Option<Bundle>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Bundle>(
                "SELECT id, account_id, name, entitlements, created_at FROM licence_bundles WHERE account_id = $1 AND name = $2",
            )
            .bind(account_id)
            .bind(name)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn upsert_bundle(
        &mut self,
        account_id: Uuid,
        name: &str,
        entitlements: &[Value],
    ) -> Result<Bundle, StoreError> {
        let entitlements = Json(entitlements.to_vec());
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Bundle>(
                "INSERT INTO licence_bundles (id, account_id, name, entitlements, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (account_id, name) DO UPDATE SET entitlements = excluded.entitlements
                 RETURNING id, account_id, name, entitlements, created_at",
            )
            .bind(Uuid::now_v7())
            .bind(account_id)
            .bind(name)
            .bind(&entitlements)
            .bind(now_micros())
            .fetch_one(conn)
            .await?
        }))
    }

    pub async fn delete_bundle(
        &mut self,
        account_id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query("DELETE FROM licence_bundles WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(name)
                .execute(conn)
                .await?
                .rows_affected()
        }) == 1)
    }

    // ---- custom roles

    pub async fn custom_roles(&mut self, account_id: Uuid) -> Result<Vec<CustomRole>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, CustomRole>(
                "SELECT id, account_id, name, description, permissions, created_at FROM custom_roles WHERE account_id = $1 ORDER BY name",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn custom_role(
        &mut self,
        account_id: Uuid,
        id: Uuid,
    ) -> Result<Option<CustomRole>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, CustomRole>(
                "SELECT id, account_id, name, description, permissions, created_at FROM custom_roles WHERE account_id = $1 AND id = $2",
            )
            .bind(account_id)
            .bind(id)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn insert_custom_role(&mut self, role: &CustomRole) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO custom_roles (id, account_id, name, description, permissions, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(role.id)
            .bind(role.account_id)
            .bind(&role.name)
            .bind(&role.description)
            .bind(&role.permissions)
            .bind(role.created_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn update_custom_role(&mut self, role: &CustomRole) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE custom_roles SET name = $1, description = $2, permissions = $3 WHERE account_id = $4 AND id = $5",
            )
            .bind(&role.name)
            .bind(&role.description)
            .bind(&role.permissions)
            .bind(role.account_id)
            .bind(role.id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Deletes a custom role no user holds; false if held or absent.
    pub async fn delete_custom_role(
        &mut self,
        account_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let held = format!("custom:{id}");
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "DELETE FROM custom_roles WHERE account_id = $1 AND id = $2
                 AND NOT EXISTS (SELECT 1 FROM users u WHERE u.account_id = $1 AND u.account_role = $3)",
            )
            .bind(account_id)
            .bind(id)
            .bind(&held)
            .execute(conn)
            .await?
            .rows_affected()
        }) == 1)
    }

    /// Active users of the account holding `role` (`superAdmin`, `custom:<id>`, …).
    pub async fn count_active_with_role(
        &mut self,
        account_id: Uuid,
        role: &str,
    ) -> Result<i64, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM users WHERE account_id = $1 AND account_role = $2 AND active = $3",
            )
            .bind(account_id)
            .bind(role)
            .bind(true)
            .fetch_one(conn)
            .await?
        }))
    }

    // ---- emergency locations

    pub async fn emergency_locations(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<EmergencyLocation>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, EmergencyLocation>(
                "SELECT id, account_id, name, address, created_at FROM emergency_locations WHERE account_id = $1 ORDER BY name",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn insert_emergency_location(
        &mut self,
        location: &EmergencyLocation,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO emergency_locations (id, account_id, name, address, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(location.id)
            .bind(location.account_id)
            .bind(&location.name)
            .bind(&location.address)
            .bind(location.created_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn delete_emergency_location(
        &mut self,
        account_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query("DELETE FROM emergency_locations WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        }) == 1)
    }

    // ---- settings templates

    pub async fn settings_templates(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<SettingsTemplate>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, SettingsTemplate>(
                "SELECT id, account_id, name, settings, created_at FROM settings_templates WHERE account_id = $1 ORDER BY name",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn upsert_settings_template(
        &mut self,
        account_id: Uuid,
        name: &str,
        settings: &Value,
    ) -> Result<SettingsTemplate, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, SettingsTemplate>(
                "INSERT INTO settings_templates (id, account_id, name, settings, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (account_id, name) DO UPDATE SET settings = excluded.settings
                 RETURNING id, account_id, name, settings, created_at",
            )
            .bind(Uuid::now_v7())
            .bind(account_id)
            .bind(name)
            .bind(Json(settings))
            .bind(now_micros())
            .fetch_one(conn)
            .await?
        }))
    }

    pub async fn delete_settings_template(
        &mut self,
        account_id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query("DELETE FROM settings_templates WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(name)
                .execute(conn)
                .await?
                .rows_affected()
        }) == 1)
    }

    /// `(id, name)` of the account's e-mail templates.
    pub async fn email_template_names(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, (Uuid, String)>(
                "SELECT id, name FROM email_templates WHERE account_id = $1 ORDER BY name",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn email_templates(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<EmailTemplate>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, EmailTemplate>(
                "SELECT id, account_id, name, subject, html, text, created_at FROM email_templates WHERE account_id = $1 ORDER BY name",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn upsert_email_template(
        &mut self,
        account_id: Uuid,
        name: &str,
        subject: &str,
        html: &str,
        text: &str,
    ) -> Result<EmailTemplate, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, EmailTemplate>(
                "INSERT INTO email_templates (id, account_id, name, subject, html, text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (account_id, name) DO UPDATE SET subject = excluded.subject, html = excluded.html, text = excluded.text
                 RETURNING id, account_id, name, subject, html, text, created_at",
            )
            .bind(Uuid::now_v7())
            .bind(account_id)
            .bind(name)
            .bind(subject)
            .bind(html)
            .bind(text)
            .bind(now_micros())
            .fetch_one(conn)
            .await?
        }))
    }

    pub async fn delete_email_template(
        &mut self,
        account_id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query("DELETE FROM email_templates WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(name)
                .execute(conn)
                .await?
                .rows_affected()
        }) == 1)
    }

    // ---- phone numbers

    /// Adds numbers to the account's inventory; returns those that were new. A number already
    /// in this account is left as it is; one in another account is refused by the caller, which
    /// checks [`Tx::phone_number_owner`] first.
    pub async fn add_phone_numbers(
        &mut self,
        account_id: Uuid,
        numbers: &[String],
        sms_capable: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut added = Vec::new();
        let now = now_micros();
        for number in numbers {
            let inserted = on_conn!(self, |conn| {
                sqlx::query(
                    "INSERT INTO phone_numbers (number, account_id, sms_capable, added_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (number) DO NOTHING",
                )
                .bind(number)
                .bind(account_id)
                .bind(sms_capable)
                .bind(now)
                .execute(conn)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                added.push(number.clone());
            }
        }
        Ok(added)
    }

    pub async fn phone_number_owner(&mut self, number: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>("SELECT account_id FROM phone_numbers WHERE number = $1")
                .bind(number)
                .fetch_optional(conn)
                .await?
        }))
    }

    pub async fn phone_numbers(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<PhoneNumber>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, PhoneNumber>(
                "SELECT number, account_id, sms_capable, user_id, available_at, added_at FROM phone_numbers WHERE account_id = $1 ORDER BY number",
            )
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn phone_number(
        &mut self,
        account_id: Uuid,
        number: &str,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, PhoneNumber>(
                "SELECT number, account_id, sms_capable, user_id, available_at, added_at FROM phone_numbers WHERE account_id = $1 AND number = $2",
            )
            .bind(account_id)
            .bind(number)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn phone_numbers_of_user(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, PhoneNumber>(
                "SELECT number, account_id, sms_capable, user_id, available_at, added_at FROM phone_numbers WHERE account_id = $1 AND user_id = $2",
            )
            .bind(account_id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?
        }))
    }

    /// Assigns the number to the user if it is the account's, unassigned and out of quarantine;
    /// the guarded UPDATE makes two concurrent claims of one number end with one winner.
    pub async fn claim_phone_number(
        &mut self,
        account_id: Uuid,
        number: &str,
        user_id: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE phone_numbers SET user_id = $1, available_at = NULL
                 WHERE account_id = $2 AND number = $3 AND user_id IS NULL AND (available_at IS NULL OR available_at <= $4)",
            )
            .bind(user_id)
            .bind(account_id)
            .bind(number)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        }) == 1)
    }

    /// The first assignable number of the account (unassigned, out of quarantine).
    pub async fn free_phone_number(
        &mut self,
        account_id: Uuid,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        // On PostgreSQL a number another transaction is claiming is skipped, not waited for.
        let skip_locked = match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT number FROM phone_numbers WHERE account_id = $1 AND user_id IS NULL
             AND (available_at IS NULL OR available_at <= $2) ORDER BY number LIMIT 1{skip_locked}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, String>(sql)
                .bind(account_id)
                .bind(now)
                .fetch_optional(conn)
                .await?
        }))
    }

    /// Releases the user's number into quarantine until `available_at`.
    pub async fn release_phone_number(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
        available_at: i64,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE phone_numbers SET user_id = NULL, available_at = $1 WHERE account_id = $2 AND user_id = $3",
            )
            .bind(available_at)
            .bind(account_id)
            .bind(user_id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Removes an unassigned number from the inventory.
    pub async fn delete_phone_number(
        &mut self,
        account_id: Uuid,
        number: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "DELETE FROM phone_numbers WHERE account_id = $1 AND number = $2 AND user_id IS NULL",
            )
            .bind(account_id)
            .bind(number)
            .execute(conn)
            .await?
            .rows_affected()
        }) == 1)
    }

    // ---- devices

    pub async fn devices(&mut self, account_id: Uuid) -> Result<Vec<Device>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE account_id = $1 ORDER BY mac"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Device>(sql)
                .bind(account_id)
                .fetch_all(conn)
                .await?
        }))
    }

    pub async fn device(
        &mut self,
        account_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Device>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE account_id = $1 AND id = $2"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Device>(sql)
                .bind(account_id)
                .bind(id)
                .fetch_optional(conn)
                .await?
        }))
    }

    pub async fn devices_of_users(
        &mut self,
        account_id: Uuid,
        user_ids: &[Uuid],
    ) -> Result<Vec<Device>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (0..user_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE account_id = $1 AND user_id IN ({}) ORDER BY mac",
            placeholders.join(", ")
        ));
        Ok(on_conn!(self, |conn| {
            let mut query = sqlx::query_as::<_, Device>(sql).bind(account_id);
            for id in user_ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await?
        }))
    }

    pub async fn insert_device(&mut self, device: &Device) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO devices (id, account_id, mac, model, display, user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(device.id)
            .bind(device.account_id)
            .bind(&device.mac)
            .bind(&device.model)
            .bind(&device.display)
            .bind(device.user_id)
            .bind(device.created_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn update_device(&mut self, device: &Device) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE devices SET model = $1, display = $2, user_id = $3 WHERE account_id = $4 AND id = $5",
            )
            .bind(&device.model)
            .bind(&device.display)
            .bind(device.user_id)
            .bind(device.account_id)
            .bind(device.id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn delete_device(&mut self, account_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query("DELETE FROM devices WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        }) == 1)
    }

    pub async fn unassign_devices(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query("UPDATE devices SET user_id = NULL WHERE account_id = $1 AND user_id = $2")
                .bind(account_id)
                .bind(user_id)
                .execute(conn)
                .await?;
        });
        Ok(())
    }
}
