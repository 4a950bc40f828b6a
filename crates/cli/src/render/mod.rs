//! Rendering: progress on stderr ([`progress`]) and each command's typed
//! report as human text ([`reports`]; `--json` prints the report itself).

pub mod progress;
pub mod reports;

pub use progress::progress_for;
