//! `lanceflow serve`: the HTTP front end ([`crate::serve`]) over the
//! engine's retrieval service.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use crate::args::ServeArgs;
use crate::context::Context;
use crate::requests::version_spec;

/// A size such as `512MiB`, `2GiB`, `1.5GB` or a plain byte count.
pub fn parse_size(text: &str) -> lanceflow::Result<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(lanceflow::Error::InvalidInput(format!(
                "unknown size unit '{other}' in '{text}'; write e.g. 512MiB or 2GiB"
            )))
        }
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok((n * factor) as usize),
        _ => Err(lanceflow::Error::InvalidInput(format!(
            "'{text}' is not a size; write e.g. 512MiB or 2GiB"
        ))),
    }
}

/// `value` unless it lies outside `low..=high`.
fn between(flag: &str, value: usize, low: usize, high: usize) -> lanceflow::Result<usize> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(lanceflow::Error::InvalidInput(format!(
            "{flag} must be between {low} and {high} (got {value})"
        )))
    }
}

/// A positive number of seconds, at most an hour.
fn seconds(flag: &str, value: f64) -> lanceflow::Result<std::time::Duration> {
    if value.is_finite() && value > 0.0 && value <= 3600.0 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(lanceflow::Error::InvalidInput(format!(
            "{flag} must be a number of seconds above 0 and at most 3600 (got {value})"
        )))
    }
}

/// The API key `serve` requires, from an environment variable or a file.
fn api_key(args: &ServeArgs) -> lanceflow::Result<Option<String>> {
    let key = match (&args.api_key_env, &args.api_key_file) {
        (Some(name), _) => Some(std::env::var(name).map_err(|_| {
            lanceflow::Error::InvalidInput(format!(
                "--api-key-env {name}: the environment variable {name} is not set; export it \
                 or use --api-key-file FILE"
            ))
        })?),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| {
                    lanceflow::Error::InvalidInput(format!(
                        "--api-key-file {}: {e}",
                        file.display()
                    ))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        (None, None) => None,
    };
    match key.map(|k| k.trim().to_string()) {
        Some(k) if k.is_empty() => Err(lanceflow::Error::InvalidInput(
            "the API key is empty; set a non-empty key (e.g. `openssl rand -hex 32`)".into(),
        )),
        other => Ok(other),
    }
}

pub(super) async fn serve(ctx: &Context, args: ServeArgs, out: &mut dyn Write) -> Result<()> {
    use crate::serve::{bind, serve_until, shutdown_signal, ServeOptions, ServeState};
    let options = ServeOptions {
        api_key: api_key(&args)?,
        max_concurrency: between("--max-concurrency", args.max_concurrency, 1, 100_000)?,
        max_body_bytes: between("--max-body-bytes", args.max_body_bytes, 1, 64 << 20)?,
        request_timeout: seconds("--request-timeout", args.request_timeout)?,
        max_connections: between("--max-connections", args.max_connections, 1, 1_000_000)?,
        header_timeout: seconds("--header-timeout", args.header_timeout)?,
        ..ServeOptions::default()
    };
    if let Some(size) = &args.cache_size {
        lanceflow::storage::configure_index_cache(parse_size(size)?)?;
    }
    let location = ctx.location(args.uri.as_deref()).await?;
    let at = version_spec(&args.at);
    let model = (!args.no_model).then(|| args.model.options());
    let uri = location.uri().to_string();
    let retriever =
        lanceflow::search::retrieval::Retriever::open(location, at.as_ref(), model).await?;
    let (listener, addr) = bind(&args.addr).await?;
    let version = retriever.version();
    let auth = if options.api_key.is_some() {
        "API key required"
    } else {
        "no API key"
    };
    if ctx.json {
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({
                "url": format!("http://{addr}"), "uri": uri, "version": version,
            }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "serving {uri} version {version} on http://{addr} ({auth}; Ctrl-C stops)"
        )?;
    }
    out.flush()?;
    let state = ServeState::new(Arc::new(retriever), options)?;
    serve_until(listener, state, shutdown_signal()).await?;
    if !ctx.json {
        writeln!(out, "stopped")?;
    }
    Ok(())
}
