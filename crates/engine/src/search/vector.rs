//! Vector search in one process: the request and result types, validation,
//! and the search itself (the direct path of [`super::direct`] when it
//! applies, lance's query plan otherwise).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Array, FixedSizeListArray, Float32Array, RecordBatch};
use futures::{StreamExt, TryStreamExt};
use lance::dataset::scanner::Scanner;
use lance::dataset::Dataset;

use crate::error::{ensure_invalid, Error, Result};

use crate::storage::{Location, VersionSpec};

use crate::dataset::columns::{default_vector_column, vector_dimension};
use crate::index::metric::Metric;

use crate::vectors::Matrix;

use super::direct::*;
use super::query::*;
use crate::limits::{self, Names};

/// `planned_only`: never take the direct path (the distributed driver, which
/// does not search here, and the tests comparing the two paths).
pub(crate) async fn prepare(
    location: &Location,
    dataset: Arc<Dataset>,
    request: &VectorSearchRequest,
    planned_only: bool,
) -> Result<Prepared> {
    limits::check_search(
        request.k,
        request.nprobes,
        request.refine_factor,
        request.columns.as_deref(),
        request.filter.as_deref(),
        Names::Flags,
    )?;
    limits::check_probe_bounds(
        request.nprobes,
        request.minimum_nprobes,
        request.maximum_nprobes,
        Names::Flags,
    )?;
    limits::check_distance_range(
        request.distance_range.lower,
        request.distance_range.upper,
        Names::Flags,
    )?;
    ensure_invalid!(request.queries.rows() > 0, "no query vectors given");
    let column = match &request.column {
        Some(c) => c.clone(),
        None => default_vector_column(&dataset)?,
    };
    let dim = vector_dimension(&dataset, &column)?;
    ensure_invalid!(
        request.queries.dim == dim,
        "the query vector has dimension {}, but column '{column}' has dimension {dim}",
        request.queries.dim
    );
    let schema = dataset.schema();
    let projection = match &request.columns {
        Some(cols) => {
            check_columns(&dataset, cols)?;
            cols.clone()
        }
        None => schema
            .fields
            .iter()
            .filter(|f| f.name != column)
            .map(|f| f.name.clone())
            .collect(),
    };
    let index = column_index(location, &dataset, &column, request.index.as_deref()).await?;
    if let (Some(wanted), None) = (&request.index, &index) {
        return Err(Error::NotFound(format!(
            "there is no vector index named '{wanted}' on column '{column}'; see the indices with \
             `lanceflow info {}`",
            location.uri()
        )));
    }
    if request.fast_search && index.is_none() {
        return Err(Error::InvalidInput(format!(
            "a fast search covers the indexed rows only, and column '{column}' has no vector \
             index; build one with `lanceflow index vector {} --column {column}`, or search \
             without fast search",
            location.uri()
        )));
    }
    let metric = match (&index, request.metric) {
        (Some(idx), Some(m)) if m != idx.metric => {
            return Err(Error::InvalidInput(format!(
                "index '{}' on '{column}' was built with the {} metric, not {}; search without \
                 --metric, or build an index with --metric {}",
                idx.name,
                idx.metric.as_str(),
                m.as_str(),
                m.as_str()
            )))
        }
        (Some(idx), _) => idx.metric,
        (None, m) => m.unwrap_or(Metric::L2),
    };
    let direct = if planned_only {
        None
    } else {
        DirectIndex::open(location, &dataset, &column, index.as_ref(), request).await?
    };
    Ok(Prepared {
        dataset,
        column,
        projection,
        index,
        metric,
        direct,
    })
}

pub(crate) async fn search_one(
    location: &Location,
    prepared: &Prepared,
    request: &VectorSearchRequest,
    query: &[f32],
) -> Result<RecordBatch> {
    let scanner = planned_scanner(location, prepared, request, query)?;
    scanner
        .try_into_batch()
        .await
        .map_err(|e| location.lance_error("vector search", e))
}

/// Lance's scan of one query as the request asks for it (what the search
/// runs when the direct path does not apply, and what `analyze_plan` runs).
pub(crate) fn planned_scanner(
    location: &Location,
    prepared: &Prepared,
    request: &VectorSearchRequest,
    query: &[f32],
) -> Result<Scanner> {
    let err = |e| location.lance_error("vector search", e);
    let mut scanner = prepared.dataset.scan();
    let mut columns = prepared.projection.clone();
    columns.push(DISTANCE.to_string());
    scanner.project(&columns).map_err(err)?;
    scanner
        .nearest(
            &prepared.column,
            &Float32Array::from(query.to_vec()),
            request.k,
        )
        .map_err(err)?;
    request.probes().configure(&mut scanner);
    if !request.distance_range.is_unbounded() {
        scanner.distance_range(request.distance_range.lower, request.distance_range.upper);
    }
    if let Some(f) = request.refine_factor {
        scanner.refine(f);
    }
    if let Some(filter) = &request.filter {
        scanner.filter(filter).map_err(err)?;
        scanner.prefilter(true);
    }
    if prepared.index.is_none() {
        scanner.distance_metric(prepared.metric.to_lance());
    }
    if request.fast_search {
        scanner.fast_search();
    }
    scanner.with_row_id();
    Ok(scanner)
}

/// A dataset opened once at one version, searched many times (what a
/// benchmark loop or a service holds; index caches live in the shared session).
#[derive(Clone)]
pub struct VectorSearcher {
    pub(crate) location: Location,
    pub(crate) dataset: Arc<Dataset>,
}

impl VectorSearcher {
    /// Open the dataset at the latest version, or at `at`.
    pub async fn open(location: &Location, at: Option<&VersionSpec>) -> Result<Self> {
        Ok(Self {
            location: location.clone(),
            dataset: Arc::new(location.open(at).await?),
        })
    }

    /// The pinned version.
    pub fn version(&self) -> u64 {
        self.dataset.version().version
    }

    /// In-process search (see [`search_vectors`]).
    pub async fn search(
        &self,
        request: &VectorSearchRequest,
        parallelism: usize,
    ) -> Result<SearchResults> {
        search_in(&self.location, self.dataset.clone(), request, parallelism).await
    }
}

/// Search in this process, through the index (queries run concurrently,
/// `parallelism` at a time).
pub async fn search_vectors(
    location: &Location,
    at: Option<&VersionSpec>,
    request: &VectorSearchRequest,
    parallelism: usize,
) -> Result<SearchResults> {
    let dataset = Arc::new(location.open(at).await?);
    search_in(location, dataset, request, parallelism).await
}

pub(crate) async fn search_in(
    location: &Location,
    dataset: Arc<Dataset>,
    request: &VectorSearchRequest,
    parallelism: usize,
) -> Result<SearchResults> {
    search_in_with(location, dataset, request, parallelism, false).await
}

/// [`search_in`], optionally through lance's query plan only.
pub(crate) async fn search_in_with(
    location: &Location,
    dataset: Arc<Dataset>,
    request: &VectorSearchRequest,
    parallelism: usize,
    planned_only: bool,
) -> Result<SearchResults> {
    let started = Instant::now();
    let prepared = prepare(location, dataset, request, planned_only).await?;
    let results: Vec<QueryHits> = futures::stream::iter(0..request.queries.rows())
        .map(|i| {
            let prepared = &prepared;
            async move {
                let query = request.queries.row(i);
                let direct = match &prepared.direct {
                    Some(direct) => {
                        direct
                            .candidates(
                                location,
                                &prepared.column,
                                prepared.metric,
                                query,
                                request.k,
                                request.refine_factor,
                                request.distance_range,
                            )
                            .await?
                    }
                    None => None,
                };
                let hits = match direct {
                    Some(candidates) => {
                        let unindexed = match &prepared.index {
                            Some(index) if !request.fast_search => index.unindexed.as_slice(),
                            _ => &[],
                        };
                        let exact = if unindexed.is_empty() {
                            Vec::new()
                        } else {
                            flat_candidates(
                                location,
                                &prepared.dataset,
                                &prepared.column,
                                prepared.metric,
                                query,
                                request.k,
                                unindexed,
                                None,
                                request.distance_range,
                            )
                            .await?
                            .into_iter()
                            .map(|(id, d)| (d, id))
                            .collect()
                        };
                        hits_from_candidates(
                            location,
                            prepared,
                            query,
                            request.k,
                            request.refine_factor.is_some(),
                            request.distance_range,
                            candidates,
                            exact,
                        )
                        .await?
                    }
                    None => batch_to_hits(
                        &search_one(location, prepared, request, query).await?,
                        &prepared.projection,
                    )?,
                };
                Ok::<_, Error>(QueryHits { query: i, hits })
            }
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await?;
    Ok(SearchResults {
        results,
        version: prepared.dataset.version().version,
        index: prepared.index.as_ref().map(|i| i.name.clone()),
        metric: prepared.metric,
        tasks: 0,
        seconds: started.elapsed().as_secs_f64(),
        columns: Some(projection_schema(&prepared.dataset, &prepared.projection)),
    })
}

/// The query vector of a row, by its position in the dataset (0-based).
pub async fn query_from_row(
    location: &Location,
    at: Option<&VersionSpec>,
    column: Option<&str>,
    row: u64,
) -> Result<Matrix> {
    let dataset = location.open(at).await?;
    let column = match column {
        Some(c) => c.to_string(),
        None => default_vector_column(&dataset)?,
    };
    let dim = vector_dimension(&dataset, &column)?;
    let rows = dataset
        .count_rows(None)
        .await
        .map_err(|e| location.lance_error("count rows", e))? as u64;
    ensure_invalid!(
        row < rows,
        "--query-row {row} is out of range: the dataset has {rows} rows (0..{})",
        rows.saturating_sub(1)
    );
    let projection = dataset
        .schema()
        .project(&[column.as_str()])
        .map_err(|e| location.lance_error("project vector column", e))?;
    let batch = dataset
        .take(&[row], projection)
        .await
        .map_err(|e| location.lance_error("read query row", e))?;
    let vectors = batch
        .column_by_name(&column)
        .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
        .ok_or_else(|| Error::Internal("query row is not a vector".into()))?;
    ensure_invalid!(
        !vectors.is_null(0),
        "row {row} has no vector (null) in '{column}'"
    );
    let values = vectors.value(0);
    let values = arrow_cast::cast(&values, &arrow_schema::DataType::Float32)
        .map_err(|e| Error::Internal(format!("cast query: {e}")))?;
    let values = values
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| Error::Internal("query row cast".into()))?;
    Matrix::new(dim, values.values().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::vector::{create_vector_index, VectorIndexRequest, VectorIndexType};
    use crate::ingest::{ingest, IngestRequest, WriteMode};
    use crate::progress::NoProgress;
    use crate::search::distributed::*;
    use crate::storage::StorageOptions;
    use crate::vectors::{clustered_vectors, write_generated_parquet, ClusteredSpec};

    const DIM: usize = 32;

    async fn add_rows(
        dir: &std::path::Path,
        loc: &Location,
        rows: usize,
        seed: u64,
        mode: WriteMode,
    ) {
        let (data, labels) = clustered_vectors(&ClusteredSpec::new(rows, DIM, 40, seed)).unwrap();
        let parquet = dir.join(format!("rows-{seed}.parquet"));
        write_generated_parquet(&parquet, &data, &labels).unwrap();
        let mut req = IngestRequest::new(vec![parquet], mode);
        req.max_rows_per_file = 500;
        ingest(
            loc,
            &req,
            &crate::operations::local_executor(2),
            &NoProgress,
        )
        .await
        .unwrap();
    }

    /// Both paths on the latest version; whether the direct one applied.
    async fn both_paths(
        loc: &Location,
        request: &VectorSearchRequest,
    ) -> (SearchResults, SearchResults, bool) {
        let dataset = Arc::new(loc.open(None).await.unwrap());
        let direct = prepare(loc, dataset.clone(), request, false)
            .await
            .unwrap()
            .direct
            .is_some();
        let fast = search_in_with(loc, dataset.clone(), request, 2, false)
            .await
            .unwrap();
        let planned = search_in_with(loc, dataset, request, 2, true)
            .await
            .unwrap();
        (fast, planned, direct)
    }

    /// The distributed search of `request` on the latest version.
    async fn distributed(loc: &Location, request: &VectorSearchRequest) -> SearchResults {
        let dataset = Arc::new(loc.open(None).await.unwrap());
        distributed_in(loc, dataset, request, &crate::operations::local_executor(2))
            .await
            .unwrap()
    }

    /// The distributed plan of `request` on the latest version.
    async fn distributed_tasks(
        loc: &Location,
        request: &VectorSearchRequest,
    ) -> Vec<VectorSearchTask> {
        let dataset = Arc::new(loc.open(None).await.unwrap());
        let prepared = prepare(loc, dataset, request, true).await.unwrap();
        distributed_plan(loc, &prepared, request, 2).await.unwrap()
    }

    /// Every segment task of the distributed plan searches its segments
    /// directly and finds the candidates lance's plan finds for them.
    async fn segment_tasks_answer_as_planned(
        loc: &Location,
        request: &VectorSearchRequest,
        what: &str,
    ) {
        let tasks = distributed_tasks(loc, request).await;
        let segment_tasks: Vec<VectorSearchTask> = tasks
            .into_iter()
            .filter(|t| matches!(t.part, SearchPart::Segments { .. }))
            .collect();
        assert!(!segment_tasks.is_empty(), "{what}");
        for task in segment_tasks {
            assert!(task.direct, "{what}: segment tasks search directly");
            let direct = execute_search_task(task.clone()).await.unwrap();
            let planned = execute_search_task(VectorSearchTask {
                direct: false,
                ..task.clone()
            })
            .await
            .unwrap();
            assert_eq!(direct.hits.len(), task.queries.rows(), "{what}");
            assert_eq!(planned.hits.len(), task.queries.rows(), "{what}");
            for (q, (a, b)) in direct.hits.iter().zip(&planned.hits).enumerate() {
                if task.range.is_unbounded() {
                    assert_eq!(a.len(), task.fetch, "{what}: query {q}");
                }
                let as_hits = |found: &[(u64, f32)]| QueryHits {
                    query: q,
                    hits: found
                        .iter()
                        .map(|(row_id, distance)| Hit {
                            row_id: *row_id,
                            distance: *distance,
                            fields: serde_json::Map::new(),
                        })
                        .collect(),
                };
                if let Err(e) = as_hits(a).same_answer(&as_hits(b)) {
                    panic!("{what}: segment task, query {q}: {e}");
                }
            }
        }
    }

    /// See [`QueryHits::same_answer`].
    #[track_caller]
    fn assert_same(a: &SearchResults, b: &SearchResults, what: &str) {
        assert_eq!(a.results.len(), b.results.len(), "{what}");
        for (qa, qb) in a.results.iter().zip(&b.results) {
            if let Err(e) = qa.same_answer(qb) {
                panic!("{what}: {e}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_direct_path_answers_as_lances_query_plan() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::resolve(
            &dir.path().join("d.lance").to_string_lossy(),
            &StorageOptions::new(),
        )
        .unwrap();
        add_rows(dir.path(), &loc, 3000, 5, WriteMode::Create).await;
        let (all, _) = clustered_vectors(&ClusteredSpec::new(3030, DIM, 40, 5)).unwrap();
        // Held-out queries, plus stored rows (exact matches, distance 0).
        let mut rows: Vec<Vec<f32>> = (3000..3030).map(|i| all.row(i).to_vec()).collect();
        rows.extend((0..5).map(|i| all.row(i * 7).to_vec()));
        let queries = Matrix::from_rows(&rows).unwrap();
        let exec = crate::operations::local_executor(2);
        // (kind, metric, rows per segment, keep the segments apart)
        let cases = [
            (VectorIndexType::IvfFlat, Metric::L2, Some(1000), true),
            (VectorIndexType::IvfSq, Metric::Cosine, None, false),
            (VectorIndexType::IvfPq, Metric::Dot, None, false),
            (VectorIndexType::IvfPq, Metric::Cosine, Some(1500), true),
            (VectorIndexType::IvfPq, Metric::L2, Some(1000), false),
        ];
        for (kind, metric, rows_per_segment, keep_segments) in cases {
            let mut req = VectorIndexRequest::new("vector", kind, metric);
            req.partitions = Some(16);
            if matches!(kind, VectorIndexType::IvfPq) {
                req.sub_vectors = Some(8);
            }
            req.rows_per_segment = rows_per_segment;
            req.keep_segments = keep_segments;
            create_vector_index(&loc, &req, &exec, &NoProgress)
                .await
                .unwrap();
            let column_sets: [Option<Vec<String>>; 4] = [
                Some(vec!["id".into(), "category".into()]),
                Some(vec![]),
                Some(vec!["vector".into(), "id".into()]),
                None,
            ];
            for refine in [None, Some(3)] {
                for columns in column_sets.clone() {
                    let mut request = VectorSearchRequest::new(queries.clone(), 10);
                    request.nprobes = Some(3);
                    request.refine_factor = refine;
                    request.columns = columns.clone();
                    let what = format!("{kind:?} {metric:?} refine {refine:?} {columns:?}");
                    let (fast, planned, direct) = both_paths(&loc, &request).await;
                    assert!(direct, "{what}: the direct path applies");
                    assert_same(&fast, &planned, &what);
                    assert!(fast.results.iter().all(|q| q.hits.len() == 10), "{what}");
                    if columns.as_ref().is_some_and(|c| c.is_empty()) {
                        segment_tasks_answer_as_planned(&loc, &request, &what).await;
                        let spread = distributed(&loc, &request).await;
                        assert_same(&spread, &planned, &format!("{what}, distributed"));
                        // A distance range: bounded inside the partitions'
                        // search, again after the refine, and in the merge.
                        let first = &fast.results[0].hits;
                        let mut ranged = request.clone();
                        ranged.distance_range = DistanceRange {
                            lower: Some(first[2].distance),
                            upper: Some(first[8].distance),
                        };
                        let what = format!("{what}, distance range");
                        let (fast, planned, direct) = both_paths(&loc, &ranged).await;
                        assert!(direct, "{what}: the direct path applies");
                        assert_same(&fast, &planned, &what);
                        let hits: Vec<&Hit> = fast.results.iter().flat_map(|q| &q.hits).collect();
                        // With a refine, lance bounds the approximate
                        // distances first and the exact ones again: a range
                        // cut from exact distances may keep nothing.
                        assert!(refine.is_some() || !hits.is_empty(), "{what}");
                        assert!(
                            hits.iter()
                                .all(|h| ranged.distance_range.contains(h.distance)),
                            "{what}"
                        );
                        segment_tasks_answer_as_planned(&loc, &ranged, &what).await;
                        let spread = distributed(&loc, &ranged).await;
                        assert_same(&spread, &planned, &format!("{what}, distributed"));
                    }
                }
            }
        }

        let mut request = VectorSearchRequest::new(queries.clone(), 10);
        request.nprobes = Some(3);
        request.refine_factor = Some(2);
        // Where only lance's plan knows what to mask, it answers.
        let mut filtered = request.clone();
        filtered.filter = Some("category = 'c1'".into());
        assert!(!both_paths(&loc, &filtered).await.2, "a filter");
        assert!(distributed_tasks(&loc, &filtered)
            .await
            .iter()
            .all(|t| !t.direct));
        let mut auto = request.clone();
        auto.nprobes = None;
        assert!(!both_paths(&loc, &auto).await.2, "lance's adaptive probing");
        auto.minimum_nprobes = Some(2);
        auto.maximum_nprobes = Some(6);
        assert!(!both_paths(&loc, &auto).await.2, "adaptive between bounds");
        auto.maximum_nprobes = Some(2);
        assert!(
            both_paths(&loc, &auto).await.2,
            "bounds of one count are fixed"
        );
        // A second index on the column: the request names the first.
        request.index = both_paths(&loc, &request).await.0.index;
        assert!(request.index.is_some());
        let mut hnsw = VectorIndexRequest::new("vector", VectorIndexType::IvfHnswSq, Metric::L2);
        hnsw.partitions = Some(4);
        hnsw.name = Some("hnsw".into());
        create_vector_index(&loc, &hnsw, &exec, &NoProgress)
            .await
            .unwrap();
        let mut via_hnsw = request.clone();
        via_hnsw.index = Some("hnsw".into());
        assert!(!both_paths(&loc, &via_hnsw).await.2, "an HNSW sub-index");
        assert!(both_paths(&loc, &request).await.2);

        crate::dataset::versions::delete_rows(&loc, "id < 100")
            .await
            .unwrap();
        let (fast, planned, direct) = both_paths(&loc, &request).await;
        assert!(!direct, "deleted rows");
        assert!(distributed_tasks(&loc, &request)
            .await
            .iter()
            .all(|t| !t.direct));
        assert_same(&fast, &planned, "after a delete");
        assert!(fast
            .results
            .iter()
            .flat_map(|q| &q.hits)
            .all(|h| h.fields["id"].as_u64().is_some_and(|id| id >= 100)));

        let fresh = tempfile::tempdir().unwrap();
        let loc = Location::resolve(
            &fresh.path().join("e.lance").to_string_lossy(),
            &StorageOptions::new(),
        )
        .unwrap();
        add_rows(fresh.path(), &loc, 2000, 5, WriteMode::Create).await;
        let mut req = VectorIndexRequest::new("vector", VectorIndexType::IvfFlat, Metric::L2);
        req.partitions = Some(8);
        create_vector_index(&loc, &req, &exec, &NoProgress)
            .await
            .unwrap();
        request.index = None;
        assert!(both_paths(&loc, &request).await.2);
        add_rows(fresh.path(), &loc, 300, 6, WriteMode::Append).await;
        // Rows appended after the index: its segments are searched directly,
        // the new fragments scanned exactly, as lance's plan does.
        let (appended, _) = clustered_vectors(&ClusteredSpec::new(300, DIM, 40, 6)).unwrap();
        for refine in [None, Some(2)] {
            let mut with_new = request.clone();
            with_new.refine_factor = refine;
            let (fast, planned, direct) = both_paths(&loc, &with_new).await;
            assert!(
                direct,
                "unindexed rows, refine {refine:?}: the direct path applies"
            );
            assert_same(
                &fast,
                &planned,
                &format!("unindexed rows, refine {refine:?}"),
            );
            // A query equal to a new row finds it first: only the flat scan reaches it.
            let mut exact = with_new.clone();
            exact.queries = Matrix::new(DIM, appended.row(7).to_vec()).unwrap();
            exact.columns = Some(vec![]);
            let (fast_one, planned_one, _) = both_paths(&loc, &exact).await;
            assert_same(
                &fast_one,
                &planned_one,
                &format!("a new row, refine {refine:?}"),
            );
            assert_eq!(fast_one.results[0].hits[0].distance, 0.0);
            // Distributed: segment tasks direct, the new rows a flat task.
            let tasks = distributed_tasks(&loc, &with_new).await;
            assert!(tasks
                .iter()
                .all(|t| t.direct == matches!(t.part, SearchPart::Segments { .. })));
            assert!(tasks
                .iter()
                .any(|t| matches!(t.part, SearchPart::Flat { .. })));
            segment_tasks_answer_as_planned(&loc, &with_new, "unindexed rows").await;
            let distributed = distributed(&loc, &with_new).await;
            assert_same(
                &distributed,
                &planned,
                &format!("distributed, unindexed rows, refine {refine:?}"),
            );
        }
    }
}
