//! Data evolution: new columns by SQL expressions, by a Python callable
//! (this module is the engine's transform host: a task's payload is a
//! pickled callable, run with the GIL wherever the task runs, Ray actors
//! included), or from rows keyed by their row address.

use std::sync::Arc;

use arrow_array::ffi_stream::ArrowArrayStreamReader;
use arrow_array::RecordBatch;
use arrow_pyarrow::{FromPyArrow, PyArrowType, ToPyArrow};
use lanceflow::evolve::{
    AddColumnsRequest, BatchFn, ColumnTransform, HostTransform, NewColumnFiles, TransformHost,
};
use lanceflow::Error;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::data::report;
use crate::errors::{internal, InvalidInputError};
use crate::runtime::run;
use crate::session::Session;

/// Runs pickled Python callables for the engine: the payload is the
/// base64 text of `cloudpickle.dumps(f)`, `f(pyarrow.RecordBatch) ->
/// pyarrow.RecordBatch`.
pub(crate) struct PythonTransforms;

impl TransformHost for PythonTransforms {
    fn load(&self, payload: &str) -> lanceflow::Result<BatchFn> {
        let function: Py<PyAny> = Python::attach(|py| -> PyResult<Py<PyAny>> {
            let bytes = py
                .import("base64")?
                .getattr("b64decode")?
                .call1((payload,))?;
            let loads = match py.import("cloudpickle") {
                Ok(module) => module.getattr("loads")?,
                Err(_) => py.import("pickle")?.getattr("loads")?,
            };
            Ok(loads.call1((bytes.cast::<PyBytes>()?,))?.unbind())
        })
        .map_err(|e| Error::InvalidInput(format!("cannot load the transform: {e}")))?;
        let function = Arc::new(function);
        Ok(Arc::new(move |batch: &RecordBatch| {
            Python::attach(|py| -> PyResult<RecordBatch> {
                let out = function.call1(py, (batch.to_pyarrow(py)?,))?;
                RecordBatch::from_pyarrow_bound(out.bind(py))
            })
            .map_err(|e| Error::InvalidInput(format!("the transform raised {e}")))
        }))
    }
}

/// Add columns computed by SQL expressions (`sql`: (name, expression)
/// pairs) or by a pickled callable (`transform`, with its `read_columns`
/// and, optionally, `output_schema`): one task per fragment group, one
/// `Merge` commit.
#[pyfunction]
#[pyo3(signature = (session, uri, sql=None, transform=None, read_columns=None, output_schema=None, version=None, batch_size=lanceflow::evolve::DEFAULT_BATCH_SIZE, rows_per_task=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_columns<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    sql: Option<Vec<(String, String)>>,
    transform: Option<String>,
    read_columns: Option<Vec<String>>,
    output_schema: Option<PyArrowType<arrow_schema::Schema>>,
    version: Option<u64>,
    batch_size: u32,
    rows_per_task: Option<u64>,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let transform = match (sql, transform) {
        (Some(pairs), None) => ColumnTransform::Sql(pairs),
        (None, Some(payload)) => ColumnTransform::Host(HostTransform {
            payload,
            read_columns,
            output_schema: output_schema.map(|s| s.0),
        }),
        _ => {
            return Err(InvalidInputError::new_err(
                "give either SQL expressions or a transform",
            ))
        }
    };
    let request = AddColumnsRequest {
        version,
        batch_size,
        rows_per_task,
        ..AddColumnsRequest::new(transform)
    };
    distributed!(
        py,
        session,
        location,
        request,
        lanceflow::evolve::add_columns
    )
}

fn batches(data: PyArrowType<ArrowArrayStreamReader>) -> PyResult<Vec<RecordBatch>> {
    data.0
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| InvalidInputError::new_err(format!("cannot read the rows: {e}")))
}

/// Write the new columns of rows keyed by `_rowaddr` (uncommitted); the
/// result (as JSON) goes to [`commit_columns`] with the others.
#[pyfunction]
#[pyo3(signature = (session, uri, read_version, data, batch_size=lanceflow::evolve::DEFAULT_BATCH_SIZE))]
pub(crate) fn write_row_columns(
    py: Python<'_>,
    session: &Session,
    uri: &str,
    read_version: u64,
    data: PyArrowType<ArrowArrayStreamReader>,
    batch_size: u32,
) -> PyResult<String> {
    let location = session.location(uri)?;
    let rows = batches(data)?;
    let written = run(py, || async move {
        lanceflow::evolve::write_row_columns(&location, read_version, &rows, batch_size).await
    })?;
    serde_json::to_string(&written).map_err(internal)
}

/// Commit what [`write_row_columns`] calls wrote, as one `Merge`.
#[pyfunction]
#[pyo3(signature = (session, uri, read_version, written, allow_missing=false))]
pub(crate) fn commit_columns<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    read_version: u64,
    written: Vec<String>,
    allow_missing: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let outputs = written
        .iter()
        .map(|w| serde_json::from_str::<NewColumnFiles>(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| InvalidInputError::new_err(format!("not a write_row_columns result: {e}")))?;
    let done = run(py, || async move {
        lanceflow::evolve::commit(&location, read_version, outputs, allow_missing).await
    })?;
    report(py, &done)
}

/// Write and commit the new columns of rows keyed by `_rowaddr`, in
/// process.
#[pyfunction]
#[pyo3(signature = (session, uri, data, version=None, allow_missing=false))]
pub(crate) fn merge_columns<'py>(
    py: Python<'py>,
    session: &Session,
    uri: &str,
    data: PyArrowType<ArrowArrayStreamReader>,
    version: Option<u64>,
    allow_missing: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let location = session.location(uri)?;
    let rows = batches(data)?;
    let done = run(py, || async move {
        lanceflow::evolve::merge_columns(&location, version, &rows, allow_missing).await
    })?;
    report(py, &done)
}
