//! The spine's two sides in Python: a worker executing one task (Ray tasks
//! and actors call [`execute_task`]), and a Python executor object
//! (`lanceflow.RayExecutor`) seen by the engine's driver as an [`Executor`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lanceflow::progress::Progress;
use lanceflow::spine::{StageRun, TaskError, TaskOutcome, TaskSpec};
use lanceflow::ErrorKind;
use lanceflow::Executor;
use pyo3::prelude::*;

use crate::errors::{internal, InternalError, InvalidInputError};
use crate::runtime::block_on_interruptible;

/// Execute one task (the JSON of a `TaskSpec`) and return its outcome's JSON
/// (`{"index", "label", "result": {"Ok": ...} | {"Err": {"kind", "message"}},
/// "attempts", "seconds"}`). A task's own failure is part of the outcome, not
/// an exception; only a malformed task raises.
#[pyfunction]
pub(crate) fn execute_task(py: Python<'_>, spec_json: String) -> PyResult<String> {
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
    serde_json::to_string(&outcome).map_err(internal)
}

/// Whether an executor should run a task again after an error of this kind.
#[pyfunction]
pub(crate) fn is_retryable(kind: &str) -> bool {
    ErrorKind::parse(kind).is_retryable()
}

/// Names of the operations a worker executes.
#[pyfunction]
pub(crate) fn operations() -> Vec<&'static str> {
    lanceflow::operations::names()
}

/// Where the Python executor hands each finished task's outcome (JSON), and
/// how it learns that the driver gave up (Ctrl-C, a failed stage).
#[pyclass(frozen)]
pub(crate) struct OutcomeSink {
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
pub(crate) struct PyExecutor {
    object: Py<PyAny>,
    parallelism: usize,
    description: String,
}

impl PyExecutor {
    pub(crate) fn new(py: Python<'_>, object: Py<PyAny>) -> PyResult<Self> {
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
pub(crate) struct PyExecutorFactory(pub(crate) Py<PyAny>);

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
