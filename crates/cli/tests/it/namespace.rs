//! Tables named through a Lance directory namespace instead of URIs: ingest,
//! info, compaction of every table, the config file's [namespace],
//! and bad names refused with exit 2 and nothing written.

use crate::common::*;

#[test]
fn tables_of_a_dir_namespace_are_written_read_and_compacted_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    let ns = format!("dir:{}", root.display());
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 60);
    let b = write_jsonl(dir.path(), "b.jsonl", 1000, 45);

    // A new table is declared in the namespace and lands at ROOT/NAME.lance.
    for (table, file) in [("docs", &a), ("notes", &b)] {
        ok(&run(&[
            "ingest",
            file.to_str().unwrap(),
            "--namespace",
            &ns,
            "--table",
            table,
            "--max-rows-per-file",
            "10",
            "-q",
        ]));
    }
    let docs_uri = root.join("docs.lance");
    assert!(
        docs_uri.join("_versions").is_dir(),
        "table not at ROOT/docs.lance"
    );
    let docs = info_json(docs_uri.to_str().unwrap(), &[], &[]);
    assert_eq!(docs["rows"], 60);
    assert_eq!(docs["fragments"], 6);

    // Read by id: the same dataset.
    let by_id = ok(&run(&[
        "info",
        "--namespace",
        &ns,
        "--table",
        "notes",
        "--json",
    ]));
    let by_id: serde_json::Value = serde_json::from_str(&by_id).unwrap();
    assert_eq!(by_id["rows"], 45);
    assert_eq!(by_id["fragments"], 5);

    // Appending by id adds to the same table.
    let c = write_jsonl(dir.path(), "c.jsonl", 2000, 5);
    ok(&run(&[
        "ingest",
        c.to_str().unwrap(),
        "--mode",
        "append",
        "--namespace",
        &ns,
        "--table",
        "notes",
        "-q",
    ]));
    assert_eq!(
        info_json(root.join("notes.lance").to_str().unwrap(), &[], &[])["rows"],
        50
    );

    // The config file's [namespace] block stands in for --namespace.
    let config = dir.path().join("lanceflow.toml");
    std::fs::write(
        &config,
        format!(
            "[namespace]\nimpl = \"dir\"\nroot = \"{}\"\n",
            root.display()
        ),
    )
    .unwrap();
    let text = ok(&run(&[
        "info",
        "--table",
        "docs",
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]));
    let by_config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(by_config["uri"], docs["uri"]);
    assert_eq!(by_config["rows"], 60);

    // Every table of the namespace compacted, one commit each.
    let report = ok(&run(&[
        "compact-database",
        "--namespace",
        &ns,
        "--target-rows-per-fragment",
        "1000",
        "--json",
        "-q",
    ]));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let tables = report["tables"].as_array().unwrap();
    let mut ids: Vec<String> = tables
        .iter()
        .map(|t| t["table_id"][0].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["docs", "notes"]);
    for t in tables {
        assert_eq!(t["report"]["compacted"], true, "{t}");
        assert_eq!(t["report"]["fragments_after"], 1, "{t}");
    }
    assert_eq!(info_json(docs_uri.to_str().unwrap(), &[], &[])["rows"], 60);
    assert_eq!(
        info_json(root.join("notes.lance").to_str().unwrap(), &[], &[])["rows"],
        50
    );

    // Bad names: exit 2, the fix named, nothing written.
    let before = version_of(docs_uri.to_str().unwrap(), &[]);
    fails_with(
        &run(&["info", "--namespace", &ns, "--table", "nope"]),
        &["no table 'nope'"],
    );
    fails_with(
        &run(&["info", "--table", "docs"]),
        &["--table docs needs a namespace"],
    );
    fails_with(
        &run(&[
            "info",
            docs_uri.to_str().unwrap(),
            "--namespace",
            &ns,
            "--table",
            "docs",
        ]),
        &["not both"],
    );
    fails_with(&run(&["info"]), &["name the dataset"]);
    fails_with(
        &run(&["info", "--namespace", "glue:x", "--table", "docs"]),
        &["unknown namespace implementation 'glue'"],
    );
    fails_with(
        &run(&["info", "--namespace", "rest:127.0.0.1", "--table", "docs"]),
        &["http://"],
    );
    fails_with(&run(&["compact-database", "-q"]), &["--namespace"]);
    fails_with(
        &run(&[
            "compact-database",
            "--namespace",
            &ns,
            "--target-rows-per-fragment",
            "0",
        ]),
        &["--target-rows-per-fragment"],
    );
    fails_with(
        &run(&[
            "ingest",
            a.to_str().unwrap(),
            "--namespace",
            &ns,
            "--table",
            "docs",
            "-q",
        ]),
        &["exists"],
    );
    assert_eq!(version_of(docs_uri.to_str().unwrap(), &[]), before);
}
