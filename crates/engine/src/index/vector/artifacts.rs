//! The trained artifacts of a vector index (IVF centroids, PQ codebook):
//! given as `.npy` files, trained as tasks, or trained by the lance crate on
//! the driver; written back with `--save-artifacts`.

use std::path::Path;
use std::time::Instant;

use arrow_array::types::Float32Type;
use lance::index::vector::ivf::build_ivf_model;
use lance::index::vector::pq::build_pq_model;
use lance_index::vector::bq::builder::RabitQuantizer;
use lance_index::vector::bq::storage::RabitQuantizationMetadata;
use lance_index::vector::bq::RQRotationType;
use lance_index::vector::ivf::IvfBuildParams;
use lance_index::vector::pq::PQBuildParams;
use serde::{Deserialize, Serialize};

use crate::error::{ensure_invalid, Error, Result};
use crate::index::metric::Metric;
use crate::progress::{note, Progress};
use crate::spine::Executor;
use crate::storage::Location;
use crate::vectors::{write_npy, Matrix};

use super::params::{
    default_partitions, Artifact, Checked, SegmentParams, Training, VectorIndexRequest,
    VectorIndexType, VECTOR_SEGMENT_OP,
};
use super::train::{train_distributed, TrainSpec};

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

/// The artifacts every segment task shares, and who trained them.
pub(crate) struct Trained {
    pub(crate) params: SegmentParams,
    /// `None`: every artifact was given as a file.
    pub(crate) trained_by: Option<Training>,
    /// Seconds spent training (0 when every artifact was given).
    pub(crate) seconds: f64,
}

/// The IVF centroids and, for PQ, the codebook: from the request's files,
/// trained as tasks, or by the lance crate's trainers on the driver.
pub(crate) async fn train_or_load(
    location: &Location,
    request: &VectorIndexRequest,
    checked: &Checked,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<Trained> {
    let started = Instant::now();
    let (centroids, mut trained_by, distributed_codebook) = match &request.centroids {
        Some(path) => (load_centroids(path, request, checked)?, None, None),
        None => {
            let partitions = request
                .partitions
                .unwrap_or_else(|| default_partitions(checked.live_rows));
            ensure_invalid!(partitions > 0, "--partitions must be at least 1");
            let live_rows = checked.live_rows;
            ensure_invalid!(
                partitions as u64 <= live_rows,
                "--partitions {partitions} is larger than the row count {live_rows}; use at most \
                 {live_rows} (about sqrt(rows) = {} is a good start)",
                default_partitions(live_rows)
            );
            let training = request.training.resolve(partitions);
            let (centroids, codebook) = if training == Training::Distributed {
                train_as_tasks(location, request, checked, partitions, executor, progress).await?
            } else {
                let c = lance_centroids(location, request, checked, partitions, progress).await?;
                (c, None)
            };
            (centroids, Some(training), codebook)
        }
    };

    let codebook = if let Some(trained) = distributed_codebook {
        Some(trained)
    } else if request.index_type.uses_pq() {
        match &request.codebook {
            Some(path) => Some(load_codebook(path, checked)?),
            None => {
                trained_by.get_or_insert(Training::Lance);
                Some(lance_codebook(location, request, checked, &centroids, progress).await?)
            }
        }
    } else {
        None
    };
    let seconds = if trained_by.is_some() {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let params = SegmentParams {
        index_type: request.index_type,
        metric: request.metric,
        centroids,
        codebook,
        sub_vectors: checked.sub_vectors,
        num_bits: checked.num_bits,
        sample_rate: checked.sample_rate,
        max_iters: checked.max_iters,
        hnsw_m: request.hnsw_m,
        hnsw_ef_construction: request.hnsw_ef_construction,
        rabitq_model: rabitq_model(request, checked)?,
    };
    Ok(Trained {
        params,
        trained_by,
        seconds,
    })
}

/// IVF_RQ's model, one for every segment: the given one (pylance's
/// `build_rq_model` JSON), checked against the column and `--num-bits`, or
/// a random fast rotation minted here.
fn rabitq_model(
    request: &VectorIndexRequest,
    checked: &Checked,
) -> Result<Option<serde_json::Value>> {
    if request.index_type != VectorIndexType::IvfRq {
        ensure_invalid!(
            request.rabitq_model.is_none(),
            "a RaBitQ model only applies to IVF_RQ indexes"
        );
        return Ok(None);
    }
    let bits = u8::try_from(checked.num_bits)
        .map_err(|_| Error::InvalidInput("--num-bits is too large".into()))?;
    let model = match &request.rabitq_model {
        Some(text) => {
            let model: RabitQuantizationMetadata = serde_json::from_str(text).map_err(|e| {
                Error::InvalidInput(format!(
                    "the RaBitQ model is not lance's model JSON ({e}); mint one with pylance's \
                     lance.indices.build_rq_model, or leave it out"
                ))
            })?;
            ensure_invalid!(
                model.rotation_type == RQRotationType::Fast && model.fast_rotation_signs.is_some(),
                "the RaBitQ model has no fast rotation signs; give a model minted with the fast \
                 rotation (lance's default)"
            );
            ensure_invalid!(
                model.rotated_dim() == checked.dim,
                "the RaBitQ model rotates {} dimensions, but '{}' has {}",
                model.rotated_dim(),
                checked.column,
                checked.dim
            );
            ensure_invalid!(
                model.num_bits == bits,
                "the RaBitQ model has {} bits, but --num-bits is {bits}; give the same number",
                model.num_bits
            );
            model
        }
        None => {
            let dim = i32::try_from(checked.dim)
                .map_err(|_| Error::InvalidInput("the vector dimension is too large".into()))?;
            RabitQuantizer::new_with_rotation::<Float32Type>(bits, dim, RQRotationType::Fast)
                .metadata_ref()
                .clone()
        }
    };
    Ok(Some(serde_json::to_value(&model)?))
}

/// `--centroids`: a `.npy` file of the column's dimension (and of
/// `--partitions` rows, when given).
fn load_centroids(
    artifact: &Artifact,
    request: &VectorIndexRequest,
    checked: &Checked,
) -> Result<Matrix> {
    let (dim, column) = (checked.dim, &checked.column);
    let m = artifact.load()?;
    ensure_invalid!(
        m.dim == dim,
        "centroids in {} have dimension {}, but '{column}' has {dim}",
        artifact.describe(),
        m.dim
    );
    if let Some(p) = request.partitions {
        ensure_invalid!(
            p == m.rows(),
            "--partitions {p} disagrees with the {} centroids in {}",
            m.rows(),
            artifact.describe()
        );
    }
    Ok(m)
}

/// `--codebook`: a `.npy` file of `2^num_bits` rows of the column's dimension.
fn load_codebook(artifact: &Artifact, checked: &Checked) -> Result<Matrix> {
    let (dim, column, num_bits) = (checked.dim, &checked.column, checked.num_bits);
    let m = artifact.load()?;
    ensure_invalid!(
        m.dim == dim && m.rows() == 1 << num_bits,
        "codebook in {} is {}×{}, expected {}×{dim} for {num_bits}-bit codes of '{column}'",
        artifact.describe(),
        m.rows(),
        m.dim,
        1 << num_bits
    );
    Ok(m)
}

/// Centroids (and the PQ codebook, unless given) trained as tasks on the
/// executor.
async fn train_as_tasks(
    location: &Location,
    request: &VectorIndexRequest,
    checked: &Checked,
    partitions: usize,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<(Matrix, Option<Matrix>)> {
    let spec = TrainSpec {
        metric: request.metric,
        partitions,
        sub_vectors: if request.index_type.uses_pq() && request.codebook.is_none() {
            checked.sub_vectors
        } else {
            0
        },
        num_bits: checked.num_bits,
        sample_rate: checked.sample_rate,
        max_iters: checked.max_iters,
        seed: request.seed,
    };
    let trained = train_distributed(
        location,
        &checked.dataset,
        &checked.column,
        checked.dim,
        &checked.fragments,
        &spec,
        executor,
        progress,
    )
    .await?;
    Ok((trained.centroids, trained.codebook))
}

/// Centroids trained by the lance crate's IVF trainer on the driver.
async fn lance_centroids(
    location: &Location,
    request: &VectorIndexRequest,
    checked: &Checked,
    partitions: usize,
    progress: &dyn Progress,
) -> Result<Matrix> {
    let (metric, dim) = (request.metric, checked.dim);
    note(
        progress,
        VECTOR_SEGMENT_OP,
        format!("training IVF: {partitions} partitions, {metric:?} metric, {dim}-d"),
    );
    let mut ivf_params = IvfBuildParams::new(partitions);
    ivf_params.sample_rate = checked.sample_rate;
    ivf_params.max_iters = checked.max_iters;
    let model = build_ivf_model(
        &checked.dataset,
        &checked.column,
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
    Matrix::from_fixed_size_list(fsl, "IVF centroids")
}

/// The PQ codebook trained by the lance crate on the driver, on residuals
/// to `centroids`.
async fn lance_codebook(
    location: &Location,
    request: &VectorIndexRequest,
    checked: &Checked,
    centroids: &Matrix,
    progress: &dyn Progress,
) -> Result<Matrix> {
    let (sub_vectors, num_bits) = (checked.sub_vectors, checked.num_bits);
    note(
        progress,
        VECTOR_SEGMENT_OP,
        format!("training PQ codebook: {sub_vectors} sub-vectors × {num_bits} bits"),
    );
    let ivf_fsl = centroids.to_fixed_size_list()?;
    let ivf = lance_index::vector::ivf::storage::IvfModel::new(ivf_fsl, None);
    let mut pq_params = PQBuildParams::new(sub_vectors, num_bits);
    pq_params.sample_rate = checked.sample_rate;
    pq_params.max_iters = checked.max_iters;
    let pq = build_pq_model(
        &checked.dataset,
        &checked.column,
        checked.dim,
        request.metric.to_lance(),
        &pq_params,
        Some(&ivf),
    )
    .await
    .map_err(|e| location.lance_error("train PQ codebook", e))?;
    Matrix::from_fixed_size_list(&pq.codebook, "PQ codebook")
}
