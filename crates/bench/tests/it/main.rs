//! Integration tests of the `lanceflow-bench` binary, run as a user runs it.
#![recursion_limit = "512"]

mod common;
mod serve;
mod vector;
