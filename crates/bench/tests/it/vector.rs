//! `lanceflow-bench vector`: recall, rounds, and pylance's co-process.

use crate::common::*;

/// `lanceflow-bench vector` end to end on a small generated set: recall against brute
/// force, and the rounds interleaved with pylance's co-process (installed by
/// scripts/setup.sh) reporting pylance's own figures round by round.
#[test]
fn bench_vector_interleaves_rounds_with_pylance() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_str().unwrap();
    let out = ok(&run(&[
        "-q",
        "--workers",
        "2",
        "--json",
        "vector",
        "--rows",
        "3000",
        "--dim",
        "32",
        "--clusters",
        "30",
        "--queries",
        "20",
        "--rounds",
        "3",
        "--scratch",
        scratch,
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["recall_at_k"].as_f64().unwrap() >= 0.9, "{report}");
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "{report}");
    let pylance = &report["pylance"];
    assert!(pylance.is_object(), "pylance reference missing: {report}");
    assert!(pylance["recall_at_k"].as_f64().unwrap() >= 0.8, "{report}");
    assert!(pylance["build_seconds"].as_f64().unwrap() > 0.0, "{report}");
    for r in rounds {
        assert!(r["lanceflow_p50_ms"].as_f64().unwrap() > 0.0, "{report}");
        assert!(r["pylance_p50_ms"].as_f64().unwrap() > 0.0, "{report}");
        assert!(
            r["pylance_on_lanceflow_index_p50_ms"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
    let ratio = pylance["p50_ratio_median"].as_f64().unwrap();
    assert!(ratio.is_finite() && ratio > 0.0, "{report}");

    // Without the reference: the rounds alone.
    let out = ok(&run(&[
        "-q",
        "--json",
        "vector",
        "--rows",
        "2000",
        "--dim",
        "16",
        "--queries",
        "10",
        "--rounds",
        "2",
        "--no-reference",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rounds"].as_array().unwrap().len(), 2, "{report}");
    assert!(report.get("pylance").is_none(), "{report}");
}
