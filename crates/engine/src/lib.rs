//! # lanceflow
//!
//! An engine that turns raw text into a searchable vector knowledge base in
//! the Lance format, on local disk or object storage, and spreads the heavy
//! work over many workers when one machine is not enough.
//!
//! ## Why it is shaped this way
//!
//! Every operation that touches much data is split into **plan → tasks →
//! execute → commit** ([`spine`]): the driver plans against one pinned dataset
//! version; tasks are plain serde values; workers execute them anywhere and
//! return serde results; the driver commits once, so an operation lands as
//! exactly one new version or not at all. Executors ([`spine::Executor`]) only
//! schedule, retry and collect, which is why the same tasks run on local
//! threads today and on Ray tomorrow without touching any operation.
//!
//! The tree reads as the work does: [`spine`] (tasks, executors, the task
//! handler) knows no operation; [`operations`] registers them all; each
//! operation is a sibling module ([`ingest`], [`embed`], [`index`],
//! [`compact`], [`search`]) over the shared [`dataset`] facts.
//!
//! The Lance format itself is the `lance` crate's business: this crate plans
//! and orchestrates, it never re-implements the format.
//!
//! Library code reports through [`progress::Progress`] and `tracing`; it never
//! prints. All errors are one [`Error`] enum whose variants say what the
//! caller should do next.

#![warn(missing_docs)]

pub mod compact;
pub mod config;
pub mod corpus;
pub mod dataset;
pub mod embed;
pub mod embedding;
pub mod error;
pub mod evolve;
pub mod index;
pub mod ingest;
pub mod limits;
pub(crate) mod linalg;
pub mod namespace;
pub mod operations;
pub mod progress;
pub mod search;
pub mod spine;
pub mod storage;
pub mod vectors;

pub use error::{Error, ErrorKind, Result};
pub use index::metric::Metric;
pub use operations::local_executor;
pub use spine::{Executor, LocalExecutor};
pub use storage::{Location, StorageOptions, VersionSpec};
