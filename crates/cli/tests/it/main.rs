//! CLI integration tests: the `lanceflow` binary as a user runs it.

mod bad_input;
mod common;
mod embed;
mod faults;
mod fuzz;
mod namespace;
mod s3;
mod serve;
mod text;
mod vector;
mod workflow;
