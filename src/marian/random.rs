//! Random checkpoints: every tensor a Marian `config.json` implies, under
//! transformers' names, so that [`super::MarianModel::random`] goes through
//! the checkpoint loader. Values follow transformers' initialisation in
//! spirit (weights ~ U(-a, a) with the std of `init_std` = 0.02, biases 0,
//! layer norms 1/0); only the shapes matter for speed.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::{MarianConfig, MarianError};

/// SplitMix64: tiny, seedable and good enough for benchmark weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn next_signed_unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
}

enum Init {
    Normalish,
    Zeros,
    Ones,
}

/// Name, shape and initialisation of every tensor of a checkpoint for `cfg`.
fn specs(cfg: &MarianConfig) -> Vec<(String, Vec<usize>, Init)> {
    let d = cfg.d_model;
    let mut v = Vec::new();
    let linear = |v: &mut Vec<_>, p: String, out_dim: usize, in_dim: usize| {
        v.push((
            format!("{p}.weight"),
            vec![out_dim, in_dim],
            Init::Normalish,
        ));
        v.push((format!("{p}.bias"), vec![out_dim], Init::Zeros));
    };
    let norm = |v: &mut Vec<_>, p: String| {
        v.push((format!("{p}.weight"), vec![d], Init::Ones));
        v.push((format!("{p}.bias"), vec![d], Init::Zeros));
    };
    v.push((
        "model.shared.weight".to_string(),
        vec![cfg.vocab_size, d],
        Init::Normalish,
    ));
    if !cfg.share_encoder_decoder_embeddings {
        v.push((
            "model.decoder.embed_tokens.weight".to_string(),
            vec![cfg.decoder_vocab_size, d],
            Init::Normalish,
        ));
    }
    if !cfg.tie_word_embeddings {
        v.push((
            "lm_head.weight".to_string(),
            vec![cfg.target_vocab_size(), d],
            Init::Normalish,
        ));
    }
    for i in 0..cfg.encoder_layers {
        let p = format!("model.encoder.layers.{i}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            linear(&mut v, format!("{p}.self_attn.{proj}"), d, d);
        }
        norm(&mut v, format!("{p}.self_attn_layer_norm"));
        linear(&mut v, format!("{p}.fc1"), cfg.encoder_ffn_dim, d);
        linear(&mut v, format!("{p}.fc2"), d, cfg.encoder_ffn_dim);
        norm(&mut v, format!("{p}.final_layer_norm"));
    }
    for i in 0..cfg.decoder_layers {
        let p = format!("model.decoder.layers.{i}");
        for attn in ["self_attn", "encoder_attn"] {
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                linear(&mut v, format!("{p}.{attn}.{proj}"), d, d);
            }
            norm(&mut v, format!("{p}.{attn}_layer_norm"));
        }
        linear(&mut v, format!("{p}.fc1"), cfg.decoder_ffn_dim, d);
        linear(&mut v, format!("{p}.fc2"), d, cfg.decoder_ffn_dim);
        norm(&mut v, format!("{p}.final_layer_norm"));
    }
    v
}

/// The tensors of a random checkpoint (f32, CPU; the loader converts them).
/// Each tensor has its own stream derived from `seed` and its index, so the
/// values do not depend on how rayon schedules the work.
pub(super) fn checkpoint(
    cfg: &MarianConfig,
    seed: u64,
) -> Result<HashMap<String, Tensor>, MarianError> {
    // U(-a, a) has std a / sqrt(3).
    let a = 0.02f32 * 3f32.sqrt();
    specs(cfg)
        .into_par_iter()
        .enumerate()
        .map(|(i, (name, shape, init))| {
            let n: usize = shape.iter().product();
            let data = match init {
                Init::Zeros => vec![0f32; n],
                Init::Ones => vec![1f32; n],
                Init::Normalish => {
                    let mut rng =
                        SplitMix64::new(seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                    (0..n).map(|_| a * rng.next_signed_unit()).collect()
                }
            };
            Ok((name, Tensor::from_vec(data, shape, &Device::Cpu)?))
        })
        .collect()
}
