//! `lanceflow serve`: the router driven without a socket (answers equal the
//! engine's, every bad request a 4xx, access control, overload, refresh), and
//! the binary over a real loopback socket with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use lanceflow::search::hybrid::{Fusion, HybridRequest};
use lanceflow::search::retrieval::Retriever;
use lanceflow::search::text::TextSearchRequest;
use lanceflow::search::VectorSearchRequest;
use lanceflow::{Location, StorageOptions};
use lanceflow_cli::serve::{ServeOptions, ServeState};
use tower::ServiceExt;

use crate::common::*;

/// 120 documents with embeddings, a vector index and a full-text index.
pub(crate) fn knowledge_base(dir: &std::path::Path) -> String {
    let input = write_jsonl(dir, "docs.jsonl", 0, 120);
    let uri = dir.join("kb").to_string_lossy().to_string();
    ok(&run(&[
        "-q",
        "ingest",
        input.to_str().unwrap(),
        "--to",
        &uri,
        "--max-rows-per-file",
        "40",
    ]));
    ok(&run(&["-q", "embed", &uri, "--column", "text"]));
    ok(&run(&[
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
    ]));
    ok(&run(&[
        "-q", "index", "scalar", &uri, "--column", "text", "--type", "INVERTED",
    ]));
    uri
}

fn location(uri: &str) -> Location {
    Location::resolve(uri, &StorageOptions::default()).unwrap()
}

pub(crate) async fn state(uri: &str, options: ServeOptions) -> ServeState {
    let retriever = Retriever::open(location(uri), None, Some(Default::default()))
        .await
        .unwrap();
    ServeState::new(Arc::new(retriever), options).unwrap()
}

pub(crate) async fn call(
    state: &ServeState,
    method: &str,
    path: &str,
    body: Option<&str>,
    key: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = request
        .body(Body::from(body.unwrap_or_default().to_string()))
        .unwrap();
    let response = state.router().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

async fn search(state: &ServeState, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let (status, _, json) = call(state, "POST", "/v1/search", Some(&body.to_string()), None).await;
    (status, json)
}

fn ids(hits: &serde_json::Value) -> Vec<u64> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["row_id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_answers_like_the_engine_and_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let uri = knowledge_base(dir.path());
    let loc = location(&uri);
    let state = state(&uri, ServeOptions::default()).await;

    // Vector mode with a given vector: the engine's answer, distances included.
    let query = lanceflow::search::query_from_row(&loc, None, None, 7)
        .await
        .unwrap();
    let (status, found) = search(
        &state,
        serde_json::json!({"vector": query.row(0), "k": 5, "nprobes": 4, "columns": ["doc_id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let mut expected = VectorSearchRequest::new(query.clone(), 5);
    expected.nprobes = Some(4);
    let engine = lanceflow::search::search_vectors(&loc, None, &expected, 1)
        .await
        .unwrap();
    let engine_hits = &engine.results[0].hits;
    assert_eq!(
        ids(&found["hits"]),
        engine_hits.iter().map(|h| h.row_id).collect::<Vec<_>>()
    );
    for (h, e) in found["hits"].as_array().unwrap().iter().zip(engine_hits) {
        assert!((h["distance"].as_f64().unwrap() - e.distance as f64).abs() < 1e-6);
        assert_eq!(h["fields"].as_object().unwrap().len(), 1, "{h}");
    }
    assert_eq!(found["hits"][0]["fields"]["doc_id"], "d7", "{found}");
    assert_eq!(found["version"], 4);

    // Vector mode with a text: embedded once, then the same search.
    let text = "the text of document number 42";
    let (status, found) = search(&state, serde_json::json!({"query": text, "k": 3})).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let embedder = lanceflow::embedding::shared_embedder(&Default::default()).unwrap();
    let engine = lanceflow::search::search_vectors(
        &loc,
        None,
        &VectorSearchRequest::new(embedder.embed(&[text]).unwrap(), 3),
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&found["hits"]),
        engine.results[0]
            .hits
            .iter()
            .map(|h| h.row_id)
            .collect::<Vec<_>>()
    );
    assert_eq!(found["hits"][0]["fields"]["doc_id"], "d42", "{found}");
    assert!(
        found["timings"]["embed_ms"].as_f64().unwrap() > 0.0,
        "{found}"
    );

    // Text mode: the engine's full-text answer, filter applied.
    let (status, found) = search(
        &state,
        serde_json::json!({"query": "number 17", "mode": "text", "k": 4, "filter": "n < 60"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let mut request = TextSearchRequest::new("number 17", 4);
    request.filter = Some("n < 60".into());
    let engine = lanceflow::search::text::search_text(&loc, None, &request)
        .await
        .unwrap();
    assert_eq!(
        ids(&found["hits"]),
        engine.hits.iter().map(|h| h.row_id).collect::<Vec<_>>()
    );
    assert!(found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(
            |h| h["fields"]["n"].as_i64().unwrap() < 60 && h["text_score"].as_f64().unwrap() > 0.0
        ));

    // Hybrid: the engine's fused answer (legs 20 deep, RRF k=60, weights 1,1).
    let (status, found) = search(
        &state,
        serde_json::json!({"query": "document number 99", "mode": "hybrid", "k": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let hybrid = HybridRequest {
        text: TextSearchRequest::new("document number 99", 20),
        vector: VectorSearchRequest::new(embedder.embed(&["document number 99"]).unwrap(), 20),
        k: 5,
        fusion: Fusion::Rrf,
        rrf_k: 60.0,
        weights: vec![1.0, 1.0],
    };
    let engine = lanceflow::search::hybrid::search_hybrid(&loc, None, &hybrid)
        .await
        .unwrap();
    assert_eq!(
        ids(&found["hits"]),
        engine.hits.iter().map(|h| h.row_id).collect::<Vec<_>>()
    );
    let t = &found["timings"];
    assert!(
        t["vector_ms"].as_f64().unwrap() > 0.0 && t["text_ms"].as_f64().unwrap() > 0.0,
        "{t}"
    );

    // Time travel: version 1 has no vectors yet; version 99 does not exist.
    let (status, found) = search(&state, serde_json::json!({"query": "x", "version": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{found}");
    assert!(
        found["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no vector column"),
        "{found}"
    );
    let (status, found) = search(&state, serde_json::json!({"query": "x", "version": 99})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{found}");
    let message = found["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"version\" 99 does not exist"), "{found}");
    assert!(!message.contains(dir.path().to_str().unwrap()), "{found}");

    // Bad requests: 4xx with a message and the request id.
    let wrong_dim = serde_json::json!({"vector": [0.1, 0.2, 0.3]});
    let cases: Vec<(Option<&str>, StatusCode, &str)> = vec![
        (
            Some(r#"{"query": "x", "mode": "fuzzy"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            Some(r#"{"query": "x", "topk": 3}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (Some(r#"{"query": "x""#), StatusCode::BAD_REQUEST, "EOF"),
        (
            Some(r#"{"query": "x", "k": 0}"#),
            StatusCode::BAD_REQUEST,
            "\"k\" must be between 1 and 10000",
        ),
        (
            Some(r#"{"query": "x", "k": 10001}"#),
            StatusCode::BAD_REQUEST,
            "\"k\" must be between 1 and 10000",
        ),
        (
            Some(r#"{"k": 3}"#),
            StatusCode::BAD_REQUEST,
            "needs \"query\"",
        ),
        (
            Some(r#"{"query": " ", "mode": "text"}"#),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            Some(r#"{"query": "x", "vector": [1.0]}"#),
            StatusCode::BAD_REQUEST,
            "not both",
        ),
        (
            Some(r#"{"query": "x", "fusion": "rrf"}"#),
            StatusCode::BAD_REQUEST,
            "hybrid",
        ),
        (
            Some(r#"{"query": "x", "filter": "nope >"}"#),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            Some(r#"{"query": "x", "columns": ["nope"]}"#),
            StatusCode::NOT_FOUND,
            "nope",
        ),
    ];
    let wrong_dim = wrong_dim.to_string();
    let mut cases = cases;
    cases.push((Some(&wrong_dim), StatusCode::BAD_REQUEST, "dimension"));
    // The probes that once aborted the process: each a 400 naming the field.
    let vector = |extra: serde_json::Value| {
        let mut body = serde_json::json!({"vector": query.row(0)});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body.to_string()
    };
    let huge_refine =
        vector(serde_json::json!({"k": 10000, "nprobes": 1, "refine_factor": 4294967295u64}));
    let zero_probes = vector(serde_json::json!({"nprobes": 0}));
    let or_chain = vector(serde_json::json!({"filter": vec!["n = 1"; 60_000].join(" OR ")}));
    let repeat = vector(serde_json::json!({"filter": "length(repeat(text, 100000)) > 0"}));
    let trailing = vector(serde_json::json!({"filter": "n = 1; DELETE FROM t"}));
    let long_vector = serde_json::json!({"vector": vec![0.5; 70_000]}).to_string();
    let many_columns = vector(serde_json::json!({"columns": vec!["n"; 2_000]}));
    for (body, needle) in [
        (&huge_refine, "\"refine_factor\" must be between 1 and 10 "),
        (&zero_probes, "\"nprobes\" must be between 1"),
        (&or_chain, "the filter is"),
        (&repeat, "`repeat`"),
        (&trailing, "';'"),
        (&long_vector, "\"vector\" has 70000 numbers"),
        (&many_columns, "\"columns\" names 2000 columns"),
    ] {
        cases.push((Some(body.as_str()), StatusCode::BAD_REQUEST, needle));
    }
    for (body, want, needle) in cases {
        let (status, headers, json) = call(&state, "POST", "/v1/search", body, None).await;
        assert_eq!(status, want, "{body:?} → {json}");
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body:?} → {json}");
        // HTTP errors speak HTTP: no CLI flags, no server paths.
        assert!(!message.contains("--"), "{json}");
        assert!(!message.contains(dir.path().to_str().unwrap()), "{json}");
        assert_eq!(
            json["request_id"].as_str(),
            headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            "{json}"
        );
    }
    // No JSON content type: 415; a body over the limit: 413; unknown route: 404.
    let request = Request::post("/v1/search")
        .body(Body::from(r#"{"query": "x"}"#))
        .unwrap();
    let response = state.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let small = ServeState::new(
        Arc::new(Retriever::open(location(&uri), None, None).await.unwrap()),
        ServeOptions {
            max_body_bytes: 64,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let big = format!(r#"{{"query": "{}"}}"#, "x".repeat(100));
    let (status, _, json) = call(&small, "POST", "/v1/search", Some(&big), None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    let (status, _, json) = call(&state, "GET", "/v2/nothing", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    // A service without a model: text queries for vectors are refused, vectors work.
    let no_model = ServeState::new(
        Arc::new(Retriever::open(location(&uri), None, None).await.unwrap()),
        ServeOptions::default(),
    )
    .unwrap();
    let (status, json) = search(&no_model, serde_json::json!({"query": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without an embedding model"),
        "{json}"
    );
    let (status, json) = search(
        &no_model,
        serde_json::json!({"vector": query.row(0), "k": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");

    // Info: the served version, its indexes, the model.
    let (status, _, info) = call(&state, "GET", "/v1/info", None, None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["dataset"]["version"], 4, "{info}");
    assert_eq!(info["dataset"]["rows"], 120, "{info}");
    assert_eq!(info["model"]["dim"], 384, "{info}");
    let (status, _, doc) = call(&state, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_control_overload_and_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let uri = knowledge_base(dir.path());
    let state = state(
        &uri,
        ServeOptions {
            api_key: Some("s3cret-key".into()),
            max_concurrency: 2,
            ..ServeOptions::default()
        },
    )
    .await;
    let body = r#"{"query": "number 3", "mode": "text", "k": 2}"#;

    // Health needs no key; everything else does, and a wrong key is refused.
    let (status, _, _) = call(&state, "GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for key in [None, Some("wrong"), Some("s3cret-ke"), Some("s3cret-key2")] {
        let (status, headers, json) = call(&state, "POST", "/v1/search", Some(body), key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}: {json}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(!json.to_string().contains("s3cret"), "{json}");
    }
    let (status, _, _) = call(&state, "GET", "/v1/info", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let key = Some("s3cret-key");
    let (status, _, json) = call(&state, "POST", "/v1/search", Some(body), key).await;
    assert_eq!(status, StatusCode::OK, "{json}");

    // Overload: with every slot taken, 503 and Retry-After; health still answers.
    let limiter = state.limiter();
    let held = limiter.clone().acquire_many_owned(2).await.unwrap();
    let (status, headers, json) = call(&state, "POST", "/v1/search", Some(body), key).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let (status, _, _) = call(&state, "GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    drop(held);
    let (status, _, _) = call(&state, "POST", "/v1/search", Some(body), key).await;
    assert_eq!(status, StatusCode::OK);

    // Refresh: appended rows are invisible until the service moves on.
    let more = write_jsonl(dir.path(), "more.jsonl", 1000, 5);
    ok(&run(&[
        "-q",
        "ingest",
        more.to_str().unwrap(),
        "--to",
        &uri,
        "--mode",
        "append",
    ]));
    let probe = r#"{"query": "x", "mode": "text", "filter": "n >= 1000", "k": 10}"#;
    let probe = probe.replace("\"x\"", "\"document number\"");
    let (_, _, before) = call(&state, "POST", "/v1/search", Some(&probe), key).await;
    assert_eq!(before["hits"].as_array().unwrap().len(), 0, "{before}");
    let (status, _, refreshed) = call(&state, "POST", "/v1/refresh", None, key).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["from"], 4);
    assert_eq!(refreshed["to"], 5);
    let (_, _, after) = call(&state, "POST", "/v1/search", Some(&probe), key).await;
    assert_eq!(after["version"], 5, "{after}");
    assert_eq!(after["hits"].as_array().unwrap().len(), 5, "{after}");
    // The old version stays searchable on request.
    let old = probe.replace("\"k\": 10", "\"k\": 10, \"version\": 4");
    let (_, _, old) = call(&state, "POST", "/v1/search", Some(&old), key).await;
    assert_eq!(old["version"], 4, "{old}");
    assert_eq!(old["hits"].as_array().unwrap().len(), 0, "{old}");
}

#[test]
fn binary_serves_over_loopback_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let uri = knowledge_base(dir.path());
    // Bad input first: exit 2 with the fix named.
    fails_with(
        &run(&["serve", &uri, "--api-key-env", "LANCEFLOW_TEST_UNSET_KEY"]),
        &["LANCEFLOW_TEST_UNSET_KEY", "not set"],
    );
    fails_with(
        &run(&[
            "serve",
            &dir.path().join("nothing").to_string_lossy(),
            "--no-model",
        ]),
        &["no Lance dataset"],
    );
    fails_with(
        &run(&["serve", &uri, "--no-model", "--cache-size", "2XB"]),
        &["unknown size unit"],
    );

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lanceflow"))
        .args([
            "serve",
            &uri,
            "--addr",
            "127.0.0.1:0",
            "--no-model",
            "--api-key-env",
            "KB_KEY",
        ])
        .env("KB_KEY", "k3y")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first}"));
    let addr = url.trim_start_matches("http://").to_string();

    let (status, _) = http(&addr, "GET", "/health", "", None);
    assert_eq!(status, 200);
    let body = r#"{"query": "number 5", "mode": "text", "k": 3}"#;
    let (status, _) = http(&addr, "POST", "/v1/search", body, None);
    assert_eq!(status, 401);
    let (status, text) = http(&addr, "POST", "/v1/search", body, Some("k3y"));
    assert_eq!(status, 200, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["hits"].as_array().unwrap().len(), 3, "{json}");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("k3y"), "{stderr}");
}

/// Reads until the server closes the connection (or `limit` passes):
/// what it sent, and how long it took.
fn read_until_closed(
    stream: &mut std::net::TcpStream,
    limit: std::time::Duration,
) -> (String, std::time::Duration) {
    let started = std::time::Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        assert!(started.elapsed() < limit, "the connection stayed open");
    }
    assert!(started.elapsed() < limit, "the connection stayed open");
    (
        String::from_utf8_lossy(&seen).to_string(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_timed_out_and_drained() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let uri = knowledge_base(dir.path());
    let options = ServeOptions {
        max_connections: 2,
        header_timeout: Duration::from_millis(600),
        request_timeout: Duration::from_secs(2),
        ..ServeOptions::default()
    };
    let state = state(&uri, options).await;
    let (listener, addr) = lanceflow_cli::serve::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lanceflow_cli::serve::serve_until(listener, state, async {
        let _ = stopped.await;
    }));

    let clients = tokio::task::spawn_blocking(move || {
        let addr = addr.to_string();
        // Two half-open connections (one header line each) take both slots.
        let mut half_open: Vec<_> = (0..2)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        // A third is closed at once, unanswered.
        let mut third = std::net::TcpStream::connect(&addr).unwrap();
        let (said, took) = read_until_closed(&mut third, Duration::from_millis(500));
        assert!(said.is_empty(), "{said}");
        assert!(took < Duration::from_millis(400), "{took:?}");
        // The half-open ones are closed by the header timeout.
        for s in &mut half_open {
            read_until_closed(s, Duration::from_secs(5));
        }
        // Their slots are free again: a whole request is answered.
        let (status, body) = http(&addr, "GET", "/health", "", None);
        assert_eq!(status, 200, "{body}");
        // A keep-alive connection left idle after its answer is closed too.
        let mut idle = std::net::TcpStream::connect(&addr).unwrap();
        idle.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        let (said, took) = read_until_closed(&mut idle, Duration::from_secs(5));
        assert!(said.starts_with("HTTP/1.1 200"), "{said}");
        assert!(took >= Duration::from_millis(500), "{took:?}");
        // One more half-open connection, left for the shutdown to close.
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"POST /v1/search HTTP/1.1\r\n").unwrap();
        s
    })
    .await
    .unwrap();

    // Shutdown ends within the drain deadline (request timeout + 1 s).
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(clients);
}

#[tokio::test]
async fn a_panic_becomes_a_500_with_json() {
    let app = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom at /secret/path");
                }
                "unreachable"
            }),
        )
        .layer(axum::middleware::from_fn(lanceflow_cli::serve::catch_panic));
    let request = Request::builder().uri("/boom").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["error"]["kind"], "internal", "{json}");
    assert!(!json.to_string().contains("/secret/path"), "{json}");
}
