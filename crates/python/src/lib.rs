//! `lanceflow._native`: the Python package's bridge to the engine.
//!
//! Thin and typed: each Python function of the package's API is a
//! `#[pyfunction]` with typed arguments that builds the engine's typed
//! request, runs it (on the session's executor, with the GIL released) and
//! returns its typed report as Python objects, rows as pyarrow through the
//! Arrow C data interface. No command line, no JSON text; it holds no
//! operation logic.
//!
//! - [`session`]: storage options, executor, workers, progress ([`session::Session`]);
//! - [`data`]: ingest, info, versions, cleanup, read tasks (`read_lance`);
//! - [`build`]: embed, vector and scalar indexes, optimize, compact;
//! - [`evolve`]: new columns (SQL, Python callables: the engine's transform
//!   host, row-keyed merges);
//! - [`search`]: vector, full-text and hybrid search;
//! - [`executor`]: the spine's worker side (`execute_task`, for Ray actors)
//!   and a Python executor object seen by the engine as an `Executor`;
//! - [`cli`]: `python -m lanceflow`, the command line in-process;
//! - [`errors`], [`runtime`]: exceptions by error kind; one async runtime
//!   per process, Ctrl-C honoured during long calls.

// The CLI's command future is deep; computing its layout needs more than the
// default query depth.
#![recursion_limit = "512"]

/// Run one of the engine's distributed operations,
/// `op(&location, &request, executor, progress)`, on the session's executor
/// with the GIL released, and return its typed report as Python objects.
macro_rules! distributed {
    ($py:expr, $session:expr, $location:expr, $request:expr, $op:path) => {{
        let (executor, progress) = ($session.executor(), $session.progress());
        let (location, request) = ($location, $request);
        let done = $crate::runtime::run($py, || async move {
            $op(&location, &request, executor.as_ref(), progress.as_ref()).await
        })?;
        $crate::data::report($py, &done)
    }};
}

mod build;
mod cli;
mod data;
mod errors;
mod evolve;
mod executor;
mod namespace;
mod runtime;
mod search;
mod session;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    lanceflow_cli::set_process_defaults();
    lanceflow_cli::init_tracing();
    lanceflow::evolve::set_transform_host(evolve::PythonTransforms);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<session::Session>()?;
    m.add_class::<executor::OutcomeSink>()?;
    m.add_function(wrap_pyfunction!(data::ingest, m)?)?;
    m.add_function(wrap_pyfunction!(data::write_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(data::stage_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(data::commit_staged, m)?)?;
    m.add_function(wrap_pyfunction!(data::info, m)?)?;
    m.add_function(wrap_pyfunction!(data::versions, m)?)?;
    m.add_function(wrap_pyfunction!(data::cleanup, m)?)?;
    m.add_function(wrap_pyfunction!(data::plan_read, m)?)?;
    m.add_function(wrap_pyfunction!(data::read_task, m)?)?;
    m.add_function(wrap_pyfunction!(build::embed, m)?)?;
    m.add_function(wrap_pyfunction!(build::create_vector_index, m)?)?;
    m.add_function(wrap_pyfunction!(build::create_scalar_index, m)?)?;
    m.add_function(wrap_pyfunction!(build::optimize, m)?)?;
    m.add_function(wrap_pyfunction!(build::compact, m)?)?;
    m.add_function(wrap_pyfunction!(namespace::resolve_table, m)?)?;
    m.add_function(wrap_pyfunction!(namespace::compact_database, m)?)?;
    m.add_function(wrap_pyfunction!(evolve::add_columns, m)?)?;
    m.add_function(wrap_pyfunction!(evolve::write_row_columns, m)?)?;
    m.add_function(wrap_pyfunction!(evolve::commit_columns, m)?)?;
    m.add_function(wrap_pyfunction!(evolve::merge_columns, m)?)?;
    m.add_function(wrap_pyfunction!(search::vector_search, m)?)?;
    m.add_function(wrap_pyfunction!(search::search_text, m)?)?;
    m.add_function(wrap_pyfunction!(search::hybrid_search, m)?)?;
    m.add_function(wrap_pyfunction!(executor::execute_task, m)?)?;
    m.add_function(wrap_pyfunction!(executor::is_retryable, m)?)?;
    m.add_function(wrap_pyfunction!(executor::operations, m)?)?;
    m.add_function(wrap_pyfunction!(cli::run_cli, m)?)?;
    Ok(())
}
