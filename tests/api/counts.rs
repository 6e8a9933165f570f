//! Counts kept by triggers (migration 0004): an unfiltered list's `totalResults` and a group's
//! `memberCount` / `effectiveMemberCount` stay exactly right through creates (concurrent ones
//! too), soft deletes, restores, member PATCHes and PUTs, nesting and group deletes — each one
//! compared with the truth read from the API (paging through the list, a filtered count, the
//! `members` of a GET, a walk of the nesting). And the extension allocator (a per-account cursor
//! over the unique index): distinct numbers under concurrency, explicit numbers ahead of the
//! cursor skipped, a full range refused whole, freed numbers reused after the wrap, and a new
//! range in force at once.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{GROUP_SCHEMA, Reply, TestApp, USER_SCHEMA, patch_body, user_body};

const EXT: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:User";
const EXT_GROUP: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:Group";

crate::on_both_backends!(
    // Counts
    user_total_follows_creates_deletes_and_restores,
    concurrent_user_creates_are_all_counted,
    filtered_totals_are_counted_by_the_filter,
    group_total_follows_creates_and_deletes,
    member_counts_follow_patches_and_puts,
    a_deleted_user_leaves_every_group_count,
    nested_member_counts_count_distinct_users,
    deleting_a_member_group_updates_its_parents,
    // Extensions
    concurrent_creates_get_distinct_extensions_in_range,
    concurrent_creates_fill_a_range_exactly,
    explicit_numbers_ahead_of_the_cursor_are_skipped,
    a_full_range_is_refused_and_creates_nothing,
    a_freed_number_is_reused_after_the_wrap,
    a_new_range_takes_effect_at_once,
    explicit_and_automatic_creates_race_without_duplicates,
    a_restore_whose_extension_was_taken_gets_a_free_one,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An admin API call (`/admin/v1{path}`) with the bootstrap (super-admin) token.
async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Reply {
    app.admin_as(&app.token, method, path, body).await
}

#[track_caller]
fn assert_status(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
}

#[track_caller]
fn created_id(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().expect("id").to_string()
}

#[track_caller]
fn total_of(reply: &Reply) -> i64 {
    assert_status(reply, 200);
    reply.body["totalResults"]
        .as_i64()
        .unwrap_or_else(|| panic!("totalResults: {}", reply.body))
}

/// The `totalResults` of an unfiltered list (`/Users` or `/Groups`): the count the triggers keep.
async fn counted(app: &TestApp, endpoint: &str) -> i64 {
    let with_page = total_of(&app.get(endpoint).await);
    let without_page = total_of(&app.get(&format!("{endpoint}?count=0")).await);
    assert_eq!(
        with_page, without_page,
        "{endpoint}: the total does not depend on the page size"
    );
    with_page
}

/// Every id of the list, paged through by `startIndex` until a short page (the rows, not the
/// total, decide when it ends).
async fn listed_ids(app: &TestApp, endpoint: &str) -> Vec<String> {
    const PAGE: usize = 7;
    let mut ids = Vec::new();
    let mut start = 1;
    loop {
        let reply = app
            .get(&format!(
                "{endpoint}?startIndex={start}&count={PAGE}&attributes=id"
            ))
            .await;
        assert_status(&reply, 200);
        let page = reply.body["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ids.extend(
            page.iter()
                .map(|r| r["id"].as_str().expect("id").to_string()),
        );
        if page.len() < PAGE {
            break;
        }
        start += PAGE;
        assert!(start < 10_000, "paging does not end");
    }
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{endpoint}: a row paged twice");
    ids
}

/// The total of a filter that matches every resource: a scan, not the kept count.
async fn scanned(app: &TestApp, endpoint: &str) -> i64 {
    let everything = if endpoint == "/Users" {
        "userName pr"
    } else {
        "displayName pr"
    };
    total_of(&app.list(endpoint, everything).await)
}

/// The unfiltered total of `endpoint`, checked against the listed rows and a scanning filter.
async fn checked_total(app: &TestApp, endpoint: &str) -> i64 {
    let kept = counted(app, endpoint).await;
    let listed = listed_ids(app, endpoint).await.len() as i64;
    let scan = scanned(app, endpoint).await;
    assert_eq!(
        kept, listed,
        "{endpoint}: totalResults {kept} but {listed} rows are listed"
    );
    assert_eq!(
        kept, scan,
        "{endpoint}: totalResults {kept} but a filter matching all counts {scan}"
    );
    kept
}

/// A group's counts and its direct members.
struct Counts {
    member_count: i64,
    effective: i64,
    members: Vec<Value>,
}

async fn group_counts(app: &TestApp, group: &str) -> Counts {
    let reply = app.get(&format!("/Groups/{group}")).await;
    assert_status(&reply, 200);
    let ext = &reply.body[EXT_GROUP];
    Counts {
        member_count: ext["memberCount"]
            .as_i64()
            .unwrap_or_else(|| panic!("memberCount: {}", reply.body)),
        effective: ext["effectiveMemberCount"]
            .as_i64()
            .unwrap_or_else(|| panic!("effectiveMemberCount: {}", reply.body)),
        members: reply.body["members"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    }
}

/// The distinct users at or below `group`, walking `members` through GETs.
async fn users_below(app: &TestApp, group: &str) -> BTreeSet<String> {
    let mut users = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut todo = vec![group.to_string()];
    while let Some(g) = todo.pop() {
        if !seen.insert(g.clone()) {
            continue;
        }
        for m in group_counts(app, &g).await.members {
            let id = m["value"].as_str().expect("member value").to_string();
            match m["type"].as_str() {
                Some("Group") => todo.push(id),
                Some("User") => {
                    users.insert(id);
                }
                other => panic!("member {id} of {g} has type {other:?}"),
            }
        }
    }
    users
}

/// Checks a group's counts against its members and the nesting below it; returns
/// `(memberCount, effectiveMemberCount)`.
async fn checked_counts(app: &TestApp, group: &str) -> (i64, i64) {
    let counts = group_counts(app, group).await;
    assert_eq!(
        counts.member_count,
        counts.members.len() as i64,
        "group {group}: memberCount against its members {:?}",
        counts.members
    );
    let below = users_below(app, group).await;
    assert_eq!(
        counts.effective,
        below.len() as i64,
        "group {group}: effectiveMemberCount against the users below it {below:?}"
    );
    (counts.member_count, counts.effective)
}

fn members_value(ids: &[&str]) -> Value {
    ids.iter().map(|id| json!({"value": id})).collect()
}

async fn patch_group(app: &TestApp, group: &str, operations: Value) {
    let reply = app
        .patch(&format!("/Groups/{group}"), &patch_body(operations))
        .await;
    assert!(
        reply.status == StatusCode::OK || reply.status == StatusCode::NO_CONTENT,
        "PATCH of group {group}: {} {}",
        reply.status,
        reply.body
    );
}

async fn add_members(app: &TestApp, group: &str, ids: &[&str]) {
    patch_group(
        app,
        group,
        json!([{"op": "add", "path": "members", "value": members_value(ids)}]),
    )
    .await;
}

async fn remove_member(app: &TestApp, group: &str, id: &str) {
    patch_group(
        app,
        group,
        json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
    )
    .await;
}

async fn delete(app: &TestApp, path: &str) {
    assert_status(&app.delete(path).await, 204);
}

async fn many_users(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(app.create_user(&format!("{prefix}{i}@example.com")).await);
    }
    ids
}

/// Creates a user from each body at once, each in a task of its own; returns the replies in `names` order.
async fn create_concurrently(app: &TestApp, bodies: Vec<Value>) -> Vec<Reply> {
    let app = Arc::new(app.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let app = app.clone();
        tasks.spawn(async move { (i, app.post("/Users", &body).await) });
    }
    let mut replies: Vec<(usize, Reply)> = tasks.join_all().await;
    replies.sort_by_key(|(i, _)| *i);
    replies.into_iter().map(|(_, r)| r).collect()
}

fn extension_of(user: &Value) -> i64 {
    user[EXT]["extensionNumber"]
        .as_str()
        .unwrap_or_else(|| panic!("extensionNumber: {user}"))
        .parse()
        .unwrap_or_else(|_| panic!("extensionNumber is digits: {user}"))
}

fn with_extension(user_name: &str, extension: &str) -> Value {
    let mut body = user_body(user_name);
    body["schemas"] = json!([USER_SCHEMA, EXT]);
    body[EXT] = json!({"extensionNumber": extension});
    body
}

/// Creates a user with an automatic extension; returns its id and extension.
async fn auto_user(app: &TestApp, user_name: &str) -> (String, i64) {
    let reply = app.post("/Users", &user_body(user_name)).await;
    let id = created_id(&reply);
    (id, extension_of(&reply.body))
}

async fn explicit_user(app: &TestApp, user_name: &str, extension: &str) -> String {
    let reply = app
        .post("/Users", &with_extension(user_name, extension))
        .await;
    let id = created_id(&reply);
    assert_eq!(
        reply.body[EXT]["extensionNumber"], extension,
        "{}",
        reply.body
    );
    id
}

/// Sets the extension range: the current policy read back, its range changed.
async fn set_range(app: &TestApp, first: i64, last: i64) {
    let current = admin(app, Method::GET, "/account/policy", None).await;
    assert_status(&current, 200);
    let mut policy = current.body.clone();
    assert!(policy["quarantineDays"].is_i64(), "{policy}");
    policy["extensionFirst"] = json!(first);
    policy["extensionLast"] = json!(last);
    assert_status(
        &admin(app, Method::PUT, "/account/policy", Some(&policy)).await,
        200,
    );
    let read = admin(app, Method::GET, "/account/policy", None).await;
    assert_eq!(read.body, policy, "the policy reads back as written");
}

/// The extensions of every user of the account, read through the API.
async fn extensions_in_use(app: &TestApp) -> Vec<i64> {
    let reply = app.get("/Users?count=200").await;
    assert_status(&reply, 200);
    let mut numbers: Vec<i64> = reply.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(extension_of)
        .collect();
    numbers.sort();
    numbers
}

async fn users_named(app: &TestApp, user_name: &str) -> i64 {
    total_of(
        &app.list("/Users", &format!("userName eq \"{user_name}\""))
            .await,
    )
}

// ---------------------------------------------------------------------------------------------
// Counts
// ---------------------------------------------------------------------------------------------

async fn user_total_follows_creates_deletes_and_restores(app: TestApp) {
    let start = checked_total(&app, "/Users").await;
    assert_eq!(start, 0, "a fresh account has no users");

    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.create_user(&format!("u{i}@example.com")).await);
        assert_eq!(checked_total(&app, "/Users").await, i + 1);
    }

    // Refused creates count nothing.
    app.post("/Users", &user_body("u0@example.com"))
        .await
        .assert_error(409, Some("uniqueness"));
    assert_eq!(checked_total(&app, "/Users").await, 3);

    // A soft delete leaves the count; deleting it again, or someone unknown, changes nothing.
    delete(&app, &format!("/Users/{}", ids[1])).await;
    assert_eq!(checked_total(&app, "/Users").await, 2);
    app.delete(&format!("/Users/{}", ids[1]))
        .await
        .assert_error(404, None);
    app.delete("/Users/00000000-0000-0000-0000-000000000000")
        .await
        .assert_error(404, None);
    assert_eq!(checked_total(&app, "/Users").await, 2);

    // A restore counts the user again, once.
    let restored = admin(
        &app,
        Method::POST,
        &format!("/deleted-users/{}/restore", ids[1]),
        None,
    )
    .await;
    assert_status(&restored, 200);
    assert_eq!(restored.body["id"], ids[1].as_str(), "{}", restored.body);
    assert_eq!(checked_total(&app, "/Users").await, 3);
    assert!(
        listed_ids(&app, "/Users").await.contains(&ids[1]),
        "the restored user is listed"
    );
    let again = admin(
        &app,
        Method::POST,
        &format!("/deleted-users/{}/restore", ids[1]),
        None,
    )
    .await;
    assert_eq!(again.status.as_u16(), 404, "{}", again.body);
    assert_eq!(checked_total(&app, "/Users").await, 3);

    // Delete everyone, then restore everyone.
    for id in &ids {
        delete(&app, &format!("/Users/{id}")).await;
    }
    assert_eq!(checked_total(&app, "/Users").await, 0);
    for (n, id) in ids.iter().enumerate() {
        let reply = admin(
            &app,
            Method::POST,
            &format!("/deleted-users/{id}/restore"),
            None,
        )
        .await;
        assert_status(&reply, 200);
        assert_eq!(checked_total(&app, "/Users").await, n as i64 + 1);
    }
}

async fn concurrent_user_creates_are_all_counted(app: TestApp) {
    many_users(&app, "before", 5).await;
    let before = checked_total(&app, "/Users").await;
    assert_eq!(before, 5);

    let bodies = (0..32)
        .map(|i| user_body(&format!("c{i}@example.com")))
        .collect();
    let replies = create_concurrently(&app, bodies).await;
    let ids: HashSet<String> = replies.iter().map(created_id).collect();
    assert_eq!(ids.len(), 32);

    assert_eq!(
        checked_total(&app, "/Users").await,
        before + 32,
        "32 concurrent creates add exactly 32"
    );
    let listed: HashSet<String> = listed_ids(&app, "/Users").await.into_iter().collect();
    assert!(ids.is_subset(&listed), "every created user is listed");

    // Concurrent deletes take exactly as many away.
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids.into_iter().take(16) {
        let app = app.clone();
        tasks.spawn(async move { app.delete(&format!("/Users/{id}")).await.status });
    }
    for status in tasks.join_all().await {
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(checked_total(&app, "/Users").await, before + 16);
}

async fn filtered_totals_are_counted_by_the_filter(app: TestApp) {
    let bodies = (0..24)
        .map(|i| {
            let prefix = if i % 3 == 0 { "x" } else { "y" };
            user_body(&format!("{prefix}{i}@example.com"))
        })
        .collect();
    let replies = create_concurrently(&app, bodies).await;
    let xs: Vec<String> = replies
        .iter()
        .filter(|r| r.body["userName"].as_str().unwrap().starts_with('x'))
        .map(created_id)
        .collect();
    assert_eq!(xs.len(), 8);

    let filtered = |app: &TestApp| {
        let app = app.clone();
        async move {
            let reply = app.list("/Users", "userName sw \"x\"").await;
            let total = total_of(&reply);
            let rows = reply.body["Resources"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(total, rows.len() as i64, "{}", reply.body);
            assert!(
                rows.iter()
                    .all(|r| r["userName"].as_str().unwrap().starts_with('x')),
                "{}",
                reply.body
            );
            total
        }
    };
    assert_eq!(filtered(&app).await, 8);
    assert_eq!(checked_total(&app, "/Users").await, 24);

    delete(&app, &format!("/Users/{}", xs[0])).await;
    assert_eq!(filtered(&app).await, 7);
    assert_eq!(checked_total(&app, "/Users").await, 23);

    // A filter matching nothing totals 0 while the account is not empty.
    let none = app.list("/Users", "userName sw \"zzz\"").await;
    assert_eq!(total_of(&none), 0);
    // A filter that pages: the total is of the matches, not of the page.
    let url = reqwest::Url::parse_with_params(
        &app.url("/Users"),
        &[("filter", "userName sw \"y\""), ("count", "5")],
    )
    .unwrap();
    let reply = app
        .client
        .get(url)
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["totalResults"], 16, "{body}");
    assert_eq!(body["Resources"].as_array().unwrap().len(), 5, "{body}");
}

async fn group_total_follows_creates_and_deletes(app: TestApp) {
    assert_eq!(checked_total(&app, "/Groups").await, 0);
    let ana = app.create_user("ana@example.com").await;
    let mut groups = Vec::new();
    for i in 0..4 {
        groups.push(app.create_group(&format!("G{i}"), &[&ana]).await);
        assert_eq!(checked_total(&app, "/Groups").await, i + 1);
    }
    // A refused create counts nothing.
    let duplicate = app
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "G0"}),
        )
        .await;
    assert_eq!(duplicate.status.as_u16(), 409, "{}", duplicate.body);
    assert_eq!(checked_total(&app, "/Groups").await, 4);

    // Concurrent group creates.
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let app = app.clone();
        let ana = ana.clone();
        tasks.spawn(async move {
            let reply = app
                .post(
                    "/Groups",
                    &json!({"schemas": [GROUP_SCHEMA], "displayName": format!("C{i}"), "members": [{"value": ana}]}),
                )
                .await;
            created_id(&reply)
        });
    }
    let concurrent = tasks.join_all().await;
    assert_eq!(checked_total(&app, "/Groups").await, 20);
    // Users are not groups.
    assert_eq!(checked_total(&app, "/Users").await, 1);

    for (n, id) in groups.iter().chain(concurrent.iter()).enumerate() {
        delete(&app, &format!("/Groups/{id}")).await;
        assert_eq!(counted(&app, "/Groups").await, 19 - n as i64);
    }
    assert_eq!(checked_total(&app, "/Groups").await, 0);
    app.delete(&format!("/Groups/{}", groups[0]))
        .await
        .assert_error(404, None);
    assert_eq!(checked_total(&app, "/Groups").await, 0);
    assert_eq!(checked_total(&app, "/Users").await, 1);
}

async fn member_counts_follow_patches_and_puts(app: TestApp) {
    let u = many_users(&app, "m", 6).await;
    let u: Vec<&str> = u.iter().map(String::as_str).collect();
    let group = app.create_group("Team", &[]).await;
    assert_eq!(checked_counts(&app, &group).await, (0, 0));

    add_members(&app, &group, &[u[0], u[1], u[2]]).await;
    assert_eq!(checked_counts(&app, &group).await, (3, 3));

    // An add naming a member already there counts only the new one.
    add_members(&app, &group, &[u[2], u[3]]).await;
    assert_eq!(checked_counts(&app, &group).await, (4, 4));
    add_members(&app, &group, &[u[0]]).await;
    assert_eq!(checked_counts(&app, &group).await, (4, 4));

    remove_member(&app, &group, u[1]).await;
    assert_eq!(checked_counts(&app, &group).await, (3, 3));

    // Removing someone who is not a member removes nothing, whatever the answer.
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_body(
                json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", u[5])}]),
            ),
        )
        .await;
    assert!(reply.status.is_success() || reply.status == StatusCode::BAD_REQUEST);
    assert_eq!(checked_counts(&app, &group).await, (3, 3));

    // A replace of the whole member list.
    patch_group(
        &app,
        &group,
        json!([{"op": "replace", "path": "members", "value": members_value(&[u[4], u[5]])}]),
    )
    .await;
    assert_eq!(checked_counts(&app, &group).await, (2, 2));
    let members: BTreeSet<String> = group_counts(&app, &group)
        .await
        .members
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        members,
        [u[4], u[5]].iter().map(|s| s.to_string()).collect()
    );

    // A replace that keeps some members and adds others.
    patch_group(
        &app,
        &group,
        json!([{"op": "replace", "path": "members", "value": members_value(&[u[5], u[0], u[1]])}]),
    )
    .await;
    assert_eq!(checked_counts(&app, &group).await, (3, 3));

    // Several operations in one PATCH.
    patch_group(
        &app,
        &group,
        json!([
            {"op": "add", "path": "members", "value": members_value(&[u[2], u[3]])},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", u[0])},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", u[2])},
        ]),
    )
    .await;
    assert_eq!(checked_counts(&app, &group).await, (3, 3));

    // A full PUT with a different member list; its answer carries the new counts.
    let put = app
        .put(
            &format!("/Groups/{group}"),
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Team", "members": members_value(&[u[0], u[1], u[2], u[3], u[4]])}),
        )
        .await;
    assert_status(&put, 200);
    assert_eq!(put.body[EXT_GROUP]["memberCount"], 5, "{}", put.body);
    assert_eq!(
        put.body[EXT_GROUP]["effectiveMemberCount"], 5,
        "{}",
        put.body
    );
    assert_eq!(checked_counts(&app, &group).await, (5, 5));

    // A PUT with fewer members, then one without `members`.
    let put = app
        .put(
            &format!("/Groups/{group}"),
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Team", "members": members_value(&[u[3]])}),
        )
        .await;
    assert_status(&put, 200);
    assert_eq!(put.body[EXT_GROUP]["memberCount"], 1, "{}", put.body);
    assert_eq!(checked_counts(&app, &group).await, (1, 1));
    let put = app
        .put(
            &format!("/Groups/{group}"),
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Team"}),
        )
        .await;
    assert_status(&put, 200);
    let (count, _) = checked_counts(&app, &group).await;
    assert_eq!(put.body[EXT_GROUP]["memberCount"], count, "{}", put.body);

    // Remove everyone at once.
    add_members(&app, &group, &[u[0], u[1]]).await;
    patch_group(&app, &group, json!([{"op": "remove", "path": "members"}])).await;
    assert_eq!(checked_counts(&app, &group).await, (0, 0));

    // A created group counts its initial members; the list shows the same counts as a GET.
    let other = app.create_group("Other", &[u[0], u[1], u[2]]).await;
    assert_eq!(checked_counts(&app, &other).await, (3, 3));
    let list = app.get("/Groups").await;
    assert_status(&list, 200);
    for g in list.body["Resources"].as_array().unwrap() {
        let id = g["id"].as_str().unwrap();
        let single = group_counts(&app, id).await;
        assert_eq!(g[EXT_GROUP]["memberCount"], single.member_count, "{g}");
        assert_eq!(
            g[EXT_GROUP]["effectiveMemberCount"], single.effective,
            "{g}"
        );
    }
}

async fn a_deleted_user_leaves_every_group_count(app: TestApp) {
    let u = many_users(&app, "d", 4).await;
    let ana = u[0].as_str();
    let a = app.create_group("A", &[ana, &u[1]]).await;
    let b = app.create_group("B", &[ana, &u[2], &u[3]]).await;
    let c = app.create_group("C", &[&u[1]]).await;
    // A parent reaching Ana through both A and B.
    let parent = app
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Parent", "members": [{"value": a, "type": "Group"}, {"value": b, "type": "Group"}]}),
        )
        .await;
    let parent = created_id(&parent);
    assert_eq!(checked_counts(&app, &a).await, (2, 2));
    assert_eq!(checked_counts(&app, &b).await, (3, 3));
    assert_eq!(checked_counts(&app, &c).await, (1, 1));
    assert_eq!(checked_counts(&app, &parent).await, (2, 4));

    delete(&app, &format!("/Users/{ana}")).await;
    assert_eq!(checked_total(&app, "/Users").await, 3);
    assert_eq!(checked_counts(&app, &a).await, (1, 1));
    assert_eq!(checked_counts(&app, &b).await, (2, 2));
    assert_eq!(checked_counts(&app, &c).await, (1, 1), "not Ana's group");
    assert_eq!(checked_counts(&app, &parent).await, (2, 3));

    // Restored: counted among the users again; the groups agree with their members.
    let restored = admin(
        &app,
        Method::POST,
        &format!("/deleted-users/{ana}/restore"),
        None,
    )
    .await;
    assert_status(&restored, 200);
    assert_eq!(checked_total(&app, "/Users").await, 4);
    for g in [&a, &b, &c, &parent] {
        checked_counts(&app, g).await;
    }
    // And a restored user can join again, counted once.
    add_members(&app, &a, &[ana]).await;
    assert_eq!(checked_counts(&app, &a).await, (2, 2));
    assert_eq!(checked_counts(&app, &parent).await.0, 2);
    checked_counts(&app, &parent).await;
}

async fn nested_member_counts_count_distinct_users(app: TestApp) {
    let u = many_users(&app, "n", 4).await;
    let (a, b, c, d) = (u[0].as_str(), u[1].as_str(), u[2].as_str(), u[3].as_str());
    let left = app.create_group("Left", &[a, b]).await;
    let right = app.create_group("Right", &[b, c]).await;
    let parent = app.create_group("Parent", &[]).await;
    add_members(&app, &parent, &[&left, &right, d]).await;
    // Three direct members (two of them groups); four users below, Bob once though he is
    // reachable through both.
    assert_eq!(checked_counts(&app, &parent).await, (3, 4));
    let group_members = group_counts(&app, &parent)
        .await
        .members
        .iter()
        .filter(|m| m["type"] == "Group")
        .count();
    assert_eq!(group_members, 2);

    let top = app.create_group("Top", &[&parent]).await;
    assert_eq!(checked_counts(&app, &top).await, (1, 4));

    // Ana directly in the parent too: one more direct member, no more effective ones.
    add_members(&app, &parent, &[a]).await;
    assert_eq!(checked_counts(&app, &parent).await, (4, 4));
    assert_eq!(checked_counts(&app, &top).await, (1, 4));

    // A user added below shows in every ancestor's effective count.
    let eve = app.create_user("eve@example.com").await;
    add_members(&app, &right, &[&eve]).await;
    assert_eq!(checked_counts(&app, &right).await, (3, 3));
    assert_eq!(checked_counts(&app, &parent).await, (4, 5));
    assert_eq!(checked_counts(&app, &top).await, (1, 5));

    // Removing a group member by PATCH.
    remove_member(&app, &parent, &right).await;
    assert_eq!(checked_counts(&app, &parent).await, (3, 3), "left: a, b; d");
    assert_eq!(checked_counts(&app, &top).await, (1, 3));
    assert_eq!(
        checked_counts(&app, &right).await,
        (3, 3),
        "right itself unchanged"
    );

    // Without group members left, the effective count is the user members.
    remove_member(&app, &parent, &left).await;
    assert_eq!(checked_counts(&app, &parent).await, (2, 2));
    assert_eq!(checked_counts(&app, &top).await, (1, 2));

    // A replace with groups and users mixed.
    patch_group(
        &app,
        &parent,
        json!([{"op": "replace", "path": "members", "value": [{"value": left, "type": "Group"}, {"value": right, "type": "Group"}, {"value": c}]}]),
    )
    .await;
    // a, b, c, eve: c is both direct and below right.
    assert_eq!(checked_counts(&app, &parent).await, (3, 4));
    assert_eq!(checked_counts(&app, &top).await, (1, 4));

    // A PUT of the parent with only users.
    let put = app
        .put(
            &format!("/Groups/{parent}"),
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Parent", "members": members_value(&[d])}),
        )
        .await;
    assert_status(&put, 200);
    assert_eq!(put.body[EXT_GROUP]["memberCount"], 1, "{}", put.body);
    assert_eq!(
        put.body[EXT_GROUP]["effectiveMemberCount"], 1,
        "{}",
        put.body
    );
    assert_eq!(checked_counts(&app, &parent).await, (1, 1));
    assert_eq!(checked_counts(&app, &top).await, (1, 1));
}

async fn deleting_a_member_group_updates_its_parents(app: TestApp) {
    let u = many_users(&app, "g", 4).await;
    let (a, b, c, d) = (u[0].as_str(), u[1].as_str(), u[2].as_str(), u[3].as_str());
    let shared = app.create_group("Shared", &[a, b]).await;
    let other = app.create_group("Other", &[c]).await;
    let first = app.create_group("First", &[&shared, &other, d]).await;
    let second = app.create_group("Second", &[&shared, b]).await;
    let top = app.create_group("Top", &[&first, &second]).await;
    assert_eq!(checked_total(&app, "/Groups").await, 5);
    assert_eq!(checked_counts(&app, &first).await, (3, 4));
    assert_eq!(checked_counts(&app, &second).await, (2, 2));
    assert_eq!(checked_counts(&app, &top).await, (2, 4));

    // Shared goes: both its parents lose a member.
    delete(&app, &format!("/Groups/{shared}")).await;
    assert_eq!(checked_total(&app, "/Groups").await, 4);
    assert_eq!(checked_counts(&app, &first).await, (2, 2), "other and d");
    assert_eq!(checked_counts(&app, &second).await, (1, 1), "b");
    assert_eq!(checked_counts(&app, &top).await, (2, 3), "c, d and b");
    app.get(&format!("/Groups/{shared}"))
        .await
        .assert_error(404, None);

    // A group created again under the same name starts from nothing.
    let again = app.create_group("Shared", &[]).await;
    assert_eq!(checked_counts(&app, &again).await, (0, 0));
    assert_eq!(checked_total(&app, "/Groups").await, 5);

    // Deleting the parent leaves its members' counts alone.
    delete(&app, &format!("/Groups/{top}")).await;
    assert_eq!(checked_counts(&app, &first).await, (2, 2));
    assert_eq!(checked_counts(&app, &second).await, (1, 1));
    // A user deleted below a member group.
    delete(&app, &format!("/Users/{c}")).await;
    assert_eq!(checked_counts(&app, &other).await, (0, 0));
    assert_eq!(
        checked_counts(&app, &first).await,
        (2, 1),
        "other (empty) and d"
    );
    // The leaf goes too.
    delete(&app, &format!("/Groups/{other}")).await;
    assert_eq!(checked_counts(&app, &first).await, (1, 1));
    assert_eq!(checked_total(&app, "/Groups").await, 3);
    assert_eq!(checked_total(&app, "/Users").await, 3);
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

async fn concurrent_creates_get_distinct_extensions_in_range(app: TestApp) {
    let policy = admin(&app, Method::GET, "/account/policy", None).await;
    assert_status(&policy, 200);
    let first = policy.body["extensionFirst"]
        .as_i64()
        .expect("extensionFirst");
    let last = policy.body["extensionLast"]
        .as_i64()
        .expect("extensionLast");
    // Some numbers taken ahead of time, explicitly and automatically.
    explicit_user(&app, "explicit@example.com", &(first + 3).to_string()).await;
    auto_user(&app, "auto@example.com").await;

    let bodies = (0..48)
        .map(|i| user_body(&format!("e{i}@example.com")))
        .collect();
    let replies = create_concurrently(&app, bodies).await;
    let mut numbers = BTreeSet::new();
    for reply in &replies {
        created_id(reply);
        let number = extension_of(&reply.body);
        assert!(
            (first..=last).contains(&number),
            "extension {number} outside {first}–{last}"
        );
        assert!(numbers.insert(number), "extension {number} given twice");
    }
    assert_eq!(numbers.len(), 48);
    assert!(
        !numbers.contains(&(first + 3)),
        "the explicit number is skipped"
    );

    // What the users read back says the same: 50 users, 50 distinct numbers.
    let in_use = extensions_in_use(&app).await;
    assert_eq!(in_use.len(), 50);
    let distinct: BTreeSet<i64> = in_use.iter().copied().collect();
    assert_eq!(distinct.len(), 50, "{in_use:?}");
    for reply in &replies {
        let id = reply.body["id"].as_str().unwrap();
        let read = app.get(&format!("/Users/{id}")).await;
        assert_eq!(extension_of(&read.body), extension_of(&reply.body));
    }
    assert_eq!(checked_total(&app, "/Users").await, 50);
}

async fn concurrent_creates_fill_a_range_exactly(app: TestApp) {
    set_range(&app, 300, 347).await;
    let bodies = (0..48)
        .map(|i| user_body(&format!("f{i}@example.com")))
        .collect();
    let replies = create_concurrently(&app, bodies).await;
    let numbers: BTreeSet<i64> = replies
        .iter()
        .map(|r| {
            created_id(r);
            extension_of(&r.body)
        })
        .collect();
    assert_eq!(
        numbers,
        (300..=347).collect::<BTreeSet<i64>>(),
        "48 creates in a range of 48 take every number once"
    );
    let reply = app
        .post("/Users", &user_body("one-too-many@example.com"))
        .await;
    reply.assert_error(409, None);
    assert_eq!(checked_total(&app, "/Users").await, 48);
}

async fn explicit_numbers_ahead_of_the_cursor_are_skipped(app: TestApp) {
    set_range(&app, 200, 209).await;
    assert_eq!(auto_user(&app, "a0@example.com").await.1, 200);
    // Taken explicitly just ahead of where automatic allocation stands.
    explicit_user(&app, "x202@example.com", "202").await;
    assert_eq!(auto_user(&app, "a1@example.com").await.1, 201);
    assert_eq!(
        auto_user(&app, "a2@example.com").await.1,
        203,
        "202 was taken explicitly: skipped"
    );
    // Twice in a row, further ahead.
    explicit_user(&app, "x205@example.com", "205").await;
    explicit_user(&app, "x206@example.com", "206").await;
    assert_eq!(auto_user(&app, "a3@example.com").await.1, 204);
    assert_eq!(auto_user(&app, "a4@example.com").await.1, 207);
    // The last number of the range, taken explicitly ahead of the cursor.
    explicit_user(&app, "x209@example.com", "209").await;
    assert_eq!(auto_user(&app, "a5@example.com").await.1, 208);

    let in_use = extensions_in_use(&app).await;
    assert_eq!(in_use, (200..=209).collect::<Vec<i64>>(), "no number twice");
    assert_eq!(checked_total(&app, "/Users").await, 10);
}

async fn a_full_range_is_refused_and_creates_nothing(app: TestApp) {
    set_range(&app, 200, 209).await;
    for i in 0..9 {
        auto_user(&app, &format!("u{i}@example.com")).await;
    }
    explicit_user(&app, "last@example.com", "209").await;
    assert_eq!(
        extensions_in_use(&app).await,
        (200..=209).collect::<Vec<i64>>()
    );
    let users_before = checked_total(&app, "/Users").await;
    let listed_before = listed_ids(&app, "/Users").await;

    for attempt in 0..2 {
        let reply = app.post("/Users", &user_body("overflow@example.com")).await;
        reply.assert_error(409, None);
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("200") && detail.contains("209"),
            "attempt {attempt}: the detail names the range: {detail}"
        );
        assert_eq!(users_named(&app, "overflow@example.com").await, 0);
        assert_eq!(checked_total(&app, "/Users").await, users_before);
        assert_eq!(listed_ids(&app, "/Users").await, listed_before);
    }
    // An explicit number outside the range is not a way in either; a taken one neither.
    app.post("/Users", &with_extension("out@example.com", "210"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.post("/Users", &with_extension("taken@example.com", "205"))
        .await
        .assert_error(409, Some("uniqueness"));
    assert_eq!(checked_total(&app, "/Users").await, users_before);
    // Concurrent creates into the full range: all refused, none counted.
    let bodies = (0..8)
        .map(|i| user_body(&format!("late{i}@example.com")))
        .collect();
    for reply in create_concurrently(&app, bodies).await {
        reply.assert_error(409, None);
    }
    assert_eq!(checked_total(&app, "/Users").await, users_before);
    assert_eq!(
        extensions_in_use(&app).await,
        (200..=209).collect::<Vec<i64>>()
    );
}

async fn a_freed_number_is_reused_after_the_wrap(app: TestApp) {
    set_range(&app, 200, 209).await;
    let mut by_number = std::collections::BTreeMap::new();
    for i in 0..10 {
        let (id, number) = auto_user(&app, &format!("u{i}@example.com")).await;
        assert_eq!(number, 200 + i, "upwards from the start of the range");
        by_number.insert(number, id);
    }
    app.post("/Users", &user_body("full@example.com"))
        .await
        .assert_error(409, None);

    // 204 is freed: the cursor, at the end, wraps and finds it.
    delete(&app, &format!("/Users/{}", by_number[&204])).await;
    let (_, number) = auto_user(&app, "reuse@example.com").await;
    assert_eq!(number, 204, "the freed number, after the wrap");
    app.post("/Users", &user_body("full2@example.com"))
        .await
        .assert_error(409, None);

    // Two freed, below and above: both are found, one after the other.
    delete(&app, &format!("/Users/{}", by_number[&201])).await;
    delete(&app, &format!("/Users/{}", by_number[&208])).await;
    let (_, x) = auto_user(&app, "reuse2@example.com").await;
    let (_, y) = auto_user(&app, "reuse3@example.com").await;
    let got: BTreeSet<i64> = [x, y].into_iter().collect();
    assert_eq!(got, [201, 208].into_iter().collect::<BTreeSet<i64>>());
    assert_eq!(
        extensions_in_use(&app).await,
        (200..=209).collect::<Vec<i64>>()
    );
    app.post("/Users", &user_body("full3@example.com"))
        .await
        .assert_error(409, None);
    assert_eq!(checked_total(&app, "/Users").await, 10);
}

async fn a_new_range_takes_effect_at_once(app: TestApp) {
    let (_, number) = auto_user(&app, "default@example.com").await;
    let policy = admin(&app, Method::GET, "/account/policy", None).await;
    let first = policy.body["extensionFirst"].as_i64().unwrap();
    assert_eq!(number, first, "{}", policy.body);

    set_range(&app, 5000, 5004).await;
    assert_eq!(auto_user(&app, "a@example.com").await.1, 5000);
    assert_eq!(auto_user(&app, "b@example.com").await.1, 5001);

    // A range moved elsewhere: the very next create takes a number there.
    set_range(&app, 700, 701).await;
    assert_eq!(auto_user(&app, "c@example.com").await.1, 700);
    assert_eq!(auto_user(&app, "d@example.com").await.1, 701);
    app.post("/Users", &user_body("e@example.com"))
        .await
        .assert_error(409, None);

    // Widened: the new numbers are used, the taken ones are not.
    set_range(&app, 700, 703).await;
    let (_, x) = auto_user(&app, "f@example.com").await;
    let (_, y) = auto_user(&app, "g@example.com").await;
    let got: BTreeSet<i64> = [x, y].into_iter().collect();
    assert_eq!(got, [702, 703].into_iter().collect::<BTreeSet<i64>>());

    // Back to the first narrow range: 5002 onwards, not 5000 or 5001 again.
    set_range(&app, 5000, 5004).await;
    let (_, z) = auto_user(&app, "h@example.com").await;
    assert!((5002..=5004).contains(&z), "got {z}");
    let in_use = extensions_in_use(&app).await;
    let distinct: BTreeSet<i64> = in_use.iter().copied().collect();
    assert_eq!(distinct.len(), in_use.len(), "{in_use:?}");
    assert_eq!(checked_total(&app, "/Users").await, 8);
}

async fn explicit_and_automatic_creates_race_without_duplicates(app: TestApp) {
    set_range(&app, 400, 459).await;
    // 20 explicit numbers (every third) and 40 automatic ones, all at once: 60 numbers for 60
    // creates. An explicit number an automatic create got first is a 409 for the explicit one;
    // an automatic create is never refused while numbers are free.
    let explicit: Vec<i64> = (0..20).map(|i| 400 + 3 * i + 1).collect();
    let mut bodies = Vec::new();
    for (i, n) in explicit.iter().enumerate() {
        bodies.push(with_extension(&format!("x{i}@example.com"), &n.to_string()));
        bodies.push(user_body(&format!("a{i}@example.com")));
        bodies.push(user_body(&format!("b{i}@example.com")));
    }
    let replies = create_concurrently(&app, bodies).await;
    let mut numbers = BTreeSet::new();
    let mut created = 0;
    for (i, reply) in replies.iter().enumerate() {
        if i % 3 == 0 && reply.status == StatusCode::CONFLICT {
            reply.assert_error(409, Some("uniqueness"));
            continue;
        }
        created_id(reply);
        created += 1;
        let number = extension_of(&reply.body);
        assert!((400..=459).contains(&number), "{number}");
        assert!(numbers.insert(number), "extension {number} given twice");
        if i % 3 == 0 {
            assert_eq!(
                number,
                explicit[i / 3],
                "an explicit number is the one asked for"
            );
        }
    }
    assert!(created >= 40, "every automatic create succeeds: {created}");
    assert_eq!(checked_total(&app, "/Users").await, created);
    let in_use = extensions_in_use(&app).await;
    assert_eq!(in_use, numbers.into_iter().collect::<Vec<i64>>());
}

async fn a_restore_whose_extension_was_taken_gets_a_free_one(app: TestApp) {
    set_range(&app, 200, 209).await;
    let (ana, number) = auto_user(&app, "ana@example.com").await;
    assert_eq!(number, 200);
    // 201 taken explicitly, ahead of the cursor; Ana deleted, and her 200 given to Bob.
    explicit_user(&app, "cy@example.com", "201").await;
    delete(&app, &format!("/Users/{ana}")).await;
    explicit_user(&app, "bob@example.com", "200").await;
    assert_eq!(checked_total(&app, "/Users").await, 2);

    let restored = admin(
        &app,
        Method::POST,
        &format!("/deleted-users/{ana}/restore"),
        None,
    )
    .await;
    assert_status(&restored, 200);
    let number = extension_of(&restored.body);
    assert_eq!(number, 202, "the next free number: 200 and 201 are taken");
    assert_eq!(checked_total(&app, "/Users").await, 3);
    assert_eq!(extensions_in_use(&app).await, vec![200, 201, 202]);
}
