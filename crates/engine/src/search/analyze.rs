//! `analyze_plan` for vector searches: lance's plan of the first query, run
//! with metrics, once in-process or once per planned task.
//!
//! The in-process section analyses lance's plan even where the search itself
//! would take the direct path (which has no plan); the section says so. The
//! distributed sections are the plan's tasks, each analysed by a worker on
//! the pinned version: a segment task's scan of its segments, a flat task's
//! exact scan of its fragments.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::progress::NoProgress;
use crate::spine::{run_tasks, Executor};
use crate::storage::{Location, VersionSpec};

use super::distributed::{distributed_plan, SearchPart, VectorSearchOp};
use super::query::VectorSearchRequest;
use super::vector::{planned_scanner, prepare};

/// One analysed plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSection {
    /// `in-process`, `index segments` or `flat scan`.
    pub kind: String,
    /// The index segments searched (segment tasks).
    pub segments: Vec<String>,
    /// The fragments scanned exactly (flat tasks).
    pub fragments: Vec<u32>,
    /// In-process only: whether the search itself takes the direct path
    /// (the index's partitions searched without this plan).
    pub direct: bool,
    /// lance's `analyze_plan` output: the plan with its metrics.
    pub analysis: String,
}

/// The analysis of a search: one section in-process, one per task distributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanAnalysis {
    /// The version analysed.
    pub version: u64,
    /// In plan order.
    pub sections: Vec<PlanSection>,
}

impl PlanAnalysis {
    /// The sections as text, one headed block each (what lance-ray's
    /// `vector_search(analyze_plan=True)` returns).
    pub fn text(&self) -> String {
        self.sections
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut head = format!("== vector search plan {i} ({}) ==", s.kind);
                if !s.segments.is_empty() {
                    head.push_str(&format!("\nindex segments: {}", s.segments.join(", ")));
                }
                if !s.fragments.is_empty() {
                    head.push_str(&format!(
                        "\nfragments: {}",
                        crate::dataset::fragments::fragment_ranges(&s.fragments)
                    ));
                }
                if s.direct {
                    head.push_str(
                        "\n(the search itself takes the direct path: the index's partitions \
                         are searched without this plan)",
                    );
                }
                format!("{head}\n{}", s.analysis.trim_end())
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// Analyse the plan of `request`'s first query: in this process, or as the
/// distributed search's tasks on `executor`.
pub async fn analyze_vector_search(
    location: &Location,
    at: Option<&VersionSpec>,
    request: &VectorSearchRequest,
    executor: Option<&dyn Executor>,
) -> Result<PlanAnalysis> {
    let dataset = Arc::new(location.open(at).await?);
    let version = dataset.version().version;
    let prepared = prepare(location, dataset, request, executor.is_some()).await?;
    let Some(executor) = executor else {
        let analysis = planned_scanner(location, &prepared, request, request.queries.row(0))?
            .analyze_plan()
            .await
            .map_err(|e| location.lance_error("analyze the search plan", e))?;
        return Ok(PlanAnalysis {
            version,
            sections: vec![PlanSection {
                kind: "in-process".into(),
                segments: Vec::new(),
                fragments: Vec::new(),
                direct: prepared.direct.is_some(),
                analysis,
            }],
        });
    };
    let mut tasks = distributed_plan(location, &prepared, request, executor.parallelism()).await?;
    for task in &mut tasks {
        task.analyze = true;
    }
    let outputs = if tasks.is_empty() {
        Vec::new()
    } else {
        run_tasks::<VectorSearchOp>(executor, &tasks, &NoProgress).await?
    };
    let sections = tasks
        .iter()
        .zip(outputs)
        .map(|(task, output)| {
            let analysis = output
                .analysis
                .ok_or_else(|| Error::Internal("an analyze task returned no analysis".into()))?;
            let (kind, segments, fragments) = match &task.part {
                SearchPart::Segments { uuids } => ("index segments", uuids.clone(), Vec::new()),
                SearchPart::Flat { fragments } => ("flat scan", Vec::new(), fragments.clone()),
            };
            Ok(PlanSection {
                kind: kind.into(),
                segments,
                fragments,
                direct: false,
                analysis,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PlanAnalysis { version, sections })
}
