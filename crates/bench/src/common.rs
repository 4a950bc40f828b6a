//! Helpers more than one benchmark uses: the reference scripts of the
//! checkout, and copying a local dataset. Benchmark modules share code only
//! through this module and [`crate::stats`].

use std::path::{Path, PathBuf};

/// A reference script (`scripts/NAME`) of the checkout the command runs in,
/// else of the one the binary was built in.
pub(crate) fn reference_script(name: &str) -> Option<PathBuf> {
    [
        Path::new("scripts").join(name),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts")
            .join(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Copy a directory tree (a local dataset) recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
