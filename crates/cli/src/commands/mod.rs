//! One function per subcommand, each the same four steps: arguments → a
//! typed request ([`crate::requests`]) → the engine call → its typed report,
//! rendered ([`crate::render::reports`], or JSON with `--json`).
//!
//! - [`data`]: ingest, info, versions, tags, restore, cleanup, delete,
//!   generate, convert;
//! - [`build`]: embed, add-columns, vector and scalar indexes, optimize, compact;
//! - [`search`]: vector, full-text and hybrid search, query embedding;
//! - [`service`]: `serve`.

mod build;
mod data;
mod search;
mod service;

use std::io::Write;

use anyhow::Result;

use crate::args::{Cli, Command, IndexCommand, SearchCommand};
use crate::context::Context;
use crate::ExecutorFactory;

/// Run one parsed command line.
pub async fn run(
    cli: Cli,
    out: &mut dyn Write,
    remote: Option<&dyn ExecutorFactory>,
) -> Result<()> {
    let ctx = Context::new(&cli.global, remote)?;
    match cli.command {
        Command::Pipeline {
            file,
            report,
            state,
            restart,
        } => {
            let files = crate::pipeline::PipelineFiles {
                config: &file,
                report: report.as_deref(),
                state: state.as_deref(),
                restart,
            };
            crate::pipeline::run(&ctx, &files, out).await
        }
        Command::Ingest(args) => data::ingest(&ctx, args, out).await,
        Command::Info { uri, at } => data::info(&ctx, uri.as_deref(), &at, out).await,
        Command::Versions { uri } => data::versions(&ctx, uri.as_deref(), out).await,
        Command::Tag(cmd) => data::tag(&ctx, cmd, out).await,
        Command::Restore { uri, at } => data::restore(&ctx, uri.as_deref(), &at, out).await,
        Command::Cleanup {
            uri,
            older_than,
            dry_run,
        } => data::cleanup(&ctx, uri.as_deref(), &older_than, dry_run, out).await,
        Command::Delete { uri, predicate } => {
            data::delete(&ctx, uri.as_deref(), &predicate, out).await
        }
        Command::Generate(cmd) => data::generate(&ctx, cmd, out),
        Command::Convert(cmd) => data::convert(&ctx, cmd, out),
        Command::Compact(args) => build::compact(&ctx, args, out).await,
        Command::CompactDatabase(args) => build::compact_database(&ctx, args, out).await,
        Command::Optimize(args) => build::optimize(&ctx, args, out).await,
        Command::Embed(args) => build::embed(&ctx, *args, out).await,
        Command::AddColumns(args) => build::add_columns(&ctx, args, out).await,
        Command::Index(IndexCommand::Vector(args)) => build::index_vector(&ctx, *args, out).await,
        Command::Index(IndexCommand::Scalar(args)) => build::index_scalar(&ctx, *args, out).await,
        Command::EmbedQuery { text, model } => search::embed_query(&model, text, out).await,
        Command::Search(SearchCommand::Vector(args)) => search::vector(&ctx, *args, out).await,
        Command::Search(SearchCommand::Text(args)) => search::text(&ctx, *args, out).await,
        Command::Search(SearchCommand::Hybrid(args)) => search::hybrid(&ctx, *args, out).await,
        Command::Serve(args) => service::serve(&ctx, *args, out).await,
    }
}
