//! Each bad input: one clear message naming the fix, exit code 2, and the
//! dataset's latest version unchanged.

use crate::common::*;

struct Fixture {
    dir: tempfile::TempDir,
    uri: String,
}

/// A dataset at version 2 (create + append).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("kb.lance").to_str().unwrap().to_string();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 50);
    ok(&run(&["ingest", a.to_str().unwrap(), "--to", &uri, "-q"]));
    ok(&run(&[
        "ingest",
        a.to_str().unwrap(),
        "--to",
        &uri,
        "--mode",
        "append",
        "-q",
    ]));
    assert_eq!(version_of(&uri, &[]), 2);
    Fixture { dir, uri }
}

impl Fixture {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    #[track_caller]
    fn unchanged(&self) {
        let info = info_json(&self.uri, &[], &[]);
        assert_eq!(info["version"], 2);
        assert_eq!(info["rows"], 100);
    }
}

#[test]
fn missing_input_file() {
    let f = fixture();
    let missing = f.path("nope.jsonl");
    fails_with(
        &run(&["ingest", &missing, "--to", &f.uri, "--mode", "append"]),
        &["nope.jsonl", "does not exist"],
    );
    f.unchanged();
}

#[test]
fn malformed_jsonl_names_file_and_line() {
    let f = fixture();
    let bad = f.path("bad.jsonl");
    std::fs::write(&bad, "{\"doc_id\": \"x\", \"title\": \"t\", \"text\": \"a\", \"n\": 1}\n{\"doc_id\": \"y\", \"title\": \n").unwrap();
    fails_with(
        &run(&["ingest", &bad, "--to", &f.uri, "--mode", "append"]),
        &["bad.jsonl", "line 2"],
    );
    f.unchanged();
}

#[test]
fn jsonl_rows_that_do_not_match_the_schema_on_append() {
    let f = fixture();
    let extra = f.path("extra.jsonl");
    std::fs::write(
        &extra,
        "{\"doc_id\": \"x\", \"title\": \"t\", \"text\": \"a\", \"n\": 1, \"colour\": \"red\"}\n",
    )
    .unwrap();
    fails_with(
        &run(&["ingest", &extra, "--to", &f.uri, "--mode", "append"]),
        &["colour", "--columns"],
    );

    let wrong_type = f.path("wrong.jsonl");
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "{{\"doc_id\": \"x{i}\", \"title\": \"t\", \"text\": \"a\", \"n\": {i}}}\n"
        ));
    }
    text.push_str("{\"doc_id\": \"z\", \"title\": \"t\", \"text\": \"a\", \"n\": \"twenty\"}\n");
    std::fs::write(&wrong_type, text).unwrap();
    fails_with(
        &run(&["ingest", &wrong_type, "--to", &f.uri, "--mode", "append"]),
        &["wrong.jsonl", "line 21"],
    );
    f.unchanged();
}

#[test]
fn csv_rows_that_do_not_match_the_schema_on_append() {
    let f = fixture();
    let extra = f.path("extra.csv");
    std::fs::write(&extra, "doc_id,title,text,n,colour\nx,t,a,1,red\n").unwrap();
    fails_with(
        &run(&["ingest", &extra, "--to", &f.uri, "--mode", "append"]),
        &["colour"],
    );

    let wrong = f.path("wrong.csv");
    std::fs::write(&wrong, "doc_id,title,text,n\nx,t,a,1\ny,t,a,not-a-number\n").unwrap();
    fails_with(
        &run(&["ingest", &wrong, "--to", &f.uri, "--mode", "append"]),
        &["wrong.csv", "not-a-number"],
    );
    f.unchanged();
}

#[test]
fn unknown_uri_scheme() {
    let f = fixture();
    let a = f.path("a.jsonl");
    fails_with(
        &run(&["ingest", &a, "--to", "ftp://host/kb"]),
        &["unsupported URI scheme 'ftp'", "s3://"],
    );
    fails_with(&run(&["info", "gopher://x/y"]), &["unsupported URI scheme"]);
    f.unchanged();
}

#[test]
fn zero_max_rows_per_file() {
    let f = fixture();
    let a = f.path("a.jsonl");
    fails_with(
        &run(&[
            "ingest",
            &a,
            "--to",
            &f.uri,
            "--mode",
            "append",
            "--max-rows-per-file",
            "0",
        ]),
        &["--max-rows-per-file must be at least 1"],
    );
    f.unchanged();
}

#[test]
fn info_on_a_dataset_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("missing.lance");
    fails_with(
        &run(&["info", uri.to_str().unwrap()]),
        &["no Lance dataset", "lanceflow ingest"],
    );
    assert!(!uri.exists(), "info must not create anything");
}

#[test]
fn unknown_version_and_tag() {
    let f = fixture();
    fails_with(
        &run(&["info", &f.uri, "--version", "42"]),
        &["lanceflow versions"],
    );
    fails_with(&run(&["info", &f.uri, "--tag", "nope"]), &["nope"]);
    fails_with(&run(&["restore", &f.uri]), &["--version N or --tag T"]);
    f.unchanged();
}

#[test]
fn create_over_an_existing_dataset() {
    let f = fixture();
    let a = f.path("a.jsonl");
    fails_with(
        &run(&["ingest", &a, "--to", &f.uri]),
        &["already exists", "--mode append"],
    );
    f.unchanged();
}

#[test]
fn s3_endpoint_that_refuses_connections() {
    // Nothing listens on this port: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 5);
    let env = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret-key"),
        ("AWS_REGION", "us-east-1"),
    ];
    let fast = [
        "-s",
        "client_max_retries=0",
        "-s",
        "connect_timeout=2s",
        "-s",
        "client_retry_timeout=5",
    ];
    let mut args = vec!["info", "s3://bucket/kb"];
    args.extend_from_slice(&fast);
    let started = std::time::Instant::now();
    let err = fails_with(
        &run_env(&args, &env),
        &["could not reach the object store", "AWS_ENDPOINT"],
    );
    assert!(!err.contains("very-secret-key"), "{err}");
    assert!(started.elapsed().as_secs() < 60);

    let mut args = vec!["ingest", a.to_str().unwrap(), "--to", "s3://bucket/kb"];
    args.extend_from_slice(&fast);
    fails_with(&run_env(&args, &env), &["could not reach the object store"]);
}

#[test]
fn maintenance_on_a_dataset_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("missing.lance");
    let uri = uri.to_str().unwrap();
    fails_with(&run(&["compact", uri]), &["no Lance dataset"]);
    fails_with(&run(&["optimize", uri]), &["no Lance dataset"]);
    assert!(!dir.path().join("missing.lance").exists());
}

#[test]
fn maintenance_options_that_make_no_sense() {
    let f = fixture();
    fails_with(
        &run(&["compact", &f.uri, "--target-rows-per-fragment", "0"]),
        &["--target-rows-per-fragment must be at least 1"],
    );
    fails_with(
        &run(&["compact", &f.uri, "--deletion-threshold", "2"]),
        &["--deletion-threshold", "between 0 and 1"],
    );
    // No index yet: optimize says how to build one.
    fails_with(
        &run(&["optimize", &f.uri]),
        &["no index", "lanceflow index"],
    );
    fails_with(
        &run(&["optimize", &f.uri, "--index", "nope"]),
        &["no index", "lanceflow index"],
    );
    fails_with(
        &run(&["cleanup", &f.uri, "--older-than", "a while"]),
        &["not an age", "7d"],
    );
    fails_with(
        &run(&["delete", &f.uri, "--where", "no_such_column = 1"]),
        &["no_such_column"],
    );
    f.unchanged();
}

#[test]
fn optimize_an_unknown_index_name() {
    let f = fixture();
    ok(&run(&[
        "index", "scalar", &f.uri, "--column", "n", "--type", "BTREE", "-q",
    ]));
    let version = version_of(&f.uri, &[]);
    fails_with(
        &run(&["optimize", &f.uri, "--index", "nope"]),
        &["no index named 'nope'", "n_idx"],
    );
    assert_eq!(version_of(&f.uri, &[]), version);
}

#[test]
fn ray_executor_without_python_names_the_fix() {
    let f = fixture();
    let o = run_env(
        &[
            "--executor",
            "ray",
            "index",
            "scalar",
            &f.uri,
            "--column",
            "id",
            "--type",
            "BTREE",
        ],
        &[("LANCEFLOW_PYTHON", "/nonexistent/python3")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("LANCEFLOW_PYTHON") && err.contains("wheel"),
        "{err}"
    );
    f.unchanged();
}
