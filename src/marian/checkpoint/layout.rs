//! The one table of a Marian checkpoint's tensors: for a configuration, every
//! tensor's names (transformers' own first, then the aliases other versions
//! wrote), its shape, and what fills it when the checkpoint may lack it or
//! when a random checkpoint is built. The table has the network's shape
//! ([`Layout`] of [`EncoderLayer`]s, [`DecoderLayer`]s, [`Embeddings`]); the
//! same generic structs, mapped over a [`super::Checkpoint`], carry the host
//! weights, so no tensor name is written anywhere else.

use crate::marian::MarianConfig;

/// What a tensor holds in a random checkpoint, and, for optional tensors,
/// what stands in when a checkpoint lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    /// Random weights (see `random.rs`).
    Random,
    Zeros,
    Ones,
    /// Marian's sinusoidal position table.
    Sinusoidal,
}

/// One tensor of the table.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// Names it goes by in checkpoints, preferred first (transformers 5
    /// stores tied tensors once, older versions under every alias).
    pub names: Vec<String>,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Absent from a checkpoint means `init` (positions, `final_logits_bias`);
    /// any other tensor must be present.
    pub optional: bool,
    /// Place in the random checkpoint's order: seeds the tensor's stream, so
    /// random weights do not depend on the order tensors are read in.
    pub index: usize,
}

/// A weight and its bias: an `nn.Linear` (weight (out, in)) or an
/// `nn.LayerNorm`.
#[derive(Debug, Clone)]
pub(crate) struct Affine<T> {
    pub weight: T,
    pub bias: T,
}

/// The four projections of an attention block.
#[derive(Debug, Clone)]
pub(crate) struct Attention<T> {
    pub q: Affine<T>,
    pub k: Affine<T>,
    pub v: Affine<T>,
    pub out: Affine<T>,
}

#[derive(Debug, Clone)]
pub(crate) struct EncoderLayer<T> {
    pub self_attn: Attention<T>,
    pub self_attn_norm: Affine<T>,
    pub fc1: Affine<T>,
    pub fc2: Affine<T>,
    pub final_norm: Affine<T>,
}

#[derive(Debug, Clone)]
pub(crate) struct DecoderLayer<T> {
    pub self_attn: Attention<T>,
    pub self_attn_norm: Affine<T>,
    pub cross_attn: Attention<T>,
    pub cross_attn_norm: Affine<T>,
    pub fc1: Affine<T>,
    pub fc2: Affine<T>,
    pub final_norm: Affine<T>,
}

/// Token and position embeddings and the output projection.
#[derive(Debug, Clone)]
pub(crate) struct Embeddings<T> {
    /// (source vocab, d).
    pub enc_tokens: T,
    /// (target vocab, d); `None` when shared with the encoder's.
    pub dec_tokens: Option<T>,
    /// (target vocab, d); `None` when tied to the decoder's tokens.
    pub lm_head: Option<T>,
    /// (1, target vocab).
    pub final_logits_bias: T,
    /// (max positions, d).
    pub enc_pos: T,
    pub dec_pos: T,
}

/// Every tensor a configuration implies.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub embeddings: Embeddings<Spec>,
    pub encoder: Vec<EncoderLayer<Spec>>,
    pub decoder: Vec<DecoderLayer<Spec>>,
}

/// Hands out specs in checkpoint order (see [`Spec::index`]).
struct Table {
    next: usize,
}

impl Table {
    fn spec(&mut self, names: &[&str], shape: &[usize], init: Init, optional: bool) -> Spec {
        self.next += 1;
        Spec {
            names: names.iter().map(|n| n.to_string()).collect(),
            shape: shape.to_vec(),
            init,
            optional,
            index: self.next - 1,
        }
    }

    fn required(&mut self, name: &str, shape: &[usize], init: Init) -> Spec {
        self.spec(&[name], shape, init, false)
    }

    fn linear(&mut self, prefix: &str, out_dim: usize, in_dim: usize) -> Affine<Spec> {
        Affine {
            weight: self.required(
                &format!("{prefix}.weight"),
                &[out_dim, in_dim],
                Init::Random,
            ),
            bias: self.required(&format!("{prefix}.bias"), &[out_dim], Init::Zeros),
        }
    }

    fn norm(&mut self, prefix: &str, dim: usize) -> Affine<Spec> {
        Affine {
            weight: self.required(&format!("{prefix}.weight"), &[dim], Init::Ones),
            bias: self.required(&format!("{prefix}.bias"), &[dim], Init::Zeros),
        }
    }

    fn attention(&mut self, prefix: &str, d: usize) -> Attention<Spec> {
        Attention {
            q: self.linear(&format!("{prefix}.q_proj"), d, d),
            k: self.linear(&format!("{prefix}.k_proj"), d, d),
            v: self.linear(&format!("{prefix}.v_proj"), d, d),
            out: self.linear(&format!("{prefix}.out_proj"), d, d),
        }
    }
}

impl Layout {
    /// The table for `cfg`. Struct fields are evaluated in the order written,
    /// which is the checkpoint order random weights are seeded by: token
    /// tables, encoder layers, decoder layers, then the optional tensors.
    pub fn new(cfg: &MarianConfig) -> Self {
        let d = cfg.d_model;
        let v_tgt = cfg.target_vocab_size();
        let mut t = Table { next: 0 };
        let shared = cfg.share_encoder_decoder_embeddings;
        let enc_names = if shared {
            ["model.shared.weight", "model.encoder.embed_tokens.weight"]
        } else {
            ["model.encoder.embed_tokens.weight", "model.shared.weight"]
        };
        let enc_tokens = t.spec(&enc_names, &[cfg.vocab_size, d], Init::Random, false);
        let dec_tokens = (!shared).then(|| {
            t.required(
                "model.decoder.embed_tokens.weight",
                &[cfg.decoder_vocab_size, d],
                Init::Random,
            )
        });
        let lm_head = (!cfg.tie_word_embeddings)
            .then(|| t.required("lm_head.weight", &[v_tgt, d], Init::Random));
        let encoder = (0..cfg.encoder_layers)
            .map(|i| {
                let p = format!("model.encoder.layers.{i}");
                EncoderLayer {
                    self_attn: t.attention(&format!("{p}.self_attn"), d),
                    self_attn_norm: t.norm(&format!("{p}.self_attn_layer_norm"), d),
                    fc1: t.linear(&format!("{p}.fc1"), cfg.encoder_ffn_dim, d),
                    fc2: t.linear(&format!("{p}.fc2"), d, cfg.encoder_ffn_dim),
                    final_norm: t.norm(&format!("{p}.final_layer_norm"), d),
                }
            })
            .collect();
        let decoder = (0..cfg.decoder_layers)
            .map(|i| {
                let p = format!("model.decoder.layers.{i}");
                DecoderLayer {
                    self_attn: t.attention(&format!("{p}.self_attn"), d),
                    self_attn_norm: t.norm(&format!("{p}.self_attn_layer_norm"), d),
                    cross_attn: t.attention(&format!("{p}.encoder_attn"), d),
                    cross_attn_norm: t.norm(&format!("{p}.encoder_attn_layer_norm"), d),
                    fc1: t.linear(&format!("{p}.fc1"), cfg.decoder_ffn_dim, d),
                    fc2: t.linear(&format!("{p}.fc2"), d, cfg.decoder_ffn_dim),
                    final_norm: t.norm(&format!("{p}.final_layer_norm"), d),
                }
            })
            .collect();
        let n_pos = cfg.max_position_embeddings;
        let embeddings = Embeddings {
            enc_tokens,
            dec_tokens,
            lm_head,
            final_logits_bias: t.spec(&["final_logits_bias"], &[1, v_tgt], Init::Zeros, true),
            enc_pos: t.spec(
                &["model.encoder.embed_positions.weight"],
                &[n_pos, d],
                Init::Sinusoidal,
                true,
            ),
            dec_pos: t.spec(
                &["model.decoder.embed_positions.weight"],
                &[n_pos, d],
                Init::Sinusoidal,
                true,
            ),
        };
        Self {
            embeddings,
            encoder,
            decoder,
        }
    }
}

/// Maps every tensor of a structure, in field order, stopping at the first
/// error: how a table of [`Spec`]s becomes host weights.
pub(crate) trait MapTensors<T> {
    type Out<U>;
    fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<Self::Out<U>, E>;
}

impl<T> MapTensors<T> for Affine<T> {
    type Out<U> = Affine<U>;
    fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<Affine<U>, E> {
        Ok(Affine {
            weight: f(&self.weight)?,
            bias: f(&self.bias)?,
        })
    }
}

/// [`MapTensors`] for a struct whose fields all are [`MapTensors`].
macro_rules! map_fields {
    ($ty:ident { $($field:ident),* }) => {
        impl<T> MapTensors<T> for $ty<T> {
            type Out<U> = $ty<U>;
            fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<$ty<U>, E> {
                Ok($ty { $($field: self.$field.try_map(f)?),* })
            }
        }
    };
}

map_fields!(Attention { q, k, v, out });
map_fields!(EncoderLayer {
    self_attn,
    self_attn_norm,
    fc1,
    fc2,
    final_norm
});
map_fields!(DecoderLayer {
    self_attn,
    self_attn_norm,
    cross_attn,
    cross_attn_norm,
    fc1,
    fc2,
    final_norm
});

impl<T> MapTensors<T> for Embeddings<T> {
    type Out<U> = Embeddings<U>;
    fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<Embeddings<U>, E> {
        Ok(Embeddings {
            enc_tokens: f(&self.enc_tokens)?,
            dec_tokens: self.dec_tokens.as_ref().map(&mut *f).transpose()?,
            lm_head: self.lm_head.as_ref().map(&mut *f).transpose()?,
            final_logits_bias: f(&self.final_logits_bias)?,
            enc_pos: f(&self.enc_pos)?,
            dec_pos: f(&self.dec_pos)?,
        })
    }
}
