//! `index vector` and `search vector` as a user runs them.

use crate::common::*;

fn setup(dir: &std::path::Path) -> String {
    let parquet = dir.join("v.parquet");
    let parquet = parquet.to_str().unwrap();
    ok(&run(&[
        "generate",
        "vectors",
        "--out",
        parquet,
        "--rows",
        "2000",
        "--dim",
        "16",
        "--clusters",
        "20",
    ]));
    let uri = dir.join("v.lance").to_string_lossy().to_string();
    ok(&run(&[
        "-q",
        "ingest",
        parquet,
        "--to",
        &uri,
        "--max-rows-per-file",
        "500",
    ]));
    uri
}

#[test]
fn index_then_search_json_batch_distributed_and_time_travel() {
    let dir = tempfile::tempdir().unwrap();
    let uri = setup(dir.path());
    let art = dir.path().join("art");
    let out = ok(&run(&[
        "-q",
        "--workers",
        "2",
        "index",
        "vector",
        &uri,
        "--type",
        "IVF_PQ",
        "--metric",
        "cosine",
        "--partitions",
        "8",
        "--sub-vectors",
        "4",
        "--rows-per-segment",
        "1000",
        "--keep-segments",
        "--json",
        "--save-artifacts",
        art.to_str().unwrap(),
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&report["segments_built"], &report["segments"]),
        (&2.into(), &2.into())
    );
    assert_eq!(report["index_type"], "IVF_PQ");
    assert_eq!(report["version"], 2);
    let info = info_json(&uri, &[], &[]);
    assert_eq!(info["indices"][0]["index_type"], "IVF_PQ");

    // One query from a row: the row itself comes first.
    let out = ok(&run(&[
        "search",
        "vector",
        &uri,
        "--query-row",
        "42",
        "-k",
        "5",
        "--nprobes",
        "4",
        "--refine-factor",
        "5",
        "--columns",
        "id,category",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits = v["results"][0]["hits"].as_array().unwrap();
    assert_eq!(v["results"][0]["query"], 0);
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0]["id"], 42);
    assert!(hits[0]["_distance"].as_f64().unwrap().abs() < 1e-5);
    assert!(hits[0].get("category").is_some() && hits[0].get("vector").is_none());
    let d: Vec<f64> = hits
        .iter()
        .map(|h| h["_distance"].as_f64().unwrap())
        .collect();
    assert!(
        d.windows(2).all(|w| w[0] <= w[1]),
        "sorted by distance: {d:?}"
    );

    // A batch of queries from a .npy file (the saved centroids: 8 × 16), and
    // the distributed search returns the same hits.
    let npy = art.join("centroids.npy");
    let batch = |extra: &[&str]| {
        let mut args = vec![
            "--workers",
            "3",
            "search",
            "vector",
            &uri,
            "--query-vector",
            npy.to_str().unwrap(),
            "-k",
            "4",
            "--nprobes",
            "2",
            "--refine-factor",
            "3",
            "--columns",
            "id",
            "--json",
        ];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&ok(&run(&args))).unwrap();
        v
    };
    let local = batch(&[]);
    let dist = batch(&["--distributed"]);
    assert_eq!(local["results"].as_array().unwrap().len(), 8);
    let ids = |v: &serde_json::Value| -> Vec<Vec<u64>> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| {
                q["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].as_u64().unwrap())
                    .collect()
            })
            .collect()
    };
    assert_eq!(ids(&local), ids(&dist));

    // Inline JSON, a filter, and time travel to before the index (flat scan).
    let q: Vec<f32> = vec![0.25; 16];
    let q = serde_json::to_string(&q).unwrap();
    let out = ok(&run(&[
        "search",
        "vector",
        &uri,
        "--query-vector",
        &q,
        "-k",
        "3",
        "--filter",
        "category = 'c3'",
        "--columns",
        "category",
        "--version",
        "1",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for h in v["results"][0]["hits"].as_array().unwrap() {
        assert_eq!(h["category"], "c3");
    }
    // Human output names the index.
    let out = ok(&run(&[
        "search",
        "vector",
        &uri,
        "--query-row",
        "1",
        "-k",
        "2",
    ]));
    assert!(out.contains("index 'vector_idx'"), "{out}");
}

#[test]
fn vector_bad_input_exits_2_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let uri = setup(dir.path());
    let idx = |extra: &[&str]| {
        let mut args = vec!["-q", "index", "vector", uri.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    };
    fails_with(
        &idx(&["--column", "nope"]),
        &["column 'nope' does not exist"],
    );
    fails_with(
        &idx(&["--column", "id"]),
        &["not a vector column", "FixedSizeList"],
    );
    fails_with(
        &idx(&["--type", "IVF_PQ", "--sub-vectors", "5"]),
        &["does not divide the dimension 16"],
    );
    fails_with(
        &idx(&["--partitions", "5000"]),
        &["larger than the row count 2000"],
    );
    fails_with(&idx(&["--metric", "manhattan"]), &["unknown metric"]);
    fails_with(&idx(&["--type", "HNSW"]), &["unknown vector index type"]);
    assert_eq!(version_of(&uri, &[]), 1);

    ok(&idx(&["--type", "IVF_FLAT", "--partitions", "8"]));
    fails_with(
        &idx(&["--type", "IVF_FLAT", "--no-replace"]),
        &["already exists", "--replace"],
    );
    let search = |extra: &[&str]| {
        let mut args = vec!["search", "vector", uri.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    };
    fails_with(
        &search(&["--query-vector", "[1,2,3]"]),
        &["dimension 3", "dimension 16"],
    );
    fails_with(
        &search(&["--query-row", "1", "--metric", "dot"]),
        &["built with the l2 metric"],
    );
    fails_with(
        &search(&["--query-row", "1", "--index", "nope_idx"]),
        &["no vector index named 'nope_idx'"],
    );
    fails_with(&search(&["--query-row", "99999"]), &["out of range"]);
    fails_with(
        &search(&["--query-vector", "missing.npy"]),
        &["neither inline JSON nor an existing file"],
    );
    fails_with(
        &search(&["--query-row", "1", "--columns", "nope"]),
        &["column 'nope' does not exist"],
    );
    fails_with(
        &search(&["--query-row", "1", "-k", "0"]),
        &["--k must be between 1 and 10000"],
    );
    assert_eq!(version_of(&uri, &[]), 2);
}
