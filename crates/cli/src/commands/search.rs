//! Searches: vector (in-process or distributed), full-text, hybrid, and the
//! embedding of query texts.

use std::io::Write;

use anyhow::Result;

use crate::args::{HybridSearchArgs, ModelArgs, TextSearchArgs, VectorSearchArgs};
use crate::context::{print_json, Context};
use crate::query_embedding::embed_texts;
use crate::render::reports;
use crate::requests::{self, version_spec};

/// `lanceflow embed-query`: one text's vector as a JSON array.
pub(super) async fn embed_query(
    model: &ModelArgs,
    text: String,
    out: &mut dyn Write,
) -> Result<()> {
    let vector = embed_texts(model, vec![text]).await?.data;
    serde_json::to_writer(&mut *out, &vector)?;
    writeln!(out)?;
    Ok(())
}

pub(super) async fn vector(
    ctx: &Context,
    args: VectorSearchArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let location = ctx.location(args.scope.uri.as_deref()).await?;
    let at = version_spec(&args.scope.at);
    let queries = match (&args.query_vector, args.query_row) {
        (Some(text), _) => lanceflow::vectors::load_queries(text)?,
        (None, None) if !args.query_text.is_empty() => {
            embed_texts(&args.model, args.query_text.clone()).await?
        }
        (None, Some(row)) => {
            let column = args.vector.column.as_deref();
            lanceflow::search::query_from_row(&location, at.as_ref(), column, row).await?
        }
        (None, None) => {
            return Err(lanceflow::Error::InvalidInput(
                "give --query-vector FILE|JSON, --query-text TEXT or --query-row ROW".into(),
            )
            .into())
        }
    };
    let request = requests::vector_search(&args, queries);
    if args.analyze_plan {
        let executor = ctx.executor();
        let analysis = lanceflow::search::analyze_vector_search(
            &location,
            at.as_ref(),
            &request,
            args.distributed
                .then_some(&executor as &dyn lanceflow::spine::Executor),
        )
        .await?;
        if ctx.json {
            return print_json(out, &analysis);
        }
        writeln!(out, "{}", analysis.text())?;
        return Ok(());
    }
    let results = if args.distributed {
        lanceflow::search::search_vectors_distributed(
            &location,
            at.as_ref(),
            &request,
            &ctx.executor(),
        )
        .await?
    } else {
        lanceflow::search::search_vectors(&location, at.as_ref(), &request, ctx.workers).await?
    };
    if ctx.json {
        return print_json(out, &serde_json::json!({ "results": results.results }));
    }
    reports::search_results(out, &results)
}

pub(super) async fn text(ctx: &Context, args: TextSearchArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(args.scope.uri.as_deref()).await?;
    let at = version_spec(&args.scope.at);
    let request = requests::text_search(&args);
    let results = lanceflow::search::text::search_text(&location, at.as_ref(), &request).await?;
    if ctx.json {
        return print_json(
            out,
            &serde_json::json!({ "results": [{ "query": 0, "hits": results.hits }] }),
        );
    }
    reports::text_results(out, &results)
}

pub(super) async fn hybrid(
    ctx: &Context,
    args: HybridSearchArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let location = ctx.location(args.scope.uri.as_deref()).await?;
    let at = version_spec(&args.scope.at);
    // Before loading the model: an empty query fails at once.
    lanceflow::search::text::check_query(&args.query_text)?;
    let query = match &args.query_vector {
        Some(v) => lanceflow::vectors::load_queries(v)?,
        None => embed_texts(&args.model, vec![args.query_text.clone()]).await?,
    };
    let request = requests::hybrid_search(&args, query);
    let results =
        lanceflow::search::hybrid::search_hybrid(&location, at.as_ref(), &request).await?;
    if ctx.json {
        let mut value = serde_json::json!({ "results": [{ "query": 0, "hits": results.hits }] });
        if args.timings {
            value["timings"] = serde_json::json!({
                "vector_seconds": results.vector_seconds,
                "text_seconds": results.text_seconds,
                "seconds": results.seconds,
            });
        }
        return print_json(out, &value);
    }
    reports::hybrid_results(out, &results, args.fusion, args.timings)
}
