//! The one load loop that drives both systems: N concurrent clients, each with its own
//! connection, writing fresh keys with distinct 1 KiB values until a count or a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Client, RequestBuilder};
use serde::Serialize;

/// Size of every stored value.
pub const VALUE_BYTES: usize = 1024;

/// A system under test, seen as "put a fresh key" and "list everything".
pub trait Target: Send + Sync {
    /// A new client with its own connection pool (one per simulated client).
    fn client(&self) -> anyhow::Result<Client>;
    /// A cheap request that opens the client's connection before timing starts.
    fn warm_up(&self, client: &Client) -> RequestBuilder;
    /// Stores `value` under a key derived from `name` (fresh for every call).
    fn put(&self, client: &Client, name: &str, value: &[u8]) -> RequestBuilder;
    /// Reads every key stored by `put`, values included.
    fn list(&self, client: &Client) -> RequestBuilder;
    /// How many objects a `list` response body holds.
    fn listed_items(&self, body: &[u8]) -> anyhow::Result<usize>;
}

/// Outcome of one put loop.
#[derive(Debug, Clone, Serialize)]
pub struct PutStats {
    pub concurrency: usize,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub first_error: Option<String>,
    /// Rate of every round at this level (this record is the median round).
    pub round_rates: Vec<f64>,
}

/// Bounds of a put loop: keys `start..end`, stopping early at `deadline`.
#[derive(Debug, Clone)]
pub struct PutPlan {
    pub prefix: String,
    pub concurrency: usize,
    pub start: u64,
    pub end: u64,
    pub max_duration: Duration,
}

struct WorkerOutcome {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    last_done: Option<Instant>,
    first_error: Option<String>,
}

/// Opens `n` clients and one connection on each, so that timing excludes handshakes.
pub async fn warm_clients(target: &dyn Target, n: usize) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let client = target.client()?;
        let resp = target
            .warm_up(&client)
            .send()
            .await
            .context("warm-up request")?;
        if !resp.status().is_success() {
            bail!("warm-up request answered {}", resp.status());
        }
        let _ = resp.bytes().await;
        clients.push(client);
    }
    Ok(clients)
}

/// Runs `plan.concurrency` writers over fresh keys and reports the successful put rate.
pub async fn run_puts(target: Arc<dyn Target>, plan: &PutPlan) -> anyhow::Result<PutStats> {
    let clients = warm_clients(target.as_ref(), plan.concurrency).await?;
    let next = Arc::new(AtomicU64::new(plan.start));
    let started = Instant::now();
    let deadline = started + plan.max_duration;
    let mut workers = Vec::with_capacity(clients.len());
    for client in clients {
        let target = target.clone();
        let next = next.clone();
        let prefix = plan.prefix.clone();
        let end = plan.end;
        workers.push(tokio::spawn(async move {
            put_worker(target, client, next, prefix, end, deadline).await
        }));
    }
    let mut outcomes = Vec::with_capacity(workers.len());
    for w in workers {
        outcomes.push(w.await.context("put worker panicked")?);
    }
    let last = outcomes
        .iter()
        .filter_map(|o| o.last_done)
        .max()
        .unwrap_or(started);
    let seconds = last.duration_since(started).as_secs_f64();
    let ok: u64 = outcomes.iter().map(|o| o.ok).sum();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let first_error = outcomes.iter().find_map(|o| o.first_error.clone());
    let mut latencies: Vec<u32> = outcomes.into_iter().flat_map(|o| o.latencies_us).collect();
    latencies.sort_unstable();
    let per_second = if seconds > 0.0 {
        ok as f64 / seconds
    } else {
        0.0
    };
    Ok(PutStats {
        concurrency: plan.concurrency,
        ok,
        errors,
        seconds,
        per_second,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        first_error,
        round_rates: vec![per_second],
    })
}

async fn put_worker(
    target: Arc<dyn Target>,
    client: Client,
    next: Arc<AtomicU64>,
    prefix: String,
    end: u64,
    deadline: Instant,
) -> WorkerOutcome {
    let mut out = WorkerOutcome {
        ok: 0,
        errors: 0,
        latencies_us: Vec::new(),
        last_done: None,
        first_error: None,
    };
    let mut value = vec![0u8; VALUE_BYTES];
    loop {
        if Instant::now() >= deadline {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= end {
            break;
        }
        let name = format!("{prefix}-{i}");
        fill_value(i, &mut value);
        let sent = Instant::now();
        let result = target.put(&client, &name, &value).send().await;
        let error = match result {
            Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                Ok(_) => None,
                Err(e) => Some(format!("reading response: {e}")),
            },
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                Some(format!("{status}: {}", truncate(&body, 300)))
            }
            Err(e) => Some(format!("{e}")),
        };
        let done = Instant::now();
        out.last_done = Some(done);
        match error {
            None => {
                out.ok += 1;
                let us = done.duration_since(sent).as_micros();
                out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Some(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

/// Outcome of timing full lists.
#[derive(Debug, Clone, Serialize)]
pub struct ListStats {
    pub stored: u64,
    pub items: usize,
    pub response_bytes: usize,
    pub runs_seconds: Vec<f64>,
    pub median_seconds: f64,
}

/// Times `runs` full lists (status checked, whole body read) on one warm client.
pub async fn time_lists(
    target: &dyn Target,
    stored: u64,
    runs: usize,
) -> anyhow::Result<ListStats> {
    let client = warm_clients(target, 1).await?.pop().context("no client")?;
    let mut runs_seconds = Vec::with_capacity(runs);
    let mut items = 0;
    let mut response_bytes = 0;
    for run in 0..runs.max(1) {
        let started = Instant::now();
        let resp = target.list(&client).send().await.context("list request")?;
        let status = resp.status();
        let body = resp.bytes().await.context("reading list response")?;
        let seconds = started.elapsed().as_secs_f64();
        if !status.is_success() {
            bail!(
                "list answered {status}: {}",
                truncate(&String::from_utf8_lossy(&body), 300)
            );
        }
        if run == 0 {
            items = target.listed_items(&body)?;
            response_bytes = body.len();
            if (items as u64) < stored {
                bail!("list returned {items} objects, {stored} were stored");
            }
        }
        runs_seconds.push(seconds);
    }
    let mut sorted = runs_seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median_seconds = sorted[sorted.len() / 2];
    Ok(ListStats {
        stored,
        items,
        response_bytes,
        runs_seconds,
        median_seconds,
    })
}

/// A distinct printable value per key (so no store can deduplicate or trivially compress it).
pub fn fill_value(seed: u64, buf: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = ALPHABET[((r >> (j * 6)) & 63) as usize];
        }
    }
}

fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_us.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted_us[idx.min(sorted_us.len() - 1)]) / 1000.0
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_printable_and_distinct_per_key() {
        let mut a = vec![0u8; VALUE_BYTES];
        let mut b = vec![0u8; VALUE_BYTES];
        fill_value(1, &mut a);
        fill_value(2, &mut b);
        assert_ne!(a, b);
        assert!(
            a.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        );
        let mut again = vec![0u8; VALUE_BYTES];
        fill_value(1, &mut again);
        assert_eq!(a, again);
    }

    #[test]
    fn percentiles_pick_from_sorted_latencies() {
        let us: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.5), 51.0);
        assert_eq!(percentile_ms(&us, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
