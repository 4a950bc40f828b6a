//! Engine integration tests (one binary: every test binary re-links lance).

mod common;
mod embed;
mod evolve;
mod ingest;
mod layers;
mod maintain;
mod scalar;
mod train;
mod vector;
mod versions;
