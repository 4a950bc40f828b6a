//! Distributed vector index builds (IVF_FLAT, IVF_SQ, IVF_PQ, IVF_HNSW_*).
//!
//! * **plan** — check the column and the parameters against the dataset
//!   pinned at one version; train the IVF centroids (and the PQ codebook)
//!   once, as tasks on the executor ([`crate::train`]) or with the lance
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array};
use arrow_schema::DataType;
use base64::Engine as _;
use lance::dataset::Dataset;
use lance::index::vector::ivf::build_ivf_model;
use lance::index::vector::pq::build_pq_model;
use lance::index::vector::VectorIndexParams;
use lance::index::DatasetIndexExt;
use lance_index::vector::hnsw::builder::HnswBuildParams;
use lance_index::vector::ivf::IvfBuildParams;
use lance_index::vector::pq::PQBuildParams;
use lance_index::vector::sq::builder::SQBuildParams;
use lance_index::IndexType;
use lance_linalg::distance::DistanceType;
use lance_table::format::{pb, IndexMetadata};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::executor::Executor;
use crate::progress::{note, Progress};
use crate::storage::{Location, VersionSpec};
use crate::task::{run_tasks, DistributedOp};
use crate::vectors::{read_npy, write_npy, Matrix};

/// Vector index kinds lanceflow builds as distributed segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorIndexType {
    /// IVF partitions, raw vectors.
    #[serde(rename = "IVF_FLAT")]
    IvfFlat,
    /// IVF partitions, scalar-quantized vectors.
    #[serde(rename = "IVF_SQ")]
    IvfSq,
    /// IVF partitions, product-quantized vectors.
    #[serde(rename = "IVF_PQ")]
    IvfPq,
    /// IVF partitions with an HNSW graph, scalar-quantized.
    #[serde(rename = "IVF_HNSW_SQ")]
    IvfHnswSq,
    /// IVF partitions with an HNSW graph, product-quantized.
    #[serde(rename = "IVF_HNSW_PQ")]
    IvfHnswPq,
}

impl VectorIndexType {
    /// Parse `IVF_FLAT|IVF_SQ|IVF_PQ|IVF_HNSW_SQ|IVF_HNSW_PQ` (any case).
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "IVF_FLAT" => Ok(Self::IvfFlat),
            "IVF_SQ" => Ok(Self::IvfSq),
            "IVF_PQ" => Ok(Self::IvfPq),
            "IVF_HNSW_SQ" => Ok(Self::IvfHnswSq),
            "IVF_HNSW_PQ" => Ok(Self::IvfHnswPq),
            other => bail_invalid!(
                "unknown vector index type '{other}'; use IVF_FLAT, IVF_SQ, IVF_PQ, IVF_HNSW_SQ or IVF_HNSW_PQ"
            ),
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IvfFlat => "IVF_FLAT",
            Self::IvfSq => "IVF_SQ",
            Self::IvfPq => "IVF_PQ",
            Self::IvfHnswSq => "IVF_HNSW_SQ",
            Self::IvfHnswPq => "IVF_HNSW_PQ",
        }
    }

    /// Whether the index quantizes with a product quantizer.
    pub fn uses_pq(self) -> bool {
        matches!(self, Self::IvfPq | Self::IvfHnswPq)
    }
}

/// Distance metric of a vector index or search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// `1 - cosine similarity`.
    Cosine,
    /// `1 - dot product`.
    Dot,
}

impl Metric {
    /// Parse `l2|cosine|dot` (also `euclidean`).
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Self::L2),
            "cosine" => Ok(Self::Cosine),
            "dot" => Ok(Self::Dot),
            other => bail_invalid!("unknown metric '{other}'; use l2, cosine or dot"),
        }
    }

    /// The lance crate's distance type.
    pub fn to_lance(self) -> DistanceType {
        match self {
            Self::L2 => DistanceType::L2,
            Self::Cosine => DistanceType::Cosine,
            Self::Dot => DistanceType::Dot,
        }
    }

    /// From the lance crate's distance type (hamming has no counterpart).
    pub fn from_lance(d: DistanceType) -> Result<Self> {
        match d {
            DistanceType::L2 => Ok(Self::L2),
            DistanceType::Cosine => Ok(Self::Cosine),
            DistanceType::Dot => Ok(Self::Dot),
            DistanceType::Hamming => Err(Error::NotSupported(
                "hamming-distance indexes are not supported by lanceflow".into(),
            )),
        }
    }

    /// The name, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::L2 => "l2",
            Self::Cosine => "cosine",
            Self::Dot => "dot",
        }
    }
}

/// A vector index build, as the CLI or an API caller states it.
#[derive(Debug, Clone)]
pub struct VectorIndexRequest {
    /// The vector column (FixedSizeList<float32|float16>).
    pub column: String,
    /// Index kind.
    pub index_type: VectorIndexType,
    /// Distance metric.
    pub metric: Metric,
    /// IVF partitions (default: sqrt(rows) clamped to [16, 4096], at most rows).
    pub partitions: Option<usize>,
    /// PQ sub-vectors (default: dim/8 when it divides the dimension).
    pub sub_vectors: Option<usize>,
    /// Bits per PQ code (8) or SQ value (8).
    pub num_bits: usize,
    /// Training vectors per centroid (lance's default: 256).
    pub sample_rate: Option<usize>,
    /// k-means iterations at most (lance's default: 50).
    pub max_iters: Option<usize>,
    /// Index name (default `<column>_idx`).
    pub name: Option<String>,
    /// Replace an existing index of that name (else refuse).
    pub replace: bool,
    /// Rows per segment (default: the rows split evenly over the workers).
    pub rows_per_segment: Option<u64>,
    /// Pre-trained IVF centroids (.npy, partitions × dim).
    pub centroids: Option<PathBuf>,
    /// Pre-trained PQ codebook (.npy, as `--save-artifacts` writes it).
    pub codebook: Option<PathBuf>,
    /// Write the trained artifacts to this directory.
    pub save_artifacts: Option<PathBuf>,
    /// HNSW: neighbours per node.
    pub hnsw_m: Option<usize>,
    /// HNSW: candidate list size while building.
    pub hnsw_ef_construction: Option<usize>,
    /// Who trains the IVF centroids and the PQ codebook.
    pub training: Training,
    /// Seed of distributed training (same seed, data and plan: same artifacts).
    pub seed: u64,
    /// Commit one physical segment per task instead of merging them into one
    /// (see [`commit_segments`]).
    pub keep_segments: bool,
}

impl VectorIndexRequest {
    /// A request with lance's defaults for everything but the essentials.
    pub fn new(column: impl Into<String>, index_type: VectorIndexType, metric: Metric) -> Self {
        Self {
            column: column.into(),
            index_type,
            metric,
            partitions: None,
            sub_vectors: None,
            num_bits: 8,
            sample_rate: None,
            max_iters: None,
            name: None,
            replace: true,
            rows_per_segment: None,
            centroids: None,
            codebook: None,
            save_artifacts: None,
            hnsw_m: None,
            hnsw_ef_construction: None,
            training: Training::Auto,
            seed: 42,
            keep_segments: false,
        }
    }
}

/// Up to this many partitions [`Training::Auto`] trains as tasks; above it,
/// with the lance crate's trainer. Our k-means is flat (every sample row
/// against every centroid, per iteration): measured better and faster than
/// lance's up to 100k × 384 / 316 partitions (README, "Distributed
/// training"); lance's trainer is the proven one for larger partition counts.
pub const AUTO_DISTRIBUTED_MAX_PARTITIONS: usize = 1024;

/// Who trains the IVF centroids and the PQ codebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Training {
    /// [`Training::Distributed`] up to [`AUTO_DISTRIBUTED_MAX_PARTITIONS`]
    /// partitions, [`Training::Lance`] above.
    #[default]
    Auto,
    /// The lance crate's trainers, on the driver.
    Lance,
    /// k-means and PQ training as tasks on the executor ([`crate::train`]).
    Distributed,
}

impl Training {
    /// The trainer that runs for `partitions` partitions.
    pub fn resolve(self, partitions: usize) -> Training {
        match self {
            Training::Auto if partitions <= AUTO_DISTRIBUTED_MAX_PARTITIONS => {
                Training::Distributed
            }
            Training::Auto => Training::Lance,
            other => other,
        }
    }

    /// Lower-case name, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Training::Auto => "auto",
            Training::Lance => "lance",
            Training::Distributed => "distributed",
        }
    }
}

/// Everything the workers share: trained once on the driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentParams {
    /// Index kind.
    pub index_type: VectorIndexType,
    /// Distance metric.
    pub metric: Metric,
    /// IVF centroids (partitions × dim).
    pub centroids: Matrix,
    /// PQ codebook (2^bits × dim), for PQ kinds.
    pub codebook: Option<Matrix>,
    /// PQ sub-vectors.
    pub sub_vectors: usize,
    /// Bits per code.
    pub num_bits: usize,
    /// Training vectors per centroid (SQ bounds are trained per segment).
    pub sample_rate: usize,
    /// k-means iterations at most.
    pub max_iters: usize,
    /// HNSW: neighbours per node.
    pub hnsw_m: Option<usize>,
    /// HNSW: candidate list size while building.
    pub hnsw_ef_construction: Option<usize>,
}

impl SegmentParams {
    /// The lance crate's parameters for one segment build, artifacts included.
    pub fn to_lance(&self) -> Result<VectorIndexParams> {
        let centroids = self.centroids.to_fixed_size_list()?;
        let mut ivf =
            IvfBuildParams::try_with_centroids(self.centroids.rows(), Arc::new(centroids))
                .map_err(|e| Error::InvalidInput(format!("IVF centroids: {e}")))?;
        ivf.sample_rate = self.sample_rate;
        ivf.max_iters = self.max_iters;
        let pq = || -> Result<PQBuildParams> {
            let Some(codebook) = &self.codebook else {
                return Err(Error::Internal("a PQ build without a codebook".into()));
            };
            let values: ArrayRef = Arc::new(Float32Array::from(codebook.data.clone()));
            let mut pq = PQBuildParams::with_codebook(self.sub_vectors, self.num_bits, values);
            pq.sample_rate = self.sample_rate;
            pq.max_iters = self.max_iters;
            Ok(pq)
        };
        let sq = || SQBuildParams {
            num_bits: u16::try_from(self.num_bits).unwrap_or(8),
            sample_rate: self.sample_rate,
        };
        let hnsw = || {
            let mut h = HnswBuildParams::default();
            if let Some(m) = self.hnsw_m {
                h.m = m;
            }
            if let Some(ef) = self.hnsw_ef_construction {
                h.ef_construction = ef;
            }
            h
        };
        let metric = self.metric.to_lance();
        Ok(match self.index_type {
            VectorIndexType::IvfFlat => VectorIndexParams::with_ivf_flat_params(metric, ivf),
            VectorIndexType::IvfSq => VectorIndexParams::with_ivf_sq_params(metric, ivf, sq()),
            VectorIndexType::IvfPq => VectorIndexParams::with_ivf_pq_params(metric, ivf, pq()?),
            VectorIndexType::IvfHnswSq => {
                VectorIndexParams::with_ivf_hnsw_sq_params(metric, ivf, hnsw(), sq())
            }
            VectorIndexType::IvfHnswPq => {
                VectorIndexParams::with_ivf_hnsw_pq_params(metric, ivf, hnsw(), pq()?)
            }
        })
    }
}

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
    const NAME: &'static str = "vector_index_segment";
    type Task = VectorSegmentTask;
    type Output = VectorSegmentOutput;

    fn label(task: &VectorSegmentTask) -> String {
        format!(
            "fragments {} ({} rows)",
            fragment_ranges(&task.fragments),
            task.rows
        )
    }

    async fn execute(task: VectorSegmentTask) -> Result<VectorSegmentOutput> {
        execute(task).await
    }
}

/// Compact text for a list of fragment ids: `0-3,7`.
pub(crate) fn fragment_ranges(ids: &[u32]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
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

/// A column of the dataset, or a not-found error listing the columns it has.
pub(crate) fn require_column<'a>(
    dataset: &'a Dataset,
    column: &str,
) -> Result<&'a lance::datatypes::Field> {
    dataset.schema().field(column).ok_or_else(|| {
        let names: Vec<String> = dataset
            .schema()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect();
        Error::NotFound(format!(
            "column '{column}' does not exist; the dataset has: {}",
            names.join(", ")
        ))
    })
}

/// The dimension of a vector column, or a clear error naming the column's type.
pub fn vector_dimension(dataset: &Dataset, column: &str) -> Result<usize> {
    let field = require_column(dataset, column)?;
    let data_type = field.data_type();
    match &data_type {
        DataType::FixedSizeList(inner, dim)
            if matches!(inner.data_type(), DataType::Float32 | DataType::Float16) && *dim > 0 =>
        {
            Ok(*dim as usize)
        }
        other => Err(Error::InvalidInput(format!(
            "column '{column}' is {other}, not a vector column: vector indexes and searches need \
             FixedSizeList<float32> or FixedSizeList<float16>"
        ))),
    }
}

/// The only vector column, when the caller named none.
pub fn default_vector_column(dataset: &Dataset) -> Result<String> {
    let candidates: Vec<String> = dataset
        .schema()
        .fields
        .iter()
        .filter(|f| {
            matches!(f.data_type(), DataType::FixedSizeList(inner, _)
                if matches!(inner.data_type(), DataType::Float32 | DataType::Float16))
        })
        .map(|f| f.name.clone())
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::InvalidInput(
            "the dataset has no vector column (FixedSizeList<float32|float16>); embed one first \
             or name it with --column"
                .into(),
        )),
        many => Err(Error::InvalidInput(format!(
            "the dataset has several vector columns ({}); pick one with --column",
            many.join(", ")
        ))),
    }
}

/// `sqrt(rows)` clamped to [16, 4096], never more than the rows.
pub fn default_partitions(rows: u64) -> usize {
    let root = (rows as f64).sqrt().round() as usize;
    root.clamp(16, 4096).min(rows as usize).max(1)
}

/// `dim / 8` when 8 divides the dimension, else the largest divisor of the
/// dimension not above `dim / 8` (at least 1).
pub fn default_sub_vectors(dim: usize) -> usize {
    let target = (dim / 8).max(1);
    (1..=target).rev().find(|m| dim % m == 0).unwrap_or(1)
}

/// Cut fragments (id, rows), in id order, into at most `groups` contiguous
/// runs of about equal rows: the index segment layout.
///
/// Runs, not a scatter: compaction only merges adjacent fragments that the
/// same index segments cover, so a segment over fragments 0, 2, 4... would
/// leave nothing compactable. Each cut falls at the fragment boundary
/// nearest the ideal one, so runs differ by at most about one fragment.
pub fn contiguous_runs(fragments: &[(u32, u64)], groups: usize) -> Vec<(Vec<u32>, u64)> {
    let mut order: Vec<(u32, u64)> = fragments.to_vec();
    order.sort_by_key(|f| f.0);
    let groups = groups.clamp(1, order.len().max(1)) as u64;
    let total: u64 = order.iter().map(|f| f.1).sum();
    let mut out: Vec<(Vec<u32>, u64)> = Vec::new();
    let mut current: (Vec<u32>, u64) = (Vec::new(), 0);
    let mut done = 0u64;
    for (id, rows) in order {
        let closed = out.len() as u64;
        if !current.0.is_empty() && closed + 1 < groups {
            // Cut here when stopping lands nearer the ideal boundary than
            // taking this fragment too (in rows × groups, to stay integral).
            let target = (closed + 1) * total;
            let stop = (done + current.1) * groups;
            let take = (done + current.1 + rows) * groups;
            if take.abs_diff(target) > stop.abs_diff(target) {
                done += current.1;
                out.push(std::mem::take(&mut current));
            }
        }
        current.0.push(id);
        current.1 += rows;
    }
    if !current.0.is_empty() {
        out.push(current);
    }
    out
}

/// Group fragments (id, rows) into `groups` groups balanced by rows: largest
/// first onto the lightest group (search tasks; not contiguous). Groups come
/// back sorted by first fragment.
pub fn balance_fragments(fragments: &[(u32, u64)], groups: usize) -> Vec<(Vec<u32>, u64)> {
    let groups = groups.clamp(1, fragments.len().max(1));
    let mut order: Vec<(u32, u64)> = fragments.to_vec();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<(Vec<u32>, u64)> = vec![(Vec::new(), 0); groups];
    for (id, rows) in order {
        if let Some(lightest) = out
            .iter_mut()
            .min_by(|a, b| a.1.cmp(&b.1).then(a.0.len().cmp(&b.0.len())))
        {
            lightest.0.push(id);
            lightest.1 += rows;
        }
    }
    out.retain(|g| !g.0.is_empty());
    for g in &mut out {
        g.0.sort_unstable();
    }
    out.sort_by_key(|g| g.0.first().copied());
    out
}

/// Rows of each fragment of the pinned dataset.
pub(crate) async fn fragment_rows(
    location: &Location,
    dataset: &Dataset,
) -> Result<Vec<(u32, u64)>> {
    let mut out = Vec::new();
    for fragment in dataset.get_fragments() {
        let id = u32::try_from(fragment.id())
            .map_err(|_| Error::Internal(format!("fragment id {} too large", fragment.id())))?;
        let rows = match fragment.metadata().num_rows() {
            Some(r) => r as u64,
            None => fragment
                .count_rows(None)
                .await
                .map_err(|e| location.lance_error("count fragment rows", e))?
                as u64,
        };
        out.push((id, rows));
    }
    Ok(out)
}

fn matrix_from_fsl(fsl: &FixedSizeListArray, what: &str) -> Result<Matrix> {
    let dim = usize::try_from(fsl.value_length())
        .map_err(|_| Error::Internal(format!("{what}: negative dimension")))?;
    let values = fsl.values();
    let values = values
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| {
            Error::NotSupported(format!(
                "{what} came back as {}, only float32 artifacts are supported",
                values.data_type()
            ))
        })?;
    Matrix::new(dim, values.values().to_vec())
}

/// Artifacts metadata written next to the `.npy` files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactsInfo {
    /// Index kind they were trained for.
    pub index_type: VectorIndexType,
    /// Metric.
    pub metric: Metric,
    /// Dimension.
    pub dim: usize,
    /// IVF partitions.
    pub partitions: usize,
    /// PQ sub-vectors.
    pub sub_vectors: Option<usize>,
    /// Bits per code.
    pub num_bits: usize,
}

/// Write `centroids.npy`, `codebook.npy` (PQ) and `artifacts.json` into `dir`.
pub fn save_artifacts(dir: &Path, params: &SegmentParams) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::InvalidInput(format!("cannot create '{}': {e}", dir.display())))?;
    write_npy(&dir.join("centroids.npy"), &params.centroids)?;
    if let Some(codebook) = &params.codebook {
        write_npy(&dir.join("codebook.npy"), codebook)?;
    }
    let info = ArtifactsInfo {
        index_type: params.index_type,
        metric: params.metric,
        dim: params.centroids.dim,
        partitions: params.centroids.rows(),
        sub_vectors: params.codebook.as_ref().map(|_| params.sub_vectors),
        num_bits: params.num_bits,
    };
    let text = serde_json::to_string_pretty(&info)?;
    std::fs::write(dir.join("artifacts.json"), text)
        .map_err(|e| Error::Storage(format!("cannot write artifacts.json: {e}")))?;
    Ok(())
}

/// Check the request against the pinned dataset, train (or load) the
/// artifacts, cut the fragments into segment tasks.
pub async fn plan(
    location: &Location,
    request: &VectorIndexRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<VectorIndexPlan> {
    let parallelism = executor.parallelism();
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
    ensure_invalid!(
        num_bits == 8 || (num_bits == 4 && request.index_type.uses_pq()),
        "--num-bits {num_bits} is not supported; use 8 (or 4 for PQ)"
    );
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
    let metric = request.metric;
    let train_started = Instant::now();
    let mut distributed_codebook = None;
    // Who trained the artifacts (None: both given as files).
    let mut trained_by = None;
    let centroids = match &request.centroids {
        Some(path) => {
            let m = read_npy(path)?;
            ensure_invalid!(
                m.dim == dim,
                "centroids in '{}' have dimension {}, but '{column}' has {dim}",
                path.display(),
                m.dim
            );
            if let Some(p) = request.partitions {
                ensure_invalid!(
                    p == m.rows(),
                    "--partitions {p} disagrees with the {} centroids in '{}'",
                    m.rows(),
                    path.display()
                );
            }
            m
        }
        None => {
            let partitions = request
                .partitions
                .unwrap_or_else(|| default_partitions(live_rows));
            ensure_invalid!(partitions > 0, "--partitions must be at least 1");
            ensure_invalid!(
                partitions as u64 <= live_rows,
                "--partitions {partitions} is larger than the row count {live_rows}; use at most \
                 {live_rows} (about sqrt(rows) = {} is a good start)",
                default_partitions(live_rows)
            );
            let training = request.training.resolve(partitions);
            trained_by = Some(training);
            if training == Training::Distributed {
                let spec = crate::train::TrainSpec {
                    metric,
                    partitions,
                    sub_vectors: if request.index_type.uses_pq() && request.codebook.is_none() {
                        sub_vectors
                    } else {
                        0
                    },
                    num_bits,
                    sample_rate,
                    max_iters,
                    seed: request.seed,
                };
                let trained = crate::train::train_distributed(
                    location, &dataset, column, dim, &fragments, &spec, executor, progress,
                )
                .await?;
                distributed_codebook = trained.codebook;
                trained.centroids
            } else {
                note(
                    progress,
                    VectorSegmentOp::NAME,
                    format!("training IVF: {partitions} partitions, {metric:?} metric, {dim}-d"),
                );
                let mut ivf_params = IvfBuildParams::new(partitions);
                ivf_params.sample_rate = sample_rate;
                ivf_params.max_iters = max_iters;
                let model = build_ivf_model(
                    &dataset,
                    column,
                    dim,
                    metric.to_lance(),
                    &ivf_params,
                    None,
                    lance_index::progress::noop_progress(),
                )
                .await
                .map_err(|e| location.lance_error("train IVF centroids", e))?;
                let Some(fsl) = model.centroids.as_ref() else {
                    return Err(Error::Internal("IVF training returned no centroids".into()));
                };
                matrix_from_fsl(fsl, "IVF centroids")?
            }
        }
    };

    let codebook = if let Some(trained) = distributed_codebook {
        Some(trained)
    } else if request.index_type.uses_pq() {
        match &request.codebook {
            Some(path) => {
                let m = read_npy(path)?;
                ensure_invalid!(
                    m.dim == dim && m.rows() == 1 << num_bits,
                    "codebook in '{}' is {}×{}, expected {}×{dim} for {num_bits}-bit codes of '{column}'",
                    path.display(),
                    m.rows(),
                    m.dim,
                    1 << num_bits
                );
                Some(m)
            }
            None => {
                note(
                    progress,
                    VectorSegmentOp::NAME,
                    format!("training PQ codebook: {sub_vectors} sub-vectors × {num_bits} bits"),
                );
                let ivf_fsl = centroids.to_fixed_size_list()?;
                let ivf = lance_index::vector::ivf::storage::IvfModel::new(ivf_fsl, None);
                let mut pq_params = PQBuildParams::new(sub_vectors, num_bits);
                pq_params.sample_rate = sample_rate;
                pq_params.max_iters = max_iters;
                let pq = build_pq_model(
                    &dataset,
                    column,
                    dim,
                    metric.to_lance(),
                    &pq_params,
                    Some(&ivf),
                )
                .await
                .map_err(|e| location.lance_error("train PQ codebook", e))?;
                Some(matrix_from_fsl(&pq.codebook, "PQ codebook")?)
            }
        }
    } else {
        None
    };
    if trained_by.is_none() && request.index_type.uses_pq() && request.codebook.is_none() {
        trained_by = Some(Training::Lance);
    }
    let train_seconds = if trained_by.is_some() {
        train_started.elapsed().as_secs_f64()
    } else {
        0.0
    };

    let params = SegmentParams {
        index_type: request.index_type,
        metric,
        centroids,
        codebook,
        sub_vectors,
        num_bits,
        sample_rate,
        max_iters,
        hnsw_m: request.hnsw_m,
        hnsw_ef_construction: request.hnsw_ef_construction,
    };
    if let Some(dir) = &request.save_artifacts {
        save_artifacts(dir, &params)?;
    }

    // One task per worker at most. Kept segments are each searched by every
    // query, so they are large; merged ones only need to be worth a task.
    let min_rows = if request.keep_segments {
        MIN_SEGMENT_ROWS
    } else {
        MIN_TASK_ROWS
    };
    let segments = match request.rows_per_segment {
        Some(r) => rows.div_ceil(r) as usize,
        None => (rows.div_ceil(min_rows) as usize).clamp(1, parallelism.max(1)),
    };
    let tasks = contiguous_runs(&fragments, segments)
        .into_iter()
        .map(|(ids, rows)| VectorSegmentTask {
            location: location.clone(),
            read_version,
            column: column.to_string(),
            name: name.clone(),
            fragments: ids,
            rows,
            params: params.clone(),
        })
        .collect();
    Ok(VectorIndexPlan {
        location: location.clone(),
        read_version,
        name,
        column: column.to_string(),
        dim,
        rows,
        train_seconds,
        trained_by,
        tasks,
        keep_segments: request.keep_segments,
    })
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

/// A segment as a worker returns it: lance's protobuf, base64.
pub(crate) fn encode_segment(segment: &IndexMetadata) -> String {
    let bytes = pb::IndexMetadata::from(segment).encode_to_vec();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An index `name` may be (re)built on `column`: no index of that name on
/// another column, and an existing one only with `replace`.
pub(crate) async fn check_index_name(
    location: &Location,
    dataset: &Dataset,
    name: &str,
    column: &str,
    replace: bool,
) -> Result<()> {
    let existing = dataset
        .load_indices_by_name(name)
        .await
        .map_err(|e| location.lance_error("list indices", e))?;
    if let Some(first) = existing.first() {
        let on = first
            .fields
            .first()
            .and_then(|id| dataset.schema().field_by_id(*id))
            .map(|f| f.name.clone())
            .unwrap_or_default();
        if on != column {
            return Err(Error::AlreadyExists(format!(
                "an index named '{name}' already exists on column '{on}'; choose another --name"
            )));
        }
        if !replace {
            return Err(Error::AlreadyExists(format!(
                "an index named '{name}' already exists on '{column}'; pass --replace to rebuild \
                 it or choose another --name"
            )));
        }
    }
    Ok(())
}

/// Decode a segment a worker returned.
pub(crate) fn decode_segment(encoded: &str) -> Result<IndexMetadata> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Error::Internal(format!("index segment is not base64: {e}")))?;
    let proto = pb::IndexMetadata::decode(bytes.as_slice())
        .map_err(|e| Error::Internal(format!("index segment does not decode: {e}")))?;
    IndexMetadata::try_from(proto).map_err(|e| Error::Internal(format!("index segment: {e}")))
}

/// What committing a build's segments did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The version committed.
    pub version: u64,
    /// Physical segments the index has in that version.
    pub segments: usize,
}

/// Commit the segments the workers built (`encoded`, as [`encode_segment`]
/// writes them) as index `name` on `column`, in one new version of
/// `read_version`.
///
/// Unless `keep_segments`, several segments are first merged into one
/// physical segment (`merge_existing_index_segments`, which rewrites their
/// partitions side by side): a query then probes one index instead of one per
/// segment. The merged-away sources were never in a manifest and are removed
/// after the commit. Kept segments are what a distributed search spreads over.
pub(crate) async fn commit_segments<'a>(
    location: &Location,
    read_version: u64,
    name: &str,
    column: &str,
    encoded: impl IntoIterator<Item = &'a str>,
    keep_segments: bool,
) -> Result<Committed> {
    let segments = encoded
        .into_iter()
        .map(decode_segment)
        .collect::<Result<Vec<_>>>()?;
    ensure_invalid!(!segments.is_empty(), "no index segments were built");
    let mut dataset = location
        .open(Some(&VersionSpec::Number(read_version)))
        .await?;
    let merge = !keep_segments && segments.len() > 1;
    let merged_away: Vec<_> = if merge {
        segments.iter().map(|s| s.uuid).collect()
    } else {
        Vec::new()
    };
    let segments = if merge {
        vec![dataset
            .merge_existing_index_segments(segments)
            .await
            .map_err(|e| location.lance_error("merge index segments", e))?]
    } else {
        segments
    };
    let count = segments.len();
    dataset
        .commit_existing_index_segments(name, column, segments)
        .await
        .map_err(|e| location.lance_error("commit index", e))?;
    // The index is committed: removing the merged-away sources (referenced
    // by no manifest) is best effort.
    if merge {
        match dataset.object_store(None).await {
            Ok(store) => {
                for uuid in merged_away {
                    let dir = dataset.indices_dir().join(uuid.to_string());
                    if let Err(e) = store.remove_dir_all(dir).await {
                        tracing::warn!("could not remove merged index segment {uuid}: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("could not remove the merged index segments: {e}"),
        }
    }
    Ok(Committed {
        version: dataset.version().version,
        segments: count,
    })
}

/// Commit every segment as one index in one new version.
pub async fn commit(plan: &VectorIndexPlan, outputs: &[VectorSegmentOutput]) -> Result<Committed> {
    commit_segments(
        &plan.location,
        plan.read_version,
        &plan.name,
        &plan.column,
        outputs.iter().map(|o| o.segment.as_str()),
        plan.keep_segments,
    )
    .await
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
    let build_started = Instant::now();
    let outputs = run_tasks::<VectorSegmentOp>(executor, &plan.tasks, progress).await?;
    let build_seconds = build_started.elapsed().as_secs_f64();
    let commit_started = Instant::now();
    let committed = commit(&plan, &outputs).await?;
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
        build_seconds,
        commit_seconds: commit_started.elapsed().as_secs_f64(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancing_puts_largest_first_on_lightest() {
        let frags = [(0, 100), (1, 10), (2, 60), (3, 50), (4, 40)];
        let groups = balance_fragments(&frags, 2);
        let loads: Vec<u64> = groups.iter().map(|g| g.1).collect();
        assert_eq!(loads.iter().sum::<u64>(), 260);
        assert!(loads.iter().all(|l| (120..=140).contains(l)), "{loads:?}");
        let mut all: Vec<u32> = groups.iter().flat_map(|g| g.0.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert_eq!(balance_fragments(&frags, 99).len(), 5);
        assert_eq!(balance_fragments(&frags, 0).len(), 1);
    }

    #[test]
    fn segments_are_contiguous_runs_of_about_equal_rows() {
        let even: Vec<(u32, u64)> = (0..10).map(|i| (i, 10)).collect();
        let runs = contiguous_runs(&even, 3);
        let ids: Vec<Vec<u32>> = runs.iter().map(|r| r.0.clone()).collect();
        assert_eq!(ids, vec![vec![0, 1, 2], vec![3, 4, 5, 6], vec![7, 8, 9]]);
        let uneven = [(4, 10), (0, 100), (1, 10), (2, 60), (3, 50)];
        let runs = contiguous_runs(&uneven, 2);
        assert_eq!(runs, vec![(vec![0, 1], 110), (vec![2, 3, 4], 120)]);
        assert_eq!(contiguous_runs(&uneven, 99).len(), 5);
        assert_eq!(contiguous_runs(&uneven, 0).len(), 1);
        assert!(contiguous_runs(&[], 3).is_empty());
    }

    #[test]
    fn defaults_follow_the_documented_rules() {
        assert_eq!(default_partitions(100_000), 316);
        assert_eq!(default_partitions(100), 16);
        assert_eq!(default_partitions(5), 5);
        assert_eq!(default_partitions(1_000_000_000), 4096);
        assert_eq!(default_sub_vectors(384), 48);
        assert_eq!(default_sub_vectors(10), 1);
        assert_eq!(default_sub_vectors(36), 4);
        assert_eq!(fragment_ranges(&[5, 0, 1, 2, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn parsing_names_the_choices() {
        assert_eq!(
            VectorIndexType::parse("ivf_pq").unwrap(),
            VectorIndexType::IvfPq
        );
        assert!(VectorIndexType::parse("HNSW")
            .unwrap_err()
            .to_string()
            .contains("IVF_FLAT"));
        assert_eq!(Metric::parse("Cosine").unwrap(), Metric::Cosine);
        assert!(Metric::parse("manhattan")
            .unwrap_err()
            .to_string()
            .contains("l2, cosine or dot"));
    }
}
