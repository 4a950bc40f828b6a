use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the binary with extra environment variables; no inherited AWS/OSS settings.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanceflow"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("OSS_") || k == "LANCEFLOW_CONFIG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lanceflow")
}

pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
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

/// Assert exit code 2 and that stderr contains every needle; returns stderr.
#[track_caller]
pub fn fails_with(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit 2, got {:?}: {err}",
        o.status.code()
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks '{n}':\n{err}");
    }
    err
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

pub fn info_json(uri: &str, extra: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut args = vec!["info", uri, "--json"];
    args.extend_from_slice(extra);
    let out = run_env(&args, env);
    serde_json::from_str(&ok(&out)).unwrap()
}

pub fn version_of(uri: &str, env: &[(&str, &str)]) -> u64 {
    info_json(uri, &[], env)["version"].as_u64().unwrap()
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &str, key: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}
