//! The Marian network on candle tensors, for `--engine candle`, f16 and
//! CUDA: built from the checkpoint's host weights in any dtype on any
//! device. It owns the encoder with its key padding mask over right-padded
//! batches, and an incremental decoder whose state (self-attention KV cache
//! preallocated along time, cross-attention keys/values computed once per
//! batch) can be reordered or compacted row by row. Unlike
//! candle-transformers' `marian.rs` it handles padding, never recomputes the
//! encoder projections, and computes the vocabulary projection only for the
//! positions asked for.

use candle_core::{DType, Device, Tensor};

use super::checkpoint::{self, Checkpoint, HostTensor, embed_scale};
use super::pick::{Pick, PickOp, PickSpec, unflatten};
use super::{Activation, MarianConfig, Result};

fn tensor(t: &HostTensor, dtype: DType, dev: &Device) -> Result<Tensor> {
    Ok(
        Tensor::from_slice(&t.data, t.shape.as_slice(), &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)?,
    )
}

/// `x @ w^T + b` on the flattened leading dimensions, so every projection is
/// one GEMM whatever the batch shape. The weight is kept transposed, (in,
/// out) and contiguous: candle's CPU GEMM is about twice as fast on it as on
/// the transposed view of PyTorch's (out, in) layout.
#[derive(Debug, Clone)]
struct Linear {
    wt: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(a: &checkpoint::Affine<HostTensor>, dtype: DType, dev: &Device) -> Result<Self> {
        Self::from_parts(
            &tensor(&a.weight, dtype, dev)?,
            tensor(&a.bias, dtype, dev)?,
        )
    }

    /// From PyTorch's (out, in) weight and its bias.
    fn from_parts(w: &Tensor, b: Tensor) -> Result<Self> {
        Ok(Self {
            wt: w.t()?.contiguous()?,
            b,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim;
        let y = x
            .reshape((rows, in_dim))?
            .matmul(&self.wt)?
            .broadcast_add(&self.b)?;
        let mut out = dims.to_vec();
        *out.last_mut().unwrap() = self.wt.dim(1)?;
        y.reshape(out)
    }
}

#[derive(Debug, Clone)]
struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

impl LayerNorm {
    fn new(a: &checkpoint::Affine<HostTensor>, dtype: DType, dev: &Device) -> Result<Self> {
        Ok(Self {
            w: tensor(&a.weight, dtype, dev)?,
            b: tensor(&a.bias, dtype, dev)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // torch.nn.LayerNorm default eps.
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, 1e-5)
    }
}

fn activate(act: Activation, x: &Tensor) -> candle_core::Result<Tensor> {
    match act {
        Activation::Silu => x.silu(),
        Activation::Relu => x.relu(),
        Activation::GeluErf => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(x),
    }
}

/// Q's weight and bias with the attention scaling folded in, scaled in the
/// model dtype.
fn scaled_q(
    a: &checkpoint::Attention<HostTensor>,
    heads: usize,
    dtype: DType,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let s = a.q_scaling(heads);
    Ok((
        (tensor(&a.q.weight, dtype, dev)? * s)?,
        (tensor(&a.q.bias, dtype, dev)? * s)?,
    ))
}

/// Self-attention with Q (scaled), K and V fused into one projection.
#[derive(Debug, Clone)]
struct SelfAttention {
    qkv: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    fn new(
        a: &checkpoint::Attention<HostTensor>,
        heads: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let (qw, qb) = scaled_q(a, heads, dtype, dev)?;
        let kv = a.fused_kv();
        let (kvw, kvb) = (
            tensor(&kv.weight, dtype, dev)?,
            tensor(&kv.bias, dtype, dev)?,
        );
        Ok(Self {
            qkv: Linear::from_parts(
                &Tensor::cat(&[&qw, &kvw], 0)?,
                Tensor::cat(&[&qb, &kvb], 0)?,
            )?,
            out: Linear::new(&a.out, dtype, dev)?,
            heads,
            head_dim: a.out.dims().0 / heads,
        })
    }

    /// (b, t, d) -> three (b, heads, t, head_dim) tensors.
    fn project(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, t, 3, self.heads, self.head_dim))?;
        let part = |i: usize| {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        Ok((part(0)?, part(1)?, part(2)?))
    }
}

/// (b, heads, t, dh) -> (b, t, heads*dh)
fn merge_heads(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, t, dh) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, t, h * dh))
}

/// softmax(q k^T + mask) v, with q already scaled.
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> candle_core::Result<(Tensor, Tensor)> {
    attend_kt(q, &k.t()?, v, mask)
}

/// [`attend`] with keys already laid out as (b, heads, head_dim, len).
fn attend_kt(
    q: &Tensor,
    kt: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> candle_core::Result<(Tensor, Tensor)> {
    let scores = q.matmul(kt)?;
    let scores = match mask {
        Some(m) => scores.broadcast_add(m)?,
        None => scores,
    };
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    Ok((probs.matmul(v)?, probs))
}

#[derive(Debug, Clone)]
struct Ffn {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl Ffn {
    fn new(
        fc1: &checkpoint::Affine<HostTensor>,
        fc2: &checkpoint::Affine<HostTensor>,
        act: Activation,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(fc1, dtype, dev)?,
            fc2: Linear::new(fc2, dtype, dev)?,
            act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2
            .forward(&activate(self.act, &self.fc1.forward(x)?)?)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    attn: SelfAttention,
    attn_ln: LayerNorm,
    ffn: Ffn,
    ffn_ln: LayerNorm,
}

impl EncoderLayer {
    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (q, k, v) = self.attn.project(x)?;
        let (ctx, _) = attend(&q, &k, &v, Some(mask))?;
        let h = self.attn.out.forward(&merge_heads(&ctx)?)?;
        let x = self.attn_ln.forward(&(x + h)?)?;
        let h = self.ffn.forward(&x)?;
        self.ffn_ln.forward(&(x + h)?)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: SelfAttention,
    self_ln: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    cross_ln: LayerNorm,
    ffn: Ffn,
    ffn_ln: LayerNorm,
    heads: usize,
    head_dim: usize,
}

/// Per-layer self-attention keys/values, preallocated along the time axis so
/// that a step writes in place instead of concatenating.
#[derive(Debug, Clone)]
struct KvCache {
    k: Tensor,
    v: Tensor,
    len: usize,
    /// What the capacity may double up to.
    limit: usize,
}

impl KvCache {
    fn new(
        rows: usize,
        heads: usize,
        limit: usize,
        dh: usize,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Self> {
        let cap = limit.min(super::INITIAL_POSITIONS);
        Ok(Self {
            k: Tensor::zeros((rows, heads, cap, dh), dtype, dev)?,
            v: Tensor::zeros((rows, heads, cap, dh), dtype, dev)?,
            len: 0,
            limit,
        })
    }

    fn append(&mut self, k: &Tensor, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let cap = self.k.dim(2)?;
        if self.len + t > cap {
            let new_cap = (self.len + t).max((cap * 2).min(self.limit));
            let (b, h, _, dh) = self.k.dims4()?;
            let grow = |old: &Tensor| -> candle_core::Result<Tensor> {
                let n = Tensor::zeros((b, h, new_cap, dh), old.dtype(), old.device())?;
                if self.len > 0 {
                    n.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
                Ok(n)
            };
            self.k = grow(&self.k)?;
            self.v = grow(&self.v)?;
        }
        self.k.slice_set(k, 2, self.len)?;
        self.v.slice_set(v, 2, self.len)?;
        self.len += t;
        Ok((
            self.k.narrow(2, 0, self.len)?,
            self.v.narrow(2, 0, self.len)?,
        ))
    }

    fn select(&mut self, idx: &Tensor) -> candle_core::Result<()> {
        self.k = self.k.index_select(idx, 0)?;
        self.v = self.v.index_select(idx, 0)?;
        Ok(())
    }
}

impl DecoderLayer {
    fn new(
        l: &checkpoint::DecoderLayer<HostTensor>,
        cfg: &MarianConfig,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let heads = cfg.decoder_attention_heads;
        let (qw, qb) = scaled_q(&l.cross_attn, heads, dtype, dev)?;
        Ok(Self {
            self_attn: SelfAttention::new(&l.self_attn, heads, dtype, dev)?,
            self_ln: LayerNorm::new(&l.self_attn_norm, dtype, dev)?,
            cross_q: Linear::from_parts(&qw, qb)?,
            cross_kv: Linear::new(&l.cross_attn.fused_kv(), dtype, dev)?,
            cross_out: Linear::new(&l.cross_attn.out, dtype, dev)?,
            cross_ln: LayerNorm::new(&l.cross_attn_norm, dtype, dev)?,
            ffn: Ffn::new(&l.fc1, &l.fc2, cfg.activation, dtype, dev)?,
            ffn_ln: LayerNorm::new(&l.final_norm, dtype, dev)?,
            heads,
            head_dim: cfg.d_model / heads,
        })
    }

    /// Cross-attention keys and values of the encoder output, once per batch.
    /// Keys come back transposed, (b, heads, head_dim, S), so that every
    /// decoding step multiplies by a contiguous matrix.
    fn cross_kv(&self, enc: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, s, _) = enc.dims3()?;
        let kv = self
            .cross_kv
            .forward(enc)?
            .reshape((b, s, 2, self.heads, self.head_dim))?;
        let part = |i: usize| kv.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2);
        Ok((part(0)?.t()?.contiguous()?, part(1)?.contiguous()?))
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        cache: &mut KvCache,
        causal: Option<&Tensor>,
        cross_kt: &Tensor,
        cross_v: &Tensor,
        enc_mask: &Tensor,
        want_attn: bool,
    ) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let (b, t, _) = x.dims3()?;
        let (q, k, v) = self.self_attn.project(x)?;
        let (k, v) = cache.append(&k, &v)?;
        let (ctx, _) = attend(&q, &k, &v, causal)?;
        let h = self.self_attn.out.forward(&merge_heads(&ctx)?)?;
        let x = self.self_ln.forward(&(x + h)?)?;

        let q = self
            .cross_q
            .forward(&x)?
            .reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let (ctx, probs) = attend_kt(&q, cross_kt, cross_v, Some(enc_mask))?;
        let attn = if want_attn { Some(probs) } else { None };
        let h = self.cross_out.forward(&merge_heads(&ctx)?)?;
        let x = self.cross_ln.forward(&(x + h)?)?;

        let h = self.ffn.forward(&x)?;
        Ok((self.ffn_ln.forward(&(x + h)?)?, attn))
    }
}

/// Encoder states of a right-padded batch.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    /// (batch, max_len, d_model); rows past a sequence's length are padding.
    hidden: Tensor,
    /// Additive key mask, (batch, 1, 1, max_len): 0 for tokens, -inf for padding.
    mask: Tensor,
}

impl Encoded {
    /// Row `i`'s first `len` states, (len, d_model) row-major, on the host.
    pub fn row(&self, i: usize, len: usize) -> Result<Vec<f32>> {
        let row = self.hidden.get(i)?.narrow(0, 0, len)?;
        Ok(row.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }
}

/// Decoder state of a set of rows.
#[derive(Debug, Clone)]
pub(super) struct State {
    self_kv: Vec<KvCache>,
    cross: Vec<(Tensor, Tensor)>,
    enc_mask: Tensor,
    /// Number of target positions already consumed.
    pub pos: usize,
}

impl State {
    /// See `DecoderState::select_rows`.
    pub fn select_rows(&mut self, idx: &[u32], same_sources: bool) -> Result<()> {
        let t = Tensor::new(idx, self.enc_mask.device())?;
        for c in &mut self.self_kv {
            c.select(&t)?;
        }
        if !same_sources {
            for (k, v) in &mut self.cross {
                *k = k.index_select(&t, 0)?;
                *v = v.index_select(&t, 0)?;
            }
            self.enc_mask = self.enc_mask.index_select(&t, 0)?;
        }
        Ok(())
    }
}

/// The candle form of the network.
#[derive(Debug, Clone)]
pub(super) struct Net {
    enc_embed: Tensor,
    dec_embed: Tensor,
    enc_pos: Tensor,
    dec_pos: Tensor,
    enc_layers: Vec<EncoderLayer>,
    dec_layers: Vec<DecoderLayer>,
    lm_head: Tensor,
    final_logits_bias: Tensor,
    embed_scale: f64,
    d: usize,
    heads: usize,
    pad_id: u32,
    dtype: DType,
    device: Device,
}

impl Net {
    /// Builds the network in `dtype` on `dev`, reading one layer of host
    /// weights at a time.
    pub fn build(cfg: &MarianConfig, ck: &Checkpoint, dtype: DType, dev: &Device) -> Result<Self> {
        let enc_layers = (0..cfg.encoder_layers)
            .map(|i| -> Result<_> {
                let l = ck.encoder_layer(i)?;
                Ok(EncoderLayer {
                    attn: SelfAttention::new(
                        &l.self_attn,
                        cfg.encoder_attention_heads,
                        dtype,
                        dev,
                    )?,
                    attn_ln: LayerNorm::new(&l.self_attn_norm, dtype, dev)?,
                    ffn: Ffn::new(&l.fc1, &l.fc2, cfg.activation, dtype, dev)?,
                    ffn_ln: LayerNorm::new(&l.final_norm, dtype, dev)?,
                })
            })
            .collect::<Result<_>>()?;
        let dec_layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::new(&ck.decoder_layer(i)?, cfg, dtype, dev))
            .collect::<Result<_>>()?;
        let e = ck.embeddings()?;
        let enc_embed = tensor(&e.enc_tokens, dtype, dev)?;
        let dec_embed = match &e.dec_tokens {
            Some(t) => tensor(t, dtype, dev)?,
            None => enc_embed.clone(),
        };
        let lm_head = match &e.lm_head {
            Some(t) => tensor(t, dtype, dev)?,
            None => dec_embed.clone(),
        };
        Ok(Self {
            enc_pos: tensor(&e.enc_pos, dtype, dev)?,
            dec_pos: tensor(&e.dec_pos, dtype, dev)?,
            final_logits_bias: tensor(&e.final_logits_bias, dtype, dev)?,
            enc_embed,
            dec_embed,
            enc_layers,
            dec_layers,
            lm_head,
            embed_scale: embed_scale(cfg),
            d: cfg.d_model,
            heads: cfg.decoder_attention_heads,
            pad_id: cfg.pad_token_id,
            dtype,
            device: dev.clone(),
        })
    }

    /// Runs the encoder over `batch`, right-padded to its longest row.
    pub fn encode(&self, batch: &[Vec<u32>]) -> Result<Encoded> {
        let b = batch.len();
        let s = batch.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s);
        for row in batch {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, s - row.len()));
            mask.extend((0..s).map(|j| {
                if j < row.len() {
                    0f32
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
        let mask = Tensor::from_vec(mask, (b, 1, 1, s), &self.device)?.to_dtype(self.dtype)?;
        let mut x = self.embed(&self.enc_embed, &self.enc_pos, &ids, b, 0)?;
        for layer in &self.enc_layers {
            x = layer.forward(&x, &mask)?;
        }
        Ok(Encoded { hidden: x, mask })
    }

    /// Fresh decoder state for the rows of `enc`: every layer's
    /// cross-attention keys and values.
    pub fn start(&self, enc: &Encoded, max_positions: usize) -> Result<State> {
        let b = enc.hidden.dim(0)?;
        let dh = self.d / self.heads;
        let mut self_kv = Vec::with_capacity(self.dec_layers.len());
        let mut cross = Vec::with_capacity(self.dec_layers.len());
        for layer in &self.dec_layers {
            self_kv.push(KvCache::new(
                b,
                self.heads,
                max_positions.max(1),
                dh,
                self.dtype,
                &self.device,
            )?);
            cross.push(layer.cross_kv(&enc.hidden)?);
        }
        Ok(State {
            self_kv,
            cross,
            enc_mask: enc.mask.clone(),
            pos: 0,
        })
    }

    /// Runs `tokens` ((rows, t) row-major) through the decoder layers:
    /// hidden states (rows, t, d) and, when asked, the last layer's
    /// cross-attention probabilities (rows, heads, t, S).
    pub fn decode(
        &self,
        st: &mut State,
        tokens: &[u32],
        rows: usize,
        want_attn: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let t = tokens.len() / rows;
        let past = st.pos;
        let mut x = self.embed(&self.dec_embed, &self.dec_pos, tokens, rows, past)?;
        let causal = if t > 1 {
            let total = past + t;
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (t, total), &self.device)?.to_dtype(self.dtype)?)
        } else {
            None
        };
        let n = self.dec_layers.len();
        let mut attn = None;
        for (i, layer) in self.dec_layers.iter().enumerate() {
            let (k, v) = &st.cross[i];
            let (y, a) = layer.forward(
                &x,
                &mut st.self_kv[i],
                causal.as_ref(),
                k,
                v,
                &st.enc_mask,
                want_attn && i + 1 == n,
            )?;
            x = y;
            if a.is_some() {
                attn = a;
            }
        }
        st.pos += t;
        Ok((x, attn))
    }

    /// The last position of each row of `h` (rows, t, d), (rows, d).
    pub fn last_position(h: &Tensor) -> Result<Tensor> {
        let (rows, t, d) = h.dims3()?;
        Ok(h.narrow(1, t - 1, 1)?.reshape((rows, d))?)
    }

    /// First head, last query of cross-attention probabilities (rows, heads,
    /// t, S), each row cut to its source length.
    pub fn alignment(probs: &Tensor, src_lengths: &[usize]) -> Result<Vec<Vec<f32>>> {
        let t = probs.dim(2)?;
        let rows = probs
            .narrow(1, 0, 1)?
            .narrow(2, t - 1, 1)?
            .squeeze(2)?
            .squeeze(1)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
        Ok(rows
            .into_iter()
            .zip(src_lengths)
            .map(|(mut r, &n)| {
                r.truncate(n);
                r
            })
            .collect())
    }

    fn embed(
        &self,
        table: &Tensor,
        pos_table: &Tensor,
        ids: &[u32],
        rows: usize,
        start: usize,
    ) -> Result<Tensor> {
        let t = ids.len() / rows;
        let idx = Tensor::new(ids, &self.device)?;
        let x = (table.index_select(&idx, 0)? * self.embed_scale)?.reshape((rows, t, self.d))?;
        Ok(x.broadcast_add(&pos_table.narrow(0, start, t)?.unsqueeze(0)?)?)
    }

    /// Logits of hidden states (…, d): (rows, vocab) f32, contiguous, on
    /// the device.
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let h = h.reshape(((), self.d))?;
        // (V, d) @ (d, rows): keeps the big tied embedding in its stored
        // layout (no transposed copy next to the embedding table) and is the
        // fast GEMM orientation for it.
        let logits = self
            .lm_head
            .matmul(&h.t()?)?
            .t()?
            .broadcast_add(&self.final_logits_bias)?;
        Ok(logits.to_dtype(DType::F32)?.contiguous()?)
    }

    /// Logits of hidden states (…, d), f32 on the host, row-major.
    pub fn project(&self, h: &Tensor) -> Result<Vec<f32>> {
        Ok(self.logits(h)?.flatten_all()?.to_vec1()?)
    }
}

/// Selection from [`Net::logits`] as `spec` says, where they are.
pub fn pick(logits: &Tensor, spec: &PickSpec) -> Result<Vec<Pick>> {
    let out = logits.apply_op1_no_bwd(&PickOp { spec })?;
    Ok(unflatten(&out.flatten_all()?.to_vec1()?))
}
