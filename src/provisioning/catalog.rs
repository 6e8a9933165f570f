//! Managing the account's catalogue through the admin API: the account policy, licence
//! products and bundles, custom roles, emergency locations, settings templates, the phone-number
//! inventory and devices — and publishing what is assignable as SCIM `Role` and `Entitlement`
//! resources. Every change is audited like a SCIM write.
//!
//! Configuration that decides what others may be given (policy, products, bundles, roles) needs
//! a super-admin token; the day-to-day inventory (numbers, locations, templates, devices) an
//! admin token.

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use super::user_doc::{self, GROUP_EXTENSION, SYSTEM_TEMPLATE};
use super::users::PERMISSIONS;
use super::{Context, Error, Provisioner, Result, audit, render};
use crate::domain::{CatalogName, E164Number, MacAddress, ProductCode};
use crate::scim::error::ScimError;
use crate::store::{
    AccountPolicy, CustomRole, Device, EmergencyLocation, Product, StoreError, Tx, now_micros,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    pub display: Option<String>,
    pub seats: i64,
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleInput {
    pub entitlements: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleInput {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationInput {
    pub name: String,
    #[serde(default)]
    pub address: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateInput {
    pub settings: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NumbersInput {
    pub numbers: Vec<String>,
    #[serde(default)]
    pub sms_capable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceInput {
    pub mac_address: String,
    pub model: Option<String>,
    pub display: Option<String>,
    pub user_id: Option<String>,
}

/// A device change: absent fields stay, `null` clears (`userId: null` unassigns).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicePatch {
    #[serde(default, with = "serde_with::rust::double_option")]
    pub model: Option<Option<String>>,
    #[serde(default, with = "serde_with::rust::double_option")]
    pub display: Option<Option<String>>,
    #[serde(default, with = "serde_with::rust::double_option")]
    pub user_id: Option<Option<String>>,
}

fn require_super_admin(ctx: &Context, what: &str) -> Result<()> {
    if ctx.principal.actor.is_super_admin() {
        Ok(())
    } else {
        Err(ScimError::forbidden(format!("{what} needs a super-admin token")).into())
    }
}

pub fn product_json(p: &Product) -> Value {
    json!({
        "code": p.code,
        "display": p.display,
        "seats": p.seats,
        "seatsUsed": p.seats_used,
        "features": p.features.0,
        "created": render::timestamp(p.created_at),
    })
}

fn role_json(r: &CustomRole) -> Value {
    json!({
        "id": r.id.to_string(),
        "value": format!("account:custom:{}", r.id),
        "name": r.name,
        "description": r.description,
        "permissions": r.permissions.0,
    })
}

fn location_json(l: &EmergencyLocation) -> Value {
    json!({"id": l.id.to_string(), "name": l.name, "address": l.address.0})
}

fn device_json(d: &Device) -> Value {
    json!({
        "id": d.id.to_string(),
        "macAddress": d.mac,
        "model": d.model,
        "display": d.display,
        "userId": d.user_id.map(|u| u.to_string()),
        "created": render::timestamp(d.created_at),
    })
}

fn conflict(e: StoreError, detail: String) -> Error {
    match e {
        StoreError::Unique(_) => Error::Scim(ScimError::uniqueness(detail)),
        other => Error::Store(other),
    }
}

impl Provisioner {
    pub async fn policy(&self, ctx: &Context) -> Result<AccountPolicy> {
        let mut tx = self.store.begin_read().await?;
        let policy = tx
            .account_policy(ctx.principal.account_id)
            .await?
            .ok_or_else(|| Error::Internal("the caller's account has no row".into()))?;
        tx.commit().await?;
        Ok(policy)
    }

    pub async fn set_policy(&self, ctx: &Context, policy: AccountPolicy) -> Result<AccountPolicy> {
        require_super_admin(ctx, "changing the account policy")?;
        if policy.extension_first < 0
            || policy.extension_last < policy.extension_first
            || policy.extension_last > 999_999_999
        {
            return Err(ScimError::invalid_value(
                "the extension range must satisfy 0 <= extensionFirst <= extensionLast <= 999999999",
            )
            .into());
        }
        if !(0..=3650).contains(&policy.quarantine_days) {
            return Err(ScimError::invalid_value("quarantineDays must be 0 to 3650").into());
        }
        let mut tx = self.store.begin_write().await?;
        let account_id = ctx.principal.account_id;
        let before = tx.account_policy(account_id).await?;
        tx.set_account_policy(account_id, &policy).await?;
        audit::record(
            &mut tx,
            ctx,
            "account.policy",
            "Account",
            &account_id.to_string(),
            before.map(|b| json!(b)),
            Some(json!(policy)),
        )
        .await?;
        tx.commit().await?;
        Ok(policy)
    }

    pub async fn products(&self, ctx: &Context) -> Result<Vec<Product>> {
        let mut tx = self.store.begin_read().await?;
        let products = tx.products(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(products)
    }

    pub async fn put_product(
        &self,
        ctx: &Context,
        code: &str,
        input: ProductInput,
    ) -> Result<Product> {
        require_super_admin(ctx, "changing licences")?;
        ProductCode::parse(code)?;
        if input.seats < 0 {
            return Err(ScimError::invalid_value("seats must be 0 or more").into());
        }
        for feature in &input.features {
            ProductCode::parse(feature)?;
        }
        let mut tx = self.store.begin_write().await?;
        let account_id = ctx.principal.account_id;
        let before = tx.product_by_code(account_id, code).await?;
        let product = tx
            .upsert_product(
                account_id,
                code,
                input.display.as_deref(),
                input.seats,
                &input.features,
            )
            .await?;
        // More seats may let waiting members in.
        for _ in 0..(product.seats - product.seats_used).max(0) {
            let Some(waiting) = tx.oldest_pending_licence(product.id).await? else {
                break;
            };
            if !tx.take_seat(product.id).await? {
                break;
            }
            tx.set_licence_assigned(waiting, product.id).await?;
        }
        let product = tx
            .product_by_code(account_id, code)
            .await?
            .ok_or_else(|| Error::Internal("product vanished".into()))?;
        audit::record(
            &mut tx,
            ctx,
            "product.put",
            "Product",
            code,
            before.as_ref().map(product_json),
            Some(product_json(&product)),
        )
        .await?;
        tx.commit().await?;
        Ok(product)
    }

    pub async fn delete_product(&self, ctx: &Context, code: &str) -> Result<()> {
        require_super_admin(ctx, "changing licences")?;
        let mut tx = self.store.begin_write().await?;
        let account_id = ctx.principal.account_id;
        let before = tx
            .product_by_code(account_id, code)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("no product '{code}'")))?;
        if !tx.delete_product(account_id, code).await? {
            return Err(ScimError::conflict(format!(
                "product '{code}' is assigned to users ({} seats used); remove it from them first",
                before.seats_used
            ))
            .into());
        }
        audit::record(
            &mut tx,
            ctx,
            "product.delete",
            "Product",
            code,
            Some(product_json(&before)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn bundles(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let bundles = tx.bundles(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(bundles
            .iter()
            .map(|b| json!({"name": b.name, "entitlements": b.entitlements.0}))
            .collect())
    }

    pub async fn put_bundle(&self, ctx: &Context, name: &str, input: BundleInput) -> Result<Value> {
        require_super_admin(ctx, "changing licence bundles")?;
        CatalogName::parse_as(name, "a bundle name")?;
        let mut tx = self.store.begin_write().await?;
        let account_id = ctx.principal.account_id;
        for item in &input.entitlements {
            let value = item
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let code = value.split(':').next().unwrap_or_default();
            let product = tx.product_by_code(account_id, code).await?.ok_or_else(|| {
                ScimError::invalid_value(format!("'{value}': no product '{code}' in this account"))
            })?;
            if let Some((_, feature)) = value.split_once(':')
                && !product.features.0.iter().any(|f| f == feature)
            {
                return Err(ScimError::invalid_value(format!(
                    "'{feature}' is not a feature of product '{code}'"
                ))
                .into());
            }
        }
        let bundle = tx
            .upsert_bundle(account_id, name, &input.entitlements)
            .await?;
        let after = json!({"name": bundle.name, "entitlements": bundle.entitlements.0});
        audit::record(
            &mut tx,
            ctx,
            "bundle.put",
            "Bundle",
            name,
            None,
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_bundle(&self, ctx: &Context, name: &str) -> Result<()> {
        require_super_admin(ctx, "changing licence bundles")?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_bundle(ctx.principal.account_id, name).await? {
            return Err(ScimError::not_found(format!("no bundle '{name}'")).into());
        }
        audit::record(&mut tx, ctx, "bundle.delete", "Bundle", name, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn custom_roles(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let roles = tx.custom_roles(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(roles.iter().map(role_json).collect())
    }

    fn check_role(input: &RoleInput) -> Result<()> {
        CatalogName::parse_as(&input.name, "a role name")?;
        for p in &input.permissions {
            if !PERMISSIONS.contains(&p.as_str()) {
                return Err(ScimError::invalid_value(format!(
                    "'{p}' is not a permission; use {}",
                    PERMISSIONS.join(", ")
                ))
                .into());
            }
        }
        Ok(())
    }

    pub async fn create_custom_role(&self, ctx: &Context, input: RoleInput) -> Result<Value> {
        require_super_admin(ctx, "changing roles")?;
        Self::check_role(&input)?;
        let role = CustomRole {
            id: Uuid::now_v7(),
            account_id: ctx.principal.account_id,
            name: input.name.clone(),
            description: input.description,
            permissions: Json(input.permissions),
            created_at: now_micros(),
        };
        let mut tx = self.store.begin_write().await?;
        tx.insert_custom_role(&role)
            .await
            .map_err(|e| conflict(e, format!("a role named '{}' already exists", input.name)))?;
        let after = role_json(&role);
        audit::record(
            &mut tx,
            ctx,
            "role.create",
            "Role",
            &role.id.to_string(),
            None,
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn update_custom_role(
        &self,
        ctx: &Context,
        id: &str,
        input: RoleInput,
    ) -> Result<Value> {
        require_super_admin(ctx, "changing roles")?;
        Self::check_role(&input)?;
        let uuid = super::parse_id(id, "role")?;
        let mut tx = self.store.begin_write().await?;
        let before = tx
            .custom_role(ctx.principal.account_id, uuid)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("role {id} not found")))?;
        let role = CustomRole {
            name: input.name.clone(),
            description: input.description,
            permissions: Json(input.permissions),
            ..before.clone()
        };
        tx.update_custom_role(&role)
            .await
            .map_err(|e| conflict(e, format!("a role named '{}' already exists", input.name)))?;
        let after = role_json(&role);
        audit::record(
            &mut tx,
            ctx,
            "role.update",
            "Role",
            id,
            Some(role_json(&before)),
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_custom_role(&self, ctx: &Context, id: &str) -> Result<()> {
        require_super_admin(ctx, "changing roles")?;
        let uuid = super::parse_id(id, "role")?;
        let mut tx = self.store.begin_write().await?;
        let before = tx
            .custom_role(ctx.principal.account_id, uuid)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("role {id} not found")))?;
        if !tx
            .delete_custom_role(ctx.principal.account_id, uuid)
            .await?
        {
            return Err(ScimError::conflict(format!(
                "role '{}' is held by users; give them another role first",
                before.name
            ))
            .into());
        }
        audit::record(
            &mut tx,
            ctx,
            "role.delete",
            "Role",
            id,
            Some(role_json(&before)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn emergency_locations(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let locations = tx.emergency_locations(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(locations.iter().map(location_json).collect())
    }

    pub async fn create_emergency_location(
        &self,
        ctx: &Context,
        input: LocationInput,
    ) -> Result<Value> {
        CatalogName::parse_as(&input.name, "a location name")?;
        let location = EmergencyLocation {
            id: Uuid::now_v7(),
            account_id: ctx.principal.account_id,
            name: input.name.clone(),
            address: Json(input.address),
            created_at: now_micros(),
        };
        let mut tx = self.store.begin_write().await?;
        tx.insert_emergency_location(&location).await.map_err(|e| {
            conflict(
                e,
                format!("a location named '{}' already exists", input.name),
            )
        })?;
        let after = location_json(&location);
        audit::record(
            &mut tx,
            ctx,
            "location.create",
            "EmergencyLocation",
            &location.id.to_string(),
            None,
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_emergency_location(&self, ctx: &Context, id: &str) -> Result<()> {
        let uuid = super::parse_id(id, "emergency location")?;
        let mut tx = self.store.begin_write().await?;
        if !tx
            .delete_emergency_location(ctx.principal.account_id, uuid)
            .await?
        {
            return Err(ScimError::not_found(format!("emergency location {id} not found")).into());
        }
        audit::record(
            &mut tx,
            ctx,
            "location.delete",
            "EmergencyLocation",
            id,
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn settings_templates(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let templates = tx.settings_templates(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(templates
            .iter()
            .map(|t| json!({"id": t.id.to_string(), "name": t.name, "settings": t.settings.0}))
            .collect())
    }

    pub async fn put_settings_template(
        &self,
        ctx: &Context,
        name: &str,
        input: TemplateInput,
    ) -> Result<Value> {
        CatalogName::parse_as(name, "a template name")?;
        if name.eq_ignore_ascii_case(SYSTEM_TEMPLATE) {
            return Err(
                ScimError::invalid_value("'system' is the built-in template's name").into(),
            );
        }
        if !input.settings.is_object() {
            return Err(ScimError::invalid_value("settings must be a JSON object").into());
        }
        let mut tx = self.store.begin_write().await?;
        let t = tx
            .upsert_settings_template(ctx.principal.account_id, name, &input.settings)
            .await?;
        let after = json!({"id": t.id.to_string(), "name": t.name, "settings": t.settings.0});
        audit::record(
            &mut tx,
            ctx,
            "template.put",
            "SettingsTemplate",
            name,
            None,
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_settings_template(&self, ctx: &Context, name: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        if !tx
            .delete_settings_template(ctx.principal.account_id, name)
            .await?
        {
            return Err(ScimError::not_found(format!("no settings template '{name}'")).into());
        }
        audit::record(
            &mut tx,
            ctx,
            "template.delete",
            "SettingsTemplate",
            name,
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn phone_numbers(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let numbers = tx.phone_numbers(ctx.principal.account_id).await?;
        tx.commit().await?;
        let now = now_micros();
        Ok(numbers
            .iter()
            .map(|n| {
                let status = match (n.user_id, n.available_at) {
                    (Some(_), _) => "assigned",
                    (None, Some(t)) if t > now => "quarantined",
                    _ => "free",
                };
                json!({
                    "number": n.number,
                    "smsCapable": n.sms_capable,
                    "status": status,
                    "userId": n.user_id.map(|u| u.to_string()),
                    "availableAt": n.available_at.filter(|t| *t > now).map(render::timestamp),
                })
            })
            .collect())
    }

    /// Adds E.164 numbers to the inventory, all or none: a malformed number or one that belongs
    /// to another account refuses the whole list.
    pub async fn add_phone_numbers(&self, ctx: &Context, input: NumbersInput) -> Result<Value> {
        if input.numbers.is_empty() || input.numbers.len() > 10_000 {
            return Err(ScimError::invalid_value("send 1 to 10000 numbers").into());
        }
        let numbers = input
            .numbers
            .iter()
            .map(|n| Ok(E164Number::parse(n)?.into_string()))
            .collect::<Result<Vec<_>>>()?;
        let account_id = ctx.principal.account_id;
        let mut tx = self.store.begin_write().await?;
        for number in &numbers {
            if let Some(owner) = tx.phone_number_owner(number).await?
                && owner != account_id
            {
                return Err(ScimError::uniqueness(format!(
                    "{number} belongs to another account's inventory"
                ))
                .into());
            }
        }
        let added = tx
            .add_phone_numbers(account_id, &numbers, input.sms_capable)
            .await?;
        let present: Vec<&String> = numbers.iter().filter(|n| !added.contains(n)).collect();
        let after = json!({"added": added, "alreadyPresent": present});
        if !added.is_empty() {
            audit::record(
                &mut tx,
                ctx,
                "numbers.add",
                "PhoneNumber",
                "inventory",
                None,
                Some(after.clone()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_phone_number(&self, ctx: &Context, number: &str) -> Result<()> {
        let number = E164Number::parse(number)?.into_string();
        let account_id = ctx.principal.account_id;
        let mut tx = self.store.begin_write().await?;
        let row = tx.phone_number(account_id, &number).await?.ok_or_else(|| {
            ScimError::not_found(format!("{number} is not in this account's inventory"))
        })?;
        if row.user_id.is_some() || !tx.delete_phone_number(account_id, &number).await? {
            return Err(ScimError::conflict(format!(
                "{number} is assigned to a user; release it first"
            ))
            .into());
        }
        audit::record(
            &mut tx,
            ctx,
            "numbers.delete",
            "PhoneNumber",
            &number,
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn devices(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let devices = tx.devices(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(devices.iter().map(device_json).collect())
    }

    async fn device_user(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_id: Option<&str>,
    ) -> Result<Option<Uuid>> {
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let uuid = Uuid::parse_str(user_id).ok();
        let user = match uuid {
            Some(id) => tx.user(ctx.principal.account_id, id, false).await?,
            None => None,
        };
        user.map(|u| Some(u.id)).ok_or_else(|| {
            ScimError::invalid_value(format!("userId {user_id} is not a user of this account"))
                .into()
        })
    }

    pub async fn create_device(&self, ctx: &Context, input: DeviceInput) -> Result<Value> {
        let mac = MacAddress::parse(&input.mac_address)?.into_string();
        let mut tx = self.store.begin_write().await?;
        let user_id = self
            .device_user(&mut tx, ctx, input.user_id.as_deref())
            .await?;
        let device = Device {
            id: Uuid::now_v7(),
            account_id: ctx.principal.account_id,
            mac: mac.clone(),
            model: input.model,
            display: input.display,
            user_id,
            created_at: now_micros(),
        };
        tx.insert_device(&device).await.map_err(|e| {
            conflict(
                e,
                format!("a device with MAC {mac} already exists on the platform"),
            )
        })?;
        let after = device_json(&device);
        audit::record(
            &mut tx,
            ctx,
            "device.create",
            "Device",
            &device.id.to_string(),
            None,
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn patch_device(&self, ctx: &Context, id: &str, input: DevicePatch) -> Result<Value> {
        let uuid = super::parse_id(id, "device")?;
        let mut tx = self.store.begin_write().await?;
        let before = tx
            .device(ctx.principal.account_id, uuid)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("device {id} not found")))?;
        let mut device = before.clone();
        if let Some(model) = input.model {
            device.model = model;
        }
        if let Some(display) = input.display {
            device.display = display;
        }
        if let Some(user) = input.user_id {
            device.user_id = self.device_user(&mut tx, ctx, user.as_deref()).await?;
        }
        tx.update_device(&device).await?;
        let after = device_json(&device);
        audit::record(
            &mut tx,
            ctx,
            "device.update",
            "Device",
            id,
            Some(device_json(&before)),
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_device(&self, ctx: &Context, id: &str) -> Result<()> {
        let uuid = super::parse_id(id, "device")?;
        let mut tx = self.store.begin_write().await?;
        let before = tx
            .device(ctx.principal.account_id, uuid)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("device {id} not found")))?;
        tx.delete_device(ctx.principal.account_id, uuid).await?;
        audit::record(
            &mut tx,
            ctx,
            "device.delete",
            "Device",
            id,
            Some(device_json(&before)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The SCIM `Role` resources: the built-in account roles, the phone-system permissions and
    /// the account's custom roles.
    pub async fn scim_roles(&self, ctx: &Context) -> Result<Vec<Value>> {
        let custom = {
            let mut tx = self.store.begin_read().await?;
            let roles = tx.custom_roles(ctx.principal.account_id).await?;
            tx.commit().await?;
            roles
        };
        let builtin = [
            (
                "account:superAdmin",
                "Super admin",
                "account",
                "Every permission, including granting admin roles",
            ),
            (
                "account:admin",
                "Admin",
                "account",
                "Manages users and groups; cannot grant admin roles",
            ),
            (
                "account:member",
                "Member",
                "account",
                "A user without administrative rights (the default)",
            ),
            (
                "pbx:superAdministrator",
                "Phone-system super administrator",
                "pbx",
                "Every phone-system permission",
            ),
            (
                "pbx:configurePbx",
                "Configure the phone system",
                "pbx",
                "Configure the phone system",
            ),
            ("pbx:viewInvoices", "View invoices", "pbx", "View invoices"),
            ("pbx:payInvoices", "Pay invoices", "pbx", "Pay invoices"),
            ("pbx:viewReports", "View reports", "pbx", "View reports"),
        ];
        let mut out: Vec<Value> = builtin
            .iter()
            .map(|(value, display, kind, description)| {
                scim_role(&ctx.scim_base, value, display, kind, description, &[])
            })
            .collect();
        out.extend(custom.iter().map(|r| {
            scim_role(
                &ctx.scim_base,
                &format!("account:custom:{}", r.id),
                &r.name,
                "account",
                r.description.as_deref().unwrap_or("Custom role"),
                &r.permissions.0,
            )
        }));
        Ok(out)
    }

    /// The SCIM `Entitlement` resources: each product and each of its features, with seats.
    pub async fn scim_entitlements(&self, ctx: &Context) -> Result<Vec<Value>> {
        let products = self.products(ctx).await?;
        let mut out = Vec::new();
        for p in &products {
            out.push(json!({
                "schemas": [ENTITLEMENT_SCHEMA],
                "id": p.code,
                "value": p.code,
                "displayName": p.display.clone().unwrap_or_else(|| p.code.clone()),
                "type": "License",
                "totalAssignmentsPermitted": p.seats,
                "totalAssignmentsUsed": p.seats_used,
                "limitedAssignmentsPermitted": true,
                "features": p.features.0,
                "meta": {"resourceType": "Entitlement", "location": format!("{}/Entitlements/{}", ctx.scim_base, p.code)},
            }));
            for f in &p.features.0 {
                let value = format!("{}:{f}", p.code);
                out.push(json!({
                    "schemas": [ENTITLEMENT_SCHEMA],
                    "id": value,
                    "value": value,
                    "displayName": format!("{} — {f}", p.display.clone().unwrap_or_else(|| p.code.clone())),
                    "type": "Feature",
                    "limitedAssignmentsPermitted": false,
                    "meta": {"resourceType": "Entitlement", "location": format!("{}/Entitlements/{value}", ctx.scim_base)},
                }));
            }
        }
        Ok(out)
    }
}

pub const ROLE_SCHEMA: &str = "urn:switchboard:scim:schemas:core:1.0:Role";
pub const ENTITLEMENT_SCHEMA: &str = "urn:switchboard:scim:schemas:core:1.0:Entitlement";

fn scim_role(
    base: &str,
    value: &str,
    display: &str,
    kind: &str,
    description: &str,
    permissions: &[String],
) -> Value {
    let mut role = json!({
        "schemas": [ROLE_SCHEMA],
        "id": value,
        "value": value,
        "displayName": display,
        "type": kind,
        "supported": true,
        "description": description,
        "meta": {"resourceType": "Role", "location": format!("{base}/Roles/{value}")},
    });
    if !permissions.is_empty() {
        role["permissions"] = json!(permissions);
    }
    role
}

/// The settings of the built-in `system` template.
fn system_settings() -> Value {
    json!({
        "callWaiting": true,
        "callRecording": false,
        "voicemailGreeting": "default",
        "ringTimeoutSeconds": 20,
    })
}

impl Provisioner {
    /// The settings template that applies to a user: among the groups above the user (direct
    /// and nested) that carry one, the lowest `precedence` wins, ties going to the oldest group;
    /// without any, the template chosen at creation (`productSettingsTemplate`, default
    /// `system`).
    pub async fn user_settings(&self, ctx: &Context, id: &str) -> Result<Value> {
        let account_id = ctx.principal.account_id;
        let uuid = super::parse_id(id, "User")?;
        let mut tx = self.store.begin_read().await?;
        let user = tx
            .user(account_id, uuid, false)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("User {id} not found")))?;
        let mut best: Option<(i64, i64, Uuid, String)> = None;
        for membership in tx.groups_of_users(account_id, &[uuid]).await? {
            let Some(group) = tx.group(account_id, membership.group_id, false).await? else {
                continue;
            };
            let ext = group.doc.get(GROUP_EXTENSION);
            let Some(template) = ext
                .and_then(|e| e.get("productSettingsTemplate"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let precedence = ext
                .and_then(|e| e.get("precedence"))
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            let candidate = (precedence, group.created_at, group.id, template.to_string());
            if best
                .as_ref()
                .is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1))
            {
                best = Some(candidate);
            }
        }
        let (template, source) = match &best {
            Some((_, _, group_id, template)) => (template.clone(), group_id.to_string()),
            None => (
                user_doc::extension(&user.doc)
                    .and_then(|e| e.get("productSettingsTemplate"))
                    .and_then(Value::as_str)
                    .unwrap_or(SYSTEM_TEMPLATE)
                    .to_string(),
                "user".to_string(),
            ),
        };
        let settings = if template == SYSTEM_TEMPLATE {
            system_settings()
        } else {
            tx.settings_templates(account_id)
                .await?
                .into_iter()
                .find(|t| t.name == template)
                .map_or_else(system_settings, |t| t.settings.0)
        };
        let voicemail = tx.voicemail_box_created(account_id, uuid).await?;
        tx.commit().await?;
        Ok(json!({
            "userId": uuid.to_string(),
            "template": template,
            "source": source,
            "settings": settings,
            "extension": user.extension,
            "voicemailBox": voicemail.map(|created| json!({"created": render::timestamp(created)})),
        }))
    }
}
