//! The `lanceflow.toml` config file.
//!
//! ```toml
//! # Tasks run at once by the local executor (default: one per core).
//! workers = 4
//!
//! # Storage options for every dataset URI (same keys as --storage-option).
//! [storage]
//! aws_region = "us-east-1"
//! aws_endpoint = "http://127.0.0.1:9000"
//! client_max_retries = 20
//!
//! # Name datasets as tables of a Lance namespace (then --table NAME
//! # replaces a dataset URI). `impl` is dir or rest; every other key is a
//! # namespace property (dir: root, storage.*; rest: uri, delimiter, header.*).
//! [namespace]
//! impl = "dir"
//! root = "/data/kb"
//! ```
//!
//! Command-line options win over the file; the file wins over environment
//! variables.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::namespace::NamespaceSpec;
use crate::storage::StorageOptions;

/// Parsed config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default worker count.
    pub workers: Option<usize>,
    /// Storage options.
    #[serde(default)]
    pub storage: BTreeMap<String, toml::Value>,
    /// The namespace tables are named in (`impl` + properties).
    #[serde(default)]
    pub namespace: Option<BTreeMap<String, toml::Value>>,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!(
                "config file '{}' does not exist; check --config",
                path.display()
            )),
            _ => Error::InvalidInput(format!("cannot read config file '{}': {e}", path.display())),
        })?;
        Self::parse(&text).map_err(|e| match e {
            Error::InvalidInput(m) => Error::InvalidInput(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parse config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| {
            Error::InvalidInput(format!(
                "invalid config ({}); see the config section of the README",
                e.message()
            ))
        })?;
        if config.workers == Some(0) {
            return Err(Error::InvalidInput("workers must be at least 1".into()));
        }
        Ok(config)
    }

    /// The `[storage]` table as storage options.
    pub fn storage_options(&self) -> Result<StorageOptions> {
        let mut out = StorageOptions::new();
        for (key, value) in &self.storage {
            out.set(key, scalar_text("storage option", key, value)?);
        }
        Ok(out)
    }

    /// The `[namespace]` table, when there is one.
    pub fn namespace(&self) -> Result<Option<NamespaceSpec>> {
        let Some(table) = &self.namespace else {
            return Ok(None);
        };
        let mut implementation = None;
        let mut properties = BTreeMap::new();
        for (key, value) in table {
            let text = scalar_text("namespace property", key, value)?;
            if key == "impl" {
                implementation = Some(text);
            } else {
                properties.insert(key.clone(), text);
            }
        }
        let Some(implementation) = implementation else {
            return Err(Error::InvalidInput(
                "config: [namespace] needs `impl = \"dir\"` or `impl = \"rest\"`".into(),
            ));
        };
        NamespaceSpec::new(&implementation, properties)
            .map(Some)
            .map_err(|e| Error::InvalidInput(format!("config: [namespace]: {e}")))
    }
}

/// A config value that must be a string, number or boolean, as text.
fn scalar_text(what: &str, key: &str, value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => {
            return Err(Error::InvalidInput(format!(
                "config: {what} '{key}' must be a string, number or boolean"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_and_workers() {
        let c = Config::parse("workers = 3\n[storage]\naws_region = \"eu\"\nclient_max_retries = 20\nallow_http = true\n").unwrap();
        assert_eq!(c.workers, Some(3));
        let o = c.storage_options().unwrap();
        assert_eq!(o.get("aws_region"), Some("eu"));
        assert_eq!(o.get("client_max_retries"), Some("20"));
        assert_eq!(o.get("allow_http"), Some("true"));
    }

    #[test]
    fn rejects_unknown_keys_and_zero_workers() {
        assert!(Config::parse("wrokers = 3")
            .unwrap_err()
            .to_string()
            .contains("wrokers"));
        assert!(Config::parse("workers = 0").is_err());
    }

    #[test]
    fn namespace_block_names_impl_and_properties() {
        let c = Config::parse(
            "[namespace]\nimpl = \"rest\"\nuri = \"http://h:1\"\ndelimiter = \".\"\n",
        )
        .unwrap();
        let spec = c.namespace().unwrap().unwrap();
        assert_eq!(spec.implementation(), "rest");
        assert_eq!(spec.properties()["delimiter"], ".");
        assert!(Config::parse("").unwrap().namespace().unwrap().is_none());
        for bad in [
            "[namespace]\nroot = \"/x\"\n",
            "[namespace]\nimpl = \"glue\"\n",
            "[namespace]\nimpl = \"dir\"\n",
        ] {
            let err = Config::parse(bad).unwrap().namespace().unwrap_err();
            assert!(err.to_string().contains("[namespace]"), "{err}");
        }
    }
}
