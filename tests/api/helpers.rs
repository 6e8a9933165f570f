//! Test harness: a real server on `127.0.0.1:0` over a fresh database per test — a new SQLite
//! file, or a new schema of the PostgreSQL database named by `SWITCHBOARD_TEST_POSTGRES_URL` —
//! and an HTTP client that speaks to it.

use std::io::Write;
use std::sync::Once;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard::app::Application;
use switchboard::config::ServeConfig;
use switchboard::provisioning::tokens::Keys;
use switchboard::provisioning::{TokenRole, accounts};
use switchboard::store::Store;
use uuid::Uuid;

pub const JWT_SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    pub token: String,
    pub store: Store,
    pub keys: Keys,
    pub client: reqwest::Client,
    /// Where mails land when the app has no SMTP relay.
    pub mail_dir: std::path::PathBuf,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a SCIM error (RFC 7644 §3.12) with this status and scimType.
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.to_string(), "{}", self.body);
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{}", self.body);
        assert!(
            self.body["detail"].as_str().is_some_and(|d| d.len() > 10),
            "detail must say something: {}",
            self.body
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/scim+json")),
            "errors are application/scim+json"
        );
    }
}

static POSTGRES_NOTICE: Once = Once::new();

/// A fresh app on `backend`; `None` when PostgreSQL is asked for but not configured.
pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, 0).await
}

/// As [`spawn`], with a per-account rate limit (requests per second; 0: none).
pub async fn spawn_with(backend: Backend, rate_limit: u32) -> Option<TestApp> {
    spawn_configured(backend, rate_limit, None).await
}

/// As [`spawn`], delivering mails to an SMTP relay.
pub async fn spawn_with_smtp(backend: Backend, smtp_url: String) -> Option<TestApp> {
    spawn_configured(backend, 0, Some(smtp_url)).await
}

/// A fresh, empty database of `backend` (a file for SQLite, a schema of its own in
/// `SWITCHBOARD_TEST_POSTGRES_URL` for PostgreSQL); `None` when PostgreSQL is not configured.
pub async fn fresh_database(backend: Backend) -> Option<String> {
    Some(match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("switchboard-test-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&dir).ok()?;
            format!("sqlite://{}", dir.join("switchboard.db").display())
        }
        Backend::Postgres => {
            let Ok(url) = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL") else {
                POSTGRES_NOTICE.call_once(|| {
                    // Written past the test harness's output capture, so that it is seen.
                    let _ = writeln!(
                        std::io::stderr(),
                        "\nSWITCHBOARD_TEST_POSTGRES_URL is not set: the PostgreSQL half of the suite is skipped (SQLite only).\n"
                    );
                });
                return None;
            };
            // A schema of its own per test: isolated, and cheap to create.
            let schema = format!("t_{}", Uuid::new_v4().simple());
            let admin = Store::connect(&url)
                .await
                .expect("connect to SWITCHBOARD_TEST_POSTGRES_URL");
            if let Store::Postgres(pool) = &admin {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(pool)
                    .await
                    .expect("create schema");
            }
            admin.close().await;
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}options=-c%20search_path%3D{schema}")
        }
    })
}

async fn spawn_configured(
    backend: Backend,
    rate_limit: u32,
    smtp_url: Option<String>,
) -> Option<TestApp> {
    let database_url = fresh_database(backend).await?;
    start_app(database_url, rate_limit, smtp_url, true).await
}

static TEST_LOG: Once = Once::new();

/// The servers' logs are silent in tests unless `TEST_LOG` is set (`TEST_LOG=1 cargo test …`);
/// `RUST_LOG` then filters them as it does for `serve` (default `info`).
fn init_test_log() {
    TEST_LOG.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// Starts an app on `database_url`; `bootstrap` creates the default account and its token
/// (the database must then be empty), else the app's token is a new one for "default".
pub async fn start_app(
    database_url: String,
    rate_limit: u32,
    smtp_url: Option<String>,
    bootstrap: bool,
) -> Option<TestApp> {
    init_test_log();
    let mail_dir = std::env::temp_dir().join(format!("switchboard-mail-{}", Uuid::new_v4()));
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        database_url,
        public_url: None,
        jwt_secret: Some(JWT_SECRET.into()),
        max_group_depth: 5,
        rate_limit,
        mail: switchboard::config::MailConfig {
            smtp_url,
            mail_dir: mail_dir.clone(),
            poll_interval: std::time::Duration::from_millis(100),
            ..Default::default()
        },
    };
    let app = Application::build(config).await.expect("build app");
    let base = format!("http://{}", app.address());
    let store = app.state().provisioner.store().clone();
    let keys = app.state().provisioner.keys().clone();
    tokio::spawn(app.run(std::future::pending()));
    let token = if bootstrap {
        accounts::bootstrap(&store, &keys)
            .await
            .expect("bootstrap")
            .expect("empty database")
    } else {
        accounts::issue_token(&store, &keys, "default", TokenRole::SuperAdmin, 30)
            .await
            .expect("token")
            .0
    };
    let client = reqwest::Client::builder().build().expect("client");
    Some(TestApp {
        base,
        token,
        store,
        keys,
        client,
        mail_dir,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/')
            && !path.starts_with("/scim")
            && !path.starts_with("/admin")
            && !path.starts_with("/invitations")
            && !path.starts_with("/healthz")
            && !path.starts_with("/readyz")
        {
            format!("{}/scim/v2{path}", self.base)
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A new account with a token of `role`.
    pub async fn account(&self, name: &str, role: TokenRole) -> String {
        accounts::create_account(&self.store, name)
            .await
            .expect("account");
        self.token_for(name, role).await
    }

    pub async fn token_for(&self, account: &str, role: TokenRole) -> String {
        accounts::issue_token(&self.store, &self.keys, account, role, 30)
            .await
            .expect("token")
            .0
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read_reply(request.send().await.expect("request")).await
    }

    /// A call to the admin API (`/admin/v1{path}`) with `token`, the body sent as
    /// `application/json`.
    pub async fn admin_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        read_reply(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(&self.token.clone()), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            path,
            Some(&self.token.clone()),
            Some(body),
            &[],
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::PUT,
            path,
            Some(&self.token.clone()),
            Some(body),
            &[],
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::PATCH,
            path,
            Some(&self.token.clone()),
            Some(body),
            &[],
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(&self.token.clone()), None, &[])
            .await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let reply = self.post("/Users", &user_body(user_name)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_string()
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({"value": m}))
            .collect();
        let reply = self
            .post("/Groups", &serde_json::json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_string()
    }

    /// `filter` as a query string, URL-encoded.
    pub async fn list(&self, endpoint: &str, filter: &str) -> Reply {
        let url = reqwest::Url::parse_with_params(&self.url(endpoint), &[("filter", filter)])
            .expect("url");
        let response = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}

pub fn user_body(user_name: &str) -> Value {
    serde_json::json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ana", "familyName": "Silva"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
    })
}

pub fn patch_body(operations: Value) -> Value {
    serde_json::json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// Declares each listed `async fn name(app: TestApp)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn($crate::helpers::Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::helpers::spawn($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// The member ids of a group representation, sorted.
pub fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The status, headers and body (JSON, else text, else null) of a response; a `500` fails the
/// test wherever it comes from.
pub async fn read_reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    assert_ne!(status.as_u16(), 500, "the server answered 500: {body}");
    Reply {
        status,
        headers,
        body,
    }
}
