//! Group benchmark: one group filled to N members (default 100,000) in PATCH batches of 100, then
//! single-member adds and removes in that group against the same in an empty group. The cost of
//! a membership change must not grow with the group.
//!
//!     cargo bench --bench groups                      # SQLite
//!     cargo bench --bench groups -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//!     cargo bench --bench groups -- --users 20000 --requests 200
//!
//! Loopback only, bounded in count and time.

mod common;

use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use common::{Options, ids, median, percentile, seed};

const BATCH: usize = 100;
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn add(ids: &[String]) -> serde_json::Value {
    let values: Vec<_> = ids.iter().map(|id| json!({"value": id})).collect();
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": values}]})
}

fn remove(id: &str) -> serde_json::Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})
}

async fn group(bench: &common::Bench, name: &str) -> String {
    let (_, body) = bench
        .send(Method::POST, "/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}))
        .await;
    body["id"].as_str().unwrap().to_string()
}

/// p50 / p99 (ms) of adding then removing one member, `n` times each.
async fn one_member(
    bench: &common::Bench,
    group: &str,
    spare: &[String],
    n: usize,
) -> (f64, f64, f64, f64) {
    let mut adds = Vec::with_capacity(n);
    let mut removes = Vec::with_capacity(n);
    for i in 0..n {
        let user = &spare[i % spare.len()];
        let started = Instant::now();
        bench
            .send(
                Method::PATCH,
                &format!("/Groups/{group}"),
                &add(std::slice::from_ref(user)),
            )
            .await;
        adds.push(started.elapsed());
        let started = Instant::now();
        bench
            .send(Method::PATCH, &format!("/Groups/{group}"), &remove(user))
            .await;
        removes.push(started.elapsed());
    }
    (
        percentile(&mut adds, 0.5),
        percentile(&mut adds, 0.99),
        percentile(&mut removes, 0.5),
        percentile(&mut removes, 0.99),
    )
}

async fn run(options: Options) {
    let (bench, store, label) = common::start(&options).await;
    let members = options.users;
    let spare_count = 1_000;
    seed(&store, members + spare_count).await;
    let all = ids(&store, members + spare_count).await;
    let (fill, spare) = all.split_at(members);
    let big = group(&bench, "Big").await;
    let empty = group(&bench, "Empty").await;

    let started = Instant::now();
    let mut batches: Vec<f64> = Vec::with_capacity(members / BATCH);
    for chunk in fill.chunks(BATCH) {
        let t = Instant::now();
        let (status, _) = bench
            .send(Method::PATCH, &format!("/Groups/{big}"), &add(chunk))
            .await;
        assert_eq!(status, 204);
        batches.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let fill_time = started.elapsed();
    let n = batches.len();
    let mut first10 = batches[..10.min(n)].to_vec();
    let mut last10 = batches[n.saturating_sub(10)..].to_vec();
    let (first, last) = (batches[0], batches[n - 1]);
    let (first_median, last_median) = (median(&mut first10), median(&mut last10));

    let requests = options.requests.min(1000);
    let (big_add50, big_add99, big_rm50, big_rm99) =
        one_member(&bench, &big, spare, requests).await;
    let (empty_add50, empty_add99, empty_rm50, empty_rm99) =
        one_member(&bench, &empty, spare, requests).await;

    println!("\n### {label}: one group filled to {members} members\n");
    println!(
        "Filled in {n} PATCH batches of {BATCH} in {:.1}s. First batch {first:.2} ms, last batch {last:.2} ms; \
         median of the first 10 batches {first_median:.2} ms, of the last 10 {last_median:.2} ms (ratio {:.2}).\n",
        fill_time.as_secs_f64(),
        last_median / first_median
    );
    let deciles: Vec<String> = batches
        .chunks(n.div_ceil(10))
        .map(|chunk| format!("{:.2}", median(&mut chunk.to_vec())))
        .collect();
    println!(
        "Median batch latency (ms) by tenth of the fill, from empty to full: {}.\n",
        deciles.join(" · ")
    );
    println!("| one-member PATCH ({requests} each) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!("| add to the {members}-member group | {big_add50:.2} | {big_add99:.2} |");
    println!(
        "| remove (`members[value eq …]`) from the {members}-member group | {big_rm50:.2} | {big_rm99:.2} |"
    );
    println!("| add to an empty group | {empty_add50:.2} | {empty_add99:.2} |");
    println!("| remove from a one-member group | {empty_rm50:.2} | {empty_rm99:.2} |");
}

fn main() {
    let options = common::options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}
