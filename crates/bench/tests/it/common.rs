//! Running the bench binary, and preparing data with the `lanceflow` command
//! line (its library, in this process: no need for the `lanceflow` binary).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `lanceflow-bench`; no inherited AWS/OSS settings or config file.
pub fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanceflow-bench"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("OSS_") || k == "LANCEFLOW_CONFIG" {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run lanceflow-bench")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\n{}",
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

/// Run a `lanceflow` command line (without the program name) through the
/// CLI library in this process; panics with the error if it fails. Returns
/// what it printed.
#[track_caller]
pub fn lanceflow(args: &[&str]) -> String {
    let argv = std::iter::once("lanceflow").chain(args.iter().copied());
    let cli = lanceflow_cli::parse(argv).unwrap_or_else(|e| panic!("lanceflow {args:?}: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = Vec::new();
    if let Err(e) = runtime.block_on(lanceflow_cli::run(cli, &mut out, None)) {
        panic!("lanceflow {args:?} failed: {e:#}");
    }
    String::from_utf8_lossy(&out).to_string()
}

pub fn write_jsonl(dir: &Path, name: &str, start: usize, rows: usize) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in start..start + rows {
        writeln!(
            f,
            "{}",
            serde_json::json!({"doc_id": format!("d{i}"), "title": format!("title {i}"), "text": format!("the text of document number {i}"), "n": i})
        )
        .unwrap();
    }
    f.flush().unwrap();
    path
}
