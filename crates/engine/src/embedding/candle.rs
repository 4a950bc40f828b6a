//! The reference encoder on candle's CPU tensors: BERT as the model's config
//! describes it, and its conversion to the native encoder's plain weights.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, D};
use serde::Deserialize;

use crate::embedding::native::{Dense, FastBert, FastLayer, Norm};

/// The parts of a BERT `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub(crate) vocab_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_hidden_layers: usize,
    pub(crate) num_attention_heads: usize,
    pub(crate) intermediate_size: usize,
    pub(crate) max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub(crate) layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub(crate) hidden_act: String,
}

pub(crate) fn default_eps() -> f64 {
    1e-12
}

pub(crate) fn default_act() -> String {
    "gelu".into()
}

pub(crate) fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl Linear {
    pub(crate) fn to_native(&self) -> candle_core::Result<Dense> {
        let (inp, out) = self.wt.dims2()?;
        Ok(Dense {
            wt: flat(&self.wt)?,
            bias: flat(&self.bias)?,
            inp,
            out,
        })
    }
}

impl LayerNorm {
    pub(crate) fn to_native(&self) -> candle_core::Result<Norm> {
        Ok(Norm {
            weight: flat(&self.weight)?,
            bias: flat(&self.bias)?,
            eps: self.eps,
        })
    }
}

impl Bert {
    /// The same weights as plain vectors for the native encoder.
    pub(crate) fn to_native(&self, c: &BertConfig) -> std::result::Result<FastBert, String> {
        let convert = || -> candle_core::Result<FastBert> {
            let layers = self
                .layers
                .iter()
                .map(|l| {
                    Ok(FastLayer {
                        qkv: l.qkv.to_native()?,
                        attn_out: l.attn_out.to_native()?,
                        attn_norm: l.attn_norm.to_native()?,
                        inter: l.inter.to_native()?,
                        out: l.out.to_native()?,
                        out_norm: l.out_norm.to_native()?,
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(FastBert {
                word: flat(&self.word)?,
                position: flat(&self.position)?,
                token_type: flat(&self.token_type)?,
                emb_norm: self.emb_norm.to_native()?,
                layers,
                hidden: self.hidden,
                heads: self.heads,
                vocab: c.vocab_size,
                max_positions: c.max_position_embeddings,
            })
        };
        convert().map_err(|e| e.to_string())
    }
}

pub(crate) struct Linear {
    /// Weight, transposed once at load: [in, out].
    pub(crate) wt: Tensor,
    pub(crate) bias: Tensor,
}

impl Linear {
    pub(crate) fn load(
        t: &mut HashMap<String, Tensor>,
        name: &str,
        inp: usize,
        out: usize,
    ) -> candle_core::Result<Self> {
        let w = take(t, &format!("{name}.weight"), &[out, inp])?;
        let bias = take(t, &format!("{name}.bias"), &[out])?;
        Ok(Self {
            wt: w.t()?.contiguous()?,
            bias,
        })
    }

    /// x: [n, in] → [n, out]
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.wt)?.broadcast_add(&self.bias)
    }
}

pub(crate) struct LayerNorm {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) eps: f32,
}

impl LayerNorm {
    pub(crate) fn load(
        t: &mut HashMap<String, Tensor>,
        name: &str,
        size: usize,
        eps: f64,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            weight: take(t, &format!("{name}.weight"), &[size])?,
            bias: take(t, &format!("{name}.bias"), &[size])?,
            eps: eps as f32,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

pub(crate) struct Layer {
    pub(crate) qkv: Linear,
    pub(crate) attn_out: Linear,
    pub(crate) attn_norm: LayerNorm,
    pub(crate) inter: Linear,
    pub(crate) out: Linear,
    pub(crate) out_norm: LayerNorm,
}

pub(crate) struct Bert {
    pub(crate) word: Tensor,
    pub(crate) position: Tensor,
    pub(crate) token_type: Tensor,
    pub(crate) emb_norm: LayerNorm,
    pub(crate) layers: Vec<Layer>,
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
}

pub(crate) fn take(
    t: &mut HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
) -> candle_core::Result<Tensor> {
    // Checkpoints saved from BertForX carry a `bert.` prefix.
    let tensor = match t.remove(name) {
        Some(x) => x,
        None => t
            .remove(&format!("bert.{name}"))
            .ok_or_else(|| candle_core::Error::Msg(format!("tensor {name} is missing")))?,
    };
    if tensor.dims() != shape {
        return Err(candle_core::Error::Msg(format!(
            "tensor {name} has shape {:?}, config.json implies {:?} (weights and config do not \
             belong together)",
            tensor.dims(),
            shape
        )));
    }
    tensor.to_dtype(DType::F32)
}

impl Bert {
    pub(crate) fn new(
        c: &BertConfig,
        mut t: HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        let h = c.hidden_size;
        let build = |t: &mut HashMap<String, Tensor>| -> candle_core::Result<Self> {
            let word = take(t, "embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
            let position = take(
                t,
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?;
            let token_type =
                take(t, "embeddings.token_type_embeddings.weight", &[2, h])?.narrow(0, 0, 1)?;
            let emb_norm = LayerNorm::load(t, "embeddings.LayerNorm", h, c.layer_norm_eps)?;
            let mut layers = Vec::with_capacity(c.num_hidden_layers);
            for i in 0..c.num_hidden_layers {
                let p = format!("encoder.layer.{i}");
                let q = Linear::load(t, &format!("{p}.attention.self.query"), h, h)?;
                let k = Linear::load(t, &format!("{p}.attention.self.key"), h, h)?;
                let v = Linear::load(t, &format!("{p}.attention.self.value"), h, h)?;
                // One GEMM for Q, K and V: [in, 3·out].
                let qkv = Linear {
                    wt: Tensor::cat(&[&q.wt, &k.wt, &v.wt], 1)?.contiguous()?,
                    bias: Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0)?,
                };
                layers.push(Layer {
                    qkv,
                    attn_out: Linear::load(t, &format!("{p}.attention.output.dense"), h, h)?,
                    attn_norm: LayerNorm::load(
                        t,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        c.layer_norm_eps,
                    )?,
                    inter: Linear::load(
                        t,
                        &format!("{p}.intermediate.dense"),
                        h,
                        c.intermediate_size,
                    )?,
                    out: Linear::load(t, &format!("{p}.output.dense"), c.intermediate_size, h)?,
                    out_norm: LayerNorm::load(
                        t,
                        &format!("{p}.output.LayerNorm"),
                        h,
                        c.layer_norm_eps,
                    )?,
                });
            }
            Ok(Self {
                word,
                position,
                token_type,
                emb_norm,
                layers,
                hidden: h,
                heads: c.num_attention_heads,
            })
        };
        build(&mut t).map_err(|e| e.to_string())
    }

    /// Embed one batch of token id sequences; returns `batch.len() × hidden`
    /// unit vectors, row-major.
    pub(crate) fn embed_batch(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<f32>> {
        let b = batch.len();
        let s = batch.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let h = self.hidden;
        let heads = self.heads;
        let hd = h / heads;
        let dev = Device::Cpu;

        let mut ids = vec![0u32; b * s];
        let mut mask = vec![0f32; b * s];
        for (r, seq) in batch.iter().enumerate() {
            ids[r * s..r * s + seq.len()].copy_from_slice(seq);
            mask[r * s..r * s + seq.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, b * s, &dev)?;
        let mask_t = Tensor::from_vec(mask.clone(), (b, s), &dev)?;
        // Additive attention bias: 0 for tokens, a large negative for padding.
        let bias = ((mask_t.clone() - 1.0)? * 1e9)?.reshape((b, 1, 1, s))?;

        // Embeddings: word + position + token type 0.
        let word = self.word.index_select(&ids, 0)?.reshape((b, s, h))?;
        let pos = self.position.narrow(0, 0, s)?;
        let x = word
            .broadcast_add(&pos)?
            .broadcast_add(&self.token_type)?
            .reshape((b * s, h))?;
        let mut x = self.emb_norm.forward(&x)?;
        let scale = 1.0 / (hd as f64).sqrt();

        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?.reshape((b, s, 3, heads, hd))?;
            let q = qkv
                .narrow(2, 0, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let k = qkv
                .narrow(2, 1, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let v = qkv
                .narrow(2, 2, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            // [b, heads, s, s]
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            // [b, heads, s, hd] → [b·s, h]
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * s, h))?;
            let attn = layer
                .attn_norm
                .forward(&(layer.attn_out.forward(&ctx)? + &x)?)?;
            let inter = layer.inter.forward(&attn)?.gelu_erf()?;
            x = layer
                .out_norm
                .forward(&(layer.out.forward(&inter)? + &attn)?)?;
        }

        // Mean pooling over real tokens, then L2 normalisation.
        let x = x.reshape((b, s, h))?;
        let summed = x.broadcast_mul(&mask_t.reshape((b, s, 1))?)?.sum(1)?;
        let counts = mask_t.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.flatten_all()?.to_vec1::<f32>()
    }
}
