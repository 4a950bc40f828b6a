//! Searches: vector (in-process or distributed), full-text and hybrid.
//! Queries come in as Arrow (a flat float32 array and its dimension, from
//! numpy or pyarrow without a copy on the Python side); results go out as a
//! `pyarrow.RecordBatch` with the dataset's column types
//! ([`lanceflow::search::table`]), through the Arrow C data interface.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use arrow_array::{Array, Float32Array, RecordBatch};
use arrow_pyarrow::{PyArrowType, ToPyArrow};
use lanceflow::limits::{check_query_vector, Names};
use lanceflow::search::hybrid::{HybridRequest, DEFAULT_LEG_K, DEFAULT_RRF_K};
use lanceflow::search::table::{hybrid_table, text_table, vector_table};
use lanceflow::search::text::TextSearchRequest;
use lanceflow::search::{DistanceRange, VectorSearchRequest};
use lanceflow::vectors::Matrix;
use pyo3::prelude::*;

use crate::build::embedder_options;
use crate::errors::{to_py_err, InvalidInputError};
use crate::runtime::run;
use crate::session::{parse_opt, version_spec, Session};

/// What a vector search call answers: hits, or the analysed plan.
enum Searched {
    Results(lanceflow::search::SearchResults),
    Analysis(String),
}

/// Where the query vectors of a vector search come from.
enum Source {
    Values(Matrix),
    Texts(Vec<String>),
    Row(u64),
}

/// Query vectors from a flat float32 array and its dimension.
fn matrix(values: PyArrowType<arrow_data::ArrayData>, dim: usize) -> PyResult<Matrix> {
    let array = Float32Array::from(values.0);
    if array.null_count() > 0 {
        return Err(InvalidInputError::new_err(
            "the query vector holds nulls; give finite numbers",
        ));
    }
    let matrix = Matrix::new(dim, array.values().to_vec()).map_err(to_py_err)?;
    for i in 0..matrix.rows() {
        check_query_vector(matrix.row(i), Names::Fields).map_err(to_py_err)?;
    }
    Ok(matrix)
}

/// `batch` with the engine's side of the call in its schema metadata:
/// `lanceflow.seconds` (the engine call, from the request to the typed
/// results: without Python's share nor the table's assembly) and `lanceflow.version` (the version
/// searched).
fn with_call(batch: RecordBatch, seconds: f64, version: u64) -> PyResult<RecordBatch> {
    let metadata = HashMap::from([
        ("lanceflow.seconds".to_string(), format!("{seconds:.9}")),
        ("lanceflow.version".to_string(), version.to_string()),
    ]);
    let schema = batch.schema().as_ref().clone().with_metadata(metadata);
    batch
        .with_schema(std::sync::Arc::new(schema))
        .map_err(crate::errors::internal)
}

/// Texts to vectors with the model, off the async runtime (the model loads
/// once per process).
async fn embed_texts(
    options: lanceflow::embedding::EmbedderOptions,
    texts: Vec<String>,
) -> lanceflow::Result<Matrix> {
    tokio::task::spawn_blocking(move || {
        let embedder = lanceflow::embedding::shared_embedder(&options)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        embedder.embed(&refs)
    })
    .await
    .map_err(|e| lanceflow::Error::Internal(format!("query embedding stopped: {e}")))?
}

/// Nearest neighbours of query vectors (or texts, embedded first, or a
/// stored row): one row per hit with `query`, `_rowid`, `_distance` and the
/// requested columns.
#[pyfunction]
#[pyo3(signature = (session, uri, values=None, dim=0, texts=None, row=None, k=10, column=None, nprobes=None, refine_factor=None, filter=None, columns=None, metric=None, index=None, distributed=true, version=None, tag=None, model=None, backend=None, fast_search=false, minimum_nprobes=None, maximum_nprobes=None, distance_range=None, analyze_plan=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn vector_search<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    values: Option<PyArrowType<arrow_data::ArrayData>>,
    dim: usize,
    texts: Option<Vec<String>>,
    row: Option<u64>,
    k: usize,
    column: Option<String>,
    nprobes: Option<usize>,
    refine_factor: Option<u32>,
    filter: Option<String>,
    columns: Option<Vec<String>>,
    metric: Option<&str>,
    index: Option<String>,
    distributed: bool,
    version: Option<u64>,
    tag: Option<String>,
    model: Option<PathBuf>,
    backend: Option<&str>,
    fast_search: bool,
    minimum_nprobes: Option<usize>,
    maximum_nprobes: Option<usize>,
    distance_range: Option<(Option<f32>, Option<f32>)>,
    analyze_plan: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let at = version_spec(version, tag);
    let source = match (values, texts, row) {
        (Some(v), _, _) => Source::Values(matrix(v, dim)?),
        (None, Some(t), _) if !t.is_empty() => Source::Texts(t),
        (None, _, Some(r)) => Source::Row(r),
        _ => {
            return Err(InvalidInputError::new_err(
                "give a query vector, query_text or query_row",
            ))
        }
    };
    let embedder = embedder_options(model, backend, None, None, None)?;
    let metric = parse_opt(metric)?;
    let (executor, workers) = (session.executor(), session.workers());
    let started = Instant::now();
    let results = run(py, || async move {
        let queries = match source {
            Source::Values(m) => m,
            Source::Texts(texts) => embed_texts(embedder, texts).await?,
            Source::Row(row) => {
                lanceflow::search::query_from_row(&location, at.as_ref(), column.as_deref(), row)
                    .await?
            }
        };
        let mut request = VectorSearchRequest::new(queries, k);
        request.column = column;
        request.nprobes = nprobes;
        request.refine_factor = refine_factor;
        request.filter = filter;
        request.columns = columns;
        request.metric = metric;
        request.index = index;
        request.fast_search = fast_search;
        request.minimum_nprobes = minimum_nprobes;
        request.maximum_nprobes = maximum_nprobes;
        if let Some((lower, upper)) = distance_range {
            request.distance_range = DistanceRange { lower, upper };
        }
        if analyze_plan {
            let on = distributed.then_some(executor.as_ref());
            let analysis =
                lanceflow::search::analyze_vector_search(&location, at.as_ref(), &request, on)
                    .await?;
            return Ok(Searched::Analysis(analysis.text()));
        }
        let results = if distributed {
            lanceflow::search::search_vectors_distributed(
                &location,
                at.as_ref(),
                &request,
                executor.as_ref(),
            )
            .await
        } else {
            lanceflow::search::search_vectors(&location, at.as_ref(), &request, workers).await
        }?;
        Ok(Searched::Results(results))
    })?;
    let results = match results {
        Searched::Analysis(text) => return Ok(text.into_pyobject(py)?.into_any()),
        Searched::Results(results) => results,
    };
    let seconds = started.elapsed().as_secs_f64();
    let batch = vector_table(&results).map_err(to_py_err)?;
    with_call(batch, seconds, results.version)?.to_pyarrow(py)
}

/// Full-text (BM25) search: one row per hit with `_rowid`, `_score` and the
/// requested columns.
#[pyfunction]
#[pyo3(signature = (session, uri, query, k=10, search_columns=None, phrase=false, filter=None, columns=None, version=None, tag=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_text<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    query: String,
    k: usize,
    search_columns: Option<Vec<String>>,
    phrase: bool,
    filter: Option<String>,
    columns: Option<Vec<String>>,
    version: Option<u64>,
    tag: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let at = version_spec(version, tag);
    let request = TextSearchRequest {
        query,
        k,
        search_columns,
        phrase,
        filter,
        columns,
    };
    let started = Instant::now();
    let results = run(py, || async move {
        lanceflow::search::text::search_text(&location, at.as_ref(), &request).await
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let batch = text_table(&results).map_err(to_py_err)?;
    with_call(batch, seconds, results.version)?.to_pyarrow(py)
}

/// Vector and full-text search of one query, fused (RRF or linear): one row
/// per hit with the fused `_score`, each leg's rank and score, and the
/// requested columns.
#[pyfunction]
#[pyo3(signature = (session, uri, query_text, values=None, dim=0, k=10, vector_k=None, text_k=None, fusion=None, rrf_k=None, weights=None, column=None, search_columns=None, nprobes=None, refine_factor=None, filter=None, columns=None, version=None, tag=None, model=None, backend=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn hybrid_search<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    query_text: String,
    values: Option<PyArrowType<arrow_data::ArrayData>>,
    dim: usize,
    k: usize,
    vector_k: Option<usize>,
    text_k: Option<usize>,
    fusion: Option<&str>,
    rrf_k: Option<f64>,
    weights: Option<Vec<f64>>,
    column: Option<String>,
    search_columns: Option<Vec<String>>,
    nprobes: Option<usize>,
    refine_factor: Option<u32>,
    filter: Option<String>,
    columns: Option<Vec<String>>,
    version: Option<u64>,
    tag: Option<String>,
    model: Option<PathBuf>,
    backend: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let at = version_spec(version, tag);
    // Before loading the model: an empty query fails at once.
    lanceflow::search::text::check_query(&query_text).map_err(to_py_err)?;
    let given = values.map(|v| matrix(v, dim)).transpose()?;
    let embedder = embedder_options(model, backend, None, None, None)?;
    let fusion = parse_opt(fusion)?;
    let started = Instant::now();
    let results = run(py, || async move {
        let query = match given {
            Some(m) => m,
            None => embed_texts(embedder, vec![query_text.clone()]).await?,
        };
        let text = TextSearchRequest {
            query: query_text,
            k: text_k.unwrap_or(DEFAULT_LEG_K),
            search_columns,
            phrase: false,
            filter,
            columns,
        };
        let mut vector = VectorSearchRequest::new(query, vector_k.unwrap_or(DEFAULT_LEG_K));
        vector.column = column;
        vector.nprobes = nprobes;
        vector.refine_factor = refine_factor;
        let mut request = HybridRequest::new(text, vector, k);
        if let Some(f) = fusion {
            request.fusion = f;
        }
        request.rrf_k = rrf_k.unwrap_or(DEFAULT_RRF_K);
        if let Some(w) = weights {
            request.weights = w;
        }
        lanceflow::search::hybrid::search_hybrid(&location, at.as_ref(), &request).await
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let batch = hybrid_table(&results).map_err(to_py_err)?;
    with_call(batch, seconds, results.version)?.to_pyarrow(py)
}
