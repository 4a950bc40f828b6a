//! Writes that build on a dataset: embeddings, vector and scalar indexes,
//! new columns, index optimisation, compaction.

use std::io::Write;

use anyhow::Result;

use crate::args::{
    AddColumnsArgs, CompactArgs, CompactDatabaseArgs, EmbedArgs, OptimizeArgs, ScalarIndexArgs,
    VectorIndexArgs,
};
use lanceflow::namespace::{Namespace, TableId};

use crate::context::Context;
use crate::render::reports;
use crate::requests;

pub(super) async fn embed(ctx: &Context, args: EmbedArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(args.uri.as_deref()).await?;
    let output = args
        .to
        .as_deref()
        .map(|uri| ctx.uri_location(uri))
        .transpose()?;
    let request = requests::embed(&args, output);
    let progress = ctx.progress();
    let report =
        lanceflow::embed::embed(&location, &request, &ctx.executor(), progress.as_ref()).await?;
    ctx.emit(out, &report, reports::embed)
}

pub(super) async fn add_columns(
    ctx: &Context,
    args: AddColumnsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let location = ctx.location(args.uri.as_deref()).await?;
    let request = requests::add_columns(&args)?;
    let progress = ctx.progress();
    let report =
        lanceflow::evolve::add_columns(&location, &request, &ctx.executor(), progress.as_ref())
            .await?;
    ctx.emit(out, &report, reports::add_columns)
}

pub(super) async fn index_vector(
    ctx: &Context,
    args: VectorIndexArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let location = ctx.location(args.uri.as_deref()).await?;
    let rabitq_model = match &args.rabitq_model {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            lanceflow::Error::InvalidInput(format!(
                "cannot read the RaBitQ model '{}': {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let request = requests::vector_index(&args, rabitq_model);
    let progress = ctx.progress();
    let report = lanceflow::index::vector::create_vector_index(
        &location,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    ctx.emit(out, &report, reports::vector_index)
}

pub(super) async fn index_scalar(
    ctx: &Context,
    args: ScalarIndexArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let location = ctx.location(args.uri.as_deref()).await?;
    let request = requests::scalar_index(&args);
    let progress = ctx.progress();
    let report = lanceflow::index::scalar::create_scalar_index(
        &location,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    ctx.emit(out, &report, reports::scalar_index)
}

pub(super) async fn optimize(ctx: &Context, args: OptimizeArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(args.uri.as_deref()).await?;
    let request = requests::optimize(&args);
    let progress = ctx.progress();
    let report = lanceflow::index::optimize::optimize(
        &location,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    ctx.emit(out, &report, reports::optimize)
}

pub(super) async fn compact(ctx: &Context, args: CompactArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(args.uri.as_deref()).await?;
    let request = requests::compact(&args.options);
    let progress = ctx.progress();
    let report =
        lanceflow::compact::compact(&location, &request, &ctx.executor(), progress.as_ref())
            .await?;
    ctx.emit(out, &report, reports::compact)
}

pub(super) async fn compact_database(
    ctx: &Context,
    args: CompactDatabaseArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let request = requests::compact(&args.options);
    let database = match &args.database {
        Some(id) => TableId::parse(id)?.parts().to_vec(),
        None => Vec::new(),
    };
    let namespace = Namespace::connect(ctx.namespace()?, &ctx.options).await?;
    let progress = ctx.progress();
    let report = lanceflow::compact::compact_database(
        &namespace,
        &database,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    ctx.emit(out, &report, reports::compact_database)
}
