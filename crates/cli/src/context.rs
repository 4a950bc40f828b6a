//! What every command shares: storage options, the executor, output
//! settings, and how a typed report is written.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use lanceflow::config::Config;
use lanceflow::namespace::{self, Intent, NamespaceSpec, TableId, TableRef};
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
    /// `--namespace` (or the config's `[namespace]`) with `--table`: the
    /// table that stands in for the dataset URI.
    table: Option<TableRef>,
    /// The namespace without a table (`compact-database`).
    namespace: Option<NamespaceSpec>,
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
        let mut namespace = match &global.namespace {
            Some(text) => Some(NamespaceSpec::parse(text)?),
            None => config.namespace()?,
        };
        for pair in &global.namespace_properties {
            let (Some(spec), Some((key, value))) = (namespace.as_mut(), pair.split_once('='))
            else {
                return Err(lanceflow::Error::InvalidInput(format!(
                    "--namespace-property '{pair}' needs KEY=VALUE and a namespace \
                     (--namespace IMPL:TARGET or the config's [namespace])"
                ))
                .into());
            };
            spec.set_property(key, value)?;
        }
        let table = match (&global.table, &namespace) {
            (Some(id), Some(spec)) => Some(TableRef {
                namespace: spec.clone(),
                table: TableId::parse(id)?,
            }),
            (Some(id), None) => {
                return Err(lanceflow::Error::InvalidInput(format!(
                    "--table {id} needs a namespace: --namespace dir:ROOT or rest:URL, or a \
                     [namespace] block in the config file"
                ))
                .into())
            }
            (None, _) => None,
        };
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
            table,
            namespace,
            executor,
        })
    }

    /// The command's dataset: its URI argument, or `--table` in the namespace
    /// (which must exist).
    pub async fn location(&self, uri: Option<&str>) -> Result<Location> {
        self.dataset(uri, Intent::Read).await
    }

    /// The dataset a command writes: as [`Context::location`], but a table the
    /// namespace does not have yet is declared there.
    pub async fn write_location(&self, uri: Option<&str>) -> Result<Location> {
        self.dataset(uri, Intent::Write).await
    }

    /// Another dataset a command names by URI (an output, a model source).
    pub fn uri_location(&self, uri: &str) -> Result<Location> {
        Ok(Location::resolve(uri, &self.options)?)
    }

    /// The namespace, for commands over a whole namespace.
    pub fn namespace(&self) -> Result<&NamespaceSpec> {
        self.namespace.as_ref().ok_or_else(|| {
            lanceflow::Error::InvalidInput(
                "name the namespace: --namespace dir:ROOT or rest:URL, or a [namespace] block in \
                 the config file"
                    .into(),
            )
            .into()
        })
    }

    async fn dataset(&self, uri: Option<&str>, intent: Intent) -> Result<Location> {
        match (uri, &self.table) {
            (Some(uri), None) => self.uri_location(uri),
            (None, Some(table)) => Ok(namespace::resolve(table, &self.options, intent).await?),
            (Some(uri), Some(table)) => Err(lanceflow::Error::InvalidInput(format!(
                "give the dataset URI '{uri}' or --table {}, not both",
                table.table
            ))
            .into()),
            (None, None) => Err(lanceflow::Error::InvalidInput(
                "name the dataset: its URI (a path, s3://, oss://), or --table ID with \
                 --namespace dir:ROOT / rest:URL"
                    .into(),
            )
            .into()),
        }
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
