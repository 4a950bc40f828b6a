//! The spine: plan → tasks → execute → commit.
//!
//! Every distributed operation is split the same way:
//!
//! 1. **plan** (driver): validate the request against one pinned dataset
//!    version and cut the work into tasks;
//! 2. **tasks**: plain serde values ([`TaskSpec`]: the operation's name plus a
//!    JSON payload with fragment ids, read version, parameters, trained
//!    artifacts) that can run in a thread, a process or a Ray worker;
//! 3. **execute** (any worker): [`crate::worker::execute_task`] turns one
//!    task into one serde result; workers never commit;
//! 4. **commit** (driver): all results become one new dataset version, or
//!    nothing at all if a task failed.
//!
//! An [`Executor`](crate::executor::Executor) only schedules, retries and
//! collects [`TaskSpec`]s; it knows nothing of any operation. Operations
//! implement [`DistributedOp`] and are registered in [`crate::worker`].

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, TaskFailure};
use crate::executor::Executor;
use crate::progress::Progress;

/// One serialized unit of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The operation that knows how to execute the payload (e.g. `ingest`).
    pub operation: String,
    /// Index of the task in its plan (results are returned in this order).
    pub index: usize,
    /// Human-readable description for progress and error messages.
    pub label: String,
    /// The operation-specific task, as JSON.
    pub payload: serde_json::Value,
}

/// An error as it travels back from a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// [`Error::kind`] of the failure.
    pub kind: String,
    /// The failure's message.
    pub message: String,
}

impl From<&Error> for TaskError {
    fn from(err: &Error) -> Self {
        TaskError {
            kind: err.kind().to_string(),
            message: err.to_string(),
        }
    }
}

impl TaskError {
    /// Whether an executor should try the task again.
    pub fn is_retryable(&self) -> bool {
        Error::from_kind(&self.kind, String::new()).is_retryable()
    }
}

/// What an executor hands back for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// The task's index in its plan.
    pub index: usize,
    /// The task's label.
    pub label: String,
    /// The operation's result as JSON, or the last error.
    pub result: std::result::Result<serde_json::Value, TaskError>,
    /// How many times the task was run.
    pub attempts: u32,
    /// Seconds spent on the task (all attempts).
    pub seconds: f64,
}

/// A distributed operation's task type and how a worker executes it.
pub trait DistributedOp: Send + Sync + 'static {
    /// Name under which the worker dispatches tasks of this operation.
    const NAME: &'static str;
    /// A task: plain data, no handles.
    type Task: Serialize + DeserializeOwned + Send + 'static;
    /// What one task returns to the driver.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Short description of a task (an input file, a fragment range...).
    fn label(task: &Self::Task) -> String;

    /// Run one task. Must be idempotent and must not commit: executors may run
    /// a task more than once.
    fn execute(task: Self::Task) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// Serialize typed tasks into [`TaskSpec`]s.
pub fn to_specs<O: DistributedOp>(tasks: &[O::Task]) -> Result<Vec<TaskSpec>> {
    tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            Ok(TaskSpec {
                operation: O::NAME.to_string(),
                index,
                label: O::label(task),
                payload: serde_json::to_value(task)?,
            })
        })
        .collect()
}

/// Execute a typed task given as a [`TaskSpec`] (the worker side).
pub(crate) async fn execute_spec<O: DistributedOp>(spec: &TaskSpec) -> Result<serde_json::Value> {
    let task: O::Task = serde_json::from_value(spec.payload.clone()).map_err(|e| {
        Error::Internal(format!(
            "task {} of '{}' could not be decoded (driver and worker versions differ?): {e}",
            spec.index, spec.operation
        ))
    })?;
    let output = O::execute(task).await?;
    Ok(serde_json::to_value(output)?)
}

/// Run typed tasks on an executor and collect typed outputs in plan order.
///
/// If any task failed, returns [`Error::TasksFailed`] listing every failure;
/// the caller must then commit nothing.
pub async fn run_tasks<O: DistributedOp>(
    executor: &dyn Executor,
    tasks: &[O::Task],
    progress: &dyn Progress,
) -> Result<Vec<O::Output>> {
    let specs = to_specs::<O>(tasks)?;
    let total = specs.len();
    let mut outcomes = executor.run(O::NAME, specs, progress).await?;
    if outcomes.len() != total {
        return Err(Error::Internal(format!(
            "executor '{}' returned {} results for {} tasks",
            executor.describe(),
            outcomes.len(),
            total
        )));
    }
    outcomes.sort_by_key(|o| o.index);
    let mut outputs = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome.result {
            Ok(value) => match serde_json::from_value::<O::Output>(value) {
                Ok(output) => outputs.push(output),
                Err(e) => failures.push(TaskFailure {
                    task: outcome.index,
                    label: outcome.label,
                    kind: "internal".into(),
                    message: format!("result could not be decoded: {e}"),
                }),
            },
            Err(err) => failures.push(TaskFailure {
                task: outcome.index,
                label: outcome.label,
                kind: err.kind,
                message: err.message,
            }),
        }
    }
    if failures.is_empty() {
        Ok(outputs)
    } else {
        // One failure of a single-task plan is reported as itself: the
        // caller's error type (and exit code) then says what went wrong.
        if total == 1 && failures.len() == 1 {
            let f = failures.remove(0);
            return Err(Error::from_kind(&f.kind, f.message));
        }
        Err(Error::TasksFailed {
            operation: O::NAME.to_string(),
            total,
            failures,
        })
    }
}
