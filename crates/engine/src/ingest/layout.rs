//! How a written dataset is laid out: lance's file format version and stable
//! row ids (lance's `data_storage_version` and `enable_stable_row_ids`).
//!
//! Both are chosen when a dataset is created (or overwritten) and kept by
//! every later write: an append writes the dataset's own format, and asking
//! for another one, or for stable row ids on a dataset without them, is an
//! error rather than the silent switch lance would make (a mixed-format
//! dataset stays unreadable for older readers; lance ignores the row id
//! setting of an existing dataset).

use std::str::FromStr;

use lance::dataset::Dataset;
use lance_file::version::LanceFileVersion;

use crate::error::{bail_invalid, Error, Result};

/// A lance file format version: `2.0`, `2.1`, `2.2`, `stable` (lance's
/// current default) or `legacy` (the v1 format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageVersion(pub LanceFileVersion);

impl FromStr for StorageVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            // Pre-release formats (`next`, `2.3`) are not offered.
            "next" | "2.3" => bail_invalid!(
                "storage version '{text}' is not released; use 2.0, 2.1, 2.2, stable or legacy"
            ),
            other => LanceFileVersion::from_str(other).map(Self).map_err(|_| {
                Error::InvalidInput(format!(
                    "unknown storage version '{text}'; use 2.0, 2.1, 2.2, stable or legacy"
                ))
            }),
        }
    }
}

/// What a write asks for its dataset's layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// The file format (default: the dataset's, or lance's for a new one).
    pub storage_version: Option<StorageVersion>,
    /// Stable row ids: a row keeps its id through compaction and updates.
    pub stable_row_ids: bool,
}

/// The layout a write uses, decided against the dataset there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The exact file format to write.
    pub(crate) storage_version: LanceFileVersion,
    /// Set on the new dataset (create / overwrite); appends keep the dataset's.
    pub(crate) stable_row_ids: bool,
}

/// `layout` for a write to `existing` (checked against it) that appends to
/// it, or creates / replaces it.
pub(crate) fn resolve(
    layout: &Layout,
    append: bool,
    existing: Option<&Dataset>,
) -> Result<Resolved> {
    let asked = layout.storage_version.map(|v| v.0.resolve().to_selector());
    let Some(dataset) = existing else {
        let version = asked.unwrap_or_else(|| LanceFileVersion::default().resolve().to_selector());
        return Ok(Resolved {
            storage_version: version,
            stable_row_ids: layout.stable_row_ids,
        });
    };
    let has = dataset
        .manifest()
        .data_storage_format
        .lance_file_format()
        .to_selector();
    let stable = dataset.manifest().uses_stable_row_ids();
    if layout.stable_row_ids && !stable {
        bail_invalid!(
            "this dataset was created without stable row ids, and lance keeps a dataset's row id \
             setting; write to a new dataset with stable row ids, or leave the option out"
        );
    }
    if append {
        if let Some(asked) = asked.filter(|a| *a != has) {
            bail_invalid!(
                "this dataset stores lance format {has}, not {asked}: an append writes the \
                     dataset's own format; leave the storage version out"
            );
        }
        return Ok(Resolved {
            storage_version: has,
            stable_row_ids: stable,
        });
    }
    // An overwrite keeps the dataset's format unless asked (lance would
    // otherwise write its default files under the old manifest's).
    Ok(Resolved {
        storage_version: asked.unwrap_or(has),
        stable_row_ids: stable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_versions_parse_as_lance_names_them() {
        assert_eq!(
            "2.1".parse::<StorageVersion>().unwrap().0,
            LanceFileVersion::V2_1
        );
        assert_eq!(
            "Stable".parse::<StorageVersion>().unwrap().0,
            LanceFileVersion::Stable
        );
        assert_eq!(
            "legacy".parse::<StorageVersion>().unwrap().0,
            LanceFileVersion::Legacy
        );
        let e = "3.0".parse::<StorageVersion>().unwrap_err();
        assert!(e.to_string().contains("use 2.0, 2.1, 2.2"), "{e}");
        assert!("next".parse::<StorageVersion>().is_err());
    }
}
