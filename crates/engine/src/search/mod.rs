//! Search: vector (in-process or distributed by index-segment ownership),
//! full-text, hybrid, and the online retrieval service behind `serve`.
//!
//! The layers, each using only those above it:
//! - [`query`]: requests, hits and results, the column checks and row
//!   conversions every path shares;
//! - `direct`: an index searched without a query plan (the fast path), the
//!   exact scan of fragments no segment covers, and the merge of the two;
//! - [`vector`]: one vector search in this process (the direct path when it
//!   applies, lance's query plan otherwise);
//! - [`distributed`]: the same search as plan → segment / flat tasks → merge;
//! - [`analyze`]: lance's plan of a search with its metrics (`analyze_plan`),
//!   in-process or per distributed task;
//! - [`text`]: full-text search; [`hybrid`]: both legs fused (RRF / linear);
//! - [`retrieval`]: the long-lived service state of `serve`;
//! - [`table`]: results as one typed Arrow record batch (the Python package's
//!   tables).

pub mod analyze;
pub(crate) mod direct;
pub mod distributed;
pub mod hybrid;
pub mod query;
pub mod retrieval;
pub mod table;
pub mod text;
pub mod vector;

pub use distributed::{
    execute_search_task, plan_search_tasks, search_vectors_distributed, SearchPart, VectorSearchOp,
    VectorSearchOutput, VectorSearchTask,
};
pub use query::{
    rows_as_json, DistanceRange, Hit, Probes, QueryHits, SearchResults, VectorSearchRequest,
    DISTANCE, ROW_ID,
};

pub use analyze::{analyze_vector_search, PlanAnalysis, PlanSection};
pub use vector::{query_from_row, search_vectors, VectorSearcher};
