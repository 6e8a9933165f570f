//! The processes the benchmark runs and measures: the real `switchboard` binary (set up with its
//! own CLI on a fresh database), the bare axum ceiling server (this binary, re-executed), their
//! CPU time and memory from `/proc`, and the machine they run on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;

/// The argument that turns this binary into the bare ceiling server.
pub const BARE_SERVER_ARG: &str = "--bare-server";

/// The database the server runs on, and how to get rid of it.
pub struct Database {
    pub url: String,
    pub label: &'static str,
    /// `SHOW server_version` on PostgreSQL.
    pub version: Option<String>,
    /// The name of the throw-away PostgreSQL database (its backends are measured too).
    pub postgres_name: Option<String>,
    admin_url: Option<String>,
}

impl Database {
    /// A new SQLite file in `dir`, or a new database `switchboard_bench_<unix time>` on the
    /// PostgreSQL server of `postgres` (a URL of a database to connect to for `CREATE DATABASE`).
    pub async fn create(postgres: Option<&str>, dir: &Path) -> anyhow::Result<Database> {
        let Some(admin_url) = postgres else {
            return Ok(Database {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
                label: "SQLite",
                version: None,
                postgres_name: None,
                admin_url: None,
            });
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let name = format!("switchboard_bench_{unix}");
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(Database {
            url: with_database(admin_url, &name),
            label: "PostgreSQL",
            version: Some(version),
            postgres_name: Some(name),
            admin_url: Some(admin_url.to_string()),
        })
    }

    /// Drops the PostgreSQL database (its connections too); SQLite files go with their
    /// directory.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.postgres_name) {
            let mut conn = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

/// `url` with its database (the path) replaced by `name`, the query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// A child process serving HTTP on loopback.
pub struct Server {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub log: PathBuf,
}

/// A free loopback port: bound, read and released (the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The `switchboard` binary with the environment cleaned of `SWITCHBOARD_*`, `DATABASE_URL`
/// and `RUST_LOG`, so that the server runs with its defaults whatever the caller's shell holds.
fn switchboard(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SWITCHBOARD_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(&*key);
        }
    }
    command
        .env("DATABASE_URL", database_url)
        .env("NO_COLOR", "1");
    command
}

/// Runs one CLI command to completion; its stdout.
pub fn cli(database_url: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = switchboard(database_url)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running switchboard {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "switchboard {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl Server {
    /// `switchboard serve` on `database_url`, mails to `.eml` files in `mail_dir`, its stdout
    /// and stderr (logs at the default level) to `log`. Returns once `/healthz` answers.
    pub async fn switchboard(
        database_url: &str,
        mail_dir: &Path,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let out = std::fs::File::create(log)?;
        let child = switchboard(database_url)
            .args(["serve", "--listen", &listen, "--rate-limit", "0"])
            .arg("--mail-dir")
            .arg(mail_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting switchboard serve")?;
        Server::ready(child, port, log).await
    }

    /// This binary again, as the bare axum server (see [`serve_bare`]).
    pub async fn bare(log: &Path) -> anyhow::Result<Server> {
        let port = free_port()?;
        let out = std::fs::File::create(log)?;
        let child = Command::new(std::env::current_exe()?)
            .args([BARE_SERVER_ARG, &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting the bare server")?;
        Server::ready(child, port, log).await
    }

    async fn ready(mut child: Child, port: u16, log: &Path) -> anyhow::Result<Server> {
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the server exited ({status}) before answering; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Ok(response) = client.get(format!("{base}/healthz")).send().await
                && response.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                bail!("the server did not answer /healthz within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Server {
            pid: child.id(),
            child,
            base,
            log: log.to_path_buf(),
        })
    }

    /// SIGTERM (graceful shutdown), SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running (it has not crashed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (+ cutime + cstime with `children`) of a process, in clock ticks; `pid` is a
/// number or `self`.
fn cpu_ticks(pid: &str, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
    let take = if children { 4 } else { 2 };
    fields[11..11 + take]
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

/// This process's nice value (the server children inherit it): field 19 of `/proc/self/stat`.
pub fn niceness() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(16)?
        .parse()
        .ok()
}

/// CPU seconds used so far by the processes being measured.
#[derive(Clone, Copy, Default)]
pub struct CpuSnapshot {
    pub server: f64,
    pub loadgen: f64,
    /// PostgreSQL backends connected to the bench database.
    pub database: f64,
    /// All CPUs of the machine, busy (not idle or waiting for I/O), whoever used them.
    pub machine: f64,
}

/// Reads CPU time from `/proc`: the server child, this process (the load generator) and, on
/// PostgreSQL, the backends serving the bench database (found by their process title, which
/// names the database).
pub struct Meter {
    ticks: f64,
    pub server_pid: u32,
    postgres_name: Option<String>,
}

impl Meter {
    pub fn new(server_pid: u32, postgres_name: Option<String>) -> Meter {
        Meter {
            ticks: clock_ticks(),
            server_pid,
            postgres_name,
        }
    }

    pub fn snapshot(&self) -> CpuSnapshot {
        let seconds = |t: Option<u64>| t.unwrap_or(0) as f64 / self.ticks;
        CpuSnapshot {
            server: seconds(cpu_ticks(&self.server_pid.to_string(), false)),
            loadgen: seconds(cpu_ticks("self", false)),
            database: self
                .postgres_name
                .as_deref()
                .map_or(0.0, |name| seconds(Some(backend_ticks(name)))),
            machine: seconds(machine_busy_ticks()),
        }
    }
}

/// Busy ticks of all CPUs from the first line of `/proc/stat`: user, nice, system, irq,
/// softirq and steal (guest time is part of user).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Some(
        [0, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|&i| fields.get(i))
            .sum(),
    )
}

/// CPU ticks of the PostgreSQL backends whose process title mentions database `name`.
fn backend_ticks(name: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().to_string();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let title = String::from_utf8_lossy(&title);
            if title.starts_with("postgres:") && title.contains(name) {
                cpu_ticks(&pid, false)
            } else {
                None
            }
        })
        .sum()
}

/// A `VmHWM`-style field of `/proc/<pid>/status`, in MiB.
pub fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `2 CPUs (nproc) × AMD EPYC, 23.5 GiB RAM, Linux 6.18…` from `/proc`.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let memory = memory_total_gib().map_or("? GiB".into(), |g| format!("{g:.1} GiB"));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} CPUs (nproc) × {model}, {memory} RAM, Linux {}",
        kernel.trim()
    )
}

fn memory_total_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0 / 1024.0)
}

/// `abc1234` or `abc1234 (dirty: 3 paths changed or untracked)`.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (no git)".into();
    };
    let changed = git(&["status", "--porcelain"]).map_or(0, |s| s.lines().count());
    if changed == 0 {
        format!("`{}` (clean)", head.trim())
    } else {
        format!(
            "`{}` (dirty: {changed} paths changed or untracked)",
            head.trim()
        )
    }
}

/// Mails delivered so far: `.eml` files in `dir`.
pub fn mails(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    })
}

/// Whether a log line is at WARN or ERROR (text format, no colours).
fn is_problem(line: &str) -> bool {
    line.contains(" WARN ") || line.contains(" ERROR ")
}

/// The WARN and ERROR lines of the server's log after byte `from`: how many, and the end of
/// the log (where to continue from).
pub fn log_problems_since(log: &Path, from: u64) -> (usize, u64) {
    let bytes = std::fs::read(log).unwrap_or_default();
    let start = (from as usize).min(bytes.len());
    let count = String::from_utf8_lossy(&bytes[start..])
        .lines()
        .filter(|l| is_problem(l))
        .count();
    (count, bytes.len() as u64)
}

/// The WARN and ERROR lines of the whole log, grouped by message (the text without its
/// `key=value` fields, from the first on): count, message and a first example line, most frequent first.
pub fn log_problems(log: &Path) -> Vec<(usize, String, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut groups: Vec<(usize, String, String)> = Vec::new();
    for line in text.lines().filter(|l| is_problem(l)) {
        // After the span (`request{…}: `), or else after the level.
        let message = line
            .rsplit_once("}: ")
            .or_else(|| line.split_once(" WARN "))
            .or_else(|| line.split_once(" ERROR "))
            .map_or(line, |(_, m)| m);
        let key: String = message
            .split_whitespace()
            .take_while(|w| !w.contains('='))
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(160)
            .collect();
        match groups.iter_mut().find(|(_, k, _)| *k == key) {
            Some(group) => group.0 += 1,
            None => groups.push((1, key, line.chars().take(500).collect())),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.0));
    groups
}

/// The body both ceiling routes answer: a user resource of about 1.3 KB, as the real server
/// renders one.
pub fn ceiling_body() -> String {
    let mut body = serde_json::json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "0193a1c2-7d4e-7f00-8a1b-3c4d5e6f7a8b",
        "externalId": "00u00000000000012345",
        "userName": "user12345@example.com",
        "name": {"givenName": "Given12345", "familyName": "Family12345", "formatted": "Given12345 Family12345"},
        "displayName": "Given12345 Family12345",
        "title": "Engineer",
        "locale": "en-US",
        "active": true,
        "emails": [{"value": "user12345@example.com", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "+1 555 0100 2345", "type": "work"}],
        "groups": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "12345", "department": "Department 5", "organization": "Example Inc"
        },
        "meta": {
            "resourceType": "User",
            "created": "2026-11-21T10:00:00.000000Z",
            "lastModified": "2026-11-21T10:00:00.000000Z",
            "version": "W/\"1\"",
            "location": "http://127.0.0.1:8080/scim/v2/Users/0193a1c2-7d4e-7f00-8a1b-3c4d5e6f7a8b"
        }
    });
    let filler = 1300usize.saturating_sub(body.to_string().len() + 12);
    body["nickName"] = "x".repeat(filler).into();
    body.to_string()
}

/// The bare ceiling server: axum 0.8 on a multi-thread tokio runtime, `GET /*` → 200 and
/// `POST /*` → 201 (after reading the request body), both with [`ceiling_body`] as
/// `application/scim+json`. What any server on this machine, this HTTP stack and this client
/// can do at best.
pub fn serve_bare(port: u16) -> anyhow::Result<()> {
    use axum::body::Bytes;
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    use std::sync::LazyLock;

    static BODY: LazyLock<String> = LazyLock::new(ceiling_body);
    const SCIM: [(header::HeaderName, &str); 1] = [(header::CONTENT_TYPE, "application/scim+json")];

    async fn read() -> (
        StatusCode,
        [(header::HeaderName, &'static str); 1],
        &'static str,
    ) {
        (StatusCode::OK, SCIM, BODY.as_str())
    }
    async fn write(
        request: Bytes,
    ) -> (
        StatusCode,
        [(header::HeaderName, &'static str); 1],
        &'static str,
    ) {
        std::hint::black_box(request.len());
        (StatusCode::CREATED, SCIM, BODY.as_str())
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = axum::Router::new()
            .route("/", get(read).post(write))
            .route("/{*path}", get(read).post(write));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
