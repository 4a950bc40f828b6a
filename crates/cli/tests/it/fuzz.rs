//! The service under random and adversarial requests: a seeded generator
//! (set `LANCEFLOW_FUZZ_SEED` to replay one run, `LANCEFLOW_FUZZ_CASES` for
//! a longer one) drives the router in-process. Every answer must be a 2xx,
//! a 4xx, a 503 or a 504, with a JSON body; an error names no CLI flag and
//! no server path; the service still answers afterwards. A 500 is a failure:
//! for input alone it means a panic or an error the engine did not classify.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use lanceflow_cli::serve::ServeOptions;
use serde_json::{json, Value};

use crate::serve::{call, knowledge_base, state};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const COLUMNS: &[&str] = &[
    "n",
    "text",
    "title",
    "doc_id",
    "vector",
    "_rowid",
    "_distance",
    "nope",
    "`n`",
    "`we ird`",
];
const OPERATORS: &[&str] = &[
    "=", "==", "!=", "<>", "<", ">", "<=", ">=", "AND", "OR", "LIKE", "ILIKE", "+", "-", "*", "/",
    "%",
];
const FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "length",
    "abs",
    "repeat",
    "lpad",
    "concat",
    "regexp_match",
    "array_has",
    "coalesce",
    "sqrt",
    "now",
    "random",
    "cast",
];

fn literal(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => rng.next().to_string(),
        1 => format!("-{}", rng.below(1000)),
        2 => format!("{}.{}e{}", rng.below(10), rng.below(100), rng.below(400)),
        3 => "NULL".into(),
        4 => "TRUE".into(),
        5 => format!("'{}'", "x".repeat(rng.below(50))),
        6 => "'it''s'".into(),
        7 => "'%\\_'".into(),
        _ => rng.below(200).to_string(),
    }
}

/// A filter: usually well-formed expressions of random depth, sometimes a
/// random token soup.
fn filter(rng: &mut Rng, depth: usize) -> String {
    if rng.chance(15) {
        let tokens: Vec<String> = (0..rng.below(30))
            .map(|_| match rng.below(6) {
                0 => rng.pick(COLUMNS).to_string(),
                1 => rng.pick(OPERATORS).to_string(),
                2 => literal(rng),
                3 => rng
                    .pick(&["(", ")", ",", ";", "'", "`", "\"", "--", "/*", "||"])
                    .to_string(),
                4 => rng.pick(FUNCTIONS).to_string(),
                _ => rng
                    .pick(&[
                        "NOT", "IS", "IN", "BETWEEN", "SELECT", "DELETE", "FROM", "CASE",
                    ])
                    .to_string(),
            })
            .collect();
        return tokens.join(" ");
    }
    if depth == 0 || rng.chance(30) {
        let column = rng.pick(COLUMNS);
        return match rng.below(6) {
            0 => format!("{column} IS NULL"),
            1 => format!(
                "{column} IN ({})",
                (0..rng.below(300))
                    .map(|_| literal(rng))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            2 => format!("{column} BETWEEN {} AND {}", literal(rng), literal(rng)),
            3 => format!("{}({column}) > {}", rng.pick(FUNCTIONS), literal(rng)),
            _ => format!("{column} {} {}", rng.pick(OPERATORS), literal(rng)),
        };
    }
    match rng.below(4) {
        0 => format!("NOT ({})", filter(rng, depth - 1)),
        1 => "(".repeat(rng.below(100)) + &filter(rng, depth - 1) + &")".repeat(rng.below(100)),
        _ => format!(
            "{} {} {}",
            filter(rng, depth - 1),
            rng.pick(&["AND", "OR"]),
            filter(rng, depth - 1)
        ),
    }
}

fn number(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => json!(u64::MAX),
        1 => json!(-1),
        2 => json!(0),
        3 => json!(1e308),
        4 => json!(-1e-320),
        5 => json!(4_294_967_295u64),
        6 => json!(rng.below(20_000)),
        7 => json!(2.5),
        _ => json!(rng.below(50) + 1),
    }
}

/// Any JSON value, nested up to `depth`.
fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => number(rng),
        3 => json!("é\u{0}\u{fffd}`'\"\\".repeat(rng.below(5))),
        4 => json!("q".repeat(rng.below(40_000))),
        5 => Value::Array((0..rng.below(8)).map(|_| value(rng, depth - 1)).collect()),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                map.insert(rng.pick(FIELDS).to_string(), value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

const FIELDS: &[&str] = &[
    "query",
    "vector",
    "mode",
    "k",
    "filter",
    "nprobes",
    "refine_factor",
    "columns",
    "version",
    "fusion",
    "weights",
    "extra",
];

fn vector(rng: &mut Rng) -> Value {
    let len = match rng.below(6) {
        0 => 0,
        1 => 383,
        2 => 385,
        3 => 70_000,
        _ => 384,
    };
    let scale = *rng.pick(&[1.0f32, 1e-30, 3e38]);
    Value::Array(
        (0..len)
            .map(|i| json!(((i as f32 * 0.37).sin() * scale)))
            .collect(),
    )
}

/// A request body: a plausible request with some fields made adversarial,
/// or bytes that are barely JSON.
fn body(rng: &mut Rng, latest: u64) -> String {
    if rng.chance(8) {
        let whole = json!({"query": "number 7", "k": 3}).to_string();
        return match rng.below(4) {
            0 => whole[..rng.below(whole.len())].to_string(),
            1 => "[".repeat(rng.below(10_000)),
            2 => String::from_utf8_lossy(
                &(0..rng.below(200))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<_>>(),
            )
            .to_string(),
            _ => String::new(),
        };
    }
    let mut map = serde_json::Map::new();
    for field in FIELDS {
        if !rng.chance(45) {
            continue;
        }
        let sane = match *field {
            "query" => json!(*rng.pick(&["number 7", "document", "", "the text of"])),
            "vector" => vector(rng),
            "mode" => json!(*rng.pick(&["vector", "text", "hybrid", "VECTOR", "both"])),
            "k" | "nprobes" | "refine_factor" => number(rng),
            "filter" => json!(filter(rng, 5)),
            "columns" => json!((0..rng.below(5))
                .map(|_| *rng.pick(COLUMNS))
                .collect::<Vec<_>>()),
            "version" => json!(*rng.pick(&[latest, latest + 1, 0, 1, u64::MAX])),
            "fusion" => json!(*rng.pick(&["rrf", "linear", "max"])),
            "weights" => json!([rng.below(3) as f64 - 1.0, 0.5]),
            _ => value(rng, 2),
        };
        let chosen = if rng.chance(15) { value(rng, 3) } else { sane };
        map.insert(field.to_string(), chosen);
    }
    Value::Object(map).to_string()
}

/// `--` right before a letter: a CLI flag (filters echoed back put spaces
/// around their tokens).
fn names_a_flag(text: &str) -> bool {
    text.match_indices("--")
        .any(|(at, _)| text[at + 2..].starts_with(|c: char| c.is_ascii_alphabetic()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_json_answers_and_the_service_lives() {
    let seed = std::env::var("LANCEFLOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1a9c_e0f1_0a7d_u64);
    let cases: usize = std::env::var("LANCEFLOW_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = tempfile::tempdir().unwrap();
    let uri = knowledge_base(dir.path());
    let secret = dir.path().to_string_lossy().to_string();
    let options = ServeOptions {
        request_timeout: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    let state = state(&uri, options).await;
    let (_, _, info) = call(&state, "GET", "/v1/info", None, None).await;
    let latest = info["dataset"]["version"].as_u64().unwrap();

    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for case in 0..cases {
        let (method, path) = *rng.pick(&[
            ("POST", "/v1/search"),
            ("POST", "/v1/search"),
            ("POST", "/v1/search"),
            ("POST", "/v1/search"),
            ("POST", "/v1/refresh"),
            ("GET", "/v1/search"),
            ("POST", "/v1/../etc/passwd"),
        ]);
        let body = body(&mut rng, latest);
        let (status, _, json) = call(&state, method, path, Some(&body), None).await;
        *statuses.entry(status.as_u16()).or_default() += 1;
        let allowed = status.is_success()
            || status.is_client_error()
            || status == StatusCode::SERVICE_UNAVAILABLE
            || status == StatusCode::GATEWAY_TIMEOUT;
        let text = json.to_string();
        let problem = if !allowed {
            Some(format!("status {status}"))
        } else if json.is_null() {
            Some("no JSON body".into())
        } else if !status.is_success() && json["error"]["message"].as_str().is_none() {
            Some("no error message".into())
        } else if !status.is_success() && names_a_flag(&text) {
            Some("names a CLI flag".into())
        } else if text.contains(&secret) {
            Some("names a server path".into())
        } else {
            None
        };
        if let Some(problem) = problem {
            let shown: String = body.chars().take(300).collect();
            failures.push(format!(
                "case {case}: {problem}: {shown} -> {status} {text:.300}"
            ));
        }
    }
    let (status, _, _) = call(&state, "GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    eprintln!(
        "fuzz: seed {seed:#x}, {cases} requests in {:.1?}, statuses {statuses:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} of {cases} failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator reaches the engine, not only the JSON parser.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > cases / 20,
        "{statuses:?}"
    );
    let refused: usize = statuses.range(400..500).map(|(_, n)| n).sum();
    assert!(refused > cases / 2, "{statuses:?}");
}
