//! Incremental index maintenance: index new fragments, merge segments, retrain.
//!
//! Plan → tasks → execute → commit, in two task stages, with the lance crate's
//! distributed optimize doing the format work:
//! - **plan** (driver): `plan_optimize_indices` against the latest version. New
//!   fragments are cut into build tasks of bounded rows; every task of an
//!   index encodes against the index's newest segment, so vector segments
//!   reuse the trained IVF centroids and PQ codebook (nothing is retrained
//!   unless `retrain` is asked for);
//! - **build** (workers): each task writes one uncommitted segment;
//! - **merge** (workers): each merge group combines its task segments and the
//!   index's existing segments (all by default, the newest N with `merge`,
//!   none with `keep_segments`) into one segment;
//! - **commit** (driver): `commit_optimize_indices` publishes every merged
//!   segment and drops the ones they replace, in one version.
//!
//! Searches stay correct throughout: fragments no segment covers are searched
//! by flat scan until an optimize indexes them.

use std::collections::BTreeMap;
use std::time::Instant;

use lance::index::optimize::{
    commit_optimize_indices, plan_optimize_indices, IndexSegmentResult, OptimizeIndexMerge,
    OptimizeIndexTask,
};
use lance::Dataset;
use lance_index::optimize::OptimizeOptions;
use serde::{Deserialize, Serialize};

use crate::dataset::fragments::{fragment_rows, fragments_label};
use crate::dataset::info::{index_infos, IndexInfo};
use crate::error::{ensure_invalid, Error, Result};
use crate::progress::{note, Progress};
use crate::spine::Executor;
use crate::spine::{run_tasks, DistributedOp};
use crate::storage::{Location, VersionSpec};

/// Which indexes to maintain and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizeRequest {
    /// Only these indexes (default: every index).
    pub indexes: Vec<String>,
    /// Merge only the N newest existing segments of each index (after
    /// appends, the small delta segments) with the new one. Default: every
    /// segment, so each index is one segment again (a query searches each
    /// segment on its own: two segments cost up to twice one), unless
    /// `keep_segments`.
    pub merge: Option<usize>,
    /// New fragments get a segment of their own and nothing else is
    /// rewritten (cheapest for a large index; `search --distributed` spreads
    /// over segments).
    #[serde(default)]
    pub keep_segments: bool,
    /// Retrain from the current data and rebuild each index from scratch.
    pub retrain: bool,
    /// Upper bound on rows per committed segment (default: unbounded, one new
    /// segment per index and run).
    pub rows_per_segment: Option<u64>,
}

/// A build task: one new segment over a group of fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeBuildTask {
    /// The dataset.
    pub location: Location,
    /// Index name (for labels and reports).
    pub index: String,
    /// Rows in the task's fragments.
    pub rows: u64,
    /// The lance task.
    pub task: OptimizeIndexTask,
}

/// A merge task: the segments of one group become the segment to commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeMergeTask {
    /// The dataset.
    pub location: Location,
    /// Index name.
    pub index: String,
    /// The lance merge.
    pub merge: OptimizeIndexMerge,
    /// The build results of this merge's group.
    pub built: Vec<IndexSegmentResult>,
}

/// What a build or merge task produced (`None`: nothing to do after all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeOutput {
    /// The segment.
    pub segment: Option<IndexSegmentResult>,
}

/// The build stage as the worker knows it.
pub struct OptimizeBuildOp;

impl DistributedOp for OptimizeBuildOp {
    const NAME: &'static str = "optimize_index_build";
    type Task = OptimizeBuildTask;
    type Output = OptimizeOutput;

    fn label(task: &OptimizeBuildTask) -> String {
        format!(
            "{}: {}",
            task.index,
            fragments_label(&task.task.fragments, task.rows)
        )
    }

    async fn execute(task: OptimizeBuildTask) -> Result<OptimizeOutput> {
        let location = &task.location;
        let dataset = location
            .open(Some(&VersionSpec::Number(task.task.read_version)))
            .await?;
        let segment = task
            .task
            .execute(&dataset)
            .await
            .map_err(|e| location.lance_error(&format!("index '{}'", task.index), e))?;
        Ok(OptimizeOutput { segment })
    }
}

/// The merge stage as the worker knows it.
pub struct OptimizeMergeOp;

impl DistributedOp for OptimizeMergeOp {
    const NAME: &'static str = "optimize_index_merge";
    type Task = OptimizeMergeTask;
    type Output = OptimizeOutput;

    fn label(task: &OptimizeMergeTask) -> String {
        format!(
            "{}: {} new + {} existing segment(s)",
            task.index,
            task.built.len(),
            task.merge.old_segments.len()
        )
    }

    async fn execute(task: OptimizeMergeTask) -> Result<OptimizeOutput> {
        let location = &task.location;
        let dataset = location
            .open(Some(&VersionSpec::Number(task.merge.read_version)))
            .await?;
        let segment = task
            .merge
            .execute(&dataset, &task.built)
            .await
            .map_err(|e| location.lance_error(&format!("merge index '{}'", task.index), e))?;
        Ok(OptimizeOutput { segment })
    }
}

/// The plan of one optimize run.
#[derive(Debug, Clone)]
pub struct OptimizePlan {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub read_version: u64,
    /// The options the plan was made with (the commit uses them too).
    pub options: OptimizeOptions,
    /// Indexes before (those the request selects).
    pub before: Vec<IndexInfo>,
    /// Build tasks.
    pub builds: Vec<OptimizeBuildTask>,
    /// Merges, one per output segment (their `built` is filled after the
    /// build stage).
    pub merges: Vec<OptimizeMergeTask>,
}

/// One index before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexChange {
    /// Index name.
    pub name: String,
    /// Index type.
    pub index_type: String,
    /// Segments before.
    pub segments_before: usize,
    /// Segments after.
    pub segments_after: usize,
    /// Fragments not covered before.
    pub unindexed_fragments_before: usize,
    /// Fragments not covered after.
    pub unindexed_fragments_after: usize,
}

/// What an optimize run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeReport {
    /// Dataset URI.
    pub uri: String,
    /// Whether a version was committed (false: nothing to do).
    pub optimized: bool,
    /// Build tasks run.
    pub build_tasks: usize,
    /// Merge tasks run.
    pub merge_tasks: usize,
    /// Rows the build tasks indexed (summed over indexes).
    pub rows_indexed: u64,
    /// Per index.
    pub indexes: Vec<IndexChange>,
    /// The version planned against.
    pub read_version: u64,
    /// The latest version after the command.
    pub version: u64,
    /// Seconds building segments.
    pub build_seconds: f64,
    /// Seconds merging.
    pub merge_seconds: f64,
    /// Seconds committing.
    pub commit_seconds: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Check the request against the latest version and let the lance crate cut
/// the work into build and merge tasks.
pub async fn plan(
    location: &Location,
    request: &OptimizeRequest,
    parallelism: usize,
) -> Result<OptimizePlan> {
    let dataset = location.open(None).await?;
    let read_version = dataset.version().version;
    let mut before = index_infos(location, &dataset).await?;
    ensure_invalid!(
        !before.is_empty(),
        "'{}' has no index to optimize; build one first with `lanceflow index vector` or \
         `lanceflow index scalar`",
        location.uri()
    );
    if !request.indexes.is_empty() {
        let unknown: Vec<&str> = request
            .indexes
            .iter()
            .filter(|n| !before.iter().any(|i| &i.name == *n))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::NotFound(format!(
                "no index named {} on '{}' (indexes: {})",
                unknown
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                location.uri(),
                before
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        before.retain(|i| request.indexes.contains(&i.name));
    }
    if let Some(r) = request.rows_per_segment {
        ensure_invalid!(r > 0, "--rows-per-segment must be at least 1");
    }
    ensure_invalid!(
        !(request.retrain && (request.merge.is_some() || request.keep_segments)),
        "--retrain rebuilds every segment into one; it cannot be combined with --merge or \
         --keep-segments"
    );
    ensure_invalid!(
        !(request.keep_segments && request.merge.is_some()),
        "--keep-segments merges nothing; it cannot be combined with --merge"
    );

    let rows: BTreeMap<u32, u64> = fragment_rows(location, &dataset)
        .await?
        .into_iter()
        .collect();
    let options = lance_options(location, &dataset, request, &before, &rows, parallelism).await?;
    let lance_plan = plan_optimize_indices(&dataset, &options)
        .await
        .map_err(|e| location.lance_error("plan index optimization", e))?;

    let mut group_index: BTreeMap<u32, String> = BTreeMap::new();
    let builds = lance_plan
        .tasks
        .into_iter()
        .map(|task| {
            let index = task.reference.name.clone();
            group_index.insert(task.group, index.clone());
            OptimizeBuildTask {
                location: location.clone(),
                index,
                rows: task.fragments.iter().filter_map(|f| rows.get(f)).sum(),
                task,
            }
        })
        .collect();
    let merges = lance_plan
        .merges
        .into_iter()
        .map(|merge| OptimizeMergeTask {
            location: location.clone(),
            index: group_index
                .get(&merge.group)
                .cloned()
                .or_else(|| merge.old_segments.first().map(|s| s.name.clone()))
                .unwrap_or_default(),
            merge,
            built: Vec::new(),
        })
        .collect();
    Ok(OptimizePlan {
        location: location.clone(),
        read_version,
        options,
        before,
        builds,
        merges,
    })
}

/// How many of each index's newest segments join the new one: `--merge N`,
/// none with `--keep-segments`, else all of them (the most any selected
/// index has).
fn segments_to_merge(request: &OptimizeRequest, selected: &[IndexInfo]) -> usize {
    match (request.merge, request.keep_segments) {
        (Some(n), _) => n,
        (None, true) => 0,
        (None, false) => selected.iter().map(|i| i.segments).max().unwrap_or(0),
    }
}

/// The lance options: bounded build tasks, so the new fragments of a large
/// append are indexed by several workers at once. `selected` are the indexes
/// the request covers; `rows` the rows of every fragment.
async fn lance_options(
    location: &Location,
    dataset: &Dataset,
    request: &OptimizeRequest,
    selected: &[IndexInfo],
    rows: &BTreeMap<u32, u64>,
    parallelism: usize,
) -> Result<OptimizeOptions> {
    use lance::index::DatasetIndexInternalExt;
    let mut options = if request.retrain {
        OptimizeOptions::retrain()
    } else {
        OptimizeOptions::merge(segments_to_merge(request, selected))
    };
    if !request.indexes.is_empty() {
        options = options.index_names(request.indexes.clone());
    }
    // Rows per build task: the largest index's unindexed rows (all rows for
    // a retrain) over the workers, so each worker gets one task (at least
    // 1,000 rows a task).
    let basis = if request.retrain {
        rows.values().sum()
    } else {
        let mut most_unindexed = 0u64;
        for info in selected {
            let name = &info.name;
            let unindexed: u64 = dataset
                .unindexed_fragments(name)
                .await
                .map_err(|e| {
                    location.lance_error(&format!("list fragments index '{name}' misses"), e)
                })?
                .iter()
                .filter_map(|f| u32::try_from(f.id).ok().and_then(|id| rows.get(&id)))
                .sum();
            most_unindexed = most_unindexed.max(unindexed);
        }
        most_unindexed
    };
    let per_task = basis.div_ceil(parallelism.max(1) as u64).max(1_000);
    let per_task = match request.rows_per_segment {
        Some(r) => per_task.min(r),
        None => per_task,
    };
    Ok(options
        .max_rows_per_task(Some(per_task))
        .max_rows_per_segment(request.rows_per_segment))
}

/// Publish the merged segments in one version; returns the dataset at it.
pub async fn commit(plan: &OptimizePlan, merged: Vec<IndexSegmentResult>) -> Result<Dataset> {
    let location = &plan.location;
    let mut dataset = location.open(None).await?;
    commit_optimize_indices(&mut dataset, merged, &plan.options)
        .await
        .map_err(|e| location.lance_error("commit index optimization", e))?;
    Ok(dataset)
}

/// Plan, build and merge on `executor`, commit once. Nothing to do: no new
/// version.
pub async fn optimize(
    location: &Location,
    request: &OptimizeRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<OptimizeReport> {
    let started = Instant::now();
    let mut plan = plan(location, request, executor.parallelism()).await?;
    let mut report = OptimizeReport {
        uri: location.uri().to_string(),
        optimized: false,
        build_tasks: plan.builds.len(),
        merge_tasks: plan.merges.len(),
        rows_indexed: plan.builds.iter().map(|t| t.rows).sum(),
        indexes: Vec::new(),
        read_version: plan.read_version,
        version: plan.read_version,
        build_seconds: 0.0,
        merge_seconds: 0.0,
        commit_seconds: 0.0,
        seconds: 0.0,
    };
    if plan.builds.is_empty() && plan.merges.is_empty() {
        note(
            progress,
            OptimizeBuildOp::NAME,
            format!(
                "nothing to optimize in version {}: every selected index covers every fragment",
                plan.read_version
            ),
        );
        report.indexes = changes(&plan.before, &plan.before);
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    note(
        progress,
        OptimizeBuildOp::NAME,
        format!(
            "{} build task(s) over {} rows, {} merge(s) (planned against version {})",
            plan.builds.len(),
            report.rows_indexed,
            plan.merges.len(),
            plan.read_version
        ),
    );
    let build_started = Instant::now();
    let built = run_tasks::<OptimizeBuildOp>(executor, &plan.builds, progress).await?;
    report.build_seconds = build_started.elapsed().as_secs_f64();

    for merge in &mut plan.merges {
        merge.built = built
            .iter()
            .filter_map(|o| o.segment.as_ref())
            .filter(|s| s.group == merge.merge.group)
            .cloned()
            .collect();
    }
    let merge_started = Instant::now();
    let merged = run_tasks::<OptimizeMergeOp>(executor, &plan.merges, progress).await?;
    report.merge_seconds = merge_started.elapsed().as_secs_f64();
    let merged: Vec<IndexSegmentResult> = merged.into_iter().filter_map(|o| o.segment).collect();

    let commit_started = Instant::now();
    if merged.is_empty() {
        report.indexes = changes(&plan.before, &plan.before);
    } else {
        let committed = commit(&plan, merged).await?;
        report.version = committed.version().version;
        report.optimized = true;
        report.indexes = changes(&plan.before, &index_infos(location, &committed).await?);
    }
    report.commit_seconds = commit_started.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn changes(before: &[IndexInfo], after: &[IndexInfo]) -> Vec<IndexChange> {
    before
        .iter()
        .map(|b| {
            let a = after.iter().find(|a| a.name == b.name).unwrap_or(b);
            IndexChange {
                name: b.name.clone(),
                index_type: b.index_type.clone(),
                segments_before: b.segments,
                segments_after: a.segments,
                unindexed_fragments_before: b.unindexed_fragments,
                unindexed_fragments_after: a.unindexed_fragments,
            }
        })
        .collect()
}
