//! Lance namespaces from Python: a table id resolved to its URI and storage
//! options (the package then calls the URI-based functions), and every table
//! of a namespace compacted.

use std::collections::BTreeMap;

use lanceflow::compact::CompactRequest;
use lanceflow::namespace::{self, Intent, Namespace, NamespaceSpec, TableId, TableRef};
use pyo3::prelude::*;

use crate::errors::to_py_err;
use crate::session::Session;

fn spec(implementation: &str, properties: BTreeMap<String, String>) -> PyResult<NamespaceSpec> {
    NamespaceSpec::new(implementation, properties).map_err(to_py_err)
}

/// `(uri, storage_options)` of `table_id` in the namespace: the session's
/// storage options overlaid with those the namespace vends. `write=True`
/// declares a table the namespace does not have yet.
#[pyfunction]
#[pyo3(signature = (session, implementation, properties, table_id, write=false))]
pub(crate) fn resolve_table(
    py: Python<'_>,
    session: &Session,
    implementation: &str,
    properties: BTreeMap<String, String>,
    table_id: Vec<String>,
    write: bool,
) -> PyResult<(String, BTreeMap<String, String>)> {
    let table = TableRef {
        namespace: spec(implementation, properties)?,
        table: TableId::new(table_id).map_err(to_py_err)?,
    };
    let options = session.options().clone();
    let intent = if write { Intent::Write } else { Intent::Read };
    let location = crate::runtime::run(py, || async move {
        namespace::resolve(&table, &options, intent).await
    })?;
    let options = location
        .options()
        .entries()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((location.uri().to_string(), options))
}

/// Compact every table the namespace lists under `database`, one commit per
/// table; the report lists each table's compaction.
#[pyfunction]
#[pyo3(signature = (session, implementation, properties, database, target_rows_per_fragment=None, max_rows_per_group=None, materialize_deletions=None, deletion_threshold=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn compact_database<'py>(
    py: Python<'py>,
    session: &Session,
    implementation: &str,
    properties: BTreeMap<String, String>,
    database: Vec<String>,
    target_rows_per_fragment: Option<usize>,
    max_rows_per_group: Option<usize>,
    materialize_deletions: Option<bool>,
    deletion_threshold: Option<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec(implementation, properties)?;
    let request = CompactRequest {
        target_rows_per_fragment,
        max_rows_per_group,
        materialize_deletions,
        deletion_threshold,
    };
    let (options, executor, progress) = (
        session.options().clone(),
        session.executor(),
        session.progress(),
    );
    let done = crate::runtime::run(py, || async move {
        let namespace = Namespace::connect(&spec, &options).await?;
        lanceflow::compact::compact_database(
            &namespace,
            &database,
            &request,
            executor.as_ref(),
            progress.as_ref(),
        )
        .await
    })?;
    crate::data::report(py, &done)
}
