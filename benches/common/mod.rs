//! What the benchmarks share: options, a server on a fresh database, seeding, an HTTP client
//! and percentiles.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::app::Application;
use switchboard::config::ServeConfig;
use switchboard::provisioning::accounts;
use switchboard::store::Store;

pub struct Options {
    pub users: usize,
    pub requests: usize,
    pub postgres: Option<String>,
}

pub fn options() -> Options {
    let mut options = Options {
        users: 100_000,
        requests: 2_000,
        postgres: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--users" => {
                options.users = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(options.users)
            }
            "--requests" => {
                options.requests = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(options.requests)
            }
            "--postgres" => options.postgres = args.next(),
            _ => {} // `cargo bench` passes --bench
        }
    }
    options
}

pub async fn seed(store: &Store, users: usize) {
    let started = Instant::now();
    match store {
        Store::Sqlite(pools) => {
            let pool = pools.writer();
            let sql = sqlx::AssertSqlSafe(format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {users})
                 INSERT INTO users (id, account_id, user_name, user_name_lower, external_id, display_name, active, doc, created_at, last_modified, version)
                 SELECT randomblob(16), (SELECT id FROM accounts WHERE name = 'default'),
                        'user' || i || '@example.com', 'user' || i || '@example.com', 'ext' || i, 'User ' || i, 1,
                        json_object('schemas', json_array('urn:ietf:params:scim:schemas:core:2.0:User'),
                                    'userName', 'user' || i || '@example.com', 'externalId', 'ext' || i, 'displayName', 'User ' || i,
                                    'name', json_object('givenName', 'Given' || i, 'familyName', 'Family' || i),
                                    'emails', json_array(json_object('value', 'user' || i || '@example.com', 'type', 'work', 'primary', json('true')),
                                                         json_object('value', 'home' || i || '@example.org', 'type', 'home')),
                                    'active', json('true')),
                        1700000000000000 + i * 1000, 1700000000000000 + i * 1000, 1 FROM n"
            ));
            sqlx::query(sql).execute(pool).await.unwrap();
            sqlx::query(
                "INSERT INTO user_emails (account_id, user_id, value_lower, type, is_primary)
                 SELECT account_id, id, user_name_lower, 'work', 1 FROM users
                 UNION ALL SELECT account_id, id, 'home' || substr(user_name_lower, 5, instr(user_name_lower, '@') - 5) || '@example.org', 'home', 0 FROM users",
            )
            .execute(pool)
            .await
            .unwrap();
            sqlx::query("ANALYZE").execute(pool).await.unwrap();
        }
        Store::Postgres(pool) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO users (id, account_id, user_name, user_name_lower, external_id, display_name, active, doc, created_at, last_modified, version)
                 SELECT gen_random_uuid(), (SELECT id FROM accounts WHERE name = 'default'),
                        'user' || i || '@example.com', 'user' || i || '@example.com', 'ext' || i, 'User ' || i, true,
                        jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User'),
                                    'userName', 'user' || i || '@example.com', 'externalId', 'ext' || i, 'displayName', 'User ' || i,
                                    'name', jsonb_build_object('givenName', 'Given' || i, 'familyName', 'Family' || i),
                                    'emails', jsonb_build_array(jsonb_build_object('value', 'user' || i || '@example.com', 'type', 'work', 'primary', true),
                                                                jsonb_build_object('value', 'home' || i || '@example.org', 'type', 'home')),
                                    'active', true),
                        1700000000000000 + i * 1000, 1700000000000000 + i * 1000, 1 FROM generate_series(1, {users}) AS i"
            ));
            sqlx::query(sql).execute(pool).await.unwrap();
            sqlx::query(
                "INSERT INTO user_emails (account_id, user_id, value_lower, type, is_primary)
                 SELECT account_id, id, user_name_lower, 'work', true FROM users
                 UNION ALL SELECT account_id, id, 'home' || split_part(substr(user_name_lower, 5), '@', 1) || '@example.org', 'home', false FROM users",
            )
            .execute(pool)
            .await
            .unwrap();
            // The steady state autovacuum keeps a live table in: visibility map set, statistics fresh.
            sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
        }
    }
    eprintln!(
        "seeded {users} users in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

pub async fn ids(store: &Store, n: usize) -> Vec<String> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id FROM users ORDER BY created_at LIMIT {n}"
    ));
    let ids: Vec<uuid::Uuid> = match store {
        Store::Sqlite(pools) => sqlx::query_scalar(sql)
            .fetch_all(pools.writer())
            .await
            .unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    };
    ids.into_iter().map(|i| i.to_string()).collect()
}

#[derive(Clone)]
pub struct Bench {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub type PathFn = Arc<dyn Fn(usize) -> String + Send + Sync>;

impl Bench {
    /// A write; returns the status and the body (null when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status < 300, "{path}: {status}");
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    pub async fn get(&self, path_and_query: &str) -> serde_json::Value {
        let response = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path_and_query}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// p50 and p99 (ms) of `n` sequential requests, then requests/s with 8 concurrent clients.
    pub async fn measure(&self, name: &str, n: usize, path: PathFn) -> String {
        for i in 0..50.min(n) {
            self.get(&path(i)).await;
        }
        let mut latencies = Vec::with_capacity(n);
        for i in 0..n {
            let started = Instant::now();
            self.get(&path(i)).await;
            latencies.push(started.elapsed());
        }
        let clients = 8;
        let per_client = n / clients;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let bench = self.clone();
            let path = path.clone();
            tasks.spawn(async move {
                for i in 0..per_client {
                    bench.get(&path(c * per_client + i)).await;
                }
            });
        }
        tasks.join_all().await;
        let throughput = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
        format!(
            "| {name} | {:.2} | {:.2} | {throughput:.0} |",
            percentile(&mut latencies, 0.50),
            percentile(&mut latencies, 0.99)
        )
    }
}

pub fn percentile(latencies: &mut [Duration], q: f64) -> f64 {
    latencies.sort();
    let index = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
    latencies[index].as_secs_f64() * 1000.0
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Walks every page by cursor; returns the latency of each page (ms).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// A server on a fresh database (SQLite file, or a new PostgreSQL schema), and a client for it.
pub async fn start(options: &Options) -> (Bench, Store, &'static str) {
    let (database_url, label) = match &options.postgres {
        Some(url) => {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Store::connect(url).await.unwrap();
            if let Store::Postgres(pool) = &admin {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            admin.close().await;
            let separator = if url.contains('?') { '&' } else { '?' };
            (
                format!("{url}{separator}options=-c%20search_path%3D{schema}"),
                "PostgreSQL",
            )
        }
        None => {
            let dir =
                std::env::temp_dir().join(format!("switchboard-bench-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            (
                format!("sqlite://{}", dir.join("bench.db").display()),
                "SQLite",
            )
        }
    };
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        database_url,
        public_url: None,
        jwt_secret: None,
        max_group_depth: 5,
        rate_limit: 0,
        mail: switchboard::config::MailConfig {
            mail_dir: std::env::temp_dir()
                .join(format!("switchboard-bench-mail-{}", uuid::Uuid::new_v4())),
            ..Default::default()
        },
    };
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}/scim/v2", app.address());
    let store = app.state().provisioner.store().clone();
    let keys = app.state().provisioner.keys().clone();
    tokio::spawn(app.run(std::future::pending()));
    let token = accounts::bootstrap(&store, &keys).await.unwrap().unwrap();
    (
        Bench {
            client: reqwest::Client::new(),
            base,
            token,
        },
        store,
        label,
    )
}
