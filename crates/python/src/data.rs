//! Data and versions: ingest, info, versions, cleanup, and reading a pinned
//! version as tasks (`read_lance`). Reports come back as Python objects of
//! the engine's typed reports (dicts and lists, through serde: no JSON
//! text), rows as pyarrow through the Arrow C data interface.

use std::path::PathBuf;

use arrow_array::ffi_stream::ArrowArrayStreamReader;
use arrow_pyarrow::{IntoPyArrow, PyArrowType, Table};
use lanceflow::dataset::info::info as dataset_info;
use lanceflow::dataset::read::{ReadRequest, ReadTask};
use lanceflow::dataset::versions as engine_versions;
use lanceflow::ingest::{IngestRequest, Layout, StreamWrite};
use pyo3::prelude::*;

use crate::errors::{internal, to_py_err, InvalidInputError};
use crate::runtime::run;
use crate::session::{parse, parse_opt, version_spec, Session};

/// A typed report as Python objects.
pub(crate) fn report<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(pythonize::pythonize(py, value)?)
}

/// A new dataset's layout from lance-ray's option names.
fn layout(data_storage_version: Option<&str>, enable_stable_row_ids: bool) -> PyResult<Layout> {
    Ok(Layout {
        storage_version: parse_opt(data_storage_version)?,
        stable_row_ids: enable_stable_row_ids,
    })
}

/// Load files into a dataset: one task per file (or part of one), one commit.
#[pyfunction]
#[pyo3(signature = (session, inputs, uri, mode="create", format=None, max_rows_per_file=None, columns=None, idempotency_key=None, data_storage_version=None, enable_stable_row_ids=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn ingest<'py>(
    py: Python<'py>,
    session: &Session,
    inputs: Vec<PathBuf>,
    uri: &str,
    mode: &str,
    format: Option<&str>,
    max_rows_per_file: Option<usize>,
    columns: Option<Vec<String>>,
    idempotency_key: Option<String>,
    data_storage_version: Option<&str>,
    enable_stable_row_ids: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let request = IngestRequest {
        inputs,
        format: parse_opt(format)?,
        mode: parse(mode)?,
        max_rows_per_file: max_rows_per_file
            .unwrap_or(lanceflow::ingest::DEFAULT_MAX_ROWS_PER_FILE),
        columns,
        idempotency_key,
        layout: layout(data_storage_version, enable_stable_row_ids)?,
    };
    distributed!(py, session, location, request, lanceflow::ingest::ingest)
}

/// Write Arrow data (a `pyarrow.Table`, a `RecordBatchReader`, anything
/// with `__arrow_c_stream__`) as one new version, streamed through the
/// Arrow C data interface: no copy into Python objects, no staging files.
#[pyfunction]
#[pyo3(signature = (session, data, uri, mode="create", max_rows_per_file=None, idempotency_key=None, data_storage_version=None, enable_stable_row_ids=false, schema=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_arrow<'py>(
    py: Python<'py>,
    session: &Session,
    data: PyArrowType<ArrowArrayStreamReader>,
    uri: &str,
    mode: &str,
    max_rows_per_file: Option<usize>,
    idempotency_key: Option<String>,
    data_storage_version: Option<&str>,
    enable_stable_row_ids: bool,
    schema: Option<PyArrowType<arrow_schema::Schema>>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let request = StreamWrite {
        max_rows_per_file: max_rows_per_file
            .unwrap_or(lanceflow::ingest::DEFAULT_MAX_ROWS_PER_FILE),
        idempotency_key,
        layout: layout(data_storage_version, enable_stable_row_ids)?,
        schema: schema.map(|s| s.0),
        ..StreamWrite::new(parse(mode)?)
    };
    let source: Box<dyn arrow_array::RecordBatchReader + Send> = Box::new(data.0);
    let progress = session.progress();
    let done = run(py, || async move {
        lanceflow::ingest::write_stream(&location, source, &request, progress.as_ref()).await
    })?;
    report(py, &done)
}

/// Write Arrow data into uncommitted fragments (lance-ray's
/// `LanceFragmentWriter`): the staged fragments as JSON text, for
/// [`commit_staged`]. `mode="append"` writes with the dataset's schema.
#[pyfunction]
#[pyo3(signature = (session, data, uri, mode="create", max_rows_per_file=None, data_storage_version=None, enable_stable_row_ids=false, schema=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_arrow(
    py: Python<'_>,
    session: &Session,
    data: PyArrowType<ArrowArrayStreamReader>,
    uri: &str,
    mode: &str,
    max_rows_per_file: Option<usize>,
    data_storage_version: Option<&str>,
    enable_stable_row_ids: bool,
    schema: Option<PyArrowType<arrow_schema::Schema>>,
) -> PyResult<String> {
    let location = session.location(uri)?;
    let request = StreamWrite {
        max_rows_per_file: max_rows_per_file
            .unwrap_or(lanceflow::ingest::DEFAULT_MAX_ROWS_PER_FILE),
        layout: layout(data_storage_version, enable_stable_row_ids)?,
        schema: schema.map(|s| s.0),
        ..StreamWrite::new(parse(mode)?)
    };
    let source: Box<dyn arrow_array::RecordBatchReader + Send> = Box::new(data.0);
    let staged = run(py, || async move {
        lanceflow::ingest::stage_stream(&location, source, &request).await
    })?;
    serde_json::to_string(&staged).map_err(internal)
}

/// Commit staged fragments (JSON texts from [`stage_arrow`], from any number
/// of workers) as one new version (lance-ray's `LanceFragmentCommitter`).
#[pyfunction]
#[pyo3(signature = (session, uri, staged, mode="create", idempotency_key=None))]
pub(crate) fn commit_staged<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    staged: Vec<String>,
    mode: &str,
    idempotency_key: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let mode = parse(mode)?;
    let parts = staged
        .iter()
        .map(|text| {
            serde_json::from_str::<lanceflow::ingest::StagedFragments>(text).map_err(|e| {
                to_py_err(lanceflow::Error::InvalidInput(format!(
                    "staged fragments must be what LanceFragmentWriter wrote ({e})"
                )))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let started = std::time::Instant::now();
    let done = run(py, || async move {
        lanceflow::ingest::commit_staged(
            &location,
            mode,
            parts,
            idempotency_key.as_deref(),
            started,
        )
        .await
    })?;
    report(py, &done)
}

/// Rows, fragments, schema, indexes, version and size.
#[pyfunction]
#[pyo3(signature = (session, uri, version=None, tag=None))]
pub(crate) fn info<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    version: Option<u64>,
    tag: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let at = version_spec(version, tag);
    let done = run(
        py,
        || async move { dataset_info(&location, at.as_ref()).await },
    )?;
    report(py, &done)
}

/// Every version: number, time, operation, rows, fragments, tags.
#[pyfunction]
pub(crate) fn versions<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let done = run(
        py,
        || async move { engine_versions::versions(&location).await },
    )?;
    report(py, &done)
}

/// Remove versions older than `older_than` (tagged ones stay).
#[pyfunction]
#[pyo3(signature = (session, uri, older_than="7d", dry_run=false))]
pub(crate) fn cleanup<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    older_than: &str,
    dry_run: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let age = engine_versions::parse_age(older_than).map_err(crate::errors::to_py_err)?;
    let done = run(py, || async move {
        engine_versions::cleanup(&location, age, dry_run).await
    })?;
    report(py, &done)
}

/// Plan a read: one task (JSON, to ship to a Ray task) per group of
/// `fragments_per_task` fragments of the pinned version, with the
/// projection and filter validated here.
#[pyfunction]
#[pyo3(signature = (session, uri, version=None, tag=None, columns=None, filter=None, fragments_per_task=1, fragment_ids=None, with_metadata=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_read(
    py: Python<'_>,
    session: &Session,
    uri: &str,
    version: Option<u64>,
    tag: Option<String>,
    columns: Option<Vec<String>>,
    filter: Option<String>,
    fragments_per_task: usize,
    fragment_ids: Option<Vec<u32>>,
    with_metadata: bool,
) -> PyResult<Vec<String>> {
    let location = session.location(uri)?;
    let at = version_spec(version, tag);
    let request = ReadRequest {
        columns,
        filter,
        fragment_ids,
        with_metadata,
        ..ReadRequest::new(fragments_per_task)
    };
    let tasks = run(py, || async move {
        lanceflow::dataset::read::plan_read(&location, at.as_ref(), &request).await
    })?;
    tasks
        .iter()
        .map(|t| serde_json::to_string(t).map_err(internal))
        .collect()
}

/// Execute one read task: its rows as a `pyarrow.Table` (handed over
/// through the Arrow C data interface, not copied).
#[pyfunction]
pub(crate) fn read_task<'py>(py: Python<'py>, task_json: &str) -> PyResult<Bound<'py, PyAny>> {
    let task: ReadTask = serde_json::from_str(task_json)
        .map_err(|e| InvalidInputError::new_err(format!("not a lanceflow read task: {e}")))?;
    let (schema, batches) = run(
        py,
        || async move { lanceflow::dataset::read::read(&task).await },
    )?;
    Table::try_new(batches, schema)
        .map_err(internal)?
        .into_pyarrow(py)
}
