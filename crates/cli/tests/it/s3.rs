//! Against a real S3-compatible server on loopback (moto, started by
//! scripts/test.sh, which sets LANCEFLOW_TEST_S3_ENDPOINT).

use crate::common::*;

fn endpoint() -> String {
    std::env::var("LANCEFLOW_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LANCEFLOW_TEST_S3_ENDPOINT is not set: run the tests with scripts/test.sh, which starts \
             a moto S3 server on loopback (pip install \"moto[server]\")"
        )
    })
}

/// Create a bucket with a plain PUT (moto does not check signatures).
fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://");
    let (status, body) = http(host, "PUT", &format!("/{bucket}"), "", None);
    assert_eq!(status, 200, "create bucket: {body}");
}

fn env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-value".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn ingest_info_append_time_travel_on_s3() {
    let endpoint = endpoint();
    create_bucket(&endpoint, "lf-workflow");
    let env = env(&endpoint);
    let env = as_refs(&env);
    let dir = tempfile::tempdir().unwrap();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 1000);
    let b = write_jsonl(dir.path(), "b.jsonl", 1000, 500);
    let uri = "s3://lf-workflow/kb/docs.lance";

    ok(&run_env(
        &[
            "ingest",
            a.to_str().unwrap(),
            "--to",
            uri,
            "--max-rows-per-file",
            "300",
            "-q",
        ],
        &env,
    ));
    let info = info_json(uri, &[], &env);
    assert_eq!(
        (info["rows"].as_u64(), info["fragments"].as_u64()),
        (Some(1000), Some(4))
    );
    let shown = serde_json::to_string(&info).unwrap();
    assert!(!shown.contains("testing-secret-value"), "{shown}");
    assert_eq!(info["storage_options"]["client_max_retries"], "15");
    assert_eq!(info["storage_options"]["timeout"], "120s");

    ok(&run_env(
        &[
            "ingest",
            b.to_str().unwrap(),
            "--to",
            uri,
            "--mode",
            "append",
            "-q",
        ],
        &env,
    ));
    assert_eq!(info_json(uri, &[], &env)["rows"], 1500);
    assert_eq!(info_json(uri, &["--version", "1"], &env)["rows"], 1000);
    ok(&run_env(
        &["tag", "create", uri, "v1", "--version", "1"],
        &env,
    ));
    assert_eq!(info_json(uri, &["--tag", "v1"], &env)["rows"], 1000);

    // A bad append leaves the S3 dataset's latest version unchanged.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"doc_id\": 1, \n").unwrap();
    fails_with(
        &run_env(
            &[
                "ingest",
                bad.to_str().unwrap(),
                "--to",
                uri,
                "--mode",
                "append",
            ],
            &env,
        ),
        &["line 1"],
    );
    assert_eq!(version_of(uri, &env), 2);
}

#[test]
fn eight_racing_appends_all_land() {
    let endpoint = endpoint();
    create_bucket(&endpoint, "lf-race");
    let env = env(&endpoint);
    let env_refs = as_refs(&env);
    let dir = tempfile::tempdir().unwrap();
    let uri = "s3://lf-race/kb.lance";
    let seed = write_jsonl(dir.path(), "seed.jsonl", 0, 100);
    ok(&run_env(
        &["ingest", seed.to_str().unwrap(), "--to", uri, "-q"],
        &env_refs,
    ));

    let inputs: Vec<_> = (0..8)
        .map(|i| {
            write_jsonl(
                dir.path(),
                &format!("p{i}.jsonl"),
                1000 * (i + 1),
                10 * (i + 1),
            )
        })
        .collect();
    let handles: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let env = env.clone();
            std::thread::spawn(move || {
                let refs = as_refs(&env);
                run_env(
                    &[
                        "ingest",
                        input.to_str().unwrap(),
                        "--to",
                        uri,
                        "--mode",
                        "append",
                        "-q",
                    ],
                    &refs,
                )
            })
        })
        .collect();
    for h in handles {
        ok(&h.join().unwrap());
    }
    let info = info_json(uri, &[], &env_refs);
    let expected_rows: u64 = 100 + (1..=8).map(|i| 10 * i).sum::<u64>();
    assert_eq!(info["rows"], expected_rows);
    assert_eq!(info["version"], 9, "each append is its own version");
    let versions: serde_json::Value =
        serde_json::from_str(&ok(&run_env(&["versions", uri, "--json"], &env_refs))).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 9);
}
