//! Distributed vector index builds and searches, checked against brute force
//! and against the lance crate's own in-process search.

use std::path::Path;

use lanceflow::index::vector::{
    create_vector_index, plan, Metric, Training, VectorIndexRequest, VectorIndexType,
    VectorSegmentOp,
};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::search::{
    analyze_vector_search, search_vectors, search_vectors_distributed, DistanceRange,
    SearchResults, VectorSearchRequest,
};
use lanceflow::spine::run_tasks;
use lanceflow::vectors::{
    brute_force_knn, clustered_vectors, recall_at_k, write_generated_parquet, ClusteredSpec, Matrix,
};
use lanceflow::{Error, Location, VersionSpec};

use crate::common::*;

const DIM: usize = 32;

/// `rows` clustered vectors (+ `queries` held-out queries) in a dataset of
/// `rows_per_fragment`-row fragments.
async fn vector_dataset(
    dir: &Path,
    name: &str,
    rows: usize,
    queries: usize,
    rows_per_fragment: usize,
) -> (Location, Matrix, Matrix) {
    let (all, labels) =
        clustered_vectors(&ClusteredSpec::new(rows + queries, DIM, 40, 11)).unwrap();
    let data = Matrix::new(DIM, all.data[..rows * DIM].to_vec()).unwrap();
    let q = Matrix::new(DIM, all.data[rows * DIM..].to_vec()).unwrap();
    let parquet = dir.join(format!("{name}.parquet"));
    write_generated_parquet(&parquet, &data, &labels[..rows]).unwrap();
    let loc = local(dir, name);
    let mut req = IngestRequest::new(vec![parquet], WriteMode::Create);
    req.max_rows_per_file = rows_per_fragment;
    ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    (loc, data, q)
}

fn ids(results: &SearchResults) -> Vec<Vec<u64>> {
    results
        .results
        .iter()
        .map(|q| {
            q.hits
                .iter()
                .map(|h| h.fields["id"].as_u64().unwrap())
                .collect()
        })
        .collect()
}

/// Every query answered alike (see `QueryHits::same_answer`).
#[track_caller]
fn assert_same_hits(a: &SearchResults, b: &SearchResults, what: &str) {
    assert_eq!(a.results.len(), b.results.len());
    for (qa, qb) in a.results.iter().zip(&b.results) {
        if let Err(e) = qa.same_answer(qb) {
            panic!("{what}: {e}");
        }
    }
}

fn search_request(
    queries: &Matrix,
    k: usize,
    nprobes: usize,
    refine: Option<u32>,
) -> VectorSearchRequest {
    let mut r = VectorSearchRequest::new(queries.clone(), k);
    r.nprobes = Some(nprobes);
    r.refine_factor = refine;
    r.columns = Some(vec!["id".into(), "category".into()]);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivf_flat_and_sq_recall_and_distributed_search_equals_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let (loc, data, queries) = vector_dataset(dir.path(), "v.lance", 4000, 40, 500).await;
    let exec = lanceflow::local_executor(2);
    // (kind, metric, rows per segment, keep the segments apart)
    let cases = [
        (VectorIndexType::IvfFlat, Metric::L2, Some(1), true),
        (VectorIndexType::IvfSq, Metric::Cosine, Some(1500), false),
        (VectorIndexType::IvfFlat, Metric::Dot, Some(500), true),
    ];
    let index_dirs =
        || std::fs::read_dir(dir.path().join("v.lance/_indices")).map_or(0, |d| d.count());
    for (index_type, metric, rows_per_segment, keep_segments) in cases {
        let mut req = VectorIndexRequest::new("vector", index_type, metric);
        req.partitions = Some(20);
        req.rows_per_segment = rows_per_segment;
        req.keep_segments = keep_segments;
        let before = latest_version(&loc).await;
        let dirs_before = index_dirs();
        let report = create_vector_index(&loc, &req, &exec, &NoProgress)
            .await
            .unwrap();
        assert_eq!(report.version, before + 1, "one commit");
        assert_eq!(report.rows_indexed, 4000);
        let built = rows_per_segment.map_or(2, |r| (4000u64.div_ceil(r)).min(8) as usize);
        let committed = if keep_segments { built } else { 1 };
        assert_eq!(report.segments_built, built, "{index_type:?}");
        assert_eq!(report.segments, committed, "{index_type:?}");
        // A merge leaves only the merged segment's files behind.
        assert_eq!(index_dirs() - dirs_before, committed, "{index_type:?}");
        let info = lanceflow::dataset::info::info(&loc, None).await.unwrap();
        assert_eq!(info.indices.len(), 1, "replaced, not added");
        assert_eq!(info.indices[0].segments, committed);
        assert_eq!(info.indices[0].unindexed_fragments, 0);

        // nprobes covering 10% of the partitions.
        let request = search_request(&queries, 10, 2, None);
        let local = search_vectors(&loc, None, &request, 2).await.unwrap();
        let truth = brute_force_knn(&data, &queries, 10, metric);
        let recall = recall_at_k(&truth, &ids(&local));
        assert!(
            recall >= 0.9,
            "{index_type:?}/{metric:?}: recall@10 {recall}"
        );
        assert_eq!(local.metric, metric);

        for workers in [1, 2, 3] {
            let dist = search_vectors_distributed(
                &loc,
                None,
                &request,
                &lanceflow::local_executor(workers),
            )
            .await
            .unwrap();
            assert!(dist.tasks >= 1);
            assert_same_hits(&local, &dist, &format!("{index_type:?} {workers} workers"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivf_pq_refine_artifacts_and_unindexed_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let (loc, data, queries) = vector_dataset(dir.path(), "pq.lance", 3000, 30, 400).await;
    let exec = lanceflow::local_executor(2);
    let artifacts = dir.path().join("artifacts");
    let mut req = VectorIndexRequest::new("vector", VectorIndexType::IvfPq, Metric::Cosine);
    req.partitions = Some(16);
    req.sub_vectors = Some(8);
    req.rows_per_segment = Some(1000);
    req.save_artifacts = Some(artifacts.clone());
    let report = create_vector_index(&loc, &req, &exec, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        (report.segments_built, report.segments, report.sub_vectors),
        (3, 1, Some(8)),
        "three segments built, merged into one"
    );
    assert!(artifacts.join("centroids.npy").exists() && artifacts.join("codebook.npy").exists());

    let request = search_request(&queries, 10, 4, Some(5));
    let local = search_vectors(&loc, None, &request, 2).await.unwrap();
    let truth = brute_force_knn(&data, &queries, 10, Metric::Cosine);
    let recall = recall_at_k(&truth, &ids(&local));
    assert!(recall >= 0.8, "IVF_PQ refine 5 recall@10 {recall}");
    let dist = search_vectors_distributed(&loc, None, &request, &exec)
        .await
        .unwrap();
    assert_same_hits(&local, &dist, "IVF_PQ refine");
    // Without refine the distances are the quantized ones, still identical.
    let coarse = search_request(&queries, 10, 4, None);
    assert_same_hits(
        &search_vectors(&loc, None, &coarse, 2).await.unwrap(),
        &search_vectors_distributed(&loc, None, &coarse, &exec)
            .await
            .unwrap(),
        "IVF_PQ no refine",
    );

    // Pre-trained artifacts: no training, a second index answering identically.
    let mut again = VectorIndexRequest::new("vector", VectorIndexType::IvfPq, Metric::Cosine);
    again.centroids = Some(artifacts.join("centroids.npy").into());
    again.codebook = Some(artifacts.join("codebook.npy").into());
    again.sub_vectors = Some(8);
    again.rows_per_segment = Some(1000);
    again.name = Some("pq_again".into());
    let r2 = create_vector_index(&loc, &again, &exec, &NoProgress)
        .await
        .unwrap();
    assert_eq!((r2.train_seconds, r2.partitions), (0.0, 16));
    let mut via_second = request.clone();
    via_second.index = Some("pq_again".into());
    let second = search_vectors(&loc, None, &via_second, 2).await.unwrap();
    assert_eq!(second.index.as_deref(), Some("pq_again"));
    assert_same_hits(&local, &second, "same artifacts, same answers");

    // New rows after the index: searched by flat scan, in both modes.
    let (extra, _) = clustered_vectors(&ClusteredSpec::new(300, DIM, 40, 99)).unwrap();
    let labels = vec![0u32; 300];
    let parquet = dir.path().join("extra.parquet");
    write_generated_parquet(&parquet, &extra, &labels).unwrap();
    ingest(
        &loc,
        &IngestRequest::new(vec![parquet], WriteMode::Append),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    let local = search_vectors(&loc, None, &request, 2).await.unwrap();
    let dist = search_vectors_distributed(&loc, None, &request, &exec)
        .await
        .unwrap();
    assert!(dist.tasks >= 2, "segment tasks plus a flat task");
    assert_same_hits(&local, &dist, "with unindexed fragments");
    // A query equal to a new row finds it first (it is only reachable by flat scan).
    let q = Matrix::new(DIM, extra.row(7).to_vec()).unwrap();
    let mut exact_q = search_request(&q, 3, 4, Some(5));
    exact_q.columns = Some(vec![]);
    let dist = search_vectors_distributed(&loc, None, &exact_q, &exec)
        .await
        .unwrap();
    let local = search_vectors(&loc, None, &exact_q, 2).await.unwrap();
    assert_same_hits(&local, &dist, "new row");
    assert!(dist.results[0].hits[0].distance.abs() < 1e-5);

    // A fast search leaves the new rows out, in both modes: it answers as
    // the version before the append did (same index, same indexed rows).
    let before = VersionSpec::Number(latest_version(&loc).await - 1);
    for query in [&exact_q, &request] {
        let mut fast = query.clone();
        fast.fast_search = true;
        let old = search_vectors(&loc, Some(&before), query, 2).await.unwrap();
        let local = search_vectors(&loc, None, &fast, 2).await.unwrap();
        let dist = search_vectors_distributed(&loc, None, &fast, &exec)
            .await
            .unwrap();
        assert_same_hits(&old, &local, "fast search in-process");
        assert_same_hits(&old, &dist, "fast search distributed");
    }
    let mut fast = exact_q.clone();
    fast.fast_search = true;
    let found = search_vectors(&loc, None, &fast, 2).await.unwrap();
    assert!(
        found.results[0].hits[0].distance > 1e-5,
        "the new row is not indexed"
    );

    // A distance range (lower inclusive, upper exclusive) over indexed and
    // new rows: both modes keep the same hits, all in range. (Unrefined: with
    // a refine lance bounds the approximate distances first, the exact ones
    // again; the unit tests hold that path to lance's plan.)
    let mut unrefined = request.clone();
    unrefined.refine_factor = None;
    let full = search_vectors(&loc, None, &unrefined, 2).await.unwrap();
    let first = &full.results[0].hits;
    let mut ranged = unrefined.clone();
    ranged.distance_range = DistanceRange {
        lower: Some(first[1].distance),
        upper: Some(first[first.len() - 2].distance),
    };
    let local = search_vectors(&loc, None, &ranged, 2).await.unwrap();
    let dist = search_vectors_distributed(&loc, None, &ranged, &exec)
        .await
        .unwrap();
    assert_same_hits(&local, &dist, "distance range");
    let kept: Vec<f32> = local.results[0].hits.iter().map(|h| h.distance).collect();
    assert!(!kept.is_empty() && kept.len() < first.len(), "{kept:?}");
    assert!(local
        .results
        .iter()
        .flat_map(|q| &q.hits)
        .all(|h| ranged.distance_range.contains(h.distance)));

    // analyze_plan: lance's plan with metrics, once in-process, once per task.
    let analysed = analyze_vector_search(&loc, None, &request, None)
        .await
        .unwrap();
    assert_eq!(analysed.sections.len(), 1);
    assert_eq!(analysed.sections[0].kind, "in-process");
    assert!(analysed.text().contains("metrics="), "{}", analysed.text());
    let analysed = analyze_vector_search(&loc, None, &request, Some(&exec))
        .await
        .unwrap();
    let dist = search_vectors_distributed(&loc, None, &request, &exec)
        .await
        .unwrap();
    assert_eq!(analysed.sections.len(), dist.tasks);
    let kinds: Vec<&str> = analysed.sections.iter().map(|s| s.kind.as_str()).collect();
    assert!(
        kinds.contains(&"index segments") && kinds.contains(&"flat scan"),
        "{kinds:?}"
    );
    assert!(analysed
        .sections
        .iter()
        .all(|s| s.analysis.contains("metrics=")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_segment_task_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (loc, _, _) = vector_dataset(dir.path(), "f.lance", 1200, 0, 300).await;
    let exec = lanceflow::local_executor(2);
    let mut req = VectorIndexRequest::new("vector", VectorIndexType::IvfFlat, Metric::L2);
    req.partitions = Some(8);
    req.rows_per_segment = Some(300);
    let mut plan = plan(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(plan.tasks.len(), 4);
    plan.tasks[1].column = "no_such_column".into();
    plan.tasks[3].column = "no_such_column".into();
    let err = run_tasks::<VectorSegmentOp>(&exec, &plan.tasks, &NoProgress)
        .await
        .unwrap_err();
    match &err {
        Error::TasksFailed {
            failures, total, ..
        } => {
            assert_eq!(*total, 4);
            assert_eq!(
                failures.iter().map(|f| f.task).collect::<Vec<_>>(),
                vec![1, 3]
            );
        }
        other => panic!("expected TasksFailed, got {other}"),
    }
    assert_eq!(latest_version(&loc).await, 1);
    assert!(lanceflow::dataset::info::info(&loc, None)
        .await
        .unwrap()
        .indices
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_leaves_the_dataset_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (loc, _, queries) = vector_dataset(dir.path(), "b.lance", 600, 2, 300).await;
    let exec = lanceflow::local_executor(2);
    let build = |column: &str, t: VectorIndexType| VectorIndexRequest::new(column, t, Metric::L2);
    let expect = |err: Error, kind: &str, needle: &str| {
        assert_eq!(err.kind().as_str(), kind, "{err}");
        assert!(err.to_string().contains(needle), "'{needle}' not in: {err}");
    };

    let err = create_vector_index(
        &loc,
        &build("nope", VectorIndexType::IvfFlat),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    expect(err, "not_found", "column 'nope' does not exist");
    let err = create_vector_index(
        &loc,
        &build("category", VectorIndexType::IvfFlat),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    expect(
        err,
        "invalid_input",
        "column 'category' is Utf8, not a vector column",
    );
    let mut r = build("vector", VectorIndexType::IvfPq);
    r.sub_vectors = Some(5);
    let err = create_vector_index(&loc, &r, &exec, &NoProgress)
        .await
        .unwrap_err();
    expect(
        err,
        "invalid_input",
        "--sub-vectors 5 does not divide the dimension 32",
    );
    let mut r = build("vector", VectorIndexType::IvfFlat);
    r.partitions = Some(601);
    let err = create_vector_index(&loc, &r, &exec, &NoProgress)
        .await
        .unwrap_err();
    expect(err, "invalid_input", "larger than the row count 600");
    let mut r = build("vector", VectorIndexType::IvfFlat);
    r.training = Training::Distributed;
    r.centroids = Some(dir.path().join("centroids.npy").into());
    let err = create_vector_index(&loc, &r, &exec, &NoProgress)
        .await
        .unwrap_err();
    expect(err, "invalid_input", "drop one of the two");
    assert_eq!(latest_version(&loc).await, 1, "nothing committed");
    // A fast search covers indexed rows only: without an index, refused.
    let mut fast = VectorSearchRequest::new(queries.clone(), 3);
    fast.fast_search = true;
    let err = search_vectors(&loc, None, &fast, 2).await.unwrap_err();
    expect(err, "invalid_input", "has no vector index");
    let mut crossed = VectorSearchRequest::new(queries.clone(), 3);
    crossed.nprobes = Some(8);
    crossed.maximum_nprobes = Some(4);
    let err = search_vectors(&loc, None, &crossed, 2).await.unwrap_err();
    expect(err, "invalid_input", "probe bounds are crossed");
    let mut empty = VectorSearchRequest::new(queries.clone(), 3);
    empty.distance_range = DistanceRange {
        lower: Some(0.5),
        upper: Some(0.25),
    };
    let err = search_vectors_distributed(&loc, None, &empty, &exec)
        .await
        .unwrap_err();
    expect(err, "invalid_input", "distance range is empty");

    // An index, then a refused --no-replace and refused searches.
    let mut r = build("vector", VectorIndexType::IvfFlat);
    r.partitions = Some(4);
    create_vector_index(&loc, &r, &exec, &NoProgress)
        .await
        .unwrap();
    r.replace = false;
    let err = create_vector_index(&loc, &r, &exec, &NoProgress)
        .await
        .unwrap_err();
    expect(err, "already_exists", "pass --replace");
    let bad_dim = Matrix::new(4, vec![0.0; 4]).unwrap();
    let err = search_vectors(&loc, None, &VectorSearchRequest::new(bad_dim, 5), 1)
        .await
        .unwrap_err();
    expect(
        err,
        "invalid_input",
        "dimension 4, but column 'vector' has dimension 32",
    );
    let mut s = VectorSearchRequest::new(queries.clone(), 5);
    s.metric = Some(Metric::Cosine);
    let err = search_vectors(&loc, None, &s, 1).await.unwrap_err();
    expect(err, "invalid_input", "built with the l2 metric, not cosine");
    let mut s = VectorSearchRequest::new(queries.clone(), 5);
    s.index = Some("missing_idx".into());
    let err = search_vectors_distributed(&loc, None, &s, &exec)
        .await
        .unwrap_err();
    expect(err, "not_found", "no vector index named 'missing_idx'");
    let mut s = VectorSearchRequest::new(queries.clone(), 5);
    s.column = Some("category".into());
    let err = search_vectors(&loc, None, &s, 1).await.unwrap_err();
    expect(err, "invalid_input", "not a vector column");
    assert_eq!(latest_version(&loc).await, 2);

    // A dataset whose rows were all deleted.
    let mut ds = loc.open(None).await.unwrap();
    ds.delete("true").await.unwrap();
    let v = latest_version(&loc).await;
    let err = create_vector_index(
        &loc,
        &build("vector", VectorIndexType::IvfFlat),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    expect(err, "invalid_input", "has no rows");
    assert_eq!(latest_version(&loc).await, v);
}
