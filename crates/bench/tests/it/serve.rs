//! `lanceflow-bench serve`: the load test against its in-process service.

use crate::common::*;

/// 120 documents with embeddings, a vector index and a full-text index.
fn knowledge_base(dir: &std::path::Path) -> String {
    let input = write_jsonl(dir, "docs.jsonl", 0, 120);
    let uri = dir.join("kb").to_string_lossy().to_string();
    lanceflow(&[
        "-q",
        "ingest",
        input.to_str().unwrap(),
        "--to",
        &uri,
        "--max-rows-per-file",
        "40",
    ]);
    lanceflow(&["-q", "embed", &uri, "--column", "text"]);
    lanceflow(&[
        "-q",
        "index",
        "vector",
        &uri,
        "--type",
        "IVF_FLAT",
        "--metric",
        "cosine",
        "--partitions",
        "4",
    ]);
    lanceflow(&[
        "-q", "index", "scalar", &uri, "--column", "text", "--type", "INVERTED",
    ]);
    uri
}

/// `lanceflow-bench serve` against its in-process service: every request answered,
/// both modes measured in interleaved rounds, the ratios reported per round.
#[test]
fn bench_serve_runs_modes_in_interleaved_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let uri = knowledge_base(dir.path());
    let queries = dir.path().join("q.txt");
    std::fs::write(
        &queries,
        "document one\nanother document\nthe third question\n",
    )
    .unwrap();
    let out = ok(&run(&[
        "-q",
        "--json",
        "serve",
        "--dataset",
        &uri,
        "--mode",
        "vector,hybrid",
        "--concurrency",
        "4",
        "--requests",
        "30",
        "--rounds",
        "3",
        "--warmup",
        "2",
        "--queries",
        queries.to_str().unwrap(),
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rounds"], 3, "{report}");
    for mode in report["modes"].as_array().unwrap() {
        assert_eq!(mode["requests"], 30, "{report}");
        assert_eq!(mode["errors"], 0, "{report}");
        assert!(mode["qps"].as_f64().unwrap() > 0.0, "{report}");
    }
    let by_round = report["hybrid_over_vector_by_round"].as_array().unwrap();
    assert_eq!(by_round.len(), 3, "{report}");
    assert!(
        by_round.iter().all(|r| r.as_f64().unwrap() > 0.0),
        "{report}"
    );
    assert!(report["hybrid_over_vector_round_median"].as_f64().unwrap() > 0.0);
    // The p99 target compares with the engine at the same concurrency; the
    // one-at-a-time ratio is reported beside it.
    let vector = &report["modes"][0];
    assert_eq!(vector["mode"], "vector", "{report}");
    let p99 = vector["end_to_end_ms"]["p99"].as_f64().unwrap();
    let concurrent_p50 = vector["in_process_concurrent_ms"]["p50"].as_f64().unwrap();
    let sequential_p50 = vector["in_process_sequential_ms"]["p50"].as_f64().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(
        vector["p99_over_in_process_p50"].as_f64().unwrap(),
        p99 / concurrent_p50
    ));
    assert!(close(
        vector["p99_over_sequential_p50"].as_f64().unwrap(),
        p99 / sequential_p50
    ));
    // Every target is reported with its value and verdict.
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3, "{report}");
    let hybrid_check = &targets[2];
    assert_eq!(hybrid_check["name"], "hybrid p50 ÷ vector p50");
    let ratio = report["hybrid_p50_over_vector_p50"].as_f64().unwrap();
    assert!(close(hybrid_check["value"].as_f64().unwrap(), ratio));
    assert_eq!(hybrid_check["met"], ratio <= 1.2, "{report}");
}
