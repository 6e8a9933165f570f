//! Turns stored records into SCIM representations: `id`, the document, computed read-only
//! attributes (`groups`, `members`) and `meta` (RFC 7643 §3.1).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::user_doc::USER_EXTENSION;
use crate::store::{Device, GroupRecord, LicenceRow, MemberRef, UserGroupRef, UserRecord};

/// Weak entity tag of a version (RFC 7232 §2.3): the version counts writes, not bytes.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

pub fn timestamp(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn meta(
    resource_type: &str,
    location: &str,
    created: i64,
    last_modified: i64,
    version: i64,
) -> Value {
    json!({
        "resourceType": resource_type,
        "created": timestamp(created),
        "lastModified": timestamp(last_modified),
        "location": location,
        "version": etag(version),
    })
}

fn with_id(id: String, doc: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(doc.len() + 3);
    if let Some(schemas) = doc.get("schemas") {
        out.insert("schemas".into(), schemas.clone());
    }
    out.insert("id".into(), Value::String(id));
    for (k, v) in doc {
        if k != "schemas" {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A user; `groups` is `None` when the response does not carry it.
pub fn user(
    scim_base: &str,
    record: &UserRecord,
    groups: Option<&[UserGroupRef]>,
) -> Map<String, Value> {
    let id = record.id.to_string();
    let location = format!("{scim_base}/Users/{id}");
    let mut out = with_id(id, &record.doc);
    if let Some(groups) = groups
        && !groups.is_empty()
    {
        let items: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.group_id.to_string(),
                    "$ref": format!("{scim_base}/Groups/{}", g.group_id),
                    "display": g.display_name,
                    "type": if g.direct == 1 { "direct" } else { "indirect" },
                })
            })
            .collect();
        out.insert("groups".into(), Value::Array(items));
    }
    out.insert(
        "meta".into(),
        meta(
            "User",
            &location,
            record.created_at,
            record.last_modified,
            record.version,
        ),
    );
    out
}

/// A group; `members` is `None` when the response does not carry them.
pub fn group(
    scim_base: &str,
    record: &GroupRecord,
    members: Option<&[MemberRef]>,
) -> Map<String, Value> {
    let id = record.id.to_string();
    let location = format!("{scim_base}/Groups/{id}");
    let mut out = with_id(id, &record.doc);
    if let Some(members) = members
        && !members.is_empty()
    {
        let items: Vec<Value> = members.iter().map(|m| member(scim_base, m)).collect();
        out.insert("members".into(), Value::Array(items));
    }
    out.insert(
        "meta".into(),
        meta(
            "Group",
            &location,
            record.created_at,
            record.last_modified,
            record.version,
        ),
    );
    out
}

pub fn member(scim_base: &str, m: &MemberRef) -> Value {
    let endpoint = if m.member_type == "Group" {
        "Groups"
    } else {
        "Users"
    };
    // No `display`: clients compare members with what they sent, and the user's name is one
    // GET away.
    json!({
        "value": m.member_id.to_string(),
        "$ref": format!("{scim_base}/{endpoint}/{}", m.member_id),
        "type": m.member_type,
    })
}

/// Adds the user's `licenseStatus` and `devices` (read-only, from their tables) to a rendered
/// user.
pub fn add_user_extras(
    rendered: &mut Map<String, Value>,
    scim_base: &str,
    licences: &[LicenceRow],
    devices: &[Device],
) {
    let status: Vec<Value> = licences
        .iter()
        .flat_map(|l| {
            l.sources
                .0
                .iter()
                .map(move |source| json!({"value": l.code, "state": l.state, "source": source}))
        })
        .collect();
    let admin_base = scim_base.trim_end_matches("/scim/v2");
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            let mut item = json!({
                "value": d.id.to_string(),
                "$ref": format!("{admin_base}/admin/v1/devices/{}", d.id),
                "macAddress": d.mac,
            });
            if let Some(model) = &d.model {
                item["model"] = json!(model);
            }
            if let Some(display) = &d.display {
                item["display"] = json!(display);
            }
            item
        })
        .collect();
    if status.is_empty() && devices.is_empty() {
        return;
    }
    let ext = rendered
        .entry(USER_EXTENSION.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(ext) = ext {
        if !status.is_empty() {
            ext.insert("licenseStatus".into(), Value::Array(status));
        }
        if !devices.is_empty() {
            ext.insert("devices".into(), Value::Array(devices));
        }
    }
}
