//! First-sync benchmark: an identity provider's first sync (Okta-style) played against the real
//! `switchboard` binary over HTTP, with the server's CPU time and memory read from `/proc`, and a
//! bare axum server measured the same way in the same run as the ceiling of what this machine,
//! this HTTP stack and this load generator can do at all.
//!
//!     cargo bench --bench sync                          # SQLite, 100,000 users
//!     cargo bench --bench sync -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//!     cargo bench --bench sync -- --users 2000 --readers-seconds 3
//!     cargo bench --bench sync -- --users 2000 --keep   # keep the temp dir: database, log, mails
//!
//! Set-up: the server is the release binary Cargo builds for benches, run as a child process
//! on a fresh database (a new SQLite file in a temporary directory, or a new PostgreSQL database
//! `switchboard_bench_<unix time>`, dropped at the end), prepared with its own CLI (`migrate`,
//! `account create default`, `token create`) and started with `serve` on a free loopback port,
//! mails going to `.eml` files (its outbox worker runs, and its CPU counts as the server's).
//!
//! Phases, in order:
//!
//! 1. **Admin**: widen the account's extension range (`GET` then `PUT /admin/v1/account/policy`)
//!    so that N users fit.
//! 2. **Fill**: 16 clients; per user, `GET /Users?filter=userName eq "…"` (no match) then
//!    `POST /Users` with an Okta-like body (core + enterprise schemas, no Switchboard extension:
//!    the extension is allocated). Reported per tenth of the fill, so growth with the size of the
//!    account shows.
//! 3. **Group push**: 50 groups; "All staff" gets every user, 49 others share them;
//!    `PATCH /Groups/{id}` adding 100 members at a time, 16 clients, one group per client at a
//!    time (an IdP pushes a group's batches in order; two PATCHes of one group never overlap).
//! 4. **Profile push**: full `PUT /Users/{id}` of 10 % of the users (title changed), 16 clients.
//! 5. **Readers**: 32 clients for `--readers-seconds` each: GET by id, `userName eq` filter,
//!    `startIndex` pages of 100, the big group without its members.
//! 6. **Ceiling**: this binary re-executed with `--bare-server PORT` (axum, fixed 1.3 KB bodies),
//!    32 clients GET and 16 clients POST, as long as a reader sub-phase.
//!
//! Prints a Markdown report to stdout (progress to stderr) to paste into BENCHMARKS.md: a
//! section per phase, a summary table with each figure beside its ratio to the ceiling's, and
//! CPU (server, PostgreSQL backends, load generator, everything else on the machine) and memory
//! per phase. Loopback only; the load generator shares the machine's cores with the server.
//! Interrupted with Ctrl-C, a PostgreSQL run leaves its `switchboard_bench_*` database behind.

#[path = "sync/load.rs"]
mod load;
#[path = "sync/procs.rs"]
mod procs;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use load::{Bound, Latency, Pool, Run, Sample, encode, latency, pick};
use procs::{CpuSnapshot, Database, Meter, Server};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

const WRITERS: usize = 16;
const READERS: usize = 32;
const GROUPS: usize = 50;
const BATCH: usize = 100;
/// Retries of a PATCH answered 409 (counted) before it is a failure.
const PATCH_RETRIES: usize = 5;

struct Options {
    users: usize,
    postgres: Option<String>,
    readers_seconds: f64,
    /// Keep the temporary directory (SQLite database, mails, server log) at the end.
    keep: bool,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        users: 100_000,
        postgres: None,
        readers_seconds: 10.0,
        keep: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--users" => options.users = value("--users")?.parse().context("--users N")?,
            "--postgres" => options.postgres = Some(value("--postgres")?),
            "--readers-seconds" => {
                options.readers_seconds = value("--readers-seconds")?
                    .parse()
                    .context("--readers-seconds S")?
            }
            "--keep" => options.keep = true,
            "--bench" => {} // what `cargo bench` passes
            other => eprintln!("ignoring argument {other:?}"),
        }
    }
    if options.users < 100 {
        bail!("--users must be at least 100");
    }
    Ok(options)
}

/// The user an Okta-style IdP pushes for user number `n`: core and enterprise attributes, no
/// Switchboard extension (the server allocates the extension).
fn okta_user(n: usize, title: &str) -> Value {
    json!({
        "schemas": [CORE, ENTERPRISE],
        "userName": format!("user{n}@example.com"),
        "externalId": format!("00u{n:017}"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "displayName": format!("Given{n} Family{n}"),
        "locale": "en-US",
        "title": title,
        "active": true,
        "emails": [{"primary": true, "value": format!("user{n}@example.com"), "type": "work"}],
        "phoneNumbers": [{"value": format!("+1 555 01{:02} {:04}", n / 10_000 % 100, n % 10_000), "type": "work"}],
        ENTERPRISE: {
            "employeeNumber": n.to_string(),
            "department": format!("Department {}", n % 20),
            "organization": "Example Inc"
        }
    })
}

fn add_members(ids: &[String]) -> String {
    let values: Vec<Value> = ids.iter().map(|id| json!({ "value": id })).collect();
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": values}]})
        .to_string()
}

fn total_results(body: &str) -> Option<u64> {
    serde_json::from_str::<Value>(body).ok()?["totalResults"].as_u64()
}

fn id_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?["id"]
        .as_str()
        .map(String::from)
}

/// One line of the final table.
struct Row {
    request: String,
    clients: usize,
    count: usize,
    rate: f64,
    latency: Latency,
    /// Server CPU per request (µs); for the fill, per user (its GET and its POST).
    cpu_us: Option<f64>,
    database_us: Option<f64>,
    /// Compared with the ceiling's POST (writes) or GET (reads).
    write: bool,
}

/// CPU and memory over one phase.
struct Usage {
    phase: String,
    wall: f64,
    requests: usize,
    server: f64,
    loadgen: f64,
    database: f64,
    /// Every other process on the machine (a compiler, another test run …).
    other: f64,
    hwm: Option<f64>,
    rss: Option<f64>,
    mails: Option<usize>,
    /// Lines the server logged at WARN or ERROR during the phase.
    warnings: Option<usize>,
}

struct Bench {
    options: Options,
    pool: Pool,
    meter: Meter,
    mail_dir: PathBuf,
    /// The server's log and how far it has been read (None once the server is stopped).
    log: Option<(PathBuf, u64)>,
    postgres: bool,
    rows: Vec<Row>,
    usage: Vec<Usage>,
    failures: Vec<String>,
}

impl Bench {
    /// Runs one phase and records its CPU and memory under `phase`.
    async fn phase<F>(&mut self, phase: &str, clients: usize, bound: Bound, work: F) -> Run
    where
        F: for<'a> Fn(usize, &'a load::Http, &'a mut load::Recorder) -> load::WorkFuture<'a>
            + Send
            + Sync
            + 'static,
    {
        eprintln!("{phase}: {clients} clients");
        let before = self.meter.snapshot();
        let run = self.pool.run(phase, clients, bound, work).await;
        let after = self.meter.snapshot();
        self.account(phase, &run, before, after, true);
        run
    }

    fn account(
        &mut self,
        phase: &str,
        run: &Run,
        before: CpuSnapshot,
        after: CpuSnapshot,
        mails: bool,
    ) {
        let pid = self.meter.server_pid;
        let warnings = self.log.as_mut().map(|(path, offset)| {
            let (count, end) = procs::log_problems_since(path, *offset);
            *offset = end;
            count
        });
        self.usage.push(Usage {
            phase: phase.to_string(),
            wall: run.wall,
            requests: run.samples.len() + run.failures.len(),
            server: after.server - before.server,
            loadgen: after.loadgen - before.loadgen,
            database: after.database - before.database,
            other: ((after.machine - before.machine)
                - (after.server - before.server)
                - (after.loadgen - before.loadgen)
                - (after.database - before.database))
                .max(0.0),
            hwm: procs::memory_mib(pid, "VmHWM"),
            rss: procs::memory_mib(pid, "VmRSS"),
            mails: mails.then(|| procs::mails(&self.mail_dir)),
            warnings,
        });
        for failure in run.failures.iter().take(3) {
            self.failures.push(format!(
                "{phase}: status {}: {}",
                failure.status,
                failure.body.chars().take(300).collect::<String>()
            ));
        }
        if !run.failures.is_empty() || run.retries > 0 {
            println!(
                "\n**{phase}: {} failed requests, {} retries after 409.**",
                run.failures.len(),
                run.retries
            );
        }
    }

    /// Server CPU per request of the last phase, in µs (and the PostgreSQL backends').
    fn cpu_per(&self, requests: usize) -> (Option<f64>, Option<f64>) {
        let usage = self.usage.last().expect("a phase ran");
        let per = |seconds: f64| Some(seconds * 1e6 / requests.max(1) as f64);
        (
            per(usage.server),
            if self.postgres {
                per(usage.database)
            } else {
                None
            },
        )
    }

    fn row(&mut self, request: &str, clients: usize, samples: &[Sample], wall: f64, write: bool) {
        let (cpu_us, database_us) = self.cpu_per(samples.len());
        self.rows.push(Row {
            request: request.to_string(),
            clients,
            count: samples.len(),
            rate: samples.len() as f64 / wall.max(1e-9),
            latency: latency(samples),
            cpu_us,
            database_us,
            write,
        });
    }
}

const FILTER: usize = 0;
const CREATE: usize = 1;

/// Phase 2: every user looked up, then created. Returns the ids by user index (`None` where
/// the create failed).
async fn fill(bench: &mut Bench) -> Vec<Option<String>> {
    let n = bench.options.users;
    let slots: Arc<Vec<OnceLock<String>>> = Arc::new((0..n).map(|_| OnceLock::new()).collect());
    let ids = slots.clone();
    let run = bench
        .phase("fill", WRITERS, Bound::Items(n), move |i, http, rec| {
            let ids = ids.clone();
            Box::pin(async move {
                let user = i + 1;
                let filter = encode(&format!("userName eq \"user{user}@example.com\""));
                let reply = http
                    .send(
                        Method::GET,
                        &format!("/scim/v2/Users?filter={filter}"),
                        None,
                    )
                    .await;
                if reply.status != 200 || total_results(&reply.body) != Some(0) {
                    rec.fail(FILTER, reply.status, reply.body);
                    return;
                }
                rec.success(FILTER, i, &reply);
                let body = okta_user(user, "Engineer").to_string();
                let reply = http.send(Method::POST, "/scim/v2/Users", Some(body)).await;
                match (reply.status, id_of(&reply.body)) {
                    (201, Some(id)) => {
                        rec.success(CREATE, i, &reply);
                        let _ = ids[i].set(id);
                    }
                    _ => rec.fail(CREATE, reply.status, reply.body),
                }
            })
        })
        .await;

    let creates = run.of(CREATE);
    let filters = run.of(FILTER);
    let users = creates.len();
    println!("\n### Fill: {n} users, {WRITERS} clients\n");
    println!(
        "A user is `GET /Users?filter=userName eq \"…\"` (no match) then `POST /Users`. \
         {users} created in {:.1} s: **{:.1} users/s**; {} lookups and {} creates failed.\n",
        run.wall,
        users as f64 / run.wall,
        run.failures_of(FILTER),
        run.failures_of(CREATE)
    );
    // Throughput per tenth by completion order; latencies per tenth by user index (the size of
    // the account when the request was made).
    let mut ends: Vec<f64> = creates.iter().map(Sample::end).collect();
    ends.sort_by(f64::total_cmp);
    println!("| users | users/s | GET filter p50 / p99 ms | POST p50 / p99 ms |");
    println!("|---|---|---|---|");
    let mut previous_end = 0.0;
    for tenth in 0..10 {
        let (lo, hi) = (tenth * n / 10, (tenth + 1) * n / 10);
        let done = (tenth + 1) * ends.len() / 10;
        let end = if done > 0 { ends[done - 1] } else { 0.0 };
        let count = done - tenth * ends.len() / 10;
        let rate = count as f64 / (end - previous_end).max(1e-9);
        previous_end = end;
        let within = |s: &&Sample| (lo..hi).contains(&s.item);
        let get: Vec<Sample> = filters.iter().filter(within).copied().collect();
        let post: Vec<Sample> = creates.iter().filter(within).copied().collect();
        let (get, post) = (latency(&get), latency(&post));
        println!(
            "| {}–{} | {rate:.1} | {:.2} / {:.2} | {:.2} / {:.2} |",
            lo + 1,
            hi,
            get.p50,
            get.p99,
            post.p50,
            post.p99
        );
    }
    let (cpu, database) = bench.cpu_per(users);
    bench.rows.push(Row {
        request:
            "fill: a user (GET `userName eq` + POST /Users): users/s, POST p50/p99, CPU per user"
                .into(),
        clients: WRITERS,
        count: users,
        rate: users as f64 / run.wall,
        latency: latency(&creates),
        cpu_us: cpu,
        database_us: database,
        write: true,
    });
    bench.rows.push(Row {
        request: "fill: the GET `userName eq` (no match) of each user".into(),
        clients: WRITERS,
        count: filters.len(),
        rate: filters.len() as f64 / run.wall,
        latency: latency(&filters),
        cpu_us: None,
        database_us: None,
        write: false,
    });
    Arc::try_unwrap(slots)
        .map(|slots| slots.into_iter().map(OnceLock::into_inner).collect())
        .unwrap_or_default()
}

const BIG: usize = 0;
const SMALL: usize = 1;

/// Phase 3: 50 groups created, then filled by PATCH in batches of 100. Returns the big group's
/// id.
async fn group_push(bench: &mut Bench, ids: &[String]) -> anyhow::Result<String> {
    let slots: Arc<Vec<OnceLock<String>>> =
        Arc::new((0..GROUPS).map(|_| OnceLock::new()).collect());
    let created = slots.clone();
    let run = bench
        .phase(
            "group create",
            WRITERS,
            Bound::Items(GROUPS),
            move |k, http, rec| {
                let created = created.clone();
                Box::pin(async move {
                    let name = if k == 0 {
                        "All staff".to_string()
                    } else {
                        format!("Group {k}")
                    };
                    let body = json!({"schemas": [GROUP], "displayName": name}).to_string();
                    let reply = http.send(Method::POST, "/scim/v2/Groups", Some(body)).await;
                    match (reply.status, id_of(&reply.body)) {
                        (201, Some(id)) => {
                            rec.success(0, k, &reply);
                            let _ = created[k].set(id);
                        }
                        _ => rec.fail(0, reply.status, reply.body),
                    }
                })
            },
        )
        .await;
    let groups: Vec<String> = slots.iter().filter_map(|s| s.get().cloned()).collect();
    if groups.len() != GROUPS {
        bail!("only {} of {GROUPS} groups were created", groups.len());
    }
    let create_latency = latency(&run.samples);

    // The plan: group 0 gets every user in order; group k ≥ 1 every 49th user from k - 1.
    let mut plan: Vec<Vec<String>> = Vec::with_capacity(GROUPS);
    plan.push(ids.chunks(BATCH).map(add_members).collect());
    for k in 1..GROUPS {
        let share: Vec<String> = ids
            .iter()
            .skip(k - 1)
            .step_by(GROUPS - 1)
            .cloned()
            .collect();
        plan.push(share.chunks(BATCH).map(add_members).collect());
    }
    let batches: usize = plan.iter().map(Vec::len).sum();
    let plan = Arc::new(plan);
    let targets = Arc::new(groups.clone());
    let run = bench
        .phase(
            "group push",
            WRITERS,
            Bound::Items(GROUPS),
            move |g, http, rec| {
                let (plan, targets) = (plan.clone(), targets.clone());
                Box::pin(async move {
                    let path = format!("/scim/v2/Groups/{}", targets[g]);
                    let kind = if g == 0 { BIG } else { SMALL };
                    for (b, body) in plan[g].iter().enumerate() {
                        let mut attempts = 0;
                        loop {
                            let reply = http.send(Method::PATCH, &path, Some(body.clone())).await;
                            if reply.status == 409 && attempts < PATCH_RETRIES {
                                attempts += 1;
                                rec.retried();
                                continue;
                            }
                            rec.expect(kind, b, reply, &[200, 204]);
                            break;
                        }
                    }
                })
            },
        )
        .await;
    let big = run.of(BIG);
    let small = run.of(SMALL);
    let span = |samples: &[Sample]| {
        let first = samples.iter().map(|s| s.start).fold(f64::MAX, f64::min);
        let last = samples.iter().map(Sample::end).fold(0.0, f64::max);
        (last - first).max(1e-9)
    };
    let all = run.samples.len();
    println!("\n### Group push: {GROUPS} groups, {batches} PATCH batches of {BATCH} members\n");
    println!(
        "{GROUPS} `POST /Groups` (p50 {:.2} ms, p99 {:.2} ms). Then every group's batches in \
         order, one group per client at a time, {WRITERS} clients: {all} PATCHes in {:.1} s, \
         **{:.1} PATCH/s** overall; {} failed, {} retried after 409.\n",
        create_latency.p50,
        create_latency.p99,
        run.wall,
        all as f64 / run.wall,
        run.failures.len(),
        run.retries
    );
    let (big_l, small_l) = (latency(&big), latency(&small));
    println!(
        "- \"All staff\" ({} members, one client, its batches in sequence): {} PATCHes in {:.1} s, \
         {:.1} PATCH/s, p50 {:.2} ms, p99 {:.2} ms.",
        ids.len(),
        big.len(),
        span(&big),
        big.len() as f64 / span(&big),
        big_l.p50,
        big_l.p99
    );
    println!(
        "- The 49 others (~{} members each, the other {} clients): {} PATCHes in {:.1} s, \
         {:.1} PATCH/s, p50 {:.2} ms, p99 {:.2} ms.",
        ids.len() / (GROUPS - 1),
        WRITERS - 1,
        small.len(),
        span(&small),
        small.len() as f64 / span(&small),
        small_l.p50,
        small_l.p99
    );
    let per_tenth = big.len().div_ceil(10).max(1);
    let tenths: Vec<String> = (0..10)
        .map(|t| {
            let part: Vec<Sample> = big
                .iter()
                .filter(|s| s.item / per_tenth == t)
                .copied()
                .collect();
            let l = latency(&part);
            format!("{:.2} / {:.2}", l.p50, l.p99)
        })
        .collect();
    println!(
        "- \"All staff\" PATCH p50 / p99 ms by tenth of its fill, empty to full: {}.",
        tenths.join(" · ")
    );
    let (cpu_us, database_us) = bench.cpu_per(all);
    bench.rows.push(Row {
        request: format!(
            "group push: PATCH +{BATCH} members, all {GROUPS} groups (one client per group)"
        ),
        clients: WRITERS,
        count: all,
        rate: all as f64 / run.wall,
        latency: latency(&run.samples),
        cpu_us,
        database_us,
        write: true,
    });
    bench.rows.push(Row {
        request: format!("group push: PATCH +{BATCH} into \"All staff\" (its one client)"),
        clients: 1,
        count: big.len(),
        rate: big.len() as f64 / span(&big),
        latency: big_l,
        cpu_us: None,
        database_us: None,
        write: true,
    });
    Ok(groups[0].clone())
}

/// Phase 4: a profile push, full PUT of every tenth user with a new title.
async fn profile_push(bench: &mut Bench, users: &Arc<Vec<(usize, String)>>) {
    let count = users.len().div_ceil(10);
    let targets = users.clone();
    let run = bench
        .phase(
            "profile push",
            WRITERS,
            Bound::Items(count),
            move |j, http, rec| {
                let targets = targets.clone();
                Box::pin(async move {
                    let (user, id) = &targets[(j * 10).min(targets.len() - 1)];
                    let mut body = okta_user(*user, "Senior Engineer");
                    body["id"] = id.clone().into();
                    let reply = http
                        .send(
                            Method::PUT,
                            &format!("/scim/v2/Users/{id}"),
                            Some(body.to_string()),
                        )
                        .await;
                    rec.expect(0, j, reply, &[200]);
                })
            },
        )
        .await;
    let l = latency(&run.samples);
    println!("\n### Profile push: full PUT of {count} users (10 %), {WRITERS} clients\n");
    println!(
        "{} PUTs in {:.1} s: **{:.1} PUT/s**, p50 {:.2} ms, p99 {:.2} ms; {} failed.",
        run.samples.len(),
        run.wall,
        run.samples.len() as f64 / run.wall,
        l.p50,
        l.p99,
        run.failures.len()
    );
    bench.row(
        "profile push: PUT /Users/{id} (whole Okta body, new title)",
        WRITERS,
        &run.samples,
        run.wall,
        true,
    );
}

/// Phase 5: the readers, one sub-phase per request.
async fn readers(bench: &mut Bench, users: &Arc<Vec<(usize, String)>>, big: &str) {
    let seconds = Duration::from_secs_f64(bench.options.readers_seconds);
    let n = users.len();
    println!("\n### Readers: {READERS} clients, {seconds:?} each\n");
    println!("| request | requests | req/s | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|---|");
    type PathOf = Arc<dyn Fn(usize) -> String + Send + Sync>;
    let by_id = users.clone();
    let by_name = users.clone();
    let big = big.to_string();
    let cases: Vec<(&str, PathOf, Option<u64>)> = vec![
        (
            "GET /Users/{id}",
            Arc::new(move |i| format!("/scim/v2/Users/{}", by_id[pick(i, n)].1)),
            None,
        ),
        (
            "GET /Users?filter=userName eq \"…\"",
            Arc::new(move |i| {
                let user = by_name[pick(i, n)].0;
                format!(
                    "/scim/v2/Users?filter={}",
                    encode(&format!("userName eq \"user{user}@example.com\""))
                )
            }),
            Some(1),
        ),
        (
            "GET /Users?startIndex=K&count=100",
            Arc::new(move |i| {
                let k = 1 + pick(i, n.saturating_sub(99).max(1));
                format!("/scim/v2/Users?startIndex={k}&count=100")
            }),
            None,
        ),
        (
            "GET /Groups/{All staff}?excludedAttributes=members",
            Arc::new(move |_| format!("/scim/v2/Groups/{big}?excludedAttributes=members")),
            None,
        ),
    ];
    for (name, path, expect_total) in cases {
        let run = bench
            .phase(
                &format!("readers: {name}"),
                READERS,
                Bound::For(seconds),
                move |i, http, rec| {
                    let path = path(i);
                    Box::pin(async move {
                        let reply = http.send(Method::GET, &path, None).await;
                        let right = reply.status == 200
                            && expect_total.is_none_or(|t| total_results(&reply.body) == Some(t));
                        if right {
                            rec.success(0, i, &reply);
                        } else {
                            rec.fail(0, reply.status, reply.body);
                        }
                    })
                },
            )
            .await;
        let l = latency(&run.samples);
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {} |",
            run.samples.len(),
            run.samples.len() as f64 / run.wall,
            l.p50,
            l.p99,
            run.failures.len()
        );
        bench.row(
            &format!("readers: {name}"),
            READERS,
            &run.samples,
            run.wall,
            false,
        );
    }
}

/// Phase 6: the bare axum server, the same clients, the same durations. Returns the GET and the
/// POST rows.
async fn ceiling(
    bench: &mut Bench,
    token: &str,
    dir: &std::path::Path,
) -> anyhow::Result<[Row; 2]> {
    let mut bare = Server::bare(&dir.join("bare.log")).await?;
    let pool = Pool::new(&bare.base, token, READERS);
    let meter = Meter::new(bare.pid, None);
    let seconds = Duration::from_secs_f64(bench.options.readers_seconds);
    let users = bench.options.users;
    // Memory figures of these phases are the bare server's.
    bench.meter.server_pid = bare.pid;
    let mut rows = Vec::new();
    for (write, clients) in [(false, READERS), (true, WRITERS)] {
        let label = if write {
            "ceiling: POST (bare axum)"
        } else {
            "ceiling: GET (bare axum)"
        };
        eprintln!("{label}: {clients} clients");
        let before = meter.snapshot();
        let run = pool
            .run(label, clients, Bound::For(seconds), move |i, http, rec| {
                Box::pin(async move {
                    let user = 1 + pick(i, users);
                    let reply = if write {
                        let body = okta_user(user, "Engineer").to_string();
                        http.send(Method::POST, "/scim/v2/Users", Some(body)).await
                    } else {
                        http.send(Method::GET, &format!("/scim/v2/Users/{user}"), None)
                            .await
                    };
                    rec.expect(0, i, reply, if write { &[201] } else { &[200] });
                })
            })
            .await;
        let after = meter.snapshot();
        bench.account(label, &run, before, after, false);
        let (cpu_us, _) = bench.cpu_per(run.samples.len());
        rows.push(Row {
            request: label.to_string(),
            clients,
            count: run.samples.len(),
            rate: run.samples.len() as f64 / run.wall,
            latency: latency(&run.samples),
            cpu_us,
            database_us: None,
            write,
        });
    }
    bare.stop();
    let post = rows.pop().expect("two rows");
    let get = rows.pop().expect("two rows");
    Ok([get, post])
}

fn ratio(value: f64, ceiling: f64) -> String {
    if ceiling <= 0.0 || !value.is_finite() {
        return "–".into();
    }
    let r = value / ceiling;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

fn print_table(bench: &Bench, ceiling: &[Row; 2]) {
    println!("\n### Summary\n");
    println!(
        "In parentheses: the figure divided by the same figure of the bare axum ceiling \
         (reads against its GET with {READERS} clients, writes against its POST with \
         {WRITERS} clients). Server CPU is the `switchboard` process's user + system time over \
         the phase (its outbox worker writing the invitation mails included) per request{}.\n",
        if bench.postgres {
            "; PostgreSQL CPU is that of the backends connected to the bench database"
        } else {
            ""
        }
    );
    let mut columns = vec![
        "request",
        "clients",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
    ];
    if bench.postgres {
        columns.push("PostgreSQL CPU µs/req");
    }
    table_header(&columns);
    for row in bench.rows.iter().chain(ceiling.iter()) {
        let c = &ceiling[usize::from(row.write)];
        let cpu = match (row.cpu_us, c.cpu_us) {
            (Some(us), Some(base)) => format!("{us:.0} ({})", ratio(us, base)),
            _ => "–".into(),
        };
        let mut line = format!(
            "| {} | {} | {} | {:.1} ({}) | {:.2} ({}) | {:.2} ({}) | {cpu} |",
            row.request,
            row.clients,
            row.count,
            row.rate,
            ratio(row.rate, c.rate),
            row.latency.p50,
            ratio(row.latency.p50, c.latency.p50),
            row.latency.p99,
            ratio(row.latency.p99, c.latency.p99),
        );
        if bench.postgres {
            let _ = write!(
                line,
                " {} |",
                row.database_us.map_or("–".into(), |us| format!("{us:.0}"))
            );
        }
        println!("{line}");
    }
}

/// A Markdown table's header and separator lines.
fn table_header(columns: &[&str]) {
    println!("| {} |", columns.join(" | "));
    println!("|{}", "---|".repeat(columns.len()));
}

fn print_usage(bench: &Bench) {
    println!("\n### CPU and memory by phase\n");
    println!(
        "Cores busy = CPU seconds / wall seconds (the machine has {}); *other* is every other \
         process on the machine (from `/proc/stat`): well above zero, the run was disturbed. \
         Memory: the server's `VmHWM` (peak RSS since start) and `VmRSS` after the phase. \
         Mails: `.eml` files the outbox worker had written by then.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let pg = bench.postgres;
    let mut columns = vec!["phase", "wall s", "requests", "server cores"];
    if pg {
        columns.push("PostgreSQL cores");
    }
    columns.extend([
        "load generator cores",
        "load generator µs/req",
        "other cores",
        "VmHWM MiB",
        "VmRSS MiB",
        "mails",
        "log WARN/ERROR",
    ]);
    table_header(&columns);
    for u in &bench.usage {
        let wall = u.wall.max(1e-9);
        let mib = |m: Option<f64>| m.map_or("–".into(), |m| format!("{m:.0}"));
        println!(
            "| {} | {:.2} | {} | {:.2} |{} {:.2} | {:.0} | {:.2} | {} | {} | {} | {} |",
            u.phase,
            u.wall,
            u.requests,
            u.server / wall,
            if pg {
                format!(" {:.2} |", u.database / wall)
            } else {
                String::new()
            },
            u.loadgen / wall,
            u.loadgen * 1e6 / u.requests.max(1) as f64,
            u.other / wall,
            mib(u.hwm),
            mib(u.rss),
            u.mails.map_or("–".into(), |m| m.to_string()),
            u.warnings.map_or("–".into(), |w| w.to_string())
        );
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("switchboard-sync-{}", uuid::Uuid::new_v4()));
    let mail_dir = dir.join("mail");
    std::fs::create_dir_all(&mail_dir)?;
    let database = Database::create(options.postgres.as_deref(), &dir).await?;
    let keep = options.keep;
    let result = run_on(options, &database, &dir, &mail_dir).await;
    if let Err(e) = database.drop_database().await {
        eprintln!("could not drop the bench database: {e:#}");
    }
    if result.is_ok() && !keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!(
            "kept {} (SQLite database, mails, server log)",
            dir.display()
        );
    }
    result
}

async fn run_on(
    options: Options,
    database: &Database,
    dir: &std::path::Path,
    mail_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let url = &database.url;
    procs::cli(url, &["migrate"])?;
    procs::cli(url, &["account", "create", "default"])?;
    let token = procs::cli(
        url,
        &[
            "token",
            "create",
            "--account",
            "default",
            "--role",
            "super-admin",
        ],
    )?;
    let mut server = Server::switchboard(url, mail_dir, &dir.join("server.log")).await?;
    let n = options.users;

    let date = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    println!("## First sync: {}, {n} users\n", database.label);
    println!("- **Date**: {date}");
    println!("- **Machine**: {}", procs::machine());
    println!("- **Commit**: {}", procs::commit());
    println!(
        "- **Backend**: {}",
        match (&database.version, &database.postgres_name) {
            (Some(version), Some(name)) =>
                format!("PostgreSQL {version}, fresh database `{name}` (dropped at the end)"),
            _ => "SQLite, a fresh file in a temporary directory".into(),
        }
    );
    println!(
        "- **Server**: the release `switchboard serve` binary as a child process (pid {}), \
         prepared with `migrate`, `account create default` and `token create --role \
         super-admin`; defaults (logs at info to a file, no rate limit); invitation mails to \
         `.eml` files by its outbox worker, whose CPU counts as the server's.",
        server.pid
    );
    println!(
        "- **Load**: this binary, reqwest with one keep-alive connection per client, on the \
         same cores; {WRITERS} clients for writes, {READERS} for reads. Load generator and \
         servers run at nice {}.",
        procs::niceness().map_or("?".into(), |n| n.to_string())
    );

    let mut bench = Bench {
        pool: Pool::new(&server.base, &token, READERS),
        meter: Meter::new(server.pid, database.postgres_name.clone()),
        mail_dir: mail_dir.to_path_buf(),
        log: Some((server.log.clone(), 0)),
        postgres: database.postgres_name.is_some(),
        options,
        rows: Vec::new(),
        usage: Vec::new(),
        failures: Vec::new(),
    };

    // Phase 1: the operator widens the extension range.
    let http = bench.pool.one().clone();
    let reply = http
        .send(Method::GET, "/admin/v1/account/policy", None)
        .await;
    if reply.status != 200 {
        bail!(
            "GET /admin/v1/account/policy: {} {}",
            reply.status,
            reply.body
        );
    }
    let mut policy: Value = serde_json::from_str(&reply.body)?;
    let before = format!("{}–{}", policy["extensionFirst"], policy["extensionLast"]);
    policy["extensionFirst"] = 100_000.into();
    policy["extensionLast"] = (100_000 + 2 * n).min(999_999_999).into();
    let reply = http
        .send(
            Method::PUT,
            "/admin/v1/account/policy",
            Some(policy.to_string()),
        )
        .await;
    if reply.status != 200 {
        bail!(
            "PUT /admin/v1/account/policy: {} {}",
            reply.status,
            reply.body
        );
    }
    let policy: Value = serde_json::from_str(&reply.body)?;
    println!(
        "\nAdmin set-up: extension range {before} widened to {}–{} (`PUT /admin/v1/account/policy`).",
        policy["extensionFirst"], policy["extensionLast"]
    );

    // Phase 2.
    let ids = fill(&mut bench).await;
    let users: Vec<(usize, String)> = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| id.clone().map(|id| (i + 1, id)))
        .collect();
    if users.is_empty() {
        bail!("no user was created");
    }
    let sample = http
        .send(Method::GET, &format!("/scim/v2/Users/{}", users[0].1), None)
        .await;
    let extension = serde_json::from_str::<Value>(&sample.body)
        .ok()
        .and_then(|u| {
            u.as_object()?
                .iter()
                .find(|(k, _)| k.starts_with("urn:switchboard"))
                .map(|(_, v)| v["extensionNumber"].clone())
        })
        .unwrap_or(Value::Null);
    println!(
        "\nUser 1 as the server renders it: {} bytes, extension {extension} (allocated).",
        sample.body.len()
    );
    check_alive(&mut server)?;

    // Phase 3.
    let all_ids: Vec<String> = users.iter().map(|(_, id)| id.clone()).collect();
    let big = group_push(&mut bench, &all_ids).await?;
    check_alive(&mut server)?;

    // Phase 4, 5.
    let users = Arc::new(users);
    profile_push(&mut bench, &users).await;
    check_alive(&mut server)?;
    readers(&mut bench, &users, &big).await;
    check_alive(&mut server)?;

    let mails = procs::mails(mail_dir);
    server.stop();
    bench.log = None;
    let problems = procs::log_problems(&server.log);
    let log_size = std::fs::metadata(&server.log).map_or(0, |m| m.len());

    // Phase 6, with the real server stopped.
    let ceiling = ceiling(&mut bench, &token, dir).await?;

    print_table(&bench, &ceiling);
    print_usage(&bench);
    println!(
        "\nMails written by the outbox worker by the end: {mails} of {} users created. \
         Server log: {:.1} MiB, {} lines at WARN or ERROR{}",
        ids.iter().flatten().count(),
        log_size as f64 / 1024.0 / 1024.0,
        problems.iter().map(|p| p.0).sum::<usize>(),
        if problems.is_empty() { "." } else { ":\n" }
    );
    for (count, message, example) in &problems {
        println!("- {count} × `{message}`, e.g.\n\n      {example}\n");
    }
    if !bench.failures.is_empty() {
        println!("\nFirst failures:\n");
        for failure in &bench.failures {
            println!("- {failure}");
        }
    }
    Ok(())
}

fn check_alive(server: &mut Server) -> anyhow::Result<()> {
    if server.alive() {
        Ok(())
    } else {
        bail!(
            "the server died; the end of its log:\n{}",
            std::fs::read_to_string(&server.log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(procs::BARE_SERVER_ARG) {
        let port = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if let Err(e) = procs::serve_bare(port) {
            eprintln!("bare server: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(options)) {
        eprintln!("sync benchmark failed: {e:#}");
        std::process::exit(1);
    }
}
