//! `lanceflow._native`: the Python package's bridge to the engine.
//!
//! Deliberately thin. It offers three things and holds no operation logic:
//!
//! * [`execute_task`]: the worker side of the spine, for Ray tasks and actors
//!   (a task's JSON in, its outcome's JSON out);
//! * [`run_cli`]: the whole `lanceflow` command line in-process, with the
//!   Python executor (Ray) injected as an engine [`Executor`]: the driver
//!   plans and commits in Rust, Python only schedules;
//! * the engine's errors as `lanceflow.errors` exceptions, one class per
//!   error kind.
//!
//! Long calls release the GIL and poll for Ctrl-C; the async runtime is
//! created per process, so a forked child gets its own.

// The CLI's command future is deep; computing its layout needs more than the
// default query depth.
#![recursion_limit = "512"]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lanceflow::progress::Progress;
use lanceflow::spine::{StageRun, TaskError, TaskOutcome, TaskSpec};
use lanceflow::ErrorKind;
use lanceflow::Executor;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The exception classes live in `lanceflow/errors.py` (each derives from
/// `LanceflowError` and from the builtin a Python user expects: Python
/// classes can have two bases, PyO3's cannot); these raise them by name.
macro_rules! python_errors {
    ($($name:ident),* $(,)?) => {$(
        struct $name;
        impl $name {
            fn new_err(message: impl Into<String>) -> PyErr {
                raise_by_name(stringify!($name), message.into())
            }
        }
    )*};
}

python_errors!(
    InvalidInputError,
    NotFoundError,
    AlreadyExistsError,
    NotSupportedError,
    CommitConflictError,
    StorageError,
    TasksFailedError,
    InternalError,
);

/// An instance of `lanceflow.errors.<name>` (a `RuntimeError` naming the
/// class if the package cannot be imported, e.g. the native module alone).
fn raise_by_name(name: &'static str, message: String) -> PyErr {
    Python::attach(|py| {
        let class = py
            .import("lanceflow.errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, message),
            Err(_) => PyRuntimeError::new_err(format!("{name}: {message}")),
        }
    })
}

/// The Python exception for an engine error.
fn to_py_err(err: lanceflow::Error) -> PyErr {
    error_of_kind(err.kind(), err.to_string())
}

fn error_of_kind(kind: ErrorKind, message: String) -> PyErr {
    match kind {
        ErrorKind::InvalidInput => InvalidInputError::new_err(message),
        ErrorKind::NotFound => NotFoundError::new_err(message),
        ErrorKind::AlreadyExists => AlreadyExistsError::new_err(message),
        ErrorKind::NotSupported => NotSupportedError::new_err(message),
        ErrorKind::CommitConflict => CommitConflictError::new_err(message),
        ErrorKind::Storage => StorageError::new_err(message),
        ErrorKind::TasksFailed => TasksFailedError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
    }
}

/// The Python exception for a failed command (argument and I/O errors of the
/// CLI layer are the user's to fix: invalid input).
fn command_error(err: &anyhow::Error) -> PyErr {
    let message = format!("{err:#}");
    match lanceflow_cli::engine_error(err) {
        Some(e) => error_of_kind(e.kind(), message),
        None => InvalidInputError::new_err(message),
    }
}

// ---------------------------------------------------------------------------
// One async runtime per process

/// The runtime of this process. A child created by `fork` inherits the
/// parent's runtime object but none of its threads, so it gets a new one
/// (the inherited one is leaked: dropping it would join threads that do not
/// exist in the child).
fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);
    let mut guard = RUNTIME
        .lock()
        .map_err(|_| InternalError::new_err("runtime lock poisoned"))?;
    let pid = std::process::id();
    if let Some((owner, rt)) = guard.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("lanceflow")
            .build()
            .map_err(|e| InternalError::new_err(format!("cannot start the async runtime: {e}")))?,
    );
    if let Some(inherited) = guard.replace((pid, rt.clone())) {
        std::mem::forget(inherited);
    }
    Ok(rt)
}

/// Run `work` on the runtime with the GIL released, checking for Ctrl-C
/// every 100 ms: a pending KeyboardInterrupt cancels the work (dropping its
/// future aborts its tasks; nothing is committed) and is raised.
fn block_on_interruptible<F, Fut, T>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = T>,
    T: Send,
{
    let rt = runtime()?;
    py.detach(move || {
        rt.block_on(async move {
            let fut = work();
            tokio::pin!(fut);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    out = &mut fut => return Ok(out),
                    _ = tick.tick() => {
                        Python::attach(|py| py.check_signals())?;
                    }
                }
            }
        })
    })
}

// ---------------------------------------------------------------------------
// Worker side

/// Execute one task (the JSON of a `TaskSpec`) and return its outcome's JSON
/// (`{"index", "label", "result": {"Ok": ...} | {"Err": {"kind", "message"}},
/// "attempts", "seconds"}`). A task's own failure is part of the outcome, not
/// an exception; only a malformed task raises.
#[pyfunction]
fn execute_task(py: Python<'_>, spec_json: String) -> PyResult<String> {
    let spec: TaskSpec = serde_json::from_str(&spec_json)
        .map_err(|e| InvalidInputError::new_err(format!("not a lanceflow task: {e}")))?;
    let outcome = block_on_interruptible(py, move || async move {
        let started = Instant::now();
        let result = lanceflow::operations::execute_task(&spec)
            .await
            .map_err(|e| TaskError::from(&e));
        TaskOutcome {
            index: spec.index,
            label: spec.label,
            result,
            attempts: 1,
            seconds: started.elapsed().as_secs_f64(),
        }
    })?;
    serde_json::to_string(&outcome).map_err(|e| InternalError::new_err(e.to_string()))
}

/// Whether an executor should run a task again after an error of this kind.
#[pyfunction]
fn is_retryable(kind: &str) -> bool {
    ErrorKind::parse(kind).is_retryable()
}

/// Names of the operations a worker executes.
#[pyfunction]
fn operations() -> Vec<&'static str> {
    lanceflow::operations::names()
}

// ---------------------------------------------------------------------------
// Driver side: a Python executor as an engine Executor

/// Where the Python executor hands each finished task's outcome (JSON), and
/// how it learns that the driver gave up (Ctrl-C, a failed stage).
#[pyclass(frozen)]
struct OutcomeSink {
    tx: tokio::sync::mpsc::UnboundedSender<String>,
    cancelled: Arc<AtomicBool>,
}

#[pymethods]
impl OutcomeSink {
    /// Report one finished task (a `TaskOutcome` as JSON).
    fn send(&self, outcome_json: String) -> PyResult<()> {
        self.tx
            .send(outcome_json)
            .map_err(|_| InternalError::new_err("the driver stopped listening"))
    }

    /// True once the driver no longer wants results: stop and cancel.
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// Sets the flag when the driver's future is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A Python object with `run(stage, tasks_json, sink)`, `parallelism()` and
/// `describe()` (lanceflow.RayExecutor), seen by the engine as an executor.
struct PyExecutor {
    object: Py<PyAny>,
    parallelism: usize,
    description: String,
}

impl PyExecutor {
    fn new(py: Python<'_>, object: Py<PyAny>) -> PyResult<Self> {
        let bound = object.bind(py);
        let parallelism: usize = bound.call_method0("parallelism")?.extract()?;
        let description: String = bound.call_method0("describe")?.extract()?;
        Ok(Self {
            object,
            parallelism: parallelism.max(1),
            description,
        })
    }
}

#[async_trait]
impl Executor for PyExecutor {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn parallelism(&self) -> usize {
        self.parallelism
    }

    async fn run(
        &self,
        stage: &str,
        tasks: Vec<TaskSpec>,
        progress: &dyn Progress,
    ) -> lanceflow::Result<Vec<TaskOutcome>> {
        let mut run = StageRun::start(progress, stage, tasks.len());
        let specs = tasks
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let sink = OutcomeSink { tx, cancelled };
        let object = Python::attach(|py| self.object.clone_ref(py));
        let stage_name = stage.to_string();
        let mut call = tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                object
                    .bind(py)
                    .call_method1("run", (stage_name, specs, sink))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        });
        let handle = |json: String, run: &mut StageRun<'_>| -> lanceflow::Result<()> {
            let outcome: TaskOutcome = serde_json::from_str(&json).map_err(|e| {
                lanceflow::Error::Internal(format!(
                    "the executor returned a malformed outcome: {e}"
                ))
            })?;
            if outcome.attempts > 1 {
                run.retried(
                    outcome.index,
                    outcome.attempts,
                    "worker lost or retryable failure".into(),
                );
            }
            run.finished(outcome);
            Ok(())
        };
        let finished = loop {
            tokio::select! {
                Some(json) = rx.recv() => handle(json, &mut run)?,
                joined = &mut call => break joined,
            }
        };
        while let Ok(json) = rx.try_recv() {
            handle(json, &mut run)?;
        }
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err(lanceflow::Error::Storage(format!(
                    "the {} executor failed during '{stage}': {message}",
                    self.description
                )))
            }
            Err(e) => {
                return Err(lanceflow::Error::Internal(format!(
                    "the executor thread failed: {e}"
                )))
            }
        }
        if run.collected() != tasks.len() {
            return Err(lanceflow::Error::Storage(format!(
                "the {} executor returned {} of {} task results for '{stage}'",
                self.description,
                run.collected(),
                tasks.len()
            )));
        }
        Ok(run.finish())
    }
}

/// `--executor ray`: calls the Python factory `factory(address, workers)`,
/// which returns an executor object.
struct PyExecutorFactory(Py<PyAny>);

impl lanceflow_cli::ExecutorFactory for PyExecutorFactory {
    fn make(
        &self,
        address: Option<&str>,
        workers: Option<usize>,
    ) -> lanceflow::Result<Arc<dyn Executor>> {
        Python::attach(|py| {
            let object = self.0.bind(py).call1((address, workers))?;
            PyExecutor::new(py, object.unbind())
        })
        .map(|e| Arc::new(e) as Arc<dyn Executor>)
        .map_err(|e| lanceflow::Error::InvalidInput(format!("cannot start the Ray executor: {e}")))
    }
}

/// Run a `lanceflow` command line in this process.
///
/// `argv[0]` is the program name. `executor_factory(address, workers)` builds
/// the executor for `--executor ray`. With `capture`, the command's output is
/// returned as a string and a failure raises the exception of its error kind;
/// without, output goes to stdout, errors to stderr, and the exit code is
/// returned (what `python -m lanceflow` does).
#[pyfunction]
#[pyo3(signature = (argv, executor_factory=None, capture=true))]
fn run_cli(
    py: Python<'_>,
    argv: Vec<String>,
    executor_factory: Option<Py<PyAny>>,
    capture: bool,
) -> PyResult<(u8, String)> {
    let cli = match lanceflow_cli::parse(&argv) {
        Ok(cli) => cli,
        Err(e) if e.exit_code() == 0 => return Ok((0, e.render().to_string())),
        Err(e) if capture => return Err(InvalidInputError::new_err(e.render().to_string())),
        Err(e) => {
            let _ = e.print();
            return Ok((e.exit_code().clamp(0, 255) as u8, String::new()));
        }
    };
    let factory = executor_factory.map(PyExecutorFactory);
    let result = block_on_interruptible(py, move || async move {
        let remote = factory
            .as_ref()
            .map(|f| f as &dyn lanceflow_cli::ExecutorFactory);
        if capture {
            let mut out = Vec::new();
            let done = lanceflow_cli::run(cli, &mut out, remote).await;
            done.map(|()| String::from_utf8_lossy(&out).into_owned())
        } else {
            let mut out = std::io::stdout();
            let done = lanceflow_cli::run(cli, &mut out, remote).await;
            use std::io::Write;
            let _ = out.flush();
            done.map(|()| String::new())
        }
    })?;
    match result {
        Ok(output) => Ok((0, output)),
        Err(err) if capture => Err(command_error(&err)),
        Err(err) => {
            let code = lanceflow_cli::exit_code(&err);
            let _ = lanceflow_cli::report(&err);
            Ok((code, String::new()))
        }
    }
}

// ---------------------------------------------------------------------------
// Reading a pinned version as tasks (read_lance)

/// Plan a read: one task (JSON) per group of `fragments_per_task` fragments
/// of the pinned version, with the projection and filter validated here.
#[pyfunction]
#[pyo3(signature = (uri, version=None, tag=None, columns=None, filter=None, fragments_per_task=1, storage_options=None))]
#[allow(clippy::too_many_arguments)]
fn plan_read(
    py: Python<'_>,
    uri: String,
    version: Option<u64>,
    tag: Option<String>,
    columns: Option<Vec<String>>,
    filter: Option<String>,
    fragments_per_task: usize,
    storage_options: Option<std::collections::HashMap<String, String>>,
) -> PyResult<Vec<String>> {
    let mut options = lanceflow::StorageOptions::default();
    for (key, value) in storage_options.unwrap_or_default() {
        options
            .set_pair(&format!("{key}={value}"))
            .map_err(to_py_err)?;
    }
    let location = lanceflow::Location::resolve(&uri, &options).map_err(to_py_err)?;
    let at = match (version, tag) {
        (Some(v), _) => Some(lanceflow::VersionSpec::Number(v)),
        (None, Some(t)) => Some(lanceflow::VersionSpec::Tag(t)),
        (None, None) => None,
    };
    let request = lanceflow::dataset::read::ReadRequest {
        columns,
        filter,
        fragments_per_task,
    };
    let tasks = block_on_interruptible(py, move || async move {
        lanceflow::dataset::read::plan_read(&location, at.as_ref(), &request).await
    })?
    .map_err(to_py_err)?;
    tasks
        .iter()
        .map(|t| serde_json::to_string(t).map_err(|e| InternalError::new_err(e.to_string())))
        .collect()
}

/// Execute one read task: its rows as an Arrow IPC stream (bytes), which
/// `pyarrow.ipc.open_stream` reads without copying.
#[pyfunction]
fn read_task<'py>(
    py: Python<'py>,
    task_json: String,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let task: lanceflow::dataset::read::ReadTask = serde_json::from_str(&task_json)
        .map_err(|e| InvalidInputError::new_err(format!("not a lanceflow read task: {e}")))?;
    let (schema, batches) = block_on_interruptible(py, move || async move {
        lanceflow::dataset::read::read(&task).await
    })?
    .map_err(to_py_err)?;
    let mut buffer = Vec::new();
    {
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut buffer, &schema)
            .map_err(|e| InternalError::new_err(e.to_string()))?;
        for batch in &batches {
            writer
                .write(batch)
                .map_err(|e| InternalError::new_err(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| InternalError::new_err(e.to_string()))?;
    }
    Ok(pyo3::types::PyBytes::new(py, &buffer))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    lanceflow_cli::set_process_defaults();
    lanceflow_cli::init_tracing();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(execute_task, m)?)?;
    m.add_function(wrap_pyfunction!(is_retryable, m)?)?;
    m.add_function(wrap_pyfunction!(operations, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(plan_read, m)?)?;
    m.add_function(wrap_pyfunction!(read_task, m)?)?;
    m.add_class::<OutcomeSink>()?;
    Ok(())
}
