//! Executors schedule, retry and collect tasks; they hold no operation logic.
//!
//! The local executor runs tasks on this machine with bounded parallelism,
//! calling the [`TaskHandler`] it was given. The Ray executor (Python
//! package) implements the same contract: take [`TaskSpec`]s, run each
//! somewhere, hand back [`TaskOutcome`]s. Both report through one
//! [`StageRun`], so renderers see the same events whatever ran the tasks.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;

use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Progress, ProgressEvent};
use crate::spine::handler::TaskHandler;
use crate::spine::task::{TaskError, TaskOutcome, TaskSpec};

/// Runs tasks somewhere and returns one outcome per task (any order).
#[async_trait]
pub trait Executor: Send + Sync {
    /// A short description for logs (`local(4 workers)`).
    fn describe(&self) -> String;

    /// How many tasks run at once (operations use it to size their plans).
    fn parallelism(&self) -> usize;

    /// Run every task of one stage. An `Err` means the executor itself failed;
    /// task failures are reported inside the outcomes.
    async fn run(
        &self,
        stage: &str,
        tasks: Vec<TaskSpec>,
        progress: &dyn Progress,
    ) -> Result<Vec<TaskOutcome>>;
}

/// The embedded default: tasks run as tokio tasks in this process.
/// (`operations::local_executor` gives one with the engine's
/// operations.)
#[derive(Clone)]
pub struct LocalExecutor {
    workers: usize,
    max_attempts: u32,
    handler: Arc<dyn TaskHandler>,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("workers", &self.workers)
            .field("max_attempts", &self.max_attempts)
            .field("operations", &self.handler.operations())
            .finish()
    }
}

impl LocalExecutor {
    /// `workers` tasks at once (0 means one per available core), each run by
    /// `handler`.
    pub fn new(workers: usize, handler: Arc<dyn TaskHandler>) -> Self {
        let workers = if workers == 0 {
            default_workers()
        } else {
            workers
        };
        Self {
            workers,
            max_attempts: 3,
            handler,
        }
    }

    /// How many times a task with a retryable failure (storage hiccup) is run
    /// at most. Defaults to 3.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// One worker per available core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[async_trait]
impl Executor for LocalExecutor {
    fn describe(&self) -> String {
        format!("local({} workers)", self.workers)
    }

    fn parallelism(&self) -> usize {
        self.workers
    }

    async fn run(
        &self,
        stage: &str,
        tasks: Vec<TaskSpec>,
        progress: &dyn Progress,
    ) -> Result<Vec<TaskOutcome>> {
        let mut run = StageRun::start(progress, stage, tasks.len());
        let limit = Arc::new(Semaphore::new(self.workers.max(1)));
        let mut running = FuturesUnordered::new();
        for spec in tasks {
            let limit = limit.clone();
            let max_attempts = self.max_attempts;
            let stage = stage.to_string();
            let handler = self.handler.clone();
            running.push(async move {
                let _permit = limit
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::internal(format!("executor closed: {e}")))?;
                Ok::<_, Error>(run_with_retries(handler, spec, max_attempts, &stage).await)
            });
        }
        while let Some(done) = running.next().await {
            let (outcome, retries) = done?;
            for (attempt, reason) in retries {
                run.retried(outcome.index, attempt, reason);
            }
            run.finished(outcome);
        }
        Ok(run.finish())
    }
}

/// The progress events and collected outcomes of one stage: every executor
/// reports through it, so renderers see the same events whatever ran the
/// tasks.
pub struct StageRun<'a> {
    progress: &'a dyn Progress,
    stage: String,
    started: Instant,
    all_ok: bool,
    outcomes: Vec<TaskOutcome>,
}

impl<'a> StageRun<'a> {
    /// Report the start of `stage` with `total` tasks.
    pub fn start(progress: &'a dyn Progress, stage: &str, total: usize) -> Self {
        progress.report(ProgressEvent::StageStarted {
            stage: stage.to_string(),
            total: Some(total as u64),
            unit: "tasks".into(),
        });
        Self {
            progress,
            stage: stage.to_string(),
            started: Instant::now(),
            all_ok: true,
            outcomes: Vec::with_capacity(total),
        }
    }

    /// Report that `task` is being run again (its `attempt`-th run).
    pub fn retried(&self, task: usize, attempt: u32, reason: String) {
        self.progress.report(ProgressEvent::TaskRetried {
            stage: self.stage.clone(),
            task,
            attempt,
            reason,
        });
    }

    /// Report one finished task and keep its outcome.
    pub fn finished(&mut self, outcome: TaskOutcome) {
        self.all_ok &= outcome.result.is_ok();
        self.progress.report(ProgressEvent::TaskFinished {
            stage: self.stage.clone(),
            task: outcome.index,
            ok: outcome.result.is_ok(),
            rows: outcome
                .result
                .as_ref()
                .ok()
                .and_then(|v| v.get("rows"))
                .and_then(|r| r.as_u64()),
            seconds: outcome.seconds,
        });
        self.outcomes.push(outcome);
    }

    /// Outcomes collected so far.
    pub fn collected(&self) -> usize {
        self.outcomes.len()
    }

    /// Report the end of the stage and hand back every outcome.
    pub fn finish(self) -> Vec<TaskOutcome> {
        self.progress.report(ProgressEvent::StageFinished {
            stage: self.stage,
            ok: self.all_ok,
            seconds: self.started.elapsed().as_secs_f64(),
        });
        self.outcomes
    }
}

/// Run one task on a tokio worker thread, retrying retryable failures.
/// Returns the outcome and the (attempt, reason) of every retry.
async fn run_with_retries(
    handler: Arc<dyn TaskHandler>,
    spec: TaskSpec,
    max_attempts: u32,
    stage: &str,
) -> (TaskOutcome, Vec<(u32, String)>) {
    let started = Instant::now();
    let mut retries = Vec::new();
    let mut attempt = 1;
    loop {
        let task = spec.clone();
        let handler = handler.clone();
        let joined = AbortOnDrop(tokio::spawn(async move { handler.execute(&task).await }))
            .join()
            .await;
        let result = match joined {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(TaskError::from(&err)),
            Err(join_err) => Err(TaskError {
                kind: ErrorKind::Internal,
                message: format!(
                    "task panicked or was cancelled (a bug, please report it): {join_err}"
                ),
            }),
        };
        match result {
            Err(err) if err.is_retryable() && attempt < max_attempts => {
                tracing::warn!(stage, task = spec.index, attempt, error = %err.message, "retrying task");
                retries.push((attempt + 1, err.message));
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            result => {
                let outcome = TaskOutcome {
                    index: spec.index,
                    label: spec.label.clone(),
                    result,
                    attempts: attempt,
                    seconds: started.elapsed().as_secs_f64(),
                };
                return (outcome, retries);
            }
        }
    }
}

/// A spawned task that is aborted when its handle is dropped, so cancelling
/// an operation (Ctrl-C, a dropped future) stops its tasks instead of leaving
/// them running detached. Tasks never commit, so aborting one is always safe.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> std::result::Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
