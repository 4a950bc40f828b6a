//! Object storage that misbehaves: scripts/s3_fault_proxy.py (started by
//! scripts/test.sh in front of moto) injects 503 SlowDown, 500s, responses
//! cut off mid-body, stalls past the client timeout and writes whose
//! response is lost after the server applied them. Under each, every
//! operation either completes with exactly the right rows or fails with
//! exit 2 and the latest version unchanged: never a duplicate or a lost row
//! (checked by row counts and the exact set of keys).

use arrow_array::cast::AsArray;
use futures::TryStreamExt;
use lanceflow::storage::Scheme;
use lanceflow::{Location, StorageOptions};

use crate::common::*;

fn proxy() -> String {
    std::env::var("LANCEFLOW_TEST_S3_FAULT_PROXY").unwrap_or_else(|_| {
        panic!(
            "LANCEFLOW_TEST_S3_FAULT_PROXY is not set: run the tests with scripts/test.sh, which \
             starts moto and scripts/s3_fault_proxy.py in front of it"
        )
    })
}

/// One plain HTTP/1.1 exchange with the proxy: (status, body).
fn exchange(method: &str, path: &str, body: &str) -> (u16, String) {
    let proxy = proxy();
    http(
        proxy.trim_start_matches("http://"),
        method,
        path,
        body,
        None,
    )
}

fn set_faults(bucket: &str, rules: serde_json::Value) {
    let spec = serde_json::json!({ "bucket": bucket, "rules": rules });
    assert_eq!(exchange("POST", "/__faults__", &spec.to_string()).0, 200);
}

/// Drop the bucket's rules; how many faults of each kind were injected.
fn clear_faults(bucket: &str) -> serde_json::Value {
    let (_, body) = exchange("GET", &format!("/__faults__?bucket={bucket}"), "");
    exchange("DELETE", &format!("/__faults__?bucket={bucket}"), "");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["injected"].clone()
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", proxy()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-value".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn lf(args: &[&str]) -> std::process::Output {
    let env = env();
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_env(args, &refs)
}

/// What a reader sees: (version, sorted keys, rows with a vector), or None
/// when there is no dataset.
type Seen = Option<(u64, Vec<i64>, usize)>;

fn seen(uri: &str) -> Seen {
    let env = env();
    let options = StorageOptions::from_env_with(Scheme::S3, |k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let location = Location::resolve_with_env(uri, &options, |_| None).unwrap();
        let dataset = location.open(None).await.ok()?;
        let has_vectors = dataset.schema().field("vector").is_some();
        let mut scan = dataset.scan();
        let columns: &[&str] = if has_vectors {
            &["n", "vector"]
        } else {
            &["n"]
        };
        scan.project(columns).unwrap();
        let batches: Vec<_> = scan
            .try_into_stream()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut keys = Vec::new();
        let mut with_vectors = 0;
        for batch in batches {
            let n = batch
                .column(0)
                .as_primitive::<arrow_array::types::Int64Type>();
            keys.extend(n.values().iter().copied());
            if has_vectors {
                with_vectors += batch.num_rows() - batch.column(1).null_count();
            }
        }
        keys.sort_unstable();
        Some((dataset.version().version, keys, with_vectors))
    })
}

/// The faults each operation meets, one run per line: (fault, HTTP method
/// or "" for any, key substring, matching requests let through first).
const CASES: &[(&str, &str, &str, u32)] = &[
    ("slowdown", "", "", 2),
    ("error500", "", "", 4),
    ("reset", "GET", "", 1),
    ("reset", "PUT", "", 1),
    ("lost", "PUT", "", 0),
    ("lost", "PUT", "", 3),
    ("lost", "PUT", "_versions/", 0),
    ("stall", "", "", 3),
];

/// Run `operation` once per case on a fresh bucket prepared by `setup`
/// (without faults); `expect` says what a success must leave behind.
fn under_faults(
    name: &str,
    setup: &dyn Fn(&str, &std::path::Path),
    operation: &dyn Fn(&str, &std::path::Path) -> Vec<String>,
    expect: &dyn Fn(&Seen) -> bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (i, (fault, method, key, skip)) in CASES.iter().enumerate() {
        let bucket = format!("lf-fault-{name}-{i}-{}", std::process::id());
        assert_eq!(exchange("PUT", &format!("/{bucket}"), "").0, 200);
        let uri = format!("s3://{bucket}/kb.lance");
        setup(&uri, dir.path());
        let before = seen(&uri);
        let mut rule = serde_json::json!({
            "fault": fault, "key": key, "skip": skip, "times": 2, "seconds": 3,
        });
        if !method.is_empty() {
            rule["method"] = serde_json::json!(method);
        }
        set_faults(&bucket, serde_json::json!([rule]));
        let args = operation(&uri, dir.path());
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A short client timeout, so that a stall is noticed in a test.
        args.extend(["--storage-option", "timeout=2s"]);
        let out = lf(&args);
        let injected = clear_faults(&bucket);
        let after = seen(&uri);
        let case = format!("{name} under {fault} {method} '{key}' skip {skip}");
        if injected.as_object().is_none_or(|m| m.is_empty()) {
            // The operation made fewer matching requests than the rule skips.
            report.push(format!("{case}: not reached"));
            continue;
        }
        if out.status.success() {
            assert!(
                expect(&after),
                "{case}: succeeded but left {:?}",
                after.as_ref().map(|(v, k, w)| (v, k.len(), w))
            );
            report.push(format!("{case}: completed"));
        } else {
            assert_eq!(
                out.status.code(),
                Some(2),
                "{case}: exit {:?}: {}",
                out.status.code(),
                stderr(&out)
            );
            assert_eq!(after, before, "{case}: failed but changed the dataset");
            assert!(
                !stderr(&out).contains("testing-secret-value"),
                "{case}: {}",
                stderr(&out)
            );
            report.push(format!("{case}: exit 2, unchanged"));
        }
    }
    eprintln!("{}", report.join("\n"));
    let reached = report
        .iter()
        .filter(|r| !r.ends_with("not reached"))
        .count();
    assert!(
        reached * 2 >= CASES.len(),
        "{name}: most faults were never reached"
    );
}

fn ingest(uri: &str, dir: &std::path::Path, name: &str, start: usize, rows: usize, mode: &str) {
    ok(&lf(&ingest_args(uri, dir, name, start, rows, mode)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()));
}

fn ingest_args(
    uri: &str,
    dir: &std::path::Path,
    name: &str,
    start: usize,
    rows: usize,
    mode: &str,
) -> Vec<String> {
    let input = write_jsonl(dir, name, start, rows);
    [
        "-q",
        "ingest",
        input.to_str().unwrap(),
        "--to",
        uri,
        "--mode",
        mode,
        "--max-rows-per-file",
        "50",
    ]
    .map(String::from)
    .to_vec()
}

fn keys(range: std::ops::Range<i64>) -> Vec<i64> {
    range.collect()
}

#[test]
fn ingest_create_and_append_under_faults() {
    under_faults(
        "create",
        &|_, _| {},
        &|uri, dir| ingest_args(uri, dir, "a.jsonl", 0, 200, "create"),
        &|seen| matches!(seen, Some((_, k, _)) if *k == keys(0..200)),
    );
    under_faults(
        "append",
        &|uri, dir| ingest(uri, dir, "seed.jsonl", 0, 200, "create"),
        &|uri, dir| ingest_args(uri, dir, "more.jsonl", 200, 100, "append"),
        &|seen| matches!(seen, Some((2, k, _)) if *k == keys(0..300)),
    );
}

#[test]
fn embed_and_indexes_under_faults() {
    under_faults(
        "embed",
        &|uri, dir| ingest(uri, dir, "seed.jsonl", 0, 120, "create"),
        &|uri, _| {
            ["-q", "embed", uri, "--column", "text"]
                .map(String::from)
                .to_vec()
        },
        &|seen| matches!(seen, Some((2, k, 120)) if *k == keys(0..120)),
    );
    under_faults(
        "btree",
        &|uri, dir| ingest(uri, dir, "seed.jsonl", 0, 200, "create"),
        &|uri, _| {
            [
                "-q", "index", "scalar", uri, "--column", "n", "--type", "BTREE",
            ]
            .map(String::from)
            .to_vec()
        },
        &|seen| matches!(seen, Some((2, k, _)) if *k == keys(0..200)),
    );
}

#[test]
fn compaction_and_deletes_under_faults() {
    under_faults(
        "compact",
        &|uri, dir| {
            ingest(uri, dir, "seed.jsonl", 0, 200, "create");
            ingest(uri, dir, "more.jsonl", 200, 20, "append");
        },
        &|uri, _| ["-q", "compact", uri].map(String::from).to_vec(),
        // Compaction may take more than one commit (rewrite, then cleanup of
        // the deletion files): any later version with exactly the same rows.
        &|seen| matches!(seen, Some((v, k, _)) if *v >= 3 && *k == keys(0..220)),
    );
    under_faults(
        "delete",
        &|uri, dir| ingest(uri, dir, "seed.jsonl", 0, 200, "create"),
        &|uri, _| {
            ["-q", "delete", uri, "--where", "n < 10"]
                .map(String::from)
                .to_vec()
        },
        &|seen| matches!(seen, Some((2, k, _)) if *k == keys(10..200)),
    );
}

#[test]
fn vector_index_and_optimize_under_faults() {
    under_faults(
        "ivf",
        &|uri, dir| {
            ingest(uri, dir, "seed.jsonl", 0, 120, "create");
            ok(&lf(&["-q", "embed", uri, "--column", "text"]));
        },
        &|uri, _| {
            [
                "-q",
                "index",
                "vector",
                uri,
                "--type",
                "IVF_FLAT",
                "--metric",
                "cosine",
                "--partitions",
                "2",
            ]
            .map(String::from)
            .to_vec()
        },
        &|seen| matches!(seen, Some((3, k, 120)) if *k == keys(0..120)),
    );
    under_faults(
        "optimize",
        &|uri, dir| {
            ingest(uri, dir, "seed.jsonl", 0, 200, "create");
            ok(&lf(&[
                "-q", "index", "scalar", uri, "--column", "n", "--type", "BTREE",
            ]));
            ingest(uri, dir, "more.jsonl", 200, 30, "append");
        },
        &|uri, _| ["-q", "optimize", uri].map(String::from).to_vec(),
        &|seen| matches!(seen, Some((4, k, _)) if *k == keys(0..230)),
    );
}
