//! Distributed scalar and full-text indexes against single-process builds
//! and plain scans.

use std::io::Write;
use std::path::Path;

use arrow_array::cast::AsArray;
use lance::index::DatasetIndexExt;
use lance_index::scalar::{FullTextSearchQuery, InvertedIndexParams};
use lance_index::IndexType;
use lanceflow::index::scalar::{create_scalar_index, ScalarIndexRequest, ScalarIndexType};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::{Error, Location};

use crate::common::*;

const WORDS: &[&str] = &[
    "deep",
    "learning",
    "health",
    "care",
    "river",
    "bank",
    "money",
    "music",
    "quiet",
    "storm",
    "garden",
    "engine",
    "poem",
    "winter",
    "market",
    "signal",
    "bridge",
    "ocean",
    "neural",
    "network",
    "clinic",
    "patient",
    "diagnosis",
    "image",
];
const COLOURS: &[&str] = &["red", "green", "blue", "black"];

fn word(i: usize, j: usize) -> &'static str {
    // Skewed so some words are common and some rare: scores differ.
    WORDS[((i * 31 + j * 17) % 97 * (j + 1)) % WORDS.len()]
}

/// `n` records: id, category (4 values), tags (list), title, text.
fn write_records(dir: &Path, name: &str, n: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..n {
        let text: Vec<&str> = (0..(4 + i % 13)).map(|j| word(i, j)).collect();
        let tags: Vec<&str> = (0..(i % 3)).map(|j| COLOURS[(i + j) % 4]).collect();
        writeln!(
            f,
            "{}",
            serde_json::json!({
                "id": i as i64,
                "category": COLOURS[i % 4],
                "tags": tags,
                "title": format!("doc {i} {}", word(i, 99)),
                "text": text.join(" "),
            })
        )
        .unwrap();
    }
    path
}

async fn dataset(dir: &Path, name: &str, n: usize, per: usize) -> Location {
    let file = write_records(dir, &format!("{name}.jsonl"), n);
    let loc = local(dir, name);
    let mut req = IngestRequest::new(vec![file], WriteMode::Create);
    req.max_rows_per_file = per;
    ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    loc
}

/// (id, score) of a full-text query, in result order.
async fn fts(loc: &Location, query: FullTextSearchQuery) -> Vec<(i64, f32)> {
    let ds = loc.open(None).await.unwrap();
    let mut scan = ds.scan();
    scan.project(&["id"]).unwrap();
    scan.full_text_search(query).unwrap();
    scan.limit(Some(20), None).unwrap();
    let batches = collect(&scan).await;
    let mut out = Vec::new();
    for b in batches {
        let ids = b
            .column_by_name("id")
            .unwrap()
            .as_primitive::<arrow_array::types::Int64Type>();
        let scores = b
            .column_by_name("_score")
            .unwrap()
            .as_primitive::<arrow_array::types::Float32Type>();
        for r in 0..b.num_rows() {
            out.push((ids.value(r), scores.value(r)));
        }
    }
    out
}

/// Sorted ids matching `filter`, with or without scalar indexes, and the plan.
async fn filtered(loc: &Location, filter: &str, use_index: bool) -> (Vec<i64>, String) {
    let ds = loc.open(None).await.unwrap();
    let mut scan = ds.scan();
    scan.project(&["id"]).unwrap();
    scan.filter(filter).unwrap();
    scan.use_scalar_index(use_index);
    let plan = scan.explain_plan(false).await.unwrap();
    let batches = collect(&scan).await;
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort_unstable();
    (ids, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_fts_ranks_exactly_like_a_single_process_index() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dataset(dir.path(), "ours", 900, 100).await;
    let theirs = dataset(dir.path(), "theirs", 900, 100).await;

    let mut req = ScalarIndexRequest::new("text", ScalarIndexType::Inverted);
    req.fts.with_position = true;
    let report = create_scalar_index(&ours, &req, &lanceflow::local_executor(3), &NoProgress)
        .await
        .unwrap();
    assert_eq!((report.segments_built, report.segments), (3, 1), "merged");
    assert_eq!(report.fragments, 9);
    assert_eq!(report.rows_indexed, 900);
    assert_eq!(report.version, report.read_version + 1);
    let mut ds = theirs.open(None).await.unwrap();
    ds.create_index(
        &["text"],
        IndexType::Inverted,
        Some("text_idx".into()),
        &InvertedIndexParams::default().with_position(true),
        false,
    )
    .await
    .unwrap();

    let queries = [
        FullTextSearchQuery::new("deep learning health care".into()),
        FullTextSearchQuery::new("patient".into()),
        FullTextSearchQuery::new("ocean storm bridge".into()),
        FullTextSearchQuery::new_query(
            // Two consecutive words of row 5's text.
            lance_index::scalar::inverted::query::PhraseQuery::new(format!(
                "{} {}",
                word(5, 1),
                word(5, 2)
            ))
            .into(),
        ),
    ];
    for q in queries {
        let a = fts(&ours, q.clone()).await;
        let b = fts(&theirs, q.clone()).await;
        assert!(!a.is_empty(), "{q:?} found nothing");
        assert_eq!(a.len(), b.len(), "{q:?}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x.1 - y.1).abs() < 1e-5, "{q:?}: {a:?} vs {b:?}");
        }
        // Same rows in the same order, up to ties (equal scores); rows tied
        // with the last one may differ (which of them makes the cut is
        // arbitrary in both).
        let last = a.last().map(|r| r.1).unwrap_or(0.0);
        let ids = |v: &[(i64, f32)]| {
            let mut s: Vec<(i64, i64)> = v
                .iter()
                .filter(|r| (r.1 - last).abs() >= 1e-5)
                .map(|r| ((r.1 * 1e4).round() as i64, r.0))
                .collect();
            s.sort_unstable();
            s
        };
        assert_eq!(ids(&a), ids(&b), "{q:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalar_indexes_filter_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dataset(dir.path(), "docs", 700, 100).await;
    let exec = lanceflow::local_executor(2);
    let cases = [
        (
            "id",
            ScalarIndexType::Btree,
            "id >= 250 AND id < 333",
            "BTree",
        ),
        (
            "category",
            ScalarIndexType::Bitmap,
            "category = 'blue'",
            "Bitmap",
        ),
        (
            "tags",
            ScalarIndexType::LabelList,
            "array_has_any(tags, ['red'])",
            "LabelList",
        ),
        (
            "title",
            ScalarIndexType::Ngram,
            "contains(title, 'oc 12')",
            "NGram",
        ),
    ];
    for (i, (column, kind, filter, shown)) in cases.into_iter().enumerate() {
        // Every other kind keeps its two segments apart; the rest are merged.
        let mut request = ScalarIndexRequest::new(column, kind);
        request.keep_segments = i % 2 == 1;
        let report = create_scalar_index(&loc, &request, &exec, &NoProgress)
            .await
            .unwrap();
        let committed = if request.keep_segments { 2 } else { 1 };
        assert_eq!(
            (report.segments_built, report.segments),
            (2, committed),
            "{column}"
        );
        let (indexed, plan) = filtered(&loc, filter, true).await;
        let (scanned, _) = filtered(&loc, filter, false).await;
        assert!(!scanned.is_empty(), "{filter}");
        assert_eq!(indexed, scanned, "{filter}");
        assert!(
            plan.contains("ScalarIndexQuery") && plan.contains(shown),
            "{filter}: index not used:\n{plan}"
        );
    }
    // A zone map on the same column as the BTREE, by another name.
    let mut zm = ScalarIndexRequest::new("id", ScalarIndexType::Zonemap);
    zm.name = Some("id_zones".into());
    create_scalar_index(&loc, &zm, &exec, &NoProgress)
        .await
        .unwrap();
    let ds = loc.open(None).await.unwrap();
    let names: Vec<String> = ds
        .load_indices()
        .await
        .unwrap()
        .iter()
        .map(|i| i.name.clone())
        .collect();
    assert!(names.contains(&"id_zones".to_string()), "{names:?}");

    // A bloom filter (two segments, merged) answers equality and IN on a
    // high-cardinality string column exactly like a scan.
    let mut bloom = ScalarIndexRequest::new("text", ScalarIndexType::Bloomfilter);
    bloom.name = Some("text_bloom".into());
    let report = create_scalar_index(&loc, &bloom, &exec, &NoProgress)
        .await
        .unwrap();
    assert_eq!((report.segments_built, report.segments), (2, 1));
    let text_of = |i: usize| {
        (0..(4 + i % 13))
            .map(|j| word(i, j))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for filter in [
        format!("text = '{}'", text_of(123)),
        format!(
            "text IN ('{}', '{}', 'no such text')",
            text_of(7),
            text_of(650)
        ),
        "text = 'no such text'".to_string(),
    ] {
        let (indexed, plan) = filtered(&loc, &filter, true).await;
        let (scanned, _) = filtered(&loc, &filter, false).await;
        assert_eq!(indexed, scanned, "{filter}");
        assert!(
            plan.contains("ScalarIndexQuery") || plan.contains("text_bloom"),
            "{filter}: index not used:\n{plan}"
        );
    }
    let one = filtered(&loc, &format!("text = '{}'", text_of(123)), true)
        .await
        .0;
    assert!(one.contains(&123), "{one:?}");

    // --fragments: only those are covered.
    let mut part = ScalarIndexRequest::new("text", ScalarIndexType::Inverted);
    part.fragments = Some(vec![0, 2]);
    let report = create_scalar_index(&loc, &part, &exec, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.rows_indexed, 200);
    let ds = loc.open(None).await.unwrap();
    let covered: Vec<u32> = ds
        .load_indices_by_name("text_idx")
        .await
        .unwrap()
        .iter()
        .flat_map(|i| {
            i.fragment_bitmap
                .as_ref()
                .unwrap()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    let mut covered = covered;
    covered.sort_unstable();
    assert_eq!(covered, vec![0, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scalar_index_input_is_refused_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dataset(dir.path(), "docs", 100, 50).await;
    let exec = lanceflow::local_executor(2);
    let run = |req: ScalarIndexRequest| {
        let loc = loc.clone();
        let exec = exec.clone();
        async move {
            create_scalar_index(&loc, &req, &exec, &NoProgress)
                .await
                .unwrap_err()
        }
    };
    let before = latest_version(&loc).await;

    let err = run(ScalarIndexRequest::new("id", ScalarIndexType::Inverted)).await;
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("column 'id' is Int64"), "{err}");
    let err = run(ScalarIndexRequest::new("tags", ScalarIndexType::Btree)).await;
    assert!(err.to_string().contains("LABEL_LIST"), "{err}");
    let err = run(ScalarIndexRequest::new("body", ScalarIndexType::Btree)).await;
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("columns: category, id"), "{err}");
    let mut req = ScalarIndexRequest::new("id", ScalarIndexType::Btree);
    req.fts.with_position = true;
    let err = run(req).await;
    assert!(err.to_string().contains("only apply to INVERTED"), "{err}");
    let mut req = ScalarIndexRequest::new("text", ScalarIndexType::Inverted);
    req.fts.language = Some("Klingon".into());
    let err = run(req).await;
    assert!(err.to_string().contains("--language"), "{err}");
    let mut req = ScalarIndexRequest::new("id", ScalarIndexType::Btree);
    req.fragments = Some(vec![0, 7]);
    let err = run(req).await;
    assert!(err.to_string().contains("fragment(s) 7"), "{err}");
    assert_eq!(latest_version(&loc).await, before);

    // An existing name needs --replace; with it, the index is rebuilt.
    create_scalar_index(
        &loc,
        &ScalarIndexRequest::new("id", ScalarIndexType::Btree),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    let err = run(ScalarIndexRequest::new("id", ScalarIndexType::Btree)).await;
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");
    let mut other = ScalarIndexRequest::new("category", ScalarIndexType::Bitmap);
    other.name = Some("id_idx".into());
    let err = run(other).await;
    assert!(err.to_string().contains("on column 'id'"), "{err}");
    let mut again = ScalarIndexRequest::new("id", ScalarIndexType::Btree);
    again.replace = true;
    create_scalar_index(&loc, &again, &exec, &NoProgress)
        .await
        .unwrap();
    let ds = loc.open(None).await.unwrap();
    // Replaced by the new build's two segments, merged into one.
    assert_eq!(ds.load_indices_by_name("id_idx").await.unwrap().len(), 1);
    assert_eq!(latest_version(&loc).await, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_hybrid_search_with_filters_and_fusion() {
    use lanceflow::embed::{embed, EmbedRequest};
    use lanceflow::search::hybrid::{search_hybrid, Fusion, HybridRequest};
    use lanceflow::search::text::{search_text, TextSearchRequest};
    use lanceflow::search::VectorSearchRequest;

    let dir = tempfile::tempdir().unwrap();
    let loc = dataset(dir.path(), "docs", 300, 100).await;
    let exec = lanceflow::local_executor(2);

    // No full-text index yet: the error says how to build one.
    let err = search_text(&loc, None, &TextSearchRequest::new("deep", 5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("--type INVERTED"), "{err}");

    for column in ["title", "text"] {
        let mut req = ScalarIndexRequest::new(column, ScalarIndexType::Inverted);
        req.fts.with_position = true;
        create_scalar_index(&loc, &req, &exec, &NoProgress)
            .await
            .unwrap();
    }
    let mut req = TextSearchRequest::new("deep learning health", 10);
    let all = search_text(&loc, None, &req).await.unwrap();
    assert_eq!(all.searched, vec!["text", "title"]);
    assert_eq!(all.hits.len(), 10);
    assert!(all.hits.windows(2).all(|w| w[0].score >= w[1].score));

    // A filter applies before ranking: every hit passes it, and there are
    // still k of them.
    req.filter = Some("category = 'red'".into());
    let red = search_text(&loc, None, &req).await.unwrap();
    assert_eq!(red.hits.len(), 10);
    assert!(red.hits.iter().all(|h| h.fields["category"] == "red"));

    // Phrase search on one column.
    let mut phrase = TextSearchRequest::new(format!("{} {}", word(5, 1), word(5, 2)), 50);
    phrase.phrase = true;
    phrase.search_columns = Some(vec!["text".into()]);
    let hits = search_text(&loc, None, &phrase).await.unwrap().hits;
    assert!(hits.iter().any(|h| h.fields["id"] == 5), "{hits:?}");
    assert!(hits.iter().all(|h| h.fields["text"]
        .as_str()
        .unwrap()
        .contains(phrase.query.as_str())));

    // Bad input.
    let err = search_text(&loc, None, &TextSearchRequest::new("  ", 5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("query text is empty"), "{err}");
    let mut bad = TextSearchRequest::new("deep", 5);
    bad.search_columns = Some(vec!["category".into()]);
    let err = search_text(&loc, None, &bad).await.unwrap_err();
    assert!(err.to_string().contains("no full-text index"), "{err}");

    // Hybrid: without vectors it names what is missing.
    let e = lanceflow::embedding::shared_embedder(&Default::default()).unwrap();
    let query = "deep learning health care";
    let qv = e.embed(&[query]).unwrap();
    let hybrid = |weights: Vec<f64>, fusion: Fusion| HybridRequest {
        text: TextSearchRequest::new(query, 20),
        vector: VectorSearchRequest::new(qv.clone(), 20),
        k: 10,
        fusion,
        rrf_k: 60.0,
        weights,
    };
    let err = search_hybrid(&loc, None, &hybrid(vec![1.0, 1.0], Fusion::Rrf))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("vector"), "{err}");

    embed(&loc, &EmbedRequest::new("text"), &exec, &NoProgress)
        .await
        .unwrap();
    let fused = search_hybrid(&loc, None, &hybrid(vec![1.0, 1.0], Fusion::Rrf))
        .await
        .unwrap();
    assert_eq!(fused.hits.len(), 10);
    for h in &fused.hits {
        let expected: f64 = [h.vector_rank, h.text_rank]
            .iter()
            .flatten()
            .map(|r| 1.0 / (60.0 + *r as f64))
            .sum();
        assert!((h.score - expected).abs() < 1e-12, "{h:?}");
    }
    assert!(fused
        .hits
        .iter()
        .any(|h| h.vector_rank.is_some() && h.text_rank.is_some()));
    // Text weight only: the text ranking, with the same rows' columns.
    let text_only = search_hybrid(&loc, None, &hybrid(vec![0.0, 1.0], Fusion::Linear))
        .await
        .unwrap();
    let plain = search_text(&loc, None, &TextSearchRequest::new(query, 10))
        .await
        .unwrap();
    let a: Vec<(u64, &serde_json::Value)> = text_only
        .hits
        .iter()
        .map(|h| (h.row_id, &h.fields["id"]))
        .collect();
    let b: Vec<(u64, &serde_json::Value)> = plain
        .hits
        .iter()
        .map(|h| (h.row_id, &h.fields["id"]))
        .collect();
    assert_eq!(a, b);
    let err = search_hybrid(&loc, None, &hybrid(vec![1.0], Fusion::Rrf))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("give two"), "{err}");
}
