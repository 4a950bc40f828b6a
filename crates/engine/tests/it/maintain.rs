//! Maintenance: append, delete, compaction, index optimisation, time travel,
//! checked after every step against a plain in-memory model of the data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use lanceflow::compact::{compact, CompactReport, CompactRequest};
use lanceflow::index::optimize::{optimize, OptimizeReport, OptimizeRequest};
use lanceflow::index::scalar::{create_scalar_index, ScalarIndexRequest, ScalarIndexType};
use lanceflow::index::vector::{create_vector_index, Metric, VectorIndexRequest, VectorIndexType};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::search::text::{search_text, TextSearchRequest};
use lanceflow::search::{search_vectors, VectorSearchRequest};
use lanceflow::spine::run_tasks;
use lanceflow::vectors::Matrix;
use lanceflow::{Error, Location, VersionSpec};

use crate::common::*;

const DIM: usize = 8;
const PARTITIONS: usize = 4;
/// Rows carry one of these tags in their text; FTS checks query them.
const TAGS: usize = 5;

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() % 1_000_000) as f32 / 1_000_000.0
    }
}

#[derive(Clone, PartialEq, Debug)]
struct Row {
    text: String,
    vector: Vec<f32>,
}

fn make_row(id: i64, rng: &mut Rng) -> Row {
    Row {
        text: format!("row {id} tag{} extra words", id as usize % TAGS),
        vector: (0..DIM).map(|_| rng.unit() * 2.0 - 1.0).collect(),
    }
}

/// Write rows as a Parquet file (id, text, vector).
fn write_rows(path: &Path, rows: &[(i64, Row)]) -> PathBuf {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                DIM as i32,
            ),
            false,
        ),
    ]));
    let mut vectors = FixedSizeListBuilder::new(Float32Builder::new(), DIM as i32);
    for (_, row) in rows {
        vectors.values().append_slice(&row.vector);
        vectors.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.1.text.as_str()),
        )),
        Arc::new(vectors.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    path.to_path_buf()
}

async fn load(loc: &Location, file: PathBuf, mode: WriteMode, per_fragment: usize) {
    let mut req = IngestRequest::new(vec![file], mode);
    req.max_rows_per_file = per_fragment;
    ingest(loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
}

/// Every row of the dataset at `version` (latest when `None`), by id.
async fn contents(loc: &Location, version: Option<u64>) -> BTreeMap<i64, Row> {
    let mut out = BTreeMap::new();
    for b in scan_columns(loc, version, &["id", "text", "vector"]).await {
        let ids = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
        let texts = b.column(1).as_string::<i32>();
        let vectors = b.column(2).as_fixed_size_list();
        for r in 0..b.num_rows() {
            let v = vectors.value(r);
            let v = v.as_primitive::<arrow_array::types::Float32Type>();
            let previous = out.insert(
                ids.value(r),
                Row {
                    text: texts.value(r).to_string(),
                    vector: v.values().to_vec(),
                },
            );
            assert!(previous.is_none(), "row {} is there twice", ids.value(r));
        }
    }
    out
}

/// Exact vector search for every row (k = rows, every partition probed) and
/// a full-text query per tag must return exactly the model's rows.
async fn check_search(loc: &Location, model: &BTreeMap<i64, Row>, step: &str) {
    let rows = model.len();
    let query: Vec<f32> = (0..DIM).map(|d| if d == 0 { 0.5 } else { 0.1 }).collect();
    let mut req = VectorSearchRequest::new(Matrix::new(DIM, query.clone()).unwrap(), rows);
    req.nprobes = Some(PARTITIONS);
    req.columns = Some(vec!["id".into()]);
    let found = search_vectors(loc, None, &req, 2).await.unwrap();
    let hits = &found.results[0].hits;
    let mut got: Vec<i64> = hits
        .iter()
        .map(|h| h.fields["id"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    let want: Vec<i64> = model.keys().copied().collect();
    assert_eq!(got, want, "{step}: vector search (k = rows) rows differ");
    // Distances are the exact ones, best first.
    let mut exact: Vec<f32> = model
        .values()
        .map(|r| {
            r.vector
                .iter()
                .zip(&query)
                .map(|(a, b)| (a - b) * (a - b))
                .sum()
        })
        .collect();
    exact.sort_by(|a, b| a.total_cmp(b));
    for (h, e) in hits.iter().zip(&exact) {
        assert!(
            (h.distance - e).abs() < 1e-3,
            "{step}: distance {} vs exact {e}",
            h.distance
        );
    }

    for tag in 0..TAGS {
        let mut req = TextSearchRequest::new(format!("tag{tag}"), rows.max(1));
        req.columns = Some(vec!["id".into()]);
        let found = search_text(loc, None, &req).await.unwrap();
        let mut got: Vec<i64> = found
            .hits
            .iter()
            .map(|h| h.fields["id"].as_i64().unwrap())
            .collect();
        got.sort_unstable();
        let want: Vec<i64> = model
            .keys()
            .copied()
            .filter(|id| *id as usize % TAGS == tag)
            .collect();
        assert_eq!(got, want, "{step}: full-text 'tag{tag}' rows differ");
    }
}

async fn build_indexes(loc: &Location) {
    let mut vreq = VectorIndexRequest::new("vector", VectorIndexType::IvfFlat, Metric::L2);
    vreq.partitions = Some(PARTITIONS);
    vreq.replace = true;
    create_vector_index(loc, &vreq, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    let mut sreq = ScalarIndexRequest::new("text", ScalarIndexType::Inverted);
    sreq.replace = true;
    create_scalar_index(loc, &sreq, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
}

/// Compact with two workers to about `target` rows per fragment.
async fn compact_to(loc: &Location, target: usize) -> lanceflow::Result<CompactReport> {
    let request = CompactRequest {
        target_rows_per_fragment: Some(target),
        ..Default::default()
    };
    compact(loc, &request, &lanceflow::local_executor(2), &NoProgress).await
}

/// Optimise with two workers.
async fn optimize_with(
    loc: &Location,
    request: OptimizeRequest,
) -> lanceflow::Result<OptimizeReport> {
    optimize(loc, &request, &lanceflow::local_executor(2), &NoProgress).await
}

/// Rows with ids `ids`, added to the model, written as `name` and loaded
/// with `per` rows per fragment.
async fn add_rows(
    loc: &Location,
    path: PathBuf,
    ids: std::ops::Range<i64>,
    rng: &mut Rng,
    model: &mut BTreeMap<i64, Row>,
    mode: WriteMode,
    per: usize,
) {
    let rows: Vec<(i64, Row)> = ids.map(|i| (i, make_row(i, rng))).collect();
    model.extend(rows.iter().cloned());
    load(loc, write_rows(&path, &rows), mode, per).await;
}

/// `n` new rows with the next ids, added to the model.
fn batch(
    rng: &mut Rng,
    n: usize,
    model: &mut BTreeMap<i64, Row>,
    next_id: &mut i64,
) -> Vec<(i64, Row)> {
    let rows: Vec<(i64, Row)> = (0..n)
        .map(|_| {
            *next_id += 1;
            (*next_id, make_row(*next_id, rng))
        })
        .collect();
    model.extend(rows.iter().cloned());
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_maintenance_sequences_match_a_plain_model() {
    for seed in [7u64, 1234] {
        let dir = tempfile::tempdir().unwrap();
        let loc = local(dir.path(), "p.lance");
        let mut rng = Rng(seed * 2_654_435_761 + 1);
        let mut model: BTreeMap<i64, Row> = BTreeMap::new();
        let mut next_id = 0i64;
        let rows = batch(&mut rng, 240, &mut model, &mut next_id);
        load(
            &loc,
            write_rows(&dir.path().join("0.parquet"), &rows),
            WriteMode::Create,
            40,
        )
        .await;
        build_indexes(&loc).await;
        check_search(&loc, &model, "start").await;

        for step in 0..12 {
            let op = rng.below(5);
            let what = match op {
                0 => {
                    let n = 20 + rng.below(60) as usize;
                    let rows = batch(&mut rng, n, &mut model, &mut next_id);
                    let file = write_rows(&dir.path().join(format!("{step}.parquet")), &rows);
                    load(&loc, file, WriteMode::Append, 15 + rng.below(30) as usize).await;
                    format!("append {n}")
                }
                1 => {
                    let m = 3 + rng.below(5) as i64;
                    let r = rng.below(m as u64) as i64;
                    let pred = format!("id % {m} = {r} AND id > {}", next_id / 2);
                    let report = lanceflow::dataset::versions::delete_rows(&loc, &pred)
                        .await
                        .unwrap();
                    let before = model.len();
                    model.retain(|id, _| !(id % m == r && *id > next_id / 2));
                    assert_eq!(report.rows_deleted as usize, before - model.len(), "{pred}");
                    format!("delete where {pred}")
                }
                2 => {
                    let req = CompactRequest {
                        target_rows_per_fragment: Some(60 + rng.below(200) as usize),
                        deletion_threshold: Some(0.05),
                        ..Default::default()
                    };
                    let r = compact(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
                        .await
                        .unwrap();
                    format!("compact ({} → {})", r.fragments_before, r.fragments_after)
                }
                3 => {
                    let req = OptimizeRequest {
                        // 0-2 newest segments, or (3) the default: all.
                        merge: Some(rng.below(4) as usize).filter(|n| *n < 3),
                        ..Default::default()
                    };
                    let r = optimize(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
                        .await
                        .unwrap();
                    format!("optimize ({} rows indexed)", r.rows_indexed)
                }
                _ => {
                    build_indexes(&loc).await;
                    "rebuild indexes".to_string()
                }
            };
            let step = format!("seed {seed} step {step}: {what}");
            let stored = contents(&loc, None).await;
            assert_eq!(stored.len(), model.len(), "{step}: row count");
            assert!(stored == model, "{step}: contents differ from the model");
            check_search(&loc, &model, &step).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_answers_indexes_and_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "c.lance");
    let mut rng = Rng(99);
    let mut model: BTreeMap<i64, Row> = BTreeMap::new();
    let c = dir.path().join("c.parquet");
    add_rows(&loc, c, 0..600, &mut rng, &mut model, WriteMode::Create, 30).await;
    build_indexes(&loc).await;
    create_scalar_index(
        &loc,
        &ScalarIndexRequest::new("id", ScalarIndexType::Btree),
        &lanceflow::local_executor(2),
        &NoProgress,
    )
    .await
    .unwrap();
    let before_version = latest_version(&loc).await;
    let before_vec = {
        let mut req = VectorSearchRequest::new(Matrix::new(DIM, vec![0.2; DIM]).unwrap(), 25);
        req.nprobes = Some(2);
        req.columns = Some(vec!["id".into()]);
        req
    };
    let vec_before = search_vectors(&loc, None, &before_vec, 2).await.unwrap();
    let text_before = search_text(&loc, None, &TextSearchRequest::new("tag3 row", 30))
        .await
        .unwrap();

    let report = compact_to(&loc, 200).await.unwrap();
    assert!(report.compacted);
    assert_eq!(report.fragments_before, 20);
    // The index segments cover fragments 0-9 and 10-19; compaction merges
    // within each run (lance decides how to size the rewritten fragments).
    assert!((2..=4).contains(&report.fragments_after), "{report:?}");
    assert_eq!(
        report.fragments_after,
        report.fragments_before - report.fragments_removed + report.fragments_added
    );
    assert_eq!(report.rows_rewritten, 600);
    assert!(report.version > before_version);

    // Same answers from the remapped indexes; the indexes still cover every
    // fragment (no flat-scan fallback hides a dropped index).
    let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
    assert_eq!(info.indices.len(), 3);
    for i in &info.indices {
        assert_eq!(i.unindexed_fragments, 0, "{} lost coverage", i.name);
    }
    let ids_of = |r: &lanceflow::search::SearchResults| -> Vec<(i64, f32)> {
        r.results[0]
            .hits
            .iter()
            .map(|h| (h.fields["id"].as_i64().unwrap(), h.distance))
            .collect()
    };
    let vec_after = search_vectors(&loc, None, &before_vec, 2).await.unwrap();
    assert_eq!(ids_of(&vec_before), ids_of(&vec_after));
    let text_after = search_text(&loc, None, &TextSearchRequest::new("tag3 row", 30))
        .await
        .unwrap();
    let text_ids = |r: &lanceflow::search::text::TextResults| -> Vec<(i64, String)> {
        r.hits
            .iter()
            .map(|h| (h.fields["id"].as_i64().unwrap(), format!("{:.5}", h.score)))
            .collect()
    };
    assert_eq!(text_ids(&text_before), text_ids(&text_after));
    let ds = loc.open(None).await.unwrap();
    let mut scan = ds.scan();
    scan.project(&["id"]).unwrap();
    scan.filter("id >= 100 AND id < 140").unwrap();
    assert!(scan
        .explain_plan(false)
        .await
        .unwrap()
        .contains("ScalarIndexQuery"));
    assert_eq!(scan.count_rows().await.unwrap(), 40);
    check_search(&loc, &model, "after compaction").await;

    // Time travel: the pre-compaction version is still readable, unchanged.
    assert!(contents(&loc, Some(before_version)).await == model);
    // Nothing left to do: no new version.
    let again = compact_to(&loc, 200).await.unwrap();
    assert!(!again.compacted);
    assert_eq!(again.version, report.version);
    assert_eq!(latest_version(&loc).await, report.version);

    // Cleanup frees the pre-compaction files, except what a tagged version uses.
    lanceflow::dataset::versions::create_tag(&loc, "before", Some(before_version))
        .await
        .unwrap();
    let cleaned = lanceflow::dataset::versions::cleanup(&loc, std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert!(
        cleaned.old_versions > 0 && cleaned.bytes_removed > 0,
        "{cleaned:?}"
    );
    assert!(contents(&loc, None).await == model);
    assert!(contents(&loc, Some(before_version)).await == model);
    assert!(loc
        .open(Some(&VersionSpec::Number(before_version - 1)))
        .await
        .is_err());
    check_search(&loc, &model, "after cleanup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_during_compaction_are_neither_lost_nor_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "r.lance");
    let mut rng = Rng(5);
    let mut model: BTreeMap<i64, Row> = BTreeMap::new();
    let a = dir.path().join("a.parquet");
    add_rows(&loc, a, 0..400, &mut rng, &mut model, WriteMode::Create, 20).await;
    build_indexes(&loc).await;

    // Deterministic interleaving: plan and rewrite, an append lands, then
    // the compaction commits on top of it.
    let request = CompactRequest {
        target_rows_per_fragment: Some(100),
        ..Default::default()
    };
    let plan = lanceflow::compact::plan(&loc, &request).await.unwrap();
    let outputs = run_tasks::<lanceflow::compact::CompactOp>(
        &lanceflow::local_executor(2),
        &plan.tasks,
        &NoProgress,
    )
    .await
    .unwrap();
    let b = dir.path().join("b.parquet");
    add_rows(
        &loc,
        b,
        400..450,
        &mut rng,
        &mut model,
        WriteMode::Append,
        25,
    )
    .await;
    lanceflow::compact::commit(&plan, outputs).await.unwrap();
    assert!(contents(&loc, None).await == model);
    check_search(&loc, &model, "append between rewrite and commit").await;

    // Truly concurrent: a compaction and an append racing.
    let more: Vec<(i64, Row)> = (450..530).map(|i| (i, make_row(i, &mut rng))).collect();
    model.extend(more.iter().cloned());
    let file = write_rows(&dir.path().join("c.parquet"), &more);
    let (compacted, ()) = tokio::join!(
        compact_to(&loc, 1000),
        load(&loc, file, WriteMode::Append, 10)
    );
    compacted.unwrap();
    assert!(contents(&loc, None).await == model);
    check_search(&loc, &model, "racing compaction and append").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_indexes_new_fragments_with_the_trained_model_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "o.lance");
    let mut rng = Rng(77);
    let mut model: BTreeMap<i64, Row> = BTreeMap::new();
    let a = dir.path().join("a.parquet");
    add_rows(
        &loc,
        a,
        0..500,
        &mut rng,
        &mut model,
        WriteMode::Create,
        100,
    )
    .await;
    build_indexes(&loc).await;
    let segments = |info: &lanceflow::dataset::info::DatasetInfo, name: &str| {
        let i = info.indices.iter().find(|i| i.name == name).unwrap();
        (i.segments, i.unindexed_fragments)
    };
    let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
    let (vector_segments, _) = segments(&info, "vector_idx");

    for (round, start) in [(0, 500i64), (1, 560)] {
        let x = dir.path().join(format!("x{round}.parquet"));
        add_rows(
            &loc,
            x,
            start..start + 60,
            &mut rng,
            &mut model,
            WriteMode::Append,
            20,
        )
        .await;
        // Unindexed rows are searched by flat scan until the optimize.
        check_search(&loc, &model, "after append").await;
        let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
        assert_eq!(segments(&info, "vector_idx").1, 3);

        // The build tasks encode against the existing newest segment: the
        // trained centroids are reused, nothing is retrained.
        let dataset = loc.open(None).await.unwrap();
        let existing: Vec<uuid::Uuid> = {
            use lance::index::DatasetIndexExt;
            dataset
                .load_indices()
                .await
                .unwrap()
                .iter()
                .map(|m| m.uuid)
                .collect()
        };
        let keep = OptimizeRequest {
            keep_segments: true,
            ..Default::default()
        };
        let plan = lanceflow::index::optimize::plan(&loc, &keep, 2)
            .await
            .unwrap();
        assert!(
            plan.builds.len() >= 2,
            "new fragments are split over workers"
        );
        for b in &plan.builds {
            assert!(existing.contains(&b.task.reference.uuid));
            assert!(!b.task.retrain);
        }

        let report = optimize_with(&loc, keep.clone()).await.unwrap();
        assert!(report.optimized);
        assert_eq!(report.rows_indexed, 120, "60 rows for each of two indexes");
        let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
        assert_eq!(
            segments(&info, "vector_idx"),
            (vector_segments + round + 1, 0)
        );
        assert_eq!(segments(&info, "text_idx").1, 0);
        check_search(&loc, &model, "after optimize").await;
    }

    // Up to date: nothing to do, no new version.
    let keep = OptimizeRequest {
        keep_segments: true,
        ..Default::default()
    };
    let version = latest_version(&loc).await;
    let idle = optimize_with(&loc, keep).await.unwrap();
    assert!(!idle.optimized);
    assert_eq!(latest_version(&loc).await, version);

    // Merge the two delta segments into one.
    let merged = optimize_with(
        &loc,
        OptimizeRequest {
            indexes: vec!["vector_idx".into()],
            merge: Some(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(merged.optimized);
    let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
    assert_eq!(segments(&info, "vector_idx"), (vector_segments + 1, 0));
    check_search(&loc, &model, "after merge").await;

    // The default merges every segment of every index into one; then it is
    // idle (a lone segment is not rewritten).
    let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
    assert!(segments(&info, "text_idx").0 > 1, "two delta segments");
    let all = optimize_with(&loc, OptimizeRequest::default())
        .await
        .unwrap();
    assert!(all.optimized);
    let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
    for name in ["vector_idx", "text_idx"] {
        assert_eq!(segments(&info, name), (1, 0), "{name}");
    }
    check_search(&loc, &model, "after merging all").await;
    let version = latest_version(&loc).await;
    let idle = optimize_with(&loc, OptimizeRequest::default())
        .await
        .unwrap();
    assert!(!idle.optimized, "one segment per index: nothing to do");
    assert_eq!(latest_version(&loc).await, version);

    // Retrain: one index, every fragment, same answers.
    let retrained = optimize_with(
        &loc,
        OptimizeRequest {
            indexes: vec!["vector_idx".into()],
            retrain: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(retrained.optimized);
    let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
    assert_eq!(segments(&info, "vector_idx").1, 0);
    check_search(&loc, &model, "after retrain").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_bad_input_is_refused_and_leaves_the_dataset_alone() {
    let dir = tempfile::tempdir().unwrap();
    let exec = lanceflow::local_executor(2);
    let missing = local(dir.path(), "missing.lance");
    let err = compact(&missing, &CompactRequest::default(), &exec, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err = optimize(&missing, &OptimizeRequest::default(), &exec, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    let loc = local(dir.path(), "b.lance");
    let mut rng = Rng(3);
    let b = dir.path().join("b.parquet");
    add_rows(
        &loc,
        b,
        0..100,
        &mut rng,
        &mut BTreeMap::new(),
        WriteMode::Create,
        10,
    )
    .await;
    let version = latest_version(&loc).await;
    let err = optimize(&loc, &OptimizeRequest::default(), &exec, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("index vector"), "{err}");
    build_indexes(&loc).await;
    let version_indexed = latest_version(&loc).await;
    assert!(version_indexed > version);

    let err = optimize(
        &loc,
        &OptimizeRequest {
            indexes: vec!["nope".into()],
            ..Default::default()
        },
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("vector_idx"), "{err}");
    let err = compact(
        &loc,
        &CompactRequest {
            target_rows_per_fragment: Some(0),
            ..Default::default()
        },
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = lanceflow::dataset::versions::delete_rows(&loc, "no_such_column > 3")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(_) | Error::NotFound(_)),
        "{err}"
    );
    assert_eq!(latest_version(&loc).await, version_indexed);
}
