//! The human text of each engine report. Every function renders one typed
//! report; `--json` serializes the same report instead.

use std::io::Write;

use anyhow::Result;
use lanceflow::compact::{CompactReport, DatabaseCompactReport};
use lanceflow::dataset::info::DatasetInfo;
use lanceflow::dataset::versions::{
    CleanupReport, DeleteReport, RestoreReport, TagInfo, VersionInfo,
};
use lanceflow::embed::EmbedReport;
use lanceflow::evolve::AddColumnsReport;
use lanceflow::index::optimize::OptimizeReport;
use lanceflow::index::scalar::ScalarIndexReport;
use lanceflow::index::vector::VectorIndexReport;
use lanceflow::ingest::IngestReport;
use lanceflow::search::hybrid::{Fusion, HybridResults};
use lanceflow::search::text::TextResults;
use lanceflow::search::SearchResults;

/// `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "2 segments merged into 1" or "2 segment(s)".
pub fn segments_text(built: usize, committed: usize) -> String {
    if built == committed {
        format!("{committed} segment(s)")
    } else {
        format!("{built} segments merged into {committed}")
    }
}

pub(crate) fn ingest(out: &mut dyn Write, report: &IngestReport) -> Result<()> {
    if report.already_applied {
        writeln!(
            out,
            "already ingested: this idempotency key was committed as version {} of {}; nothing \
             written ({} rows in total)",
            report.version, report.uri, report.total_rows
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "ingested {} rows from {} file(s) into {} as version {} ({} fragment(s), {} rows in total) in {:.2}s ({:.0} rows/s)",
        report.rows_written,
        report.inputs,
        report.uri,
        report.version,
        report.fragments_written,
        report.total_rows,
        report.seconds,
        report.rows_per_second
    )?;
    Ok(())
}

pub(crate) fn info(out: &mut dyn Write, info: &DatasetInfo) -> Result<()> {
    writeln!(out, "dataset   {}", info.uri)?;
    let latest = if info.version == info.latest_version {
        " (latest)".to_string()
    } else {
        format!(" (latest is {})", info.latest_version)
    };
    writeln!(
        out,
        "version   {}{latest}, committed {}",
        info.version, info.committed_at
    )?;
    if !info.tags.is_empty() {
        writeln!(out, "tags      {}", info.tags.join(", "))?;
    }
    writeln!(out, "rows      {}", info.rows)?;
    writeln!(out, "fragments {}", info.fragments)?;
    writeln!(out, "size      {}", human_bytes(info.size_bytes))?;
    writeln!(out, "schema")?;
    for c in &info.schema {
        let null = if c.nullable { "" } else { " not null" };
        writeln!(
            out,
            "  {:<24} {}{null}  ({})",
            c.name,
            c.data_type,
            human_bytes(c.bytes_on_disk)
        )?;
    }
    if info.indices.is_empty() {
        writeln!(out, "indices   none")?;
    } else {
        writeln!(out, "indices")?;
        for i in &info.indices {
            writeln!(
                out,
                "  {:<24} {} on {} ({} segment(s), {} rows, {} unindexed fragment(s))",
                i.name,
                i.index_type,
                i.columns.join(", "),
                i.segments,
                i.rows_indexed,
                i.unindexed_fragments
            )?;
        }
    }
    if !info.storage_options.is_empty() {
        writeln!(out, "storage")?;
        for (k, v) in &info.storage_options {
            writeln!(out, "  {k} = {v}")?;
        }
    }
    Ok(())
}

pub(crate) fn versions(out: &mut dyn Write, list: &Vec<VersionInfo>) -> Result<()> {
    writeln!(
        out,
        "{:>7}  {:<19}  {:<16}  {:>10}  {:>9}  tags",
        "version", "committed", "operation", "rows", "fragments"
    )?;
    for v in list {
        let mark = if v.latest { " (latest)" } else { "" };
        let committed: String = v
            .committed_at
            .replacen('T', " ", 1)
            .chars()
            .take(19)
            .collect();
        writeln!(
            out,
            "{:>7}  {:<19}  {:<16}  {:>10}  {:>9}  {}{mark}",
            v.version,
            committed,
            v.operation,
            v.rows,
            v.fragments,
            v.tags.join(", ")
        )?;
    }
    Ok(())
}

pub(crate) fn tag_created(out: &mut dyn Write, t: &TagInfo) -> Result<()> {
    writeln!(out, "tag '{}' → version {}", t.name, t.version)?;
    Ok(())
}

pub(crate) fn tags(out: &mut dyn Write, tags: &Vec<TagInfo>) -> Result<()> {
    for t in tags {
        writeln!(out, "{}\t{}", t.name, t.version)?;
    }
    Ok(())
}

pub(crate) fn tag_deleted(out: &mut dyn Write, t: &TagInfo) -> Result<()> {
    writeln!(out, "deleted tag '{}' (was version {})", t.name, t.version)?;
    Ok(())
}

pub(crate) fn restore(out: &mut dyn Write, report: &RestoreReport) -> Result<()> {
    writeln!(
        out,
        "restored version {} as new version {}",
        report.restored, report.new_version
    )?;
    Ok(())
}

pub(crate) fn cleanup(out: &mut dyn Write, report: &CleanupReport, dry_run: bool) -> Result<()> {
    let verb = if dry_run { "would remove" } else { "removed" };
    writeln!(
        out,
        "{verb} {} old version(s), {} data file(s), {} index file(s): {} freed",
        report.old_versions,
        report.data_files_removed,
        report.index_files_removed,
        human_bytes(report.bytes_removed)
    )?;
    Ok(())
}

pub(crate) fn delete(out: &mut dyn Write, report: &DeleteReport, predicate: &str) -> Result<()> {
    writeln!(
        out,
        "deleted {} row(s) where {predicate}; {} row(s) left, version {}",
        report.rows_deleted, report.rows, report.version
    )?;
    Ok(())
}

pub(crate) fn add_columns(out: &mut dyn Write, report: &AddColumnsReport) -> Result<()> {
    writeln!(
        out,
        "added {} to {}: {} rows in {} fragment(s){}, {} task(s), version {} in {:.2}s",
        report.columns.join(", "),
        report.uri,
        report.rows,
        report.fragments,
        if report.fragments_null > 0 {
            format!(" ({} more read null)", report.fragments_null)
        } else {
            String::new()
        },
        report.tasks,
        report.version,
        report.seconds
    )?;
    Ok(())
}

pub(crate) fn compact(out: &mut dyn Write, report: &CompactReport) -> Result<()> {
    if !report.compacted {
        writeln!(
            out,
            "nothing to compact: {} fragment(s) in version {} already meet the target",
            report.fragments_before, report.version
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "compacted {}: {} → {} fragments ({} replaced by {}), {} rows rewritten in {} task(s), \
         version {} in {:.2}s (rewrite {:.2}s, commit {:.2}s)",
        report.uri,
        report.fragments_before,
        report.fragments_after,
        report.fragments_removed,
        report.fragments_added,
        report.rows_rewritten,
        report.tasks,
        report.version,
        report.seconds,
        report.rewrite_seconds,
        report.commit_seconds
    )?;
    Ok(())
}

pub(crate) fn compact_database(out: &mut dyn Write, report: &DatabaseCompactReport) -> Result<()> {
    let scope = if report.database.is_empty() {
        report.namespace.clone()
    } else {
        format!("{} / {}", report.namespace, report.database.join("."))
    };
    writeln!(out, "{} table(s) in {scope}:", report.tables.len())?;
    for table in &report.tables {
        write!(out, "  {}: ", table.table_id.join("."))?;
        compact(out, &table.report)?;
    }
    writeln!(out, "done in {:.2}s", report.seconds)?;
    Ok(())
}

pub(crate) fn optimize(out: &mut dyn Write, report: &OptimizeReport) -> Result<()> {
    if report.optimized {
        writeln!(
            out,
            "optimized {}: {} rows indexed (summed over {} index(es)) by {} build and {} merge \
             task(s), version {} in {:.2}s (build {:.2}s, merge {:.2}s, commit {:.2}s)",
            report.uri,
            report.rows_indexed,
            report.indexes.len(),
            report.build_tasks,
            report.merge_tasks,
            report.version,
            report.seconds,
            report.build_seconds,
            report.merge_seconds,
            report.commit_seconds
        )?;
    } else {
        writeln!(
            out,
            "nothing to optimize in version {}: every index covers every fragment",
            report.version
        )?;
    }
    for i in &report.indexes {
        writeln!(
            out,
            "  {:<24} {:<10} segments {} → {}, unindexed fragments {} → {}",
            i.name,
            i.index_type,
            i.segments_before,
            i.segments_after,
            i.unindexed_fragments_before,
            i.unindexed_fragments_after
        )?;
    }
    Ok(())
}

pub(crate) fn embed(out: &mut dyn Write, report: &EmbedReport) -> Result<()> {
    let resumed = if report.resumed_fragments > 0 {
        format!(
            ", {} fragment(s) reused from an interrupted run",
            report.resumed_fragments
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "embedded {} rows ({} tokens) into '{}' ({}-d) of {} as version {} in {:.2}s ({:.0} rows/s, {} task(s){resumed})",
        report.rows,
        report.tokens,
        report.column,
        report.dim,
        report.uri,
        report.version,
        report.seconds,
        report.rows_per_second,
        report.tasks
    )?;
    Ok(())
}

pub(crate) fn scalar_index(out: &mut dyn Write, report: &ScalarIndexReport) -> Result<()> {
    writeln!(
        out,
        "built {} index '{}' on '{}' of {}: {} rows in {} fragment(s), {}, version {} \
         in {:.2}s (build {:.2}s, commit {:.2}s)",
        report.index_type.as_str(),
        report.name,
        report.column,
        report.uri,
        report.rows_indexed,
        report.fragments,
        segments_text(report.segments_built, report.segments),
        report.version,
        report.seconds,
        report.build_seconds,
        report.commit_seconds
    )?;
    Ok(())
}

pub(crate) fn vector_index(out: &mut dyn Write, report: &VectorIndexReport) -> Result<()> {
    let pq = report
        .sub_vectors
        .map(|m| format!(", {m} sub-vectors"))
        .unwrap_or_default();
    let trainer = report
        .trained_by
        .map(|t| format!(" {}", t.as_str()))
        .unwrap_or_default();
    writeln!(
        out,
        "built {} index '{}' on '{}' ({} partitions{pq}, {}) over {} rows, {}, as version {} in {:.2}s (train {:.2}s{trainer}, build {:.2}s, commit {:.2}s)",
        report.index_type.as_str(),
        report.name,
        report.column,
        report.partitions,
        report.metric.as_str(),
        report.rows_indexed,
        segments_text(report.segments_built, report.segments),
        report.version,
        report.seconds,
        report.train_seconds,
        report.build_seconds,
        report.commit_seconds
    )?;
    Ok(())
}

pub(crate) fn text_results(out: &mut dyn Write, results: &TextResults) -> Result<()> {
    writeln!(
        out,
        "version {}, full-text over {}, {:.1} ms",
        results.version,
        results.searched.join(", "),
        results.seconds * 1000.0
    )?;
    if results.hits.is_empty() {
        writeln!(out, "  (no hits)")?;
    }
    for (rank, hit) in results.hits.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}. {:.4}  row {}  {}",
            rank + 1,
            hit.score,
            hit.row_id,
            fields_line(&hit.fields)
        )?;
    }
    Ok(())
}

fn fields_line(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", short_value(v)))
        .collect::<Vec<_>>()
        .join("  ")
}

pub(crate) fn hybrid_results(
    out: &mut dyn Write,
    results: &HybridResults,
    fusion: Fusion,
    timings: bool,
) -> Result<()> {
    writeln!(
        out,
        "version {}, hybrid ({}), {:.1} ms",
        results.version,
        fusion.as_str(),
        results.seconds * 1000.0
    )?;
    if timings {
        writeln!(
            out,
            "  legs (concurrent): vector {:.1} ms, text {:.1} ms",
            results.vector_seconds * 1000.0,
            results.text_seconds * 1000.0
        )?;
    }
    if results.hits.is_empty() {
        writeln!(out, "  (no hits)")?;
    }
    let rank = |r: Option<usize>| r.map_or("-".to_string(), |r| r.to_string());
    for (i, hit) in results.hits.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}. {:.5}  row {}  (vector #{}, text #{})  {}",
            i + 1,
            hit.score,
            hit.row_id,
            rank(hit.vector_rank),
            rank(hit.text_rank),
            fields_line(&hit.fields)
        )?;
    }
    Ok(())
}

pub(crate) fn search_results(out: &mut dyn Write, results: &SearchResults) -> Result<()> {
    let how = match (&results.index, results.tasks) {
        (Some(name), 0) => format!("index '{name}'"),
        (Some(name), n) => format!("index '{name}', {n} task(s)"),
        (None, 0) => "flat scan".to_string(),
        (None, n) => format!("flat scan, {n} task(s)"),
    };
    writeln!(
        out,
        "version {}, {} metric, {how}, {:.1} ms",
        results.version,
        results.metric.as_str(),
        results.seconds * 1000.0
    )?;
    for query in &results.results {
        if results.results.len() > 1 {
            writeln!(out, "query {}:", query.query)?;
        }
        if query.hits.is_empty() {
            writeln!(out, "  (no hits)")?;
        }
        for (rank, hit) in query.hits.iter().enumerate() {
            let fields: Vec<String> = hit
                .fields
                .iter()
                .map(|(k, v)| format!("{k}={}", short_value(v)))
                .collect();
            writeln!(
                out,
                "  {:>3}. {:.6}  row {}  {}",
                rank + 1,
                hit.distance,
                hit.row_id,
                fields.join("  ")
            )?;
        }
    }
    Ok(())
}

fn short_value(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}
