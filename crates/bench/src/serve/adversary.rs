//! What `lanceflow-bench serve` adds to measure the service under attack and
//! under storage faults: a client sending adversarial bodies next to the
//! measured load, a check of every answer against the engine's own, and the
//! control of a fault-injecting S3 proxy (scripts/s3_fault_proxy.py).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use hyper::body::Bytes;
use lanceflow::search::retrieval::{RetrievalHit, RetrievalResponse};
use serde::Serialize;

use super::client::{authority, Client};

/// The bodies the adversary sends in turn: the probes that once aborted or
/// tied up the server, and malformed input of every kind. Each must get a
/// 4xx (or 503 / 504) with a JSON body.
pub(super) fn bodies(dim: usize) -> Vec<(&'static str, Bytes)> {
    let json = |v: serde_json::Value| Bytes::from(v.to_string());
    let vector = vec![0.01f32; dim];
    let or_chain = vec!["pos='x'"; 60_000].join(" OR ");
    vec![
        (
            "k × refine_factor past the bound",
            json(serde_json::json!({
                "vector": vector, "k": 10_000, "nprobes": 1, "refine_factor": 4_294_967_295u64,
            })),
        ),
        (
            "60,000-term OR filter",
            json(serde_json::json!({"query": "water", "filter": or_chain})),
        ),
        (
            "filter allocating 100,000 × each text",
            json(
                serde_json::json!({"query": "water", "filter": "length(repeat(text, 100000)) > 0"}),
            ),
        ),
        (
            "filter with trailing text",
            json(serde_json::json!({"query": "water", "filter": "pos = 'n'; DELETE FROM t"})),
        ),
        (
            "k of 10^12",
            json(serde_json::json!({"query": "water", "k": 1_000_000_000_000u64})),
        ),
        (
            "vector of 100,000 numbers",
            json(serde_json::json!({"vector": vec![0.5f32; 100_000]})),
        ),
        (
            "query of 100,000 characters",
            json(serde_json::json!({"query": "a".repeat(100_000)})),
        ),
        (
            "5,000 columns",
            json(serde_json::json!({
                "query": "water",
                "columns": (0..5_000).map(|i| format!("c{i}")).collect::<Vec<_>>(),
            })),
        ),
        (
            "arrays nested 100,000 deep",
            Bytes::from("[".repeat(100_000)),
        ),
        (
            "invalid UTF-8",
            Bytes::from_static(b"{\"query\": \"\xff\xfe\"}"),
        ),
        ("empty body", Bytes::new()),
        ("null", Bytes::from_static(b"null")),
        (
            "unknown mode",
            json(serde_json::json!({"query": "water", "mode": "everything"})),
        ),
        (
            "negative nprobes",
            json(serde_json::json!({"query": "water", "nprobes": -1})),
        ),
    ]
}

/// What the adversary saw.
#[derive(Debug, Default, Serialize)]
pub(super) struct AdversaryReport {
    /// Requests sent.
    pub sent: usize,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, usize>,
    /// Answers breaking the promise (a status other than 4xx, 503 or 504, or
    /// a body that is not JSON), with the body's name.
    pub broken: Vec<String>,
    /// Requests whose connection closed without an answer (the server may
    /// close after refusing a body; the client reconnects).
    pub connection_errors: usize,
}

/// Send `bodies` in turn on one keep-alive connection until `stop`.
pub(super) async fn adversary(
    authority: String,
    authorization: Option<String>,
    bodies: Vec<(&'static str, Bytes)>,
    stop: Arc<AtomicBool>,
) -> AdversaryReport {
    let mut report = AdversaryReport::default();
    let mut client = None;
    for (name, body) in bodies.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if client.is_none() {
            match Client::connect(&authority, authorization.clone()).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    report.broken.push(format!("{name}: cannot connect: {e:#}"));
                    break;
                }
            }
        }
        let Some(c) = client.as_mut() else { break };
        report.sent += 1;
        match c.post("/v1/search", body.clone()).await {
            Ok((status, answer)) => {
                *report.statuses.entry(status.as_u16()).or_default() += 1;
                let allowed = status.is_client_error() || matches!(status.as_u16(), 503 | 504);
                let json = serde_json::from_slice::<serde_json::Value>(&answer).is_ok();
                if !allowed || !json {
                    report.broken.push(format!("{name}: {status}"));
                }
            }
            Err(_) => {
                report.connection_errors += 1;
                client = None;
            }
        }
    }
    report
}

/// A search's answer as compared: hits by row id (the order of hits at
/// equal distance may differ), with their fields, and the version.
#[derive(Debug, PartialEq)]
pub(super) struct Answer {
    version: u64,
    hits: HashMap<u64, serde_json::Map<String, serde_json::Value>>,
}

impl Answer {
    pub(super) fn of(response: RetrievalResponse) -> Self {
        Self {
            version: response.version,
            hits: response
                .hits
                .into_iter()
                .map(|RetrievalHit { row_id, fields, .. }| (row_id, fields))
                .collect(),
        }
    }
}

/// The fault proxy's control path, for one bucket.
pub(super) struct FaultProxy {
    authority: String,
    bucket: String,
}

impl FaultProxy {
    /// `url` is the proxy (http://HOST:PORT); `dataset` the served s3:// URI.
    pub(super) fn new(url: &str, dataset: &str) -> Result<Self> {
        let bucket = dataset
            .strip_prefix("s3://")
            .and_then(|rest| rest.split('/').next())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                lanceflow::Error::InvalidInput(format!(
                    "--fault-proxy needs an s3:// --dataset served through the proxy, not \
                     '{dataset}'"
                ))
            })?;
        Ok(Self {
            authority: authority(url)?,
            bucket: bucket.to_string(),
        })
    }

    async fn call(&self, method: &str, path: &str, body: String) -> Result<Bytes> {
        let mut client = Client::connect(&self.authority, None).await?;
        let (status, answer) = client.send(method, path, Bytes::from(body)).await?;
        if !status.is_success() {
            return Err(lanceflow::Error::InvalidInput(format!(
                "the fault proxy answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ))
            .into());
        }
        Ok(answer)
    }

    /// Install `rules` (one rule of the proxy's or an array of them) for the
    /// bucket.
    pub(super) async fn install(&self, rules: &serde_json::Value) -> Result<()> {
        let rules = match rules {
            serde_json::Value::Array(_) => rules.clone(),
            rule => serde_json::Value::Array(vec![rule.clone()]),
        };
        let spec = serde_json::json!({"bucket": self.bucket, "rules": rules});
        self.call("POST", "/__faults__", spec.to_string()).await?;
        Ok(())
    }

    /// Drop the bucket's rules; the faults injected, by kind.
    pub(super) async fn clear(&self) -> Result<serde_json::Value> {
        let path = format!("/__faults__?bucket={}", self.bucket);
        let answer = self.call("GET", &path, String::new()).await?;
        self.call("DELETE", &path, String::new()).await?;
        let state: serde_json::Value = serde_json::from_slice(&answer)?;
        Ok(state["injected"].clone())
    }
}
