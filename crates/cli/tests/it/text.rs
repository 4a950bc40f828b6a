//! `index scalar`, `search text` and `search hybrid` as a user runs them.

use crate::common::*;

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}

#[test]
fn full_text_and_hybrid_search_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_jsonl(dir.path(), "docs.jsonl", 0, 120);
    let uri = dir.path().join("docs").to_string_lossy().to_string();
    ok(&run(&[
        "-q",
        "ingest",
        input.to_str().unwrap(),
        "--to",
        &uri,
        "--max-rows-per-file",
        "40",
    ]));

    // Bad input: exit 2 and no new version.
    fails_with(
        &run(&[
            "index", "scalar", &uri, "--column", "n", "--type", "INVERTED",
        ]),
        &["column 'n' is Int64", "string"],
    );
    fails_with(
        &run(&[
            "index", "scalar", &uri, "--column", "nope", "--type", "BTREE",
        ]),
        &["column 'nope' does not exist"],
    );
    fails_with(
        &run(&["index", "scalar", &uri, "--column", "n", "--type", "HASH"]),
        &["unknown scalar index type"],
    );
    fails_with(
        &run(&["search", "text", &uri, "--query", "text"]),
        &["no full-text index", "--type INVERTED"],
    );
    assert_eq!(version_of(&uri, &[]), 1);

    let report = json(&run(&[
        "-q",
        "--json",
        "--workers",
        "2",
        "index",
        "scalar",
        &uri,
        "--column",
        "text",
        "--type",
        "INVERTED",
        "--with-position",
    ]));
    assert_eq!(report["segments_built"], 2, "{report}");
    assert_eq!(report["segments"], 1, "merged: {report}");
    assert_eq!(report["rows_indexed"], 120, "{report}");
    ok(&run(&[
        "-q", "index", "scalar", &uri, "--column", "n", "--type", "BTREE",
    ]));
    fails_with(
        &run(&["index", "scalar", &uri, "--column", "n", "--type", "BTREE"]),
        &["already exists", "--replace"],
    );

    let found = json(&run(&[
        "--json", "search", "text", &uri, "--query", "number 7", "-k", "3", "--filter", "n < 50",
    ]));
    let hits = found["results"][0]["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), 3, "{found}");
    assert!(
        hits.iter().all(|h| h["n"].as_i64().unwrap() < 50),
        "{found}"
    );
    assert!(
        hits.iter().all(|h| h["_score"].as_f64().unwrap() > 0.0),
        "{found}"
    );
    let phrase = json(&run(&[
        "--json",
        "search",
        "text",
        &uri,
        "--query",
        "document number 7",
        "--phrase",
    ]));
    assert!(
        !phrase["results"][0]["hits"].as_array().unwrap().is_empty(),
        "{phrase}"
    );
    fails_with(&run(&["search", "text", &uri, "--query", " "]), &["empty"]);

    // Hybrid needs vectors: a clear error first, then embed and fuse.
    fails_with(
        &run(&["search", "hybrid", &uri, "--query-text", "document 7"]),
        &["vector"],
    );
    ok(&run(&["-q", "embed", &uri, "--column", "text"]));
    let fused = json(&run(&[
        "--json",
        "search",
        "hybrid",
        &uri,
        "--query-text",
        "document number 7",
        "-k",
        "5",
        "--timings",
    ]));
    let hits = fused["results"][0]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{fused}");
    assert!(
        fused["timings"]["text_seconds"].as_f64().unwrap() > 0.0,
        "{fused}"
    );
    assert!(hits
        .iter()
        .all(|h| h.get("vector_rank").is_some() && h.get("text_rank").is_some()));
    fails_with(
        &run(&[
            "search",
            "hybrid",
            &uri,
            "--query-text",
            "x",
            "--weights",
            "1,2,3",
        ]),
        &["3 weights given"],
    );
    fails_with(
        &run(&[
            "search",
            "hybrid",
            &uri,
            "--query-text",
            "x",
            "--fusion",
            "max",
        ]),
        &["rrf or linear"],
    );
}
