//! Query texts to vectors with the embedding model, off the async runtime
//! (the model loads once per process).

use anyhow::Result;
use lanceflow::embedding::EmbedderOptions;
use lanceflow::vectors::Matrix;

use crate::args::ModelArgs;

/// Embed texts with the model `model` names, off the async runtime (the
/// model loads once per process).
pub async fn embed_texts(model: &ModelArgs, texts: Vec<String>) -> Result<Matrix> {
    embed_with(model.options(), texts).await
}

/// Embed texts with the model `options` name, off the async runtime.
pub async fn embed_with(options: EmbedderOptions, texts: Vec<String>) -> Result<Matrix> {
    tokio::task::spawn_blocking(move || -> Result<Matrix> {
        let embedder = lanceflow::embedding::shared_embedder(&options)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(embedder.embed(&refs)?)
    })
    .await?
}
