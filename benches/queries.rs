//! Query benchmark: the lookups IdPs and scripts make, over HTTP against the real server, on a
//! database of N users (default 100,000), on SQLite and — with `--postgres URL` — PostgreSQL.
//!
//!     cargo bench --bench queries                      # SQLite, 100,000 users
//!     cargo bench --bench queries -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//!     cargo bench --bench queries -- --users 20000 --requests 500
//!
//! Prints a Markdown table (latency p50 / p99 of sequential requests, and throughput with 8
//! concurrent clients) to paste into BENCHMARKS.md. Loopback only, bounded in count and time.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Bench, Options, encode, ids, median, seed};

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

async fn run(options: Options) {
    let (bench, store, label) = common::start(&options).await;
    seed(&store, options.users).await;
    let ids = Arc::new(ids(&store, options.users).await);
    let users = options.users;
    let n = options.requests;

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
    let options = common::options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}
