//! What every Python call shares, validated once: storage options, the
//! executor (local, or a Python executor object such as
//! `lanceflow.RayExecutor`), the worker count and whether progress is shown.

use std::collections::HashMap;
use std::sync::Arc;

use lanceflow::progress::{NoProgress, Progress};
use lanceflow::{Executor, Location, StorageOptions, VersionSpec};
use pyo3::prelude::*;

use crate::errors::{to_py_err, InvalidInputError};
use crate::executor::PyExecutor;

/// `lanceflow._native.Session(executor=None, storage_options=None,
/// workers=None, progress=False)`: the settings of one or many calls.
#[pyclass(frozen)]
pub(crate) struct Session {
    options: StorageOptions,
    executor: Arc<dyn Executor>,
    workers: usize,
    progress: bool,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (executor=None, storage_options=None, workers=None, progress=false))]
    fn new(
        py: Python<'_>,
        executor: Option<Py<PyAny>>,
        storage_options: Option<HashMap<String, String>>,
        workers: Option<usize>,
        progress: bool,
    ) -> PyResult<Self> {
        let mut options = StorageOptions::default();
        for (key, value) in storage_options.unwrap_or_default() {
            options
                .set_pair(&format!("{key}={value}"))
                .map_err(to_py_err)?;
        }
        if workers == Some(0) {
            return Err(InvalidInputError::new_err("workers must be at least 1"));
        }
        let (executor, workers): (Arc<dyn Executor>, usize) = match executor {
            None => {
                let workers = workers.unwrap_or_else(lanceflow::spine::default_workers);
                (Arc::new(lanceflow::local_executor(workers)), workers)
            }
            Some(object) => {
                let executor = PyExecutor::new(py, object)?;
                let workers = executor.parallelism();
                (Arc::new(executor), workers)
            }
        };
        Ok(Self {
            options,
            executor,
            workers,
            progress,
        })
    }

    /// Where the tasks run, e.g. `local(2 workers)` or `ray(4 workers)`.
    fn describe(&self) -> String {
        self.executor.describe()
    }

    /// Tasks at once (the in-process search's parallelism too).
    #[getter]
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }
}

impl Session {
    /// A dataset URI resolved with the session's storage options.
    pub(crate) fn location(&self, uri: &str) -> PyResult<Location> {
        Location::resolve(uri, &self.options).map_err(to_py_err)
    }

    /// The session's storage options.
    pub(crate) fn options(&self) -> &StorageOptions {
        &self.options
    }

    /// The executor, shared.
    pub(crate) fn executor(&self) -> Arc<dyn Executor> {
        self.executor.clone()
    }

    /// Progress on stderr (as the CLI renders it) or none.
    pub(crate) fn progress(&self) -> Box<dyn Progress> {
        if self.progress {
            lanceflow_cli::render::progress_for(false)
        } else {
            Box::new(NoProgress)
        }
    }
}

/// `version=` / `tag=`, if either was given (a number wins, as in the CLI).
pub(crate) fn version_spec(version: Option<u64>, tag: Option<String>) -> Option<VersionSpec> {
    match (version, tag) {
        (Some(v), _) => Some(VersionSpec::Number(v)),
        (None, Some(t)) => Some(VersionSpec::Tag(t)),
        (None, None) => None,
    }
}

/// A name the engine parses (index type, metric, mode, ...), or its error.
pub(crate) fn parse<T>(text: &str) -> PyResult<T>
where
    T: std::str::FromStr<Err = lanceflow::Error>,
{
    text.parse().map_err(to_py_err)
}

/// An optional name the engine parses.
pub(crate) fn parse_opt<T>(text: Option<&str>) -> PyResult<Option<T>>
where
    T: std::str::FromStr<Err = lanceflow::Error>,
{
    text.map(parse).transpose()
}
