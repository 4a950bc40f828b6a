//! Distributed vector index builds (IVF_FLAT, IVF_SQ, IVF_PQ, IVF_HNSW_*).
//!
//! * **plan** — check the column and the parameters against the dataset
//!   pinned at one version; train the IVF centroids (and the PQ codebook)
//!   once, as tasks on the executor ([`crate::index::vector::train`]) or with the lance
//!   crate's own trainers on the driver ([`Training`]), or load them from
//!   files;
//!   cut the fragments into contiguous runs of about equal rows, one per
//!   segment (compaction merges only neighbours a segment covers together);
//! * **execute** — one task per segment builds an uncommitted index segment
//!   over its fragments with the shared artifacts
//!   (`CreateIndexBuilder::fragments(..).execute_uncommitted()`);
//! * **commit** — the segments are merged into one physical segment (unless
//!   kept apart for distributed search) and become one index in one new
//!   version (`commit_existing_index_segments`); a failed task commits nothing.

mod artifacts;
pub mod kmeans;
mod params;
pub mod train;

use std::time::Instant;

use lance::index::DatasetIndexExt;
use lance_index::IndexType;
use serde::{Deserialize, Serialize};

use crate::dataset::columns::vector_dimension;
use crate::dataset::fragments::{contiguous_runs, fragment_rows, fragments_label};
use crate::error::{ensure_invalid, Error, Result};
use crate::index::segments::{
    check_index_name, encode_segment, BuiltSegment, Committed, SegmentTarget,
};
use crate::progress::{note, Progress};
use crate::spine::{DistributedOp, Executor};
use crate::storage::{Location, VersionSpec};

pub use crate::index::metric::Metric;
pub use artifacts::{save_artifacts, ArtifactsInfo};
use params::Checked;
pub use params::{
    default_partitions, default_sub_vectors, Artifact, SegmentParams, Training, VectorIndexRequest,
    VectorIndexType, AUTO_DISTRIBUTED_MAX_PARTITIONS, VECTOR_SEGMENT_OP,
};

/// Rows per kept index segment at least, unless `--rows-per-segment` says
/// otherwise: every query searches every segment, and query time grows with
/// hundreds of small segments (lance#6860).
pub const MIN_SEGMENT_ROWS: u64 = 50_000;

/// Rows per build task at least when the segments are merged into one before
/// the commit: they are only units of work then. On 100k × 384 IVF_PQ two
/// halves built side by side in 1.8 s where one task took 4.2 s, and the
/// merged index answered as fast as one built in one piece.
pub const MIN_TASK_ROWS: u64 = 10_000;

/// One task: build the index segment over a group of fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorSegmentTask {
    /// The dataset.
    pub location: Location,
    /// The pinned version every task reads.
    pub read_version: u64,
    /// Vector column.
    pub column: String,
    /// Index name.
    pub name: String,
    /// Fragments this segment covers.
    pub fragments: Vec<u32>,
    /// Rows in those fragments.
    pub rows: u64,
    /// Shared, trained parameters.
    pub params: SegmentParams,
}

/// What one segment task built (not yet committed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorSegmentOutput {
    /// The segment's id.
    pub uuid: String,
    /// Its index metadata as lance's protobuf, base64.
    pub segment: String,
    /// Fragments covered.
    pub fragments: Vec<u32>,
    /// Rows covered.
    pub rows: u64,
}

/// The vector segment build as the worker knows it.
pub struct VectorSegmentOp;

impl DistributedOp for VectorSegmentOp {
    const NAME: &'static str = VECTOR_SEGMENT_OP;
    type Task = VectorSegmentTask;
    type Output = VectorSegmentOutput;

    fn label(task: &VectorSegmentTask) -> String {
        fragments_label(&task.fragments, task.rows)
    }

    async fn execute(task: VectorSegmentTask) -> Result<VectorSegmentOutput> {
        execute(task).await
    }
}

/// The plan: trained artifacts and one task per segment.
#[derive(Debug, Clone)]
pub struct VectorIndexPlan {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub read_version: u64,
    /// Index name.
    pub name: String,
    /// Vector column.
    pub column: String,
    /// Dimension of the column.
    pub dim: usize,
    /// Rows to index.
    pub rows: u64,
    /// Seconds spent training (0 when artifacts were given).
    pub train_seconds: f64,
    /// Who trained the artifacts (`None`: all given).
    pub trained_by: Option<Training>,
    /// One task per segment.
    pub tasks: Vec<VectorSegmentTask>,
    /// Commit the segments as built (else merged into one).
    pub keep_segments: bool,
}

/// What an index build did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorIndexReport {
    /// Dataset URI.
    pub uri: String,
    /// Index name.
    pub name: String,
    /// Column.
    pub column: String,
    /// Index kind.
    pub index_type: VectorIndexType,
    /// Metric.
    pub metric: Metric,
    /// IVF partitions.
    pub partitions: usize,
    /// PQ sub-vectors (PQ kinds only).
    pub sub_vectors: Option<usize>,
    /// Physical segments committed (1 once merged).
    pub segments: usize,
    /// Segments built by tasks.
    pub segments_built: usize,
    /// Rows indexed.
    pub rows_indexed: u64,
    /// The version planned against.
    pub read_version: u64,
    /// The version committed.
    pub version: u64,
    /// Seconds training.
    pub train_seconds: f64,
    /// Who trained the IVF centroids / PQ codebook (`lance` or
    /// `distributed`; `null` when all were given as files).
    pub trained_by: Option<Training>,
    /// Seconds building segments.
    pub build_seconds: f64,
    /// Seconds committing.
    pub commit_seconds: f64,
    /// Wall-clock seconds, plan to commit.
    pub seconds: f64,
}

/// Check the request against the pinned dataset, train (or load) the
/// artifacts, cut the fragments into segment tasks.
pub async fn plan(
    location: &Location,
    request: &VectorIndexRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<VectorIndexPlan> {
    let checked = validate(location, request).await?;
    let trained = artifacts::train_or_load(location, request, &checked, executor, progress).await?;
    if let Some(dir) = &request.save_artifacts {
        artifacts::save_artifacts(dir, &trained.params)?;
    }
    Ok(cut_segments(
        location,
        request,
        checked,
        trained,
        executor.parallelism(),
    ))
}

/// Everything that can be checked before training: the column, the name,
/// the rows, the numeric parameters.
async fn validate(location: &Location, request: &VectorIndexRequest) -> Result<Checked> {
    let dataset = location.open(None).await?;
    let read_version = dataset.version().version;
    let column = request.column.as_str();
    let dim = vector_dimension(&dataset, column)?;
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| format!("{column}_idx"));
    ensure_invalid!(!name.trim().is_empty(), "--name must not be empty");

    check_index_name(location, &dataset, &name, column, request.replace).await?;

    let fragments = fragment_rows(location, &dataset).await?;
    let rows: u64 = fragments.iter().map(|f| f.1).sum();
    let live_rows = dataset
        .count_rows(None)
        .await
        .map_err(|e| location.lance_error("count rows", e))? as u64;
    ensure_invalid!(
        live_rows > 0,
        "'{}' has no rows (version {read_version}); ingest data before building an index",
        location.uri()
    );
    let num_bits = request.num_bits;
    if request.index_type == VectorIndexType::IvfRq {
        ensure_invalid!(
            (1..=9).contains(&num_bits),
            "--num-bits {num_bits} is not supported for IVF_RQ; use 1 to 9 (bits per dimension)"
        );
    } else {
        ensure_invalid!(
            num_bits == 8 || (num_bits == 4 && request.index_type.uses_pq()),
            "--num-bits {num_bits} is not supported; use 8 (or 4 for PQ)"
        );
    }
    let sample_rate = request.sample_rate.unwrap_or(256);
    ensure_invalid!(sample_rate > 0, "--sample-rate must be at least 1");
    let max_iters = request.max_iters.unwrap_or(50);
    ensure_invalid!(max_iters > 0, "--max-iters must be at least 1");
    if let Some(r) = request.rows_per_segment {
        ensure_invalid!(r > 0, "--rows-per-segment must be at least 1");
    }

    let sub_vectors = if request.index_type.uses_pq() {
        let m = request
            .sub_vectors
            .unwrap_or_else(|| default_sub_vectors(dim));
        ensure_invalid!(
            m > 0 && dim % m == 0,
            "--sub-vectors {m} does not divide the dimension {dim} of '{column}'; pick a divisor \
             of {dim} (e.g. {})",
            default_sub_vectors(dim)
        );
        m
    } else {
        ensure_invalid!(
            request.sub_vectors.is_none() && request.codebook.is_none(),
            "--sub-vectors and --codebook only apply to PQ indexes (IVF_PQ, IVF_HNSW_PQ)"
        );
        0
    };

    ensure_invalid!(
        !(request.training == Training::Distributed && request.centroids.is_some()),
        "--training distributed trains the centroids, but --centroids gives them: drop one of \
         the two"
    );
    Ok(Checked {
        column: column.to_string(),
        dataset,
        read_version,
        dim,
        name,
        fragments,
        rows,
        live_rows,
        num_bits,
        sample_rate,
        max_iters,
        sub_vectors,
    })
}

/// One task per segment: the fragments cut into contiguous runs of about
/// equal rows.
fn cut_segments(
    location: &Location,
    request: &VectorIndexRequest,
    checked: Checked,
    trained: artifacts::Trained,
    parallelism: usize,
) -> VectorIndexPlan {
    // One task per worker at most. Kept segments are each searched by every
    // query, so they are large; merged ones only need to be worth a task.
    let min_rows = if request.keep_segments {
        MIN_SEGMENT_ROWS
    } else {
        MIN_TASK_ROWS
    };
    let rows = checked.rows;
    let segments = match request.rows_per_segment {
        Some(r) => rows.div_ceil(r) as usize,
        None => (rows.div_ceil(min_rows) as usize).clamp(1, parallelism.max(1)),
    };
    let tasks = contiguous_runs(&checked.fragments, segments)
        .into_iter()
        .map(|(ids, rows)| VectorSegmentTask {
            location: location.clone(),
            read_version: checked.read_version,
            column: checked.column.clone(),
            name: checked.name.clone(),
            fragments: ids,
            rows,
            params: trained.params.clone(),
        })
        .collect();
    VectorIndexPlan {
        location: location.clone(),
        read_version: checked.read_version,
        name: checked.name,
        column: checked.column,
        dim: checked.dim,
        rows,
        train_seconds: trained.seconds,
        trained_by: trained.trained_by,
        tasks,
        keep_segments: request.keep_segments,
    }
}

/// Build one uncommitted segment (worker side).
pub async fn execute(task: VectorSegmentTask) -> Result<VectorSegmentOutput> {
    let location = &task.location;
    let mut dataset = location
        .open(Some(&VersionSpec::Number(task.read_version)))
        .await?;
    let params = task.params.to_lance()?;
    let columns = [task.column.as_str()];
    let segment = dataset
        .create_index_builder(&columns, IndexType::Vector, &params)
        .name(task.name.clone())
        .replace(true)
        .fragments(task.fragments.clone())
        .execute_uncommitted()
        .await
        .map_err(|e| location.lance_error("build index segment", e))?;
    Ok(VectorSegmentOutput {
        uuid: segment.uuid.to_string(),
        segment: encode_segment(&segment),
        fragments: task.fragments,
        rows: task.rows,
    })
}

/// Commit every segment as one index in one new version.
pub async fn commit(plan: &VectorIndexPlan, outputs: &[VectorSegmentOutput]) -> Result<Committed> {
    plan.target().commit(outputs).await
}

impl VectorIndexPlan {
    fn target(&self) -> SegmentTarget<'_> {
        SegmentTarget {
            location: &self.location,
            read_version: self.read_version,
            name: &self.name,
            column: &self.column,
            keep_segments: self.keep_segments,
        }
    }
}

impl BuiltSegment for VectorSegmentOutput {
    fn segment(&self) -> &str {
        &self.segment
    }
}

/// Plan, build every segment on `executor`, commit once.
pub async fn create_vector_index(
    location: &Location,
    request: &VectorIndexRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<VectorIndexReport> {
    let started = Instant::now();
    let plan = plan(location, request, executor, progress).await?;
    note(
        progress,
        VectorSegmentOp::NAME,
        format!(
            "{} segment task(s) over {} rows (planned against version {})",
            plan.tasks.len(),
            plan.rows,
            plan.read_version
        ),
    );
    let built = plan
        .target()
        .build::<VectorSegmentOp>(executor, &plan.tasks, progress)
        .await?;
    let (outputs, committed) = (&built.outputs, &built.committed);
    let params = plan
        .tasks
        .first()
        .map(|t| &t.params)
        .ok_or_else(|| Error::Internal("a plan without tasks".into()))?;
    Ok(VectorIndexReport {
        uri: location.uri().to_string(),
        name: plan.name.clone(),
        column: plan.column.clone(),
        index_type: params.index_type,
        metric: params.metric,
        partitions: params.centroids.rows(),
        sub_vectors: params.codebook.as_ref().map(|_| params.sub_vectors),
        segments: committed.segments,
        segments_built: outputs.len(),
        rows_indexed: outputs.iter().map(|o| o.rows).sum(),
        read_version: plan.read_version,
        version: committed.version,
        train_seconds: plan.train_seconds,
        trained_by: plan.trained_by,
        build_seconds: built.build_seconds,
        commit_seconds: built.commit_seconds,
        seconds: started.elapsed().as_secs_f64(),
    })
}
