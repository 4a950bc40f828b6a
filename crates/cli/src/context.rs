//! What every command shares: storage options, the executor, output
//! settings, and how a typed report is written.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use lanceflow::config::Config;
use lanceflow::progress::Progress;
use lanceflow::{Executor, Location, StorageOptions};
use serde::Serialize;

use crate::args::GlobalArgs;
use crate::render::progress_for;
use crate::{ExecutorFactory, ExecutorKind};

/// Settings shared by every command, validated once.
pub struct Context {
    /// Storage options for every dataset the command opens.
    pub options: StorageOptions,
    /// Tasks at once.
    pub workers: usize,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
    executor: Arc<dyn Executor>,
}

impl Context {
    /// Storage options, executor and output settings from the global flags
    /// (and the config file they name).
    pub fn new(global: &GlobalArgs, remote: Option<&dyn ExecutorFactory>) -> Result<Self> {
        let config = match &global.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let mut options = config.storage_options()?;
        for pair in &global.storage_options {
            options.set_pair(pair)?;
        }
        if global.workers == Some(0) {
            return Err(
                lanceflow::Error::InvalidInput("--workers must be at least 1".into()).into(),
            );
        }
        let (executor, workers): (Arc<dyn Executor>, usize) = match global.executor {
            ExecutorKind::Local => {
                let workers = global
                    .workers
                    .or(config.workers)
                    .unwrap_or_else(lanceflow::spine::default_workers);
                (Arc::new(lanceflow::local_executor(workers)), workers)
            }
            ExecutorKind::Ray => {
                let Some(factory) = remote else {
                    return Err(lanceflow::Error::NotSupported(
                        "--executor ray needs the Python package: run `python3 -m lanceflow ...` \
                         (the `lanceflow` binary does this itself)"
                            .into(),
                    )
                    .into());
                };
                let executor = factory.make(
                    global.ray_address.as_deref(),
                    global.workers.or(config.workers),
                )?;
                let workers = executor.parallelism();
                (executor, workers)
            }
        };
        Ok(Self {
            options,
            workers,
            json: global.json,
            quiet: global.quiet,
            executor,
        })
    }

    /// A dataset URI resolved with the command's storage options.
    pub fn location(&self, uri: &str) -> Result<Location> {
        Ok(Location::resolve(uri, &self.options)?)
    }

    /// Where this command's tasks run (`--executor`).
    pub fn executor(&self) -> SharedExecutor {
        SharedExecutor(self.executor.clone())
    }

    /// Progress on stderr, unless `--quiet`.
    pub fn progress(&self) -> Box<dyn Progress> {
        progress_for(self.quiet)
    }

    /// Write a command's typed report: the report itself with `--json`,
    /// else its human text.
    pub(crate) fn emit<T: Serialize>(
        &self,
        out: &mut dyn Write,
        report: &T,
        human: impl FnOnce(&mut dyn Write, &T) -> Result<()>,
    ) -> Result<()> {
        if self.json {
            print_json(out, report)
        } else {
            human(out, report)
        }
    }
}

/// The command's executor, whichever kind it is, as one `Executor` value.
pub struct SharedExecutor(Arc<dyn Executor>);

#[async_trait::async_trait]
impl Executor for SharedExecutor {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn parallelism(&self) -> usize {
        self.0.parallelism()
    }

    async fn run(
        &self,
        stage: &str,
        tasks: Vec<lanceflow::spine::TaskSpec>,
        progress: &dyn lanceflow::progress::Progress,
    ) -> lanceflow::Result<Vec<lanceflow::spine::TaskOutcome>> {
        self.0.run(stage, tasks, progress).await
    }
}

/// Pretty JSON and a newline.
pub fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
