//! What a vector index build is asked for and what its segment tasks share:
//! index kinds, the request, who trains, the trained parameters, defaults.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array};

use lance::dataset::Dataset;
use lance::index::vector::VectorIndexParams;
use lance_index::vector::bq::storage::RabitQuantizationMetadata;
use lance_index::vector::bq::RQBuildParams;
use lance_index::vector::hnsw::builder::HnswBuildParams;
use lance_index::vector::ivf::IvfBuildParams;
use lance_index::vector::pq::PQBuildParams;
use lance_index::vector::sq::builder::SQBuildParams;

use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, Error, Result};
use crate::index::metric::Metric;
use crate::vectors::Matrix;

/// The operation name of a vector index segment build.
pub const VECTOR_SEGMENT_OP: &str = "vector_index_segment";

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
    /// IVF partitions with an HNSW graph over the raw vectors.
    #[serde(rename = "IVF_HNSW_FLAT")]
    IvfHnswFlat,
    /// IVF partitions, RaBitQ-quantized vectors (one random rotation,
    /// minted on the driver, shared by every segment).
    #[serde(rename = "IVF_RQ")]
    IvfRq,
}

impl VectorIndexType {
    /// Parse `IVF_FLAT|IVF_SQ|IVF_PQ|IVF_RQ|IVF_HNSW_FLAT|IVF_HNSW_SQ|IVF_HNSW_PQ` (any case).
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "IVF_FLAT" => Ok(Self::IvfFlat),
            "IVF_SQ" => Ok(Self::IvfSq),
            "IVF_PQ" => Ok(Self::IvfPq),
            "IVF_HNSW_SQ" => Ok(Self::IvfHnswSq),
            "IVF_HNSW_PQ" => Ok(Self::IvfHnswPq),
            "IVF_HNSW_FLAT" => Ok(Self::IvfHnswFlat),
            "IVF_RQ" => Ok(Self::IvfRq),
            other => bail_invalid!(
                "unknown vector index type '{other}'; use IVF_FLAT, IVF_SQ, IVF_PQ, IVF_RQ, \
                 IVF_HNSW_FLAT, IVF_HNSW_SQ or IVF_HNSW_PQ"
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
            Self::IvfHnswFlat => "IVF_HNSW_FLAT",
            Self::IvfRq => "IVF_RQ",
        }
    }

    /// Bits per code by default: lance's 5 per dimension for IVF_RQ, 8
    /// per PQ code or SQ value otherwise.
    pub fn default_num_bits(self) -> usize {
        match self {
            Self::IvfRq => 5,
            _ => 8,
        }
    }

    /// Whether the index quantizes with a product quantizer.
    pub fn uses_pq(self) -> bool {
        matches!(self, Self::IvfPq | Self::IvfHnswPq)
    }
}

/// A pre-trained artifact (IVF centroids, a PQ codebook): a `.npy` file,
/// as `--save-artifacts` writes it, or the matrix itself (what the Python
/// package passes from an Arrow or numpy array).
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A `.npy` file of float32 rows.
    File(PathBuf),
    /// The rows themselves.
    Values(Matrix),
}

impl Artifact {
    /// The matrix.
    pub(crate) fn load(&self) -> Result<Matrix> {
        match self {
            Artifact::File(path) => crate::vectors::read_npy(path),
            Artifact::Values(m) => Ok(m.clone()),
        }
    }

    /// Where it came from, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Artifact::File(path) => format!("'{}'", path.display()),
            Artifact::Values(_) => "the given array".into(),
        }
    }
}

impl From<PathBuf> for Artifact {
    fn from(path: PathBuf) -> Self {
        Artifact::File(path)
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
    /// Pre-trained IVF centroids (partitions × dim).
    pub centroids: Option<Artifact>,
    /// Pre-trained PQ codebook (2^num_bits × dim, as `--save-artifacts`
    /// writes it).
    pub codebook: Option<Artifact>,
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
    /// IVF_RQ: the RaBitQ model as JSON (what pylance's `build_rq_model`
    /// returns); default: a random rotation minted for this build.
    pub rabitq_model: Option<String>,
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
            num_bits: index_type.default_num_bits(),
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
            rabitq_model: None,
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
    /// k-means and PQ training as tasks on the executor ([`crate::index::vector::train`]).
    Distributed,
}

impl Training {
    /// Parse `auto`, `lance` or `distributed`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(Training::Auto),
            "lance" => Ok(Training::Lance),
            "distributed" => Ok(Training::Distributed),
            other => bail_invalid!("unknown training '{other}'; use auto, distributed or lance"),
        }
    }

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
    /// IVF_RQ: the RaBitQ model (lance's rotation metadata, as the JSON
    /// pylance's `build_rq_model` gives), shared by every segment.
    #[serde(default)]
    pub rabitq_model: Option<serde_json::Value>,
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
            VectorIndexType::IvfHnswFlat => VectorIndexParams::ivf_hnsw(metric, ivf, hnsw()),
            VectorIndexType::IvfRq => {
                let model = self
                    .rabitq_model
                    .clone()
                    .ok_or_else(|| Error::Internal("an IVF_RQ build without its model".into()))?;
                let model: RabitQuantizationMetadata = serde_json::from_value(model)
                    .map_err(|e| Error::InvalidInput(format!("the RaBitQ model: {e}")))?;
                let rq = RQBuildParams {
                    num_bits: model.num_bits,
                    rotation_type: model.rotation_type,
                    rotation: Some(model),
                };
                VectorIndexParams::with_ivf_rq_params(metric, ivf, rq)
            }
        })
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

/// What [`validate`] settled about a request on the pinned dataset.
pub(crate) struct Checked {
    pub(crate) dataset: Dataset,
    pub(crate) read_version: u64,
    pub(crate) column: String,
    pub(crate) dim: usize,
    pub(crate) name: String,
    /// Every fragment of the pinned version, (id, rows).
    pub(crate) fragments: Vec<(u32, u64)>,
    /// Rows in the fragments, deleted ones included.
    pub(crate) rows: u64,
    /// Rows not deleted.
    pub(crate) live_rows: u64,
    pub(crate) num_bits: usize,
    pub(crate) sample_rate: usize,
    pub(crate) max_iters: usize,
    /// PQ sub-vectors (0 for other kinds).
    pub(crate) sub_vectors: usize,
}

crate::error::from_str_by_parse!(VectorIndexType, Training);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_documented_rules() {
        assert_eq!(default_partitions(100_000), 316);
        assert_eq!(default_partitions(100), 16);
        assert_eq!(default_partitions(5), 5);
        assert_eq!(default_partitions(1_000_000_000), 4096);
        assert_eq!(default_sub_vectors(384), 48);
        assert_eq!(default_sub_vectors(10), 1);
        assert_eq!(default_sub_vectors(36), 4);
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
