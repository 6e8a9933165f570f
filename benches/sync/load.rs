//! The load generator: `clients` worker tasks, each with its own keep-alive connection, pulling
//! work items from one shared atomic counter until the items or the time run out. Every
//! request's latency is recorded (start offset and duration); an unexpected status is a counted
//! failure (the first few bodies are kept for the report), never a panic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;

/// The future a work item runs; it borrows the worker's connection and recorder.
pub type WorkFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One connection (a `reqwest::Client` of its own, so `clients` workers hold exactly `clients`
/// keep-alive connections) to one server, with the bearer token it sends.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: Arc<str>,
    token: Arc<str>,
}

/// What one request got back. `status` 0 is a transport error (its text is the body).
pub struct Reply {
    pub status: u16,
    pub body: String,
    started: Instant,
    latency: Duration,
}

impl Http {
    pub fn new(base: &str, token: &str) -> Http {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client");
        Http {
            client,
            base: base.into(),
            token: token.into(),
        }
    }

    /// `path` is absolute on the server (`/scim/v2/Users?…`). The latency includes reading the
    /// whole response body.
    pub async fn send(&self, method: Method, path: &str, body: Option<String>) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&*self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body);
        }
        let started = Instant::now();
        let (status, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(text) => (status, text),
                    Err(e) => (0, format!("reading the body: {e}")),
                }
            }
            Err(e) => (0, format!("{e}")),
        };
        Reply {
            status,
            body,
            started,
            latency: started.elapsed(),
        }
    }
}

/// One successful request: what it was (`kind`, the phase's own numbering), which work item
/// (or batch) it served, when it started after the phase began and how long it took (seconds).
#[derive(Clone, Copy)]
pub struct Sample {
    pub kind: usize,
    pub item: usize,
    pub start: f64,
    pub latency: f64,
}

impl Sample {
    pub fn end(&self) -> f64 {
        self.start + self.latency
    }
}

pub struct Failure {
    pub kind: usize,
    pub status: u16,
    pub body: String,
}

/// What one worker saw; merged into a [`Run`] at the end of the phase.
pub struct Recorder {
    phase_start: Instant,
    samples: Vec<Sample>,
    failures: Vec<Failure>,
    retries: usize,
}

impl Recorder {
    fn new(phase_start: Instant) -> Recorder {
        Recorder {
            phase_start,
            samples: Vec::new(),
            failures: Vec::new(),
            retries: 0,
        }
    }

    /// Records `reply` as a success of `kind` when its status is one of `expected`, else as a
    /// failure; returns it on success.
    pub fn expect(
        &mut self,
        kind: usize,
        item: usize,
        reply: Reply,
        expected: &[u16],
    ) -> Option<Reply> {
        if expected.contains(&reply.status) {
            self.success(kind, item, &reply);
            Some(reply)
        } else {
            self.fail(kind, reply.status, reply.body);
            None
        }
    }

    pub fn success(&mut self, kind: usize, item: usize, reply: &Reply) {
        self.samples.push(Sample {
            kind,
            item,
            start: reply
                .started
                .saturating_duration_since(self.phase_start)
                .as_secs_f64(),
            latency: reply.latency.as_secs_f64(),
        });
    }

    /// A request whose status was right but whose content was not (or that failed).
    pub fn fail(&mut self, kind: usize, status: u16, body: String) {
        self.failures.push(Failure { kind, status, body });
    }

    /// A request repeated after a retryable answer (counted, not a failure).
    pub fn retried(&mut self) {
        self.retries += 1;
    }
}

/// Everything the workers of one phase recorded.
pub struct Run {
    pub wall: f64,
    pub samples: Vec<Sample>,
    pub failures: Vec<Failure>,
    pub retries: usize,
}

impl Run {
    pub fn of(&self, kind: usize) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|s| s.kind == kind)
            .copied()
            .collect()
    }

    pub fn failures_of(&self, kind: usize) -> usize {
        self.failures.iter().filter(|f| f.kind == kind).count()
    }
}

/// The connections of all workers to one server.
pub struct Pool {
    connections: Vec<Http>,
}

/// How much work a phase does: a number of items, or as many as fit in a duration.
#[derive(Clone, Copy)]
pub enum Bound {
    Items(usize),
    For(Duration),
}

impl Pool {
    pub fn new(base: &str, token: &str, size: usize) -> Pool {
        Pool {
            connections: (0..size).map(|_| Http::new(base, token)).collect(),
        }
    }

    /// The first connection, for the sequential set-up requests.
    pub fn one(&self) -> &Http {
        &self.connections[0]
    }

    /// Runs `work(item, connection, recorder)` for items 0, 1, 2, … on `clients` concurrent
    /// workers, each item exactly once, until `bound`. A timed phase lets the items in flight at
    /// the deadline finish. Progress goes to stderr every 15 s, under `label`.
    pub async fn run<F>(&self, label: &str, clients: usize, bound: Bound, work: F) -> Run
    where
        F: for<'a> Fn(usize, &'a Http, &'a mut Recorder) -> WorkFuture<'a> + Send + Sync + 'static,
    {
        assert!(clients <= self.connections.len(), "not enough connections");
        let work = Arc::new(work);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = match bound {
            Bound::For(duration) => Some(started + duration),
            Bound::Items(_) => None,
        };
        let items = match bound {
            Bound::Items(n) => n,
            Bound::For(_) => usize::MAX,
        };
        let progress = {
            let next = next.clone();
            let label = label.to_string();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                    let started_items = next.load(Ordering::Relaxed).min(items);
                    let total = if items == usize::MAX {
                        String::new()
                    } else {
                        format!(" of {items}")
                    };
                    eprintln!(
                        "  {label}: {started_items}{total} items started after {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            })
        };
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..clients {
            let http = self.connections[worker].clone();
            let work = work.clone();
            let next = next.clone();
            tasks.spawn(async move {
                let mut recorder = Recorder::new(started);
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let item = next.fetch_add(1, Ordering::Relaxed);
                    if item >= items {
                        break;
                    }
                    work(item, &http, &mut recorder).await;
                }
                recorder
            });
        }
        let mut run = Run {
            wall: 0.0,
            samples: Vec::new(),
            failures: Vec::new(),
            retries: 0,
        };
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(recorder) => {
                    run.samples.extend(recorder.samples);
                    run.failures.extend(recorder.failures);
                    run.retries += recorder.retries;
                }
                Err(e) => run.failures.push(Failure {
                    kind: usize::MAX,
                    status: 0,
                    body: format!("a worker task failed: {e}"),
                }),
            }
        }
        run.wall = started.elapsed().as_secs_f64();
        progress.abort();
        run
    }
}

/// p50 / p99 of some samples' latencies, in milliseconds.
#[derive(Clone, Copy, Default)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

pub fn latency(samples: &[Sample]) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    let mut ms: Vec<f64> = samples.iter().map(|s| s.latency * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// A deterministic pseudo-random number for `seed` (SplitMix64): the same run picks the same
/// users every time, without a generator shared between workers.
pub fn pick(seed: usize, below: usize) -> usize {
    let mut z = (seed as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % below.max(1) as u64) as usize
}

/// Percent-encoding of a query-string value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
