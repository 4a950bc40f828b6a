//! Writes that build on a dataset: embeddings, vector and scalar indexes,
//! index optimisation, compaction. Each is the engine's typed request, run
//! on the session's executor, its typed report returned as Python objects.

use std::path::PathBuf;

use arrow_array::{Array, FixedSizeListArray};
use arrow_pyarrow::FromPyArrow;
use lanceflow::compact::CompactRequest;
use lanceflow::embed::{EmbedRequest, TextSource};
use lanceflow::embedding::EmbedderOptions;
use lanceflow::index::optimize::OptimizeRequest;
use lanceflow::index::scalar::{FtsOptions, ScalarIndexRequest};
use lanceflow::index::vector::{Artifact, VectorIndexRequest};
use lanceflow::vectors::Matrix;
use pyo3::prelude::*;

use crate::errors::{to_py_err, InvalidInputError};
use crate::session::{parse, parse_opt, Session};

/// The embedding model's settings (`model=`, `backend=`, `onnx=`,
/// `threads=`, `batch_size=`), defaults as the CLI's.
pub(crate) fn embedder_options(
    model: Option<PathBuf>,
    backend: Option<&str>,
    onnx: Option<PathBuf>,
    threads: Option<usize>,
    batch_size: Option<usize>,
) -> PyResult<EmbedderOptions> {
    let mut options = EmbedderOptions {
        model_dir: model,
        onnx,
        backend: parse_opt(backend)?.unwrap_or_default(),
        ..Default::default()
    };
    if let Some(t) = threads {
        options.threads = t;
    }
    if let Some(b) = batch_size {
        options.batch_size = b;
    }
    Ok(options)
}

/// A pre-trained artifact given as a `.npy` path or as a pyarrow
/// `FixedSizeList<float32>` array of rows (imported through the Arrow C
/// data interface).
fn artifact(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Artifact>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(path) = value.extract::<PathBuf>() {
        return Ok(Some(Artifact::File(path)));
    }
    let wrong = || {
        InvalidInputError::new_err(format!(
            "{name} must be a .npy path or an array of rows (pyarrow FixedSizeList<float32>, \
             numpy 2-D)"
        ))
    };
    let data = arrow_data::ArrayData::from_pyarrow_bound(value).map_err(|_| wrong())?;
    let array = arrow_array::make_array(data);
    let rows = array
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(wrong)?;
    let matrix = Matrix::from_fixed_size_list(rows, name).map_err(to_py_err)?;
    Ok(Some(Artifact::Values(matrix)))
}

/// Embed a text column (or a template over columns) into a vector column.
#[pyfunction]
#[pyo3(signature = (session, uri, column=None, to_column=None, template=None, max_chars=None, replace=false, to=None, rows_per_task=None, model=None, backend=None, onnx=None, threads=None, batch_size=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn embed<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    column: Option<String>,
    to_column: Option<String>,
    template: Option<String>,
    max_chars: Option<usize>,
    replace: bool,
    to: Option<&str>,
    rows_per_task: Option<u64>,
    model: Option<PathBuf>,
    backend: Option<&str>,
    onnx: Option<PathBuf>,
    threads: Option<usize>,
    batch_size: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let request = EmbedRequest {
        text: TextSource {
            column,
            template,
            max_chars,
        },
        to_column: to_column.unwrap_or_else(|| "vector".into()),
        replace,
        embedder: embedder_options(model, backend, onnx, threads, batch_size)?,
        rows_per_task: rows_per_task.unwrap_or(lanceflow::embed::DEFAULT_ROWS_PER_TASK),
        output: to.map(|uri| session.location(uri)).transpose()?,
    };
    distributed!(py, session, location, request, lanceflow::embed::embed)
}

/// Build a vector index: train once, one segment per batch of fragments on
/// the workers, one commit.
#[pyfunction]
#[pyo3(signature = (session, uri, column="vector", index_type="IVF_PQ", metric="l2", num_partitions=None, num_sub_vectors=None, num_bits=None, sample_rate=None, max_iters=None, name=None, replace=true, rows_per_segment=None, centroids=None, codebook=None, save_artifacts=None, hnsw_m=None, hnsw_ef_construction=None, training="auto", seed=42, keep_segments=false, rabitq_model=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_vector_index<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    column: &str,
    index_type: &str,
    metric: &str,
    num_partitions: Option<usize>,
    num_sub_vectors: Option<usize>,
    num_bits: Option<usize>,
    sample_rate: Option<usize>,
    max_iters: Option<usize>,
    name: Option<String>,
    replace: bool,
    rows_per_segment: Option<u64>,
    centroids: Option<Bound<'py, PyAny>>,
    codebook: Option<Bound<'py, PyAny>>,
    save_artifacts: Option<PathBuf>,
    hnsw_m: Option<usize>,
    hnsw_ef_construction: Option<usize>,
    training: &str,
    seed: u64,
    keep_segments: bool,
    rabitq_model: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let mut request = VectorIndexRequest::new(column, parse(index_type)?, parse(metric)?);
    request.rabitq_model = rabitq_model;
    request.partitions = num_partitions;
    request.sub_vectors = num_sub_vectors;
    if let Some(bits) = num_bits {
        request.num_bits = bits;
    }
    request.sample_rate = sample_rate;
    request.max_iters = max_iters;
    request.name = name;
    request.replace = replace;
    request.rows_per_segment = rows_per_segment;
    request.keep_segments = keep_segments;
    request.centroids = artifact(centroids.as_ref(), "centroids")?;
    request.codebook = artifact(codebook.as_ref(), "codebook")?;
    request.save_artifacts = save_artifacts;
    request.hnsw_m = hnsw_m;
    request.hnsw_ef_construction = hnsw_ef_construction;
    request.training = parse(training)?;
    request.seed = seed;
    distributed!(
        py,
        session,
        location,
        request,
        lanceflow::index::vector::create_vector_index
    )
}

/// Build a scalar or full-text index as segments on the workers, one commit.
#[pyfunction]
#[pyo3(signature = (session, uri, column, index_type="BTREE", name=None, replace=true, fragments=None, rows_per_segment=None, keep_segments=false, with_position=false, base_tokenizer=None, language=None, lower_case=None, stem=None, remove_stop_words=None, ascii_folding=None, max_token_length=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_scalar_index<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    column: String,
    index_type: &str,
    name: Option<String>,
    replace: bool,
    fragments: Option<Vec<u32>>,
    rows_per_segment: Option<u64>,
    keep_segments: bool,
    with_position: bool,
    base_tokenizer: Option<String>,
    language: Option<String>,
    lower_case: Option<bool>,
    stem: Option<bool>,
    remove_stop_words: Option<bool>,
    ascii_folding: Option<bool>,
    max_token_length: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let request = ScalarIndexRequest {
        column,
        index_type: parse(index_type)?,
        name,
        replace,
        fragments,
        rows_per_segment,
        keep_segments,
        fts: FtsOptions {
            with_position,
            base_tokenizer,
            language,
            lower_case,
            stem,
            remove_stop_words,
            ascii_folding,
            max_token_length,
        },
    };
    distributed!(
        py,
        session,
        location,
        request,
        lanceflow::index::scalar::create_scalar_index
    )
}

/// Index rows appended since the last build and merge segments.
#[pyfunction]
#[pyo3(signature = (session, uri, indexes=None, merge=None, keep_segments=false, retrain=false, rows_per_segment=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn optimize<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    indexes: Option<Vec<String>>,
    merge: Option<usize>,
    keep_segments: bool,
    retrain: bool,
    rows_per_segment: Option<u64>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let request = OptimizeRequest {
        indexes: indexes.unwrap_or_default(),
        merge,
        keep_segments,
        retrain,
        rows_per_segment,
    };
    distributed!(
        py,
        session,
        location,
        request,
        lanceflow::index::optimize::optimize
    )
}

/// Merge small fragments (one task per run of fragments, one commit).
#[pyfunction]
#[pyo3(signature = (session, uri, target_rows_per_fragment=None, max_rows_per_group=None, materialize_deletions=None, deletion_threshold=None))]
pub(crate) fn compact<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    target_rows_per_fragment: Option<usize>,
    max_rows_per_group: Option<usize>,
    materialize_deletions: Option<bool>,
    deletion_threshold: Option<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let request = CompactRequest {
        target_rows_per_fragment,
        max_rows_per_group,
        materialize_deletions,
        deletion_threshold,
    };
    distributed!(py, session, location, request, lanceflow::compact::compact)
}
