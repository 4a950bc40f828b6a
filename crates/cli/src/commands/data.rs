//! Data and versions: ingest, info, versions, tags, restore, cleanup,
//! delete; demo data generators.

use std::io::Write;

use anyhow::Result;
use lanceflow::dataset::{info, versions};

use crate::args::{ConvertCommand, GenerateCommand, IngestArgs, TagCommand, VersionArgs};
use crate::context::Context;
use crate::render::reports;
use crate::requests::{self, version_spec};

pub(super) async fn ingest(ctx: &Context, args: IngestArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.write_location(args.to.as_deref()).await?;
    let request = requests::ingest(&args);
    let progress = ctx.progress();
    let report =
        lanceflow::ingest::ingest(&location, &request, &ctx.executor(), progress.as_ref()).await?;
    ctx.emit(out, &report, reports::ingest)
}

pub(super) async fn info(
    ctx: &Context,
    uri: Option<&str>,
    at: &VersionArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let report = info::info(&ctx.location(uri).await?, version_spec(at).as_ref()).await?;
    ctx.emit(out, &report, reports::info)
}

pub(super) async fn versions(ctx: &Context, uri: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let list = versions::versions(&ctx.location(uri).await?).await?;
    ctx.emit(out, &list, reports::versions)
}

pub(super) async fn tag(ctx: &Context, cmd: TagCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        TagCommand::Create { uri, name, version } => {
            let tag =
                versions::create_tag(&ctx.location(uri.as_deref()).await?, &name, version).await?;
            ctx.emit(out, &tag, reports::tag_created)
        }
        TagCommand::List { uri } => {
            let tags = versions::list_tags(&ctx.location(uri.as_deref()).await?).await?;
            ctx.emit(out, &tags, reports::tags)
        }
        TagCommand::Delete { uri, name } => {
            let tag = versions::delete_tag(&ctx.location(uri.as_deref()).await?, &name).await?;
            ctx.emit(out, &tag, reports::tag_deleted)
        }
    }
}

pub(super) async fn restore(
    ctx: &Context,
    uri: Option<&str>,
    at: &VersionArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(spec) = version_spec(at) else {
        return Err(lanceflow::Error::InvalidInput(
            "say which version to restore: --version N or --tag T".into(),
        )
        .into());
    };
    let report = versions::restore(&ctx.location(uri).await?, &spec).await?;
    ctx.emit(out, &report, reports::restore)
}

pub(super) async fn cleanup(
    ctx: &Context,
    uri: Option<&str>,
    older_than: &str,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let age = versions::parse_age(older_than)?;
    let report = versions::cleanup(&ctx.location(uri).await?, age, dry_run).await?;
    ctx.emit(out, &report, |out, r| reports::cleanup(out, r, dry_run))
}

pub(super) async fn delete(
    ctx: &Context,
    uri: Option<&str>,
    predicate: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let report = versions::delete_rows(&ctx.location(uri).await?, predicate).await?;
    ctx.emit(out, &report, |out, r| reports::delete(out, r, predicate))
}

pub(super) fn generate(ctx: &Context, cmd: GenerateCommand, out: &mut dyn Write) -> Result<()> {
    let GenerateCommand::Vectors {
        out: file,
        rows,
        dim,
        clusters,
        seed,
    } = cmd;
    let spec = lanceflow::vectors::ClusteredSpec::new(rows, dim, clusters, seed);
    let (data, labels) = lanceflow::vectors::clustered_vectors(&spec)?;
    lanceflow::vectors::write_generated_parquet(&file, &data, &labels)?;
    let report = serde_json::json!({"rows": rows, "dim": dim, "out": file});
    ctx.emit(out, &report, |out, _| {
        writeln!(
            out,
            "wrote {rows} clustered {dim}-d unit vectors ({clusters} clusters) to {}",
            file.display()
        )?;
        Ok(())
    })
}

pub(super) fn convert(ctx: &Context, cmd: ConvertCommand, out: &mut dyn Write) -> Result<()> {
    let ConvertCommand::Wordnet {
        dict,
        out: file,
        sample,
    } = cmd;
    let rows = lanceflow::corpus::convert_wordnet(&dict, &file, sample)?;
    let report = serde_json::json!({"rows": rows, "out": file});
    ctx.emit(out, &report, |out, _| {
        writeln!(out, "wrote {rows} synsets to {}", file.display())?;
        Ok(())
    })
}
