//! Query benchmark: the lookups IdPs and scripts make, over HTTP against the real server, on a
//! database of N users (default 100,000), on SQLite and — with `--postgres URL` — PostgreSQL.
//!
//!     cargo bench --bench queries                      # SQLite, 100,000 users
//!     cargo bench --bench queries -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//!     cargo bench --bench queries -- --users 20000 --requests 500
//!
//! Prints a Markdown table (latency p50 / p99 of sequential requests, and throughput with 8
//! concurrent clients) to paste into BENCHMARKS.md. Loopback only, bounded in count and time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::app::Application;
use switchboard::config::ServeConfig;
use switchboard::provisioning::accounts;
use switchboard::store::Store;

struct Options {
    users: usize,
    requests: usize,
    postgres: Option<String>,
}

fn options() -> Options {
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

async fn seed(store: &Store, users: usize) {
    let started = Instant::now();
    match store {
        Store::Sqlite(pool) => {
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

async fn ids(store: &Store, n: usize) -> Vec<String> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id FROM users ORDER BY created_at LIMIT {n}"
    ));
    let ids: Vec<uuid::Uuid> = match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    };
    ids.into_iter().map(|i| i.to_string()).collect()
}

#[derive(Clone)]
struct Bench {
    client: reqwest::Client,
    base: String,
    token: String,
}

type PathFn = Arc<dyn Fn(usize) -> String + Send + Sync>;

impl Bench {
    async fn get(&self, path_and_query: &str) -> serde_json::Value {
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
    async fn measure(&self, name: &str, n: usize, path: PathFn) -> String {
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

fn percentile(latencies: &mut [Duration], q: f64) -> f64 {
    latencies.sort();
    let index = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
    latencies[index].as_secs_f64() * 1000.0
}

fn encode(s: &str) -> String {
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
async fn cursor_walk(bench: &Bench, count: usize) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut cursor = String::new();
    loop {
        let started = Instant::now();
        let page = bench
            .get(&format!(
                "/Users?count={count}&attributes=userName&cursor={cursor}"
            ))
            .await;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    latencies
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

async fn run(options: Options) {
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
    };
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}/scim/v2", app.address());
    let store = app.state().provisioner.store.clone();
    let keys = app.state().provisioner.keys.clone();
    tokio::spawn(app.run(std::future::pending()));
    let token = accounts::bootstrap(&store, &keys).await.unwrap().unwrap();
    seed(&store, options.users).await;
    let ids = Arc::new(ids(&store, options.users).await);
    let users = options.users;
    let n = options.requests;
    let bench = Bench {
        client: reqwest::Client::new(),
        base,
        token,
    };

    println!("\n### {label}, {users} users, {n} requests per row\n");
    println!("| request | p50 ms | p99 ms | req/s (8 clients) |");
    println!("|---|---|---|---|");
    // Spread the lookups over the whole table: index i → user (i * 7919) mod N.
    let pick = move |i: usize| (i * 7919) % users + 1;
    let by_id = ids.clone();
    let rows = [
        bench
            .measure(
                "GET /Users/{id}",
                n,
                Arc::new(move |i| format!("/Users/{}", by_id[(i * 7919) % by_id.len()])),
            )
            .await,
        bench
            .measure(
                "filter userName eq",
                n,
                Arc::new(move |i| {
                    format!(
                        "/Users?filter={}",
                        encode(&format!("userName eq \"user{}@example.com\"", pick(i)))
                    )
                }),
            )
            .await,
        bench
            .measure(
                "filter emails[type eq \"work\"].value eq",
                n,
                Arc::new(move |i| {
                    format!(
                        "/Users?filter={}",
                        encode(&format!(
                            "emails[type eq \"work\"].value eq \"user{}@example.com\"",
                            pick(i)
                        ))
                    )
                }),
            )
            .await,
        bench
            .measure(
                "filter meta.lastModified gt, sortBy meta.lastModified, count=100",
                n,
                Arc::new(move |i| {
                    let micros = 1_700_000_000_000_000i64 + (pick(i) as i64) * 1000;
                    let at =
                        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                            .unwrap();
                    let at = at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap();
                    format!(
                        "/Users?count=100&sortBy=meta.lastModified&filter={}",
                        encode(&format!("meta.lastModified gt \"{at}\""))
                    )
                }),
            )
            .await,
    ];
    for row in rows {
        println!("{row}");
    }

    let count = 100;
    let mut walk = cursor_walk(&bench, count).await;
    let pages = walk.len();
    let mut first: Vec<f64> = walk[..10.min(pages)].to_vec();
    let deep_from = (pages * 9 / 10).min(pages.saturating_sub(10));
    let mut deep: Vec<f64> = walk[deep_from..(deep_from + 10).min(pages)].to_vec();
    let total: f64 = walk.iter().sum();
    println!(
        "\nCursor walk, count={count}: {pages} pages in {:.1}s; median of pages 1–10: {:.2} ms; median of pages {}–{}: {:.2} ms; overall median {:.2} ms.",
        total / 1000.0,
        median(&mut first),
        deep_from + 1,
        deep_from + 10,
        median(&mut deep),
        median(&mut walk)
    );
    let deep_index = (pages * 9 / 10) * count + 1;
    let mut index_first = Vec::new();
    let mut index_deep = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        bench
            .get(&format!(
                "/Users?count={count}&attributes=userName&startIndex=1"
            ))
            .await;
        index_first.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        bench
            .get(&format!(
                "/Users?count={count}&attributes=userName&startIndex={deep_index}"
            ))
            .await;
        index_deep.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "For contrast, index paging: startIndex=1 median {:.2} ms; startIndex={deep_index} median {:.2} ms.",
        median(&mut index_first),
        median(&mut index_deep)
    );
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}
