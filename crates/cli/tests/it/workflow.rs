use crate::common::*;

#[test]
fn ingest_100k_rows_into_ten_fragments_and_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_jsonl(dir.path(), "docs.jsonl", 0, 100_000);
    let uri = dir.path().join("kb.lance");
    let uri = uri.to_str().unwrap();
    let out = run(&[
        "ingest",
        input.to_str().unwrap(),
        "--to",
        uri,
        "--max-rows-per-file",
        "10000",
        "--json",
        "-q",
    ]);
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(report["rows_written"], 100_000);
    assert_eq!(report["fragments_written"], 10);
    assert_eq!(report["version"], 1);
    let info = info_json(uri, &[], &[]);
    assert_eq!(info["rows"], 100_000);
    assert_eq!(info["fragments"], 10);
    assert_eq!(info["version"], 1);
    let versions: serde_json::Value =
        serde_json::from_str(&ok(&run(&["versions", uri, "--json"]))).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 1);
    let cols: Vec<&str> = info["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["doc_id", "n", "text", "title"]);
}

#[test]
fn append_time_travel_tags_restore_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance");
    let uri = uri.to_str().unwrap();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 300);
    let b = write_jsonl(dir.path(), "b.jsonl", 300, 200);
    ok(&run(&["ingest", a.to_str().unwrap(), "--to", uri, "-q"]));
    ok(&run(&[
        "ingest",
        b.to_str().unwrap(),
        "--to",
        uri,
        "--mode",
        "append",
        "-q",
    ]));
    assert_eq!(info_json(uri, &[], &[])["rows"], 500);
    assert_eq!(info_json(uri, &["--version", "1"], &[])["rows"], 300);

    ok(&run(&["tag", "create", uri, "base", "--version", "1"]));
    assert_eq!(info_json(uri, &["--tag", "base"], &[])["rows"], 300);
    let tags = ok(&run(&["tag", "list", uri]));
    assert!(tags.contains("base\t1"), "{tags}");

    let human = ok(&run(&["info", uri]));
    assert!(
        human.contains("rows      500") && human.contains("version   2 (latest)"),
        "{human}"
    );

    let restored = ok(&run(&["restore", uri, "--tag", "base"]));
    assert!(
        restored.contains("restored version 1 as new version 3"),
        "{restored}"
    );
    assert_eq!(info_json(uri, &[], &[])["rows"], 300);

    let cleaned = ok(&run(&["cleanup", uri, "--older-than", "0s"]));
    assert!(cleaned.contains("removed 1 old version"), "{cleaned}");
    // Tagged version 1 survives cleanup.
    assert_eq!(info_json(uri, &["--version", "1"], &[])["rows"], 300);
    ok(&run(&["tag", "delete", uri, "base"]));
}

#[test]
fn an_idempotency_key_applies_an_ingest_once() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance");
    let uri = uri.to_str().unwrap();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 30);
    let b = write_jsonl(dir.path(), "b.jsonl", 30, 20);
    let b = b.to_str().unwrap();
    let ingest = |input: &str, mode: &str, key: &str, json: bool| {
        let mut args = vec![
            "ingest",
            input,
            "--to",
            uri,
            "--mode",
            mode,
            "--idempotency-key",
            key,
        ];
        if json {
            args.push("--json");
        }
        run(&args)
    };
    let report = |input: &str, mode: &str, key: &str| {
        serde_json::from_str::<serde_json::Value>(&ok(&ingest(input, mode, key, true))).unwrap()
    };
    // A create re-run with its key (e.g. after a crash past the commit) is
    // not refused as "already exists": it finds its own version.
    let a = a.to_str().unwrap();
    assert_eq!(report(a, "create", "day-1")["already_applied"], false);
    let again = report(a, "create", "day-1");
    assert_eq!(
        (&again["already_applied"], &again["version"]),
        (&true.into(), &1.into())
    );
    let appended = report(b, "append", "day-2");
    assert_eq!(
        (&appended["version"], &appended["rows_written"]),
        (&2.into(), &20.into())
    );
    // The same append again: nothing written, the version that holds it.
    let again = report(b, "append", "day-2");
    assert_eq!(
        (
            &again["already_applied"],
            &again["version"],
            &again["total_rows"]
        ),
        (&true.into(), &2.into(), &50.into())
    );
    let human = ok(&ingest(b, "append", "day-2", false));
    assert!(
        human.contains("already ingested") && human.contains("version 2"),
        "{human}"
    );
    assert_eq!(version_of(uri, &[]), 2);
    // Another key appends; a key that is not one fails before any work.
    assert_eq!(report(b, "append", "day-3")["total_rows"], 70);
    fails_with(
        &ingest(b, "append", "two words", false),
        &["--idempotency-key must be"],
    );
    assert_eq!(version_of(uri, &[]), 3);
}

#[test]
fn progress_is_json_lines_when_not_a_tty() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance");
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 10);
    let b = write_jsonl(dir.path(), "b.jsonl", 10, 10);
    let out = run(&[
        "ingest",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--to",
        uri.to_str().unwrap(),
    ]);
    ok(&out);
    let events: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let finished = events
        .iter()
        .filter(|e| e["event"] == "task_finished")
        .count();
    assert_eq!(finished, 2, "{events:?}");
    assert!(events
        .iter()
        .any(|e| e["event"] == "stage_finished" && e["ok"] == true));

    let quiet = run(&[
        "ingest",
        a.to_str().unwrap(),
        "--to",
        uri.to_str().unwrap(),
        "--mode",
        "append",
        "--quiet",
    ]);
    ok(&quiet);
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));
}

#[test]
fn config_file_and_secrets_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance");
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 10);
    ok(&run(&[
        "ingest",
        a.to_str().unwrap(),
        "--to",
        uri.to_str().unwrap(),
        "-q",
    ]));
    let config = dir.path().join("lanceflow.toml");
    std::fs::write(
        &config,
        "workers = 1\n[storage]\naws_secret_access_key = \"s3cr3t-from-config\"\n",
    )
    .unwrap();
    let out = run(&[
        "info",
        uri.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "-s",
        "aws_session_token=tok-on-cli",
    ]);
    let text = ok(&out);
    assert!(text.contains("aws_secret_access_key = ****"), "{text}");
    assert!(
        !text.contains("s3cr3t-from-config") && !text.contains("tok-on-cli"),
        "{text}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "wrokers = 2\n").unwrap();
    fails_with(
        &run(&[
            "info",
            uri.to_str().unwrap(),
            "--config",
            bad.to_str().unwrap(),
        ]),
        &["wrokers"],
    );
}

#[test]
fn wordnet_converter_and_bundled_sample() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/wordnet-sample.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance");
    let out = ok(&run(&[
        "ingest",
        sample.to_str().unwrap(),
        "--to",
        uri.to_str().unwrap(),
        "--json",
        "-q",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = report["rows_written"].as_u64().unwrap();
    assert!((2000..=5000).contains(&rows), "{rows}");
    let info = info_json(uri.to_str().unwrap(), &[], &[]);
    let types: std::collections::HashMap<String, String> = info["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["data_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(types["text"], "Utf8");
    assert!(types["lemmas"].starts_with("List"), "{types:?}");

    if std::path::Path::new("/usr/share/wordnet/data.noun").exists() {
        let out_file = dir.path().join("wn.jsonl");
        let text = ok(&run(&[
            "convert",
            "wordnet",
            "--out",
            out_file.to_str().unwrap(),
            "--sample",
            "500",
        ]));
        assert!(text.contains("wrote 500 synsets"), "{text}");
        let first = std::fs::read_to_string(&out_file).unwrap();
        let row: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        assert_eq!(row["doc_id"], "n00001740");
        assert_eq!(row["title"], "entity");
    }
    fails_with(
        &run(&[
            "convert",
            "wordnet",
            "--dict",
            "/nonexistent",
            "--out",
            "/tmp/x.jsonl",
        ]),
        &["wordnet-base"],
    );
}

#[test]
fn append_optimize_compact_and_version_history() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance");
    let uri = uri.to_str().unwrap();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 400);
    let b = write_jsonl(dir.path(), "b.jsonl", 400, 100);
    let q = ["-q", "--max-rows-per-file", "50"];
    ok(&run(&[
        &["ingest", a.to_str().unwrap(), "--to", uri][..],
        &q[..],
    ]
    .concat()));
    ok(&run(&[
        "index",
        "scalar",
        uri,
        "--column",
        "text",
        "--type",
        "INVERTED",
        "--workers",
        "2",
        "-q",
    ]));
    ok(&run(&[
        &[
            "ingest",
            b.to_str().unwrap(),
            "--to",
            uri,
            "--mode",
            "append",
        ][..],
        &q[..],
    ]
    .concat()));
    // (doc_id, BM25 score) of the top 5.
    let scored = |query: &str| -> Vec<(String, f64)> {
        let out = ok(&run(&[
            "search", "text", uri, "--query", query, "-k", "5", "--json", "-q",
        ]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["results"][0]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["doc_id"].to_string(), h["_score"].as_f64().unwrap()))
            .collect()
    };
    let search = |query: &str| -> Vec<String> { scored(query).into_iter().map(|h| h.0).collect() };
    // The appended rows are found before the index covers them (flat scan).
    assert_eq!(search("450").first().map(String::as_str), Some("\"d450\""));

    let report: serde_json::Value =
        serde_json::from_str(&ok(&run(&["optimize", uri, "--json", "-q"]))).unwrap();
    assert_eq!(report["optimized"], true);
    assert_eq!(report["rows_indexed"], 100);
    assert_eq!(report["indexes"][0]["unindexed_fragments_after"], 0);
    let idle = ok(&run(&["optimize", uri, "-q"]));
    assert!(idle.contains("nothing to optimize"), "{idle}");

    let before = scored("document 123");
    let report: serde_json::Value = serde_json::from_str(&ok(&run(&[
        "compact",
        uri,
        "--target-rows-per-fragment",
        "250",
        "--json",
        "-q",
    ])))
    .unwrap();
    assert_eq!(report["compacted"], true);
    assert_eq!(report["fragments_before"], 10);
    // Compaction only joins fragments that one index segment covers:
    // fragments 0-7 (the two workers' segments, merged into one) and 8-9 (the
    // optimise's segment), one rewritten fragment each.
    assert_eq!(report["fragments_after"], 2);
    assert_eq!(report["rows_rewritten"], 500);
    // The same best hit and the same scores; which of the documents tied
    // on "document" fill the other places is the index's choice.
    let after = scored("document 123");
    assert_eq!(after.first().map(|h| &h.0), before.first().map(|h| &h.0));
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert!((a.1 - b.1).abs() < 1e-4, "{after:?} vs {before:?}");
    }
    let idle = ok(&run(&[
        "compact",
        uri,
        "--target-rows-per-fragment",
        "250",
        "-q",
    ]));
    assert!(idle.contains("nothing to compact"), "{idle}");

    let versions: serde_json::Value =
        serde_json::from_str(&ok(&run(&["versions", uri, "--json"]))).unwrap();
    let history: Vec<(String, u64)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["operation"].as_str().unwrap().to_string(),
                v["rows"].as_u64().unwrap(),
            )
        })
        .filter(|(op, _)| op != "ReserveFragments")
        .collect();
    let expect: Vec<(String, u64)> = [
        ("Overwrite", 400),
        ("CreateIndex", 400),
        ("Append", 500),
        ("CreateIndex", 500),
        ("Rewrite", 500),
    ]
    .iter()
    .map(|(o, r)| (o.to_string(), *r))
    .collect();
    assert_eq!(history, expect);
    let text = ok(&run(&["versions", uri]));
    assert!(
        text.contains("Rewrite") && text.contains("(latest)"),
        "{text}"
    );
}

/// `pipeline FILE`: every stage once, a results table and JSON report;
/// a re-run skips finished stages; a changed file is refused; an append that
/// committed before its state was written is not appended twice.
#[test]
fn pipeline_runs_resumes_and_appends_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/wordnet-sample.jsonl"
    );
    let lines: Vec<String> = std::fs::read_to_string(sample)
        .unwrap()
        .lines()
        .take(500)
        .map(str::to_string)
        .collect();
    let base = dir.path().join("base.jsonl");
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(&base, lines[..400].join("\n") + "\n").unwrap();
    std::fs::write(&batch, lines[400..].join("\n") + "\n").unwrap();
    let uri = dir.path().join("kb.lance");
    let uri = uri.to_str().unwrap();
    let file = dir.path().join("pipeline.toml");
    let config = format!(
        r#"dataset = "{uri}"
[input]
path = "{}"
rows_per_fragment = 100
[embedding]
template = "{{title}}: {{text}}"
[vector_index]
type = "IVF_FLAT"
metric = "cosine"
[fts]
columns = ["text"]
[search]
queries = ["a large body of water"]
k = 3
columns = ["title"]
[append]
path = "{}"
rows_per_fragment = 50
"#,
        base.display(),
        batch.display()
    );
    std::fs::write(&file, &config).unwrap();
    let report_path = dir.path().join("report.json");
    let file_arg = file.to_str().unwrap();
    let out = ok(&run(&[
        "pipeline",
        file_arg,
        "--report",
        report_path.to_str().unwrap(),
    ]));
    assert!(
        out.contains("rows/s") && out.contains("version history"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let stages: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    for expected in [
        "ingest",
        "embed",
        "vector_index",
        "fts_index(text)",
        "append",
        "embed_new_rows",
        "optimize_indexes",
        "compact",
    ] {
        assert!(
            stages.contains(&expected),
            "{expected} missing from {stages:?}"
        );
    }
    let rows = |name: &str| {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == name)
            .unwrap()["rows"]
            .clone()
    };
    assert_eq!(rows("ingest"), 400);
    assert_eq!(rows("embed"), 400);
    assert_eq!(rows("append"), 100);
    let info = info_json(uri, &[], &[]);
    assert_eq!(info["rows"], 500);
    let version = version_of(uri, &[]);

    // Re-run: nothing is done again.
    let again = ok(&run(&["pipeline", file_arg]));
    assert!(again.contains("done in an earlier run"), "{again}");
    assert_eq!(version_of(uri, &[]), version);

    // A crash after the append's commit but before its state was written.
    let state_path = format!("{uri}.pipeline-state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    for stage in ["append", "embed_new_rows", "optimize_indexes", "compact"] {
        state["done"].as_object_mut().unwrap().remove(stage);
    }
    std::fs::write(&state_path, state.to_string()).unwrap();
    let resumed = ok(&run(&["pipeline", file_arg]));
    assert!(resumed.contains("committed by an earlier run"), "{resumed}");
    assert_eq!(info_json(uri, &[], &[])["rows"], 500, "appended twice");

    // A changed file is refused until --restart.
    std::fs::write(&file, config.replace("k = 3", "k = 4")).unwrap();
    let refused = run(&["pipeline", file_arg]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("--restart"),
        "{}",
        stderr(&refused)
    );
}
