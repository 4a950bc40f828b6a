//! # lanceflow
//!
//! An engine that turns raw text into a searchable vector knowledge base in
//! the Lance format, on local disk or object storage, and spreads the heavy
//! work over many workers when one machine is not enough.
//!
//! ## Why it is shaped this way
//!
//! Every operation that touches much data is split into **plan → tasks →
//! execute → commit** ([`task`]): the driver plans against one pinned dataset
//! version; tasks are plain serde values; workers execute them anywhere and
//! return serde results; the driver commits once, so an operation lands as
//! exactly one new version or not at all. Executors ([`executor`]) only
//! schedule, retry and collect, which is why the same tasks run on local
//! threads today and on Ray tomorrow without touching any operation.
//!
//! The Lance format itself is the `lance` crate's business: this crate plans
//! and orchestrates, it never re-implements the format.
//!
//! Library code reports through [`progress::Progress`] and `tracing`; it never
//! prints. All errors are one [`Error`] enum whose variants say what the
//! caller should do next.

#![warn(missing_docs)]

mod bert;
pub mod compact;
pub mod config;
pub mod corpus;
pub mod embed;
pub mod embedder;
pub mod error;
pub mod executor;
pub mod info;
pub mod ingest;
pub mod input;
pub mod kmeans;
pub mod onnx;
pub mod optimize;
pub mod progress;
pub mod read;
pub mod retrieval;
pub mod scalar_index;
pub mod search;
pub mod storage;
pub mod task;
pub mod text_search;
pub mod train;
pub mod vector_index;
pub mod vectors;
mod version_cache;
pub mod versions;
pub mod worker;

pub use error::{Error, Result};
pub use executor::{Executor, LocalExecutor};
pub use storage::{Location, StorageOptions, VersionSpec};
