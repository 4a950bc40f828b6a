//! The spine: plan → tasks → execute → commit.
//!
//! Every distributed operation is split the same way:
//!
//! 1. **plan** (driver): validate the request against one pinned dataset
//!    version and cut the work into tasks;
//! 2. **tasks** ([`task`]): plain serde values that can run in a thread, a
//!    process or a Ray worker;
//! 3. **execute** (any worker): a [`TaskHandler`] ([`handler`]) turns one
//!    task into one serde result; workers never commit;
//! 4. **commit** (driver): all results become one new dataset version, or
//!    nothing at all if a task failed ([`run::run_tasks`] collects them).
//!
//! An [`Executor`] only schedules, retries and collects [`TaskSpec`]s with the
//! handler it is given. Nothing here names an operation: operations depend on
//! the spine, never the reverse, and the `operations` module is the one module
//! that registers them all.

pub mod executor;
pub mod handler;
pub mod run;
pub mod task;

pub use executor::{default_workers, Executor, LocalExecutor, StageRun};
pub use handler::{execute_json, Registry, TaskHandler};
pub use run::run_tasks;
pub use task::{to_specs, DistributedOp, TaskError, TaskOutcome, TaskSpec};

#[cfg(test)]
mod tests_support {
    //! A test-only operation to exercise executors without any storage.
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde::{Deserialize, Serialize};

    use crate::error::{Error, Result};
    use crate::spine::DistributedOp;

    /// Attempts seen per key, so tests can check retries.
    pub static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
    /// Slow tasks that ran to completion.
    pub static SLOW_DONE: AtomicU32 = AtomicU32::new(0);

    pub struct FlakyOp;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct FlakyTask {
        pub value: u64,
        /// `invalid`, `storage_once`, `panic`, `slow` or nothing.
        pub fail: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct FlakyOutput {
        pub doubled: u64,
        pub rows: u64,
    }

    impl DistributedOp for FlakyOp {
        const NAME: &'static str = "test_flaky";
        type Task = FlakyTask;
        type Output = FlakyOutput;

        fn label(task: &FlakyTask) -> String {
            format!("value {}", task.value)
        }

        async fn execute(task: FlakyTask) -> Result<FlakyOutput> {
            match task.fail.as_deref() {
                Some("invalid") => {
                    return Err(Error::InvalidInput(format!("bad value {}", task.value)))
                }
                Some("storage_once") => {
                    if ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err(Error::Storage("transient".into()));
                    }
                }
                Some("panic") => panic!("boom"),
                Some("slow") => {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    SLOW_DONE.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            Ok(FlakyOutput {
                doubled: task.value * 2,
                rows: task.value,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::tests_support::*;
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::progress::{ProgressEvent, RecordingProgress};

    /// The test operation registered on its own: test-only operations never
    /// join the engine's registry.
    fn executor(workers: usize) -> LocalExecutor {
        LocalExecutor::new(workers, Arc::new(Registry::new().register::<FlakyOp>()))
    }

    #[test]
    fn specs_and_outcomes_round_trip_through_json() {
        let tasks = vec![
            FlakyTask {
                value: 1,
                fail: None,
            },
            FlakyTask {
                value: 2,
                fail: Some("invalid".into()),
            },
        ];
        let specs = to_specs::<FlakyOp>(&tasks).unwrap();
        let text = serde_json::to_string(&specs).unwrap();
        let back: Vec<TaskSpec> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, specs);
        let typed: FlakyTask = serde_json::from_value(back[1].payload.clone()).unwrap();
        assert_eq!(typed, tasks[1]);

        let outcome = TaskOutcome {
            index: 3,
            label: "x".into(),
            result: Err(TaskError {
                kind: ErrorKind::Storage,
                message: "m".into(),
            }),
            attempts: 2,
            seconds: 0.5,
        };
        let text = serde_json::to_string(&outcome).unwrap();
        assert_eq!(serde_json::from_str::<TaskOutcome>(&text).unwrap(), outcome);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_executor_collects_in_plan_order() {
        let tasks: Vec<_> = (0..20)
            .map(|v| FlakyTask {
                value: v,
                fail: None,
            })
            .collect();
        let progress = RecordingProgress::default();
        let exec = executor(3);
        let out = run_tasks::<FlakyOp>(&exec, &tasks, &progress)
            .await
            .unwrap();
        assert_eq!(
            out.iter().map(|o| o.doubled).collect::<Vec<_>>(),
            (0..20).map(|v| v * 2).collect::<Vec<_>>()
        );
        let finished = progress
            .events()
            .iter()
            .filter(|e| matches!(e, ProgressEvent::TaskFinished { ok: true, .. }))
            .count();
        assert_eq!(finished, 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_failure_is_listed_and_panics_are_caught() {
        let tasks = vec![
            FlakyTask {
                value: 1,
                fail: Some("invalid".into()),
            },
            FlakyTask {
                value: 2,
                fail: None,
            },
            FlakyTask {
                value: 3,
                fail: Some("panic".into()),
            },
        ];
        let err = run_tasks::<FlakyOp>(&executor(2), &tasks, &crate::progress::NoProgress)
            .await
            .unwrap_err();
        match err {
            Error::TasksFailed {
                total, failures, ..
            } => {
                assert_eq!(total, 3);
                assert_eq!(
                    failures.iter().map(|f| f.task).collect::<Vec<_>>(),
                    vec![0, 2]
                );
                assert_eq!(failures[0].kind, ErrorKind::InvalidInput);
                assert_eq!(failures[1].kind, ErrorKind::Internal);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retryable_failures_are_retried() {
        let tasks = vec![FlakyTask {
            value: 5,
            fail: Some("storage_once".into()),
        }];
        let progress = RecordingProgress::default();
        let out = run_tasks::<FlakyOp>(&executor(1), &tasks, &progress)
            .await
            .unwrap();
        assert_eq!(out[0].doubled, 10);
        assert!(progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::TaskRetried { attempt: 2, .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_an_operation_aborts_its_tasks() {
        use std::sync::atomic::Ordering;
        let tasks: Vec<_> = (0..4)
            .map(|v| FlakyTask {
                value: v,
                fail: Some("slow".into()),
            })
            .collect();
        let exec = executor(4);
        let run = run_tasks::<FlakyOp>(&exec, &tasks, &crate::progress::NoProgress);
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(50), run).await;
        assert!(cancelled.is_err(), "the operation should have been cut off");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            SLOW_DONE.load(Ordering::SeqCst),
            0,
            "tasks kept running after cancel"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_boundary_executes_tasks() {
        let spec = &to_specs::<FlakyOp>(&[FlakyTask {
            value: 21,
            fail: None,
        }])
        .unwrap()[0];
        let handler = Registry::new().register::<FlakyOp>();
        let out = execute_json(&handler, &serde_json::to_string(spec).unwrap())
            .await
            .unwrap();
        let out: FlakyOutput = serde_json::from_str(&out).unwrap();
        assert_eq!(out.doubled, 42);
        let err = execute_json(
            &handler,
            r#"{"operation":"nope","index":0,"label":"","payload":null}"#,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)));
    }

    /// An executor that hands back a repeated index instead of a missing one.
    struct Duplicating(LocalExecutor);

    #[async_trait::async_trait]
    impl Executor for Duplicating {
        fn describe(&self) -> String {
            "duplicating".into()
        }
        fn parallelism(&self) -> usize {
            1
        }
        async fn run(
            &self,
            stage: &str,
            tasks: Vec<TaskSpec>,
            progress: &dyn crate::progress::Progress,
        ) -> crate::Result<Vec<TaskOutcome>> {
            let mut outcomes = self.0.run(stage, tasks, progress).await?;
            if let Some(first) = outcomes.iter().find(|o| o.index == 0).cloned() {
                outcomes.retain(|o| o.index != 1);
                outcomes.push(first);
            }
            Ok(outcomes)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_task_index_must_come_back_exactly_once() {
        let tasks: Vec<_> = (0..3)
            .map(|v| FlakyTask {
                value: v,
                fail: None,
            })
            .collect();
        let err = run_tasks::<FlakyOp>(
            &Duplicating(executor(1)),
            &tasks,
            &crate::progress::NoProgress,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
    }
}
