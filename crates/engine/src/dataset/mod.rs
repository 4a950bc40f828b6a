//! Facts about a dataset that every operation shares: its fragments and how
//! they are grouped into tasks, its columns, reading rows back, its summary,
//! its versions and tags, and answers kept per committed version.

pub mod columns;
pub(crate) mod commit;
pub mod fragments;
pub mod info;
pub mod read;
pub(crate) mod version_cache;
pub mod versions;
