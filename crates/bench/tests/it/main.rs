//! Integration tests of the `lanceflow-bench` binary, run as a user runs it.

mod common;
mod serve;
mod vector;
