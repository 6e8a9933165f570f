//! Cursor paging (RFC 9865) and index use of the lookups IdPs make (query plans).

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::scim::filter::parse;
use switchboard::scim::list::MAX_RESULTS;
use switchboard::store::{GroupRecord, ListRequest, PageStart, SortSpec, Store, UserRecord};

use crate::helpers::{JWT_SECRET, TestApp};

crate::on_both_backends!(
    cursor_walk_is_complete_and_stable,
    bad_cursors_are_refused,
    lookups_use_their_indexes
);

fn ids(page: &Value) -> Vec<String> {
    page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn cursor_walk_is_complete_and_stable(app: TestApp) {
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(app.create_user(&format!("u{i}@example.com")).await);
    }
    let first = app.get("/Users?cursor=&count=3").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["totalResults"], 7);
    assert_eq!(first.body["itemsPerPage"], 3);
    assert!(
        first.body.get("startIndex").is_none(),
        "cursor pages have no startIndex"
    );
    let mut seen = ids(&first.body);
    let mut cursor = first.body["nextCursor"].as_str().unwrap().to_string();
    assert!(
        cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
        "URL-safe"
    );

    // A user created during the walk lands after the rows already paged and is seen once.
    let late = app.create_user("late@example.com").await;
    loop {
        let page = app.get(&format!("/Users?count=3&cursor={cursor}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(ids(&page.body));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    created.push(late);
    assert_eq!(seen, created, "every user once, in creation order");

    // Sorted walks continue by key too, and POST /.search pages the same way.
    let search = |cursor: Option<&str>| {
        let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "sortBy": "userName", "sortOrder": "descending", "count": 4, "cursor": ""});
        if let Some(c) = cursor {
            body["cursor"] = json!(c);
        }
        body
    };
    let page1 = app.post("/Users/.search", &search(None)).await;
    let next = page1.body["nextCursor"].as_str().unwrap().to_string();
    let page2 = app.post("/Users/.search", &search(Some(&next))).await;
    assert!(page2.body.get("nextCursor").is_none(), "last page");
    let names: Vec<String> = [page1.body, page2.body]
        .iter()
        .flat_map(|p| {
            p["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["userName"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names.len(), 8);
    assert_eq!(names, sorted);

    // Index paging is unchanged and is the default.
    let index = app.get("/Users?startIndex=4&count=2").await;
    assert_eq!(index.body["startIndex"], 4);
    assert!(index.body.get("nextCursor").is_none());
    let big = app.get("/Users?cursor=&count=100000").await;
    assert_eq!(
        big.body["itemsPerPage"], 8,
        "count above maxResults is capped ({MAX_RESULTS})"
    );
}

async fn bad_cursors_are_refused(app: TestApp) {
    for i in 0..3 {
        app.create_user(&format!("u{i}@example.com")).await;
    }
    let first = app.get("/Users?cursor=&count=1").await;
    let cursor = first.body["nextCursor"].as_str().unwrap().to_string();

    app.get("/Users?cursor=garbage&count=1")
        .await
        .assert_error(400, Some("invalidCursor"));
    let mut tampered = cursor.clone();
    tampered.insert(cursor.len() / 2, 'x');
    app.get(&format!("/Users?cursor={tampered}&count=1"))
        .await
        .assert_error(400, Some("invalidCursor"));
    // Another query, another account, another resource type: the cursor is not theirs.
    app.get(&format!(
        "/Users?cursor={cursor}&count=1&filter=userName%20pr"
    ))
    .await
    .assert_error(400, Some("invalidCursor"));
    app.get(&format!("/Groups?cursor={cursor}&count=1"))
        .await
        .assert_error(400, Some("invalidCursor"));
    let other = app
        .account("other", switchboard::provisioning::TokenRole::SuperAdmin)
        .await;
    app.send(
        reqwest::Method::GET,
        &format!("/Users?cursor={cursor}&count=1"),
        Some(&other),
        None,
        &[],
    )
    .await
    .assert_error(400, Some("invalidCursor"));
    app.get(&format!("/Users?cursor={cursor}&count=2"))
        .await
        .assert_error(400, Some("invalidCount"));
    app.get(&format!("/Users?cursor={cursor}&startIndex=2"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.get("/Users?cursor=&sortBy=title")
        .await
        .assert_error(400, Some("invalidValue"));

    // A correctly signed cursor past its time.
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iss": "switchboard-cursor", "exp": 1_000_000_000, "q": "x", "n": 1, "t": 3, "k": {"key": 1, "id": uuid::Uuid::nil()}}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    app.get(&format!("/Users?cursor={expired}&count=1"))
        .await
        .assert_error(400, Some("expiredCursor"));
    // A bearer token is not a cursor.
    app.get(&format!("/Users?cursor={}&count=1", app.token))
        .await
        .assert_error(400, Some("invalidCursor"));
    assert_eq!(
        app.get(&format!("/Users?cursor={cursor}&count=1"))
            .await
            .status,
        StatusCode::OK,
        "the real cursor still works"
    );
}

/// Fills the account with enough rows that the planners choose as they would in production.
async fn seed(store: &Store, users: usize) {
    match store {
        Store::Sqlite(pools) => {
            let pool = pools.writer();
            let sql = sqlx::AssertSqlSafe(format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {users})
                 INSERT INTO users (id, account_id, user_name, user_name_lower, external_id, display_name, active, doc, created_at, last_modified, version)
                 SELECT randomblob(16), (SELECT id FROM accounts WHERE name = 'default'), 'seed' || i || '@example.com', 'seed' || i || '@example.com',
                        'ext' || i, 'Seed ' || i, 1, '{{}}', i, i, 1 FROM n"
            ));
            sqlx::query(sql).execute(pool).await.unwrap();
            sqlx::query("INSERT INTO user_emails (account_id, user_id, value_lower, type, is_primary) SELECT account_id, id, user_name_lower, 'work', 1 FROM users")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO groups (id, account_id, display_name, display_name_lower, doc, created_at, last_modified, version) SELECT randomblob(16), account_id, 'G ' || user_name, 'g ' || user_name_lower, '{}', created_at, last_modified, 1 FROM users")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("ANALYZE").execute(pool).await.unwrap();
            // Every reading connection loads the new statistics, as the housekeeping makes them.
            store.refresh_statistics().await.unwrap();
        }
        Store::Postgres(pool) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO users (id, account_id, user_name, user_name_lower, external_id, display_name, active, doc, created_at, last_modified, version)
                 SELECT gen_random_uuid(), (SELECT id FROM accounts WHERE name = 'default'), 'seed' || i || '@example.com', 'seed' || i || '@example.com',
                        'ext' || i, 'Seed ' || i, true, '{{}}', i, i, 1 FROM generate_series(1, {users}) AS i"
            ));
            sqlx::query(sql).execute(pool).await.unwrap();
            sqlx::query("INSERT INTO user_emails (account_id, user_id, value_lower, type, is_primary) SELECT account_id, id, user_name_lower, 'work', true FROM users")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO groups (id, account_id, display_name, display_name_lower, doc, created_at, last_modified, version) SELECT gen_random_uuid(), account_id, 'G ' || user_name, 'g ' || user_name_lower, '{}', created_at, last_modified, 1 FROM users")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("ANALYZE").execute(pool).await.unwrap();
        }
    }
}

async fn lookups_use_their_indexes(app: TestApp) {
    seed(&app.store, 20_000).await;
    let registry = switchboard::scim::schema::Registry::load().unwrap();
    let users = registry.resource_type("User").unwrap();
    let groups = registry.resource_type("Group").unwrap();
    let account = {
        let mut tx = app.store.begin_read().await.unwrap();
        let account = tx.account_by_name("default").await.unwrap().unwrap();
        tx.commit().await.unwrap();
        account.id
    };
    let by_last_modified = SortSpec {
        path: switchboard::scim::filter::parse_attr_path("meta.lastModified").unwrap(),
        descending: false,
    };
    let cases: Vec<(&str, Option<&SortSpec>, PageStart, &str, bool)> = vec![
        (
            "userName eq \"seed77@example.com\"",
            None,
            PageStart::Offset(0),
            // users_user_name_key, or the cross-account users_user_name_lower_idx: both exact.
            "users_user_name_",
            true,
        ),
        (
            "externalId eq \"ext77\"",
            None,
            PageStart::Offset(0),
            "users_external_id_idx",
            true,
        ),
        (
            "emails.value eq \"seed77@example.com\"",
            None,
            PageStart::Offset(0),
            "user_emails_value_idx",
            true,
        ),
        (
            "emails[type eq \"work\"].value eq \"seed77@example.com\"",
            None,
            PageStart::Offset(0),
            "user_emails_value_idx",
            true,
        ),
        (
            "meta.lastModified gt \"1970-01-01T00:00:00.019990Z\"",
            Some(&by_last_modified),
            PageStart::Offset(0),
            "users_last_modified_idx",
            true,
        ),
        (
            "displayName eq \"g seed77@example.com\"",
            None,
            PageStart::Offset(0),
            "groups_display_name_key",
            false,
        ),
    ];
    for (filter, sort, start, index, on_users) in cases {
        let filter = parse(filter).unwrap();
        let request = ListRequest {
            filter: Some(&filter),
            sort,
            start,
            limit: 200,
            known_total: None,
        };
        let mut tx = app.store.begin_read().await.unwrap();
        let plan = if on_users {
            tx.explain_list::<UserRecord>(&registry, users, account, &request)
                .await
                .unwrap()
        } else {
            tx.explain_list::<GroupRecord>(&registry, groups, account, &request)
                .await
                .unwrap()
        };
        tx.commit().await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{filter} should use {index}:\n{plan}");
    }
}
