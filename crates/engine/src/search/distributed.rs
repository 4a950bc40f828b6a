//! Distributed vector search by index-segment ownership.
//!
//!
//! Distributed search follows the spine against one pinned version:
//!
//! * **plan** — whole index segments are grouped into tasks (a segment is
//!   never split), fragments no segment covers into flat-scan tasks;
//! * **execute** — a segment task runs the approximate search on its segments
//!   only and returns `k × refine` candidates `(row id, distance)`; a flat
//!   task scans its fragments with the **index's** metric and returns its
//!   exact top k;
//! * **merge** (driver) — partial selection of the global candidates, the
//!   refine step on the driver (exact distances for the candidates only),
//!   then the requested columns are read for the winners only.
//!
//! This reproduces what the lance crate does in one process (global top
//! `k × refine` by approximate distance, exact re-rank, union with the flat
//! scan of unindexed fragments), so both give the same rows in the same order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::Float32Array;

use lance::dataset::scanner::Scanner;
use lance::dataset::Dataset;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::metric::Metric;
use crate::progress::NoProgress;
use crate::spine::Executor;
use crate::spine::{run_tasks, DistributedOp};
use crate::storage::{Location, VersionSpec};

use crate::dataset::fragments::{balance_fragments, fragment_rows};
use crate::vectors::{top_k, Matrix};

use super::direct::*;
use super::query::*;
use super::vector::*;

/// What one distributed search task covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SearchPart {
    /// Whole index segments, searched through the index.
    Segments {
        /// Segment ids.
        uuids: Vec<String>,
    },
    /// Fragments no segment covers, scanned exactly.
    Flat {
        /// Fragment ids.
        fragments: Vec<u32>,
    },
}

/// One distributed search task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorSearchTask {
    /// The dataset.
    pub location: Location,
    /// The pinned version.
    pub version: u64,
    /// Vector column.
    pub column: String,
    /// All queries of the batch.
    pub queries: Matrix,
    /// Candidates to return per query.
    pub fetch: usize,
    /// Partitions probed per segment (fixed or adaptive bounds).
    #[serde(flatten)]
    pub probes: Probes,
    /// Distances kept.
    #[serde(default)]
    pub range: DistanceRange,
    /// SQL predicate, applied before ranking.
    pub filter: Option<String>,
    /// The metric (the index's).
    pub metric: Metric,
    /// What this task searches.
    pub part: SearchPart,
    /// The driver found the index searchable without a query plan on this
    /// version (see `DirectIndex`): a segment task then asks its segments
    /// directly instead of planning a scan per query.
    #[serde(default)]
    pub direct: bool,
    /// Run lance's plan for the first query with metrics (`analyze_plan`)
    /// instead of searching: the output carries the analysis, no hits.
    #[serde(default)]
    pub analyze: bool,
}

/// Candidates of one task: per query, `(row id, distance)`, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorSearchOutput {
    /// Per query.
    pub hits: Vec<Vec<(u64, f32)>>,
    /// Lance's analysed plan, for an `analyze` task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<String>,
}

/// The distributed search task as the worker knows it.
pub struct VectorSearchOp;

impl DistributedOp for VectorSearchOp {
    const NAME: &'static str = "vector_search";
    type Task = VectorSearchTask;
    type Output = VectorSearchOutput;

    fn label(task: &VectorSearchTask) -> String {
        match &task.part {
            SearchPart::Segments { uuids } => format!("{} index segment(s)", uuids.len()),
            SearchPart::Flat { fragments } => format!(
                "flat scan of fragments {}",
                crate::dataset::fragments::fragment_ranges(fragments)
            ),
        }
    }

    async fn execute(task: VectorSearchTask) -> Result<VectorSearchOutput> {
        execute_search_task(task).await
    }
}

/// Run one search task (worker side): row ids and distances only.
pub async fn execute_search_task(task: VectorSearchTask) -> Result<VectorSearchOutput> {
    let location = &task.location;
    let dataset = Arc::new(
        location
            .open(Some(&VersionSpec::Number(task.version)))
            .await?,
    );
    if task.analyze {
        let analysis = match task.queries.rows() {
            0 => String::new(),
            _ => task_scanner(&task, &dataset, task.queries.row(0))?
                .analyze_plan()
                .await
                .map_err(|e| location.lance_error("analyze the search plan", e))?,
        };
        return Ok(VectorSearchOutput {
            hits: Vec::new(),
            analysis: Some(analysis),
        });
    }
    let direct = match (&task.part, task.direct, task.probes.fixed(), &task.filter) {
        (SearchPart::Segments { uuids }, true, Some(nprobes), None) => {
            let uuids: Vec<&str> = uuids.iter().map(String::as_str).collect();
            Some(
                DirectIndex::open_segments(location, &dataset, &task.column, &uuids, nprobes)
                    .await?,
            )
        }
        _ => None,
    };
    let mut hits = Vec::with_capacity(task.queries.rows());
    for i in 0..task.queries.rows() {
        let query = task.queries.row(i);
        if let Some(direct) = &direct {
            let found = direct
                .candidates(
                    location,
                    &task.column,
                    task.metric,
                    query,
                    task.fetch,
                    None,
                    task.range,
                )
                .await?;
            if let Some(found) = found {
                hits.push(found.into_iter().map(|(d, id)| (id, d)).collect());
                continue;
            }
        }
        let batch = task_scanner(&task, &dataset, query)?
            .try_into_batch()
            .await
            .map_err(|e| location.lance_error("vector search task", e))?;
        hits.push(ids_and_distances(&batch)?);
    }
    Ok(VectorSearchOutput {
        hits,
        analysis: None,
    })
}

/// Lance's scan of `query` over what `task` covers: its segments through
/// the index (approximate distances, no refine: the driver refines), or its
/// fragments exactly.
fn task_scanner(task: &VectorSearchTask, dataset: &Dataset, query: &[f32]) -> Result<Scanner> {
    let location = &task.location;
    let uuids = match &task.part {
        SearchPart::Flat { fragments } => {
            return flat_scanner(
                location,
                dataset,
                &task.column,
                task.metric,
                query,
                task.fetch,
                fragments,
                task.filter.as_deref(),
                task.range,
            )
        }
        SearchPart::Segments { uuids } => uuids,
    };
    let segment_ids = uuids
        .iter()
        .map(|u| {
            uuid::Uuid::parse_str(u).map_err(|e| Error::Internal(format!("segment id '{u}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let err = |e| location.lance_error("vector search task", e);
    let mut scanner = dataset.scan();
    scanner.project(&[DISTANCE]).map_err(err)?;
    scanner
        .nearest(
            &task.column,
            &Float32Array::from(query.to_vec()),
            task.fetch,
        )
        .map_err(err)?;
    task.probes.configure(&mut scanner);
    if !task.range.is_unbounded() {
        scanner.distance_range(task.range.lower, task.range.upper);
    }
    if let Some(filter) = &task.filter {
        scanner.filter(filter).map_err(err)?;
        scanner.prefilter(true);
    }
    scanner.with_index_segments(segment_ids).map_err(err)?;
    scanner.with_row_id();
    Ok(scanner)
}

/// The distributed search plan: tasks over whole segments and unindexed fragments.
#[allow(clippy::too_many_arguments)]
pub fn plan_search_tasks(
    location: &Location,
    version: u64,
    column: &str,
    request: &VectorSearchRequest,
    metric: Metric,
    segments: Option<&[(String, Vec<u32>)]>,
    fragments: &[(u32, u64)],
    parallelism: usize,
) -> Vec<VectorSearchTask> {
    let base = |part: SearchPart, fetch: usize| VectorSearchTask {
        location: location.clone(),
        version,
        column: column.to_string(),
        queries: request.queries.clone(),
        fetch,
        probes: request.probes(),
        range: request.distance_range,
        filter: request.filter.clone(),
        metric,
        part,
        direct: false,
        analyze: false,
    };
    let mut tasks = Vec::new();
    let mut unindexed: Vec<(u32, u64)> = fragments.to_vec();
    if let Some(segments) = segments {
        let live: HashMap<u32, u64> = fragments.iter().copied().collect();
        let covered: BTreeSet<u32> = segments.iter().flat_map(|s| s.1.iter().copied()).collect();
        unindexed.retain(|(id, _)| !covered.contains(id));
        // Segments as units: (pseudo id = position, rows it covers).
        let units: Vec<(u32, u64)> = segments
            .iter()
            .enumerate()
            .filter_map(|(i, (_, frags))| {
                let rows: u64 = frags.iter().filter_map(|f| live.get(f)).sum();
                let live_frags = frags.iter().any(|f| live.contains_key(f));
                (live_frags).then_some((i as u32, rows))
            })
            .collect();
        let fetch = request.k * request.refine_factor.unwrap_or(1) as usize;
        for (group, _) in balance_fragments(&units, parallelism) {
            let uuids = group
                .iter()
                .filter_map(|i| segments.get(*i as usize).map(|s| s.0.clone()))
                .collect();
            tasks.push(base(SearchPart::Segments { uuids }, fetch));
        }
    }
    if !unindexed.is_empty() && !request.fast_search {
        for (group, _) in balance_fragments(&unindexed, parallelism) {
            tasks.push(base(SearchPart::Flat { fragments: group }, request.k));
        }
    }
    tasks
}

/// Search as distributed tasks on `executor`, merge a global top-k on the
/// driver, then read the requested columns of the winners only.
pub async fn search_vectors_distributed(
    location: &Location,
    at: Option<&VersionSpec>,
    request: &VectorSearchRequest,
    executor: &dyn Executor,
) -> Result<SearchResults> {
    let dataset = Arc::new(location.open(at).await?);
    distributed_in(location, dataset, request, executor).await
}

/// The tasks of a distributed search on `prepared`'s pinned version; segment
/// tasks search directly where the in-process search would.
pub(crate) async fn distributed_plan(
    location: &Location,
    prepared: &Prepared,
    request: &VectorSearchRequest,
    parallelism: usize,
) -> Result<Vec<VectorSearchTask>> {
    let dataset = &prepared.dataset;
    let fragments = fragment_rows(location, dataset).await?;
    let mut tasks = plan_search_tasks(
        location,
        dataset.version().version,
        &prepared.column,
        request,
        prepared.metric,
        prepared.index.as_ref().map(|i| i.segments.as_slice()),
        &fragments,
        parallelism,
    );
    let direct = prepared
        .index
        .as_ref()
        .is_some_and(|index| DirectIndex::applies(dataset, &prepared.column, index, request));
    for task in &mut tasks {
        task.direct = direct && matches!(task.part, SearchPart::Segments { .. });
    }
    Ok(tasks)
}

pub(crate) async fn distributed_in(
    location: &Location,
    dataset: Arc<Dataset>,
    request: &VectorSearchRequest,
    executor: &dyn Executor,
) -> Result<SearchResults> {
    let started = Instant::now();
    let prepared = prepare(location, dataset, request, true).await?;
    let dataset = &prepared.dataset;
    let version = dataset.version().version;
    let tasks = distributed_plan(location, &prepared, request, executor.parallelism()).await?;
    let outputs = if tasks.is_empty() {
        Vec::new()
    } else {
        run_tasks::<VectorSearchOp>(executor, &tasks, &NoProgress).await?
    };
    let k = request.k;
    let mut results = Vec::with_capacity(request.queries.rows());
    for q in 0..request.queries.rows() {
        let mut approx: Vec<(f32, u64)> = Vec::new();
        let mut exact: Vec<(f32, u64)> = Vec::new();
        for (task, output) in tasks.iter().zip(&outputs) {
            let Some(hits) = output.hits.get(q) else {
                continue;
            };
            let target = match task.part {
                SearchPart::Segments { .. } => &mut approx,
                SearchPart::Flat { .. } => &mut exact,
            };
            target.extend(hits.iter().map(|(id, d)| (*d, *id)));
        }
        // The index's best k × refine_factor, re-ranked together with the
        // flat-scanned rows, exactly as the in-process search does.
        top_k(&mut approx, k * request.refine_factor.unwrap_or(1) as usize);
        let hits = hits_from_candidates(
            location,
            &prepared,
            request.queries.row(q),
            k,
            request.refine_factor.is_some(),
            request.distance_range,
            approx,
            exact,
        )
        .await?;
        results.push(QueryHits { query: q, hits });
    }
    Ok(SearchResults {
        results,
        version,
        index: prepared.index.as_ref().map(|i| i.name.clone()),
        metric: prepared.metric,
        tasks: tasks.len(),
        seconds: started.elapsed().as_secs_f64(),
        columns: Some(projection_schema(dataset, &prepared.projection)),
    })
}

impl VectorSearcher {
    /// Distributed search (see [`search_vectors_distributed`]).
    pub async fn search_distributed(
        &self,
        request: &VectorSearchRequest,
        executor: &dyn Executor,
    ) -> Result<SearchResults> {
        distributed_in(&self.location, self.dataset.clone(), request, executor).await
    }
}
