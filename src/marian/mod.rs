//! The Marian (OPUS-MT) encoder-decoder on candle, exact against transformers'
//! `MarianMTModel` on padded batches. This module owns the configuration
//! ([`MarianConfig`]), loading weights from `model.safetensors` or
//! `pytorch_model.bin` under either tensor naming found in the wild, the
//! encoder with its key padding mask, and an incremental decoder whose state
//! ([`DecoderState`]: self-attention KV cache plus cross-attention keys/values
//! computed once per batch) can be reordered or compacted row by row, which is
//! what greedy and beam search in [`crate::decode`] build on. Unlike
//! candle-transformers' `marian.rs` it handles padding, never recomputes the
//! encoder projections, and computes the vocabulary projection only for the
//! position being generated. For benchmarks, [`MarianModel::random`] builds a
//! random-weight model of any configuration and [`Timings`] optionally
//! accumulates the time spent per stage.

mod config;
mod native;
mod random;
mod stream;
mod timings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use native::kernels::Precision;
pub use native::kernels::isa::{FEATURES as CPU_FEATURES, ISA_VAR, Isa, IsaError, found_features, selected as selected_isa};
/// Vector math of the search over logits (log-softmax, row maxima), the
/// kernels the native engine uses, shared with [`crate::decode`].
pub(crate) use native::kernels::vecmath as math;
/// The packed matrix product, for `benches/gemm.rs`: not part of the API.
#[doc(hidden)]
pub use native::kernels::{Kernel, PackedLinear};
pub use config::{Activation, EarlyStopping, GenerationDefaults, MarianConfig};
use timings::Stage;
pub use timings::{TimingSplit, Timings};

/// Everything that can go wrong loading or running a Marian model.
#[derive(Debug, thiserror::Error)]
pub enum MarianError {
    #[error("invalid Marian config: {0}")]
    Config(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot read weights: {source}", file.display())]
    WeightsFile {
        file: PathBuf,
        source: candle_core::Error,
    },
    #[error("{}: tensor `{tensor}`: {msg}", file.display())]
    Tensor {
        file: PathBuf,
        tensor: String,
        msg: String,
    },
    #[error("invalid input: {0}")]
    Input(String),
    #[error(transparent)]
    Isa(#[from] IsaError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

type Result<T> = std::result::Result<T, MarianError>;

/// A checkpoint file opened for reading tensors by their full names.
struct Weights {
    vb: VarBuilder<'static>,
    file: PathBuf,
}

impl Weights {
    fn open(file: &Path, dtype: DType, device: &Device) -> Result<Self> {
        if !file.is_file() {
            return Err(MarianError::Io {
                path: file.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such weights file"),
            });
        }
        let is_safetensors = file.extension().is_some_and(|e| e == "safetensors");
        let vb = if is_safetensors {
            stream::StreamingSafetensors::open(file)
                .map(|b| VarBuilder::from_backend(Box::new(b), dtype, device.clone()))
        } else {
            VarBuilder::from_pth(file, dtype, device)
        }
        .map_err(|source| MarianError::WeightsFile {
            file: file.to_owned(),
            source,
        })?;
        Ok(Self {
            vb,
            file: file.to_owned(),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.vb.contains_tensor(name)
    }

    fn get(&self, shape: &[usize], name: &str) -> Result<Tensor> {
        if !self.has(name) {
            return Err(self.err(name, "missing from the checkpoint".into()));
        }
        let t = self
            .vb
            .get_unchecked(name)
            .map_err(|e| self.err(name, format!("unreadable: {e}")))?;
        if t.dims() != shape {
            return Err(self.err(
                name,
                format!("has shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        Ok(t)
    }

    /// First of `names` present in the file (checkpoints name tied tensors
    /// differently across transformers versions).
    fn get_any(&self, shape: &[usize], names: &[&str]) -> Result<Tensor> {
        match names.iter().find(|n| self.has(n)) {
            Some(n) => self.get(shape, n),
            None => Err(self.err(
                names[0],
                format!("missing from the checkpoint (also tried {:?})", &names[1..]),
            )),
        }
    }

    fn err(&self, name: &str, msg: String) -> MarianError {
        MarianError::Tensor {
            file: self.file.clone(),
            tensor: name.to_owned(),
            msg,
        }
    }
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

/// PyTorch-layout (out, in) weight and bias of a `nn.Linear`.
fn load_raw(w: &Weights, prefix: &str, out_dim: usize, in_dim: usize) -> Result<(Tensor, Tensor)> {
    Ok((
        w.get(&[out_dim, in_dim], &format!("{prefix}.weight"))?,
        w.get(&[out_dim], &format!("{prefix}.bias"))?,
    ))
}

impl Linear {
    fn new(w: &Tensor, b: Tensor) -> Result<Self> {
        Ok(Self {
            wt: w.t()?.contiguous()?,
            b,
        })
    }

    fn load(w: &Weights, prefix: &str, out_dim: usize, in_dim: usize) -> Result<Self> {
        let (wt, b) = load_raw(w, prefix, out_dim, in_dim)?;
        Self::new(&wt, b)
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
    fn load(w: &Weights, prefix: &str, dim: usize) -> Result<Self> {
        Ok(Self {
            w: w.get(&[dim], &format!("{prefix}.weight"))?,
            b: w.get(&[dim], &format!("{prefix}.bias"))?,
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

/// Self-attention with Q, K and V fused into one projection; the 1/sqrt(d_head)
/// scaling is folded into the Q rows of that projection at load time.
#[derive(Debug, Clone)]
struct SelfAttention {
    qkv: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

fn load_q_scaled(w: &Weights, prefix: &str, d: usize, scaling: f64) -> Result<(Tensor, Tensor)> {
    let (qw, qb) = load_raw(w, &format!("{prefix}.q_proj"), d, d)?;
    Ok(((qw * scaling)?, (qb * scaling)?))
}

impl SelfAttention {
    fn load(w: &Weights, prefix: &str, d: usize, heads: usize) -> Result<Self> {
        let head_dim = d / heads;
        let (qw, qb) = load_q_scaled(w, prefix, d, (head_dim as f64).powf(-0.5))?;
        let (kw, kb) = load_raw(w, &format!("{prefix}.k_proj"), d, d)?;
        let (vw, vb) = load_raw(w, &format!("{prefix}.v_proj"), d, d)?;
        let qkv = Linear::new(
            &Tensor::cat(&[&qw, &kw, &vw], 0)?,
            Tensor::cat(&[&qb, &kb, &vb], 0)?,
        )?;
        Ok(Self {
            qkv,
            out: Linear::load(w, &format!("{prefix}.out_proj"), d, d)?,
            heads,
            head_dim,
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
}

impl KvCache {
    fn new(
        rows: usize,
        heads: usize,
        cap: usize,
        dh: usize,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            k: Tensor::zeros((rows, heads, cap, dh), dtype, dev)?,
            v: Tensor::zeros((rows, heads, cap, dh), dtype, dev)?,
            len: 0,
        })
    }

    fn append(&mut self, k: &Tensor, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let cap = self.k.dim(2)?;
        if self.len + t > cap {
            let new_cap = (self.len + t).max(cap * 2);
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
    fn load(w: &Weights, prefix: &str, cfg: &MarianConfig) -> Result<Self> {
        let d = cfg.d_model;
        let heads = cfg.decoder_attention_heads;
        let head_dim = d / heads;
        let (qw, qb) = load_q_scaled(
            w,
            &format!("{prefix}.encoder_attn"),
            d,
            (head_dim as f64).powf(-0.5),
        )?;
        let (kw, kb) = load_raw(w, &format!("{prefix}.encoder_attn.k_proj"), d, d)?;
        let (vw, vb) = load_raw(w, &format!("{prefix}.encoder_attn.v_proj"), d, d)?;
        Ok(Self {
            self_attn: SelfAttention::load(w, &format!("{prefix}.self_attn"), d, heads)?,
            self_ln: LayerNorm::load(w, &format!("{prefix}.self_attn_layer_norm"), d)?,
            cross_q: Linear::new(&qw, qb)?,
            cross_kv: Linear::new(&Tensor::cat(&[&kw, &vw], 0)?, Tensor::cat(&[&kb, &vb], 0)?)?,
            cross_out: Linear::load(w, &format!("{prefix}.encoder_attn.out_proj"), d, d)?,
            cross_ln: LayerNorm::load(w, &format!("{prefix}.encoder_attn_layer_norm"), d)?,
            ffn: Ffn {
                fc1: Linear::load(w, &format!("{prefix}.fc1"), cfg.decoder_ffn_dim, d)?,
                fc2: Linear::load(w, &format!("{prefix}.fc2"), d, cfg.decoder_ffn_dim)?,
                act: cfg.activation,
            },
            ffn_ln: LayerNorm::load(w, &format!("{prefix}.final_layer_norm"), d)?,
            heads,
            head_dim,
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

/// Marian's sinusoidal table: sin of the even frequencies in the first half,
/// cos in the second (not interleaved), computed in f64 like transformers'
/// numpy code before rounding to the model dtype.
fn sinusoidal_table(
    n_pos: usize,
    dim: usize,
    dtype: DType,
    dev: &Device,
) -> candle_core::Result<Tensor> {
    let half = dim / 2;
    let mut data = vec![0f32; n_pos * dim];
    for pos in 0..n_pos {
        for j in 0..half {
            let angle = pos as f64 / 10000f64.powf((2 * j) as f64 / dim as f64);
            data[pos * dim + j] = angle.sin() as f32;
            data[pos * dim + half + j] = angle.cos() as f32;
        }
    }
    Tensor::from_vec(data, (n_pos, dim), dev)?.to_dtype(dtype)
}

/// Encoder states of one batch and what cross-attention needs to ignore the
/// padding.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// (batch, max_len, d_model); rows past a sequence's length are padding
    /// (zeros on the native engine, which never computes them).
    pub hidden: Tensor,
    /// Unpadded source length of each row.
    pub lengths: Vec<usize>,
    inner: EncInner,
}

#[derive(Debug, Clone)]
enum EncInner {
    /// Additive key mask, (batch, 1, 1, max_len): 0 for tokens, -inf for padding.
    Candle {
        mask: Tensor,
    },
    Native(native::Encoded),
}

/// Incremental decoding state for a set of rows (sentences or beams).
#[derive(Debug, Clone)]
pub struct DecoderState {
    src_lengths: Vec<usize>,
    timings: Option<Arc<Timings>>,
    inner: StateInner,
}

#[derive(Debug, Clone)]
enum StateInner {
    Candle {
        self_kv: Vec<KvCache>,
        cross: Vec<(Tensor, Tensor)>,
        enc_mask: Tensor,
        /// Number of target positions already consumed.
        pos: usize,
    },
    Native(native::State),
}

impl DecoderState {
    pub fn rows(&self) -> usize {
        self.src_lengths.len()
    }

    /// Target positions already decoded (the next token's position).
    pub fn position(&self) -> usize {
        match &self.inner {
            StateInner::Candle { pos, .. } => *pos,
            StateInner::Native(s) => s.pos,
        }
    }

    /// Source length (unpadded) of each row.
    pub fn src_lengths(&self) -> &[usize] {
        &self.src_lengths
    }

    /// Hands a step's logits buffer back for the next step to reuse (optional;
    /// saves the page faults of a fresh rows × vocab allocation per step).
    pub fn recycle(&mut self, step: StepOutput) {
        if let StateInner::Native(s) = &mut self.inner {
            s.spare_logits = step.logits;
        }
    }

    /// Keeps rows `idx` (in that order; repeats allowed): used to drop finished
    /// sentences, to expand a sentence into beams and to reorder beams.
    /// `same_sources` says that row `i` after the call belongs to the same
    /// source sentence as row `i` before it, so the cross-attention keys and
    /// values need not be copied (beam reordering inside each sentence).
    pub fn select_rows(&mut self, idx: &[u32], same_sources: bool) -> Result<()> {
        let tm = self.timings.clone();
        timings::timed(tm.as_deref(), Stage::Reorder, || {
            self.select_rows_untimed(idx, same_sources)
        })
    }

    fn select_rows_untimed(&mut self, idx: &[u32], same_sources: bool) -> Result<()> {
        let identity =
            idx.len() == self.rows() && idx.iter().enumerate().all(|(i, &j)| i == j as usize);
        if identity {
            return Ok(());
        }
        if let Some(&bad) = idx.iter().find(|&&i| i as usize >= self.rows()) {
            return Err(MarianError::Input(format!(
                "row {bad} selected from a state of {} rows",
                self.rows()
            )));
        }
        match &mut self.inner {
            StateInner::Candle {
                self_kv,
                cross,
                enc_mask,
                ..
            } => {
                let t = Tensor::new(idx, enc_mask.device())?;
                for c in self_kv {
                    c.select(&t)?;
                }
                if !same_sources {
                    for (k, v) in cross {
                        *k = k.index_select(&t, 0)?;
                        *v = v.index_select(&t, 0)?;
                    }
                    *enc_mask = enc_mask.index_select(&t, 0)?;
                }
            }
            StateInner::Native(s) => s.select_rows(idx),
        }
        self.src_lengths = idx.iter().map(|&i| self.src_lengths[i as usize]).collect();
        Ok(())
    }
}

/// Output of one decoder call, on the host.
#[derive(Debug)]
pub struct StepOutput {
    /// Logits of the last position, (rows, vocab) row-major.
    pub logits: Vec<f32>,
    pub vocab: usize,
    /// Last decoder layer, first head: cross-attention probabilities of the
    /// last position over each row's source tokens (unpadded), when asked for.
    pub alignment: Option<Vec<Vec<f32>>>,
}

impl StepOutput {
    /// Logits of row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.logits[r * self.vocab..(r + 1) * self.vocab]
    }
}

/// How the network runs: candle tensors in a dtype (any device), or the
/// native CPU engine on packed weights in a [`Precision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Candle(DType),
    Native(Precision),
}

impl Backend {
    /// The native engine where it applies (an x86-64 CPU; f32 or bf16),
    /// candle otherwise. Off x86-64 the native engine has only its portable
    /// kernels, which run at 0.7× candle on x86 (benches/README.md), while
    /// candle's `gemm` has NEON kernels: candle is the default there.
    pub fn default_for(dtype: DType, device: &Device) -> Self {
        match (device, dtype) {
            (Device::Cpu, DType::F32) if cfg!(target_arch = "x86_64") => {
                Backend::Native(Precision::F32)
            }
            (Device::Cpu, DType::BF16) if cfg!(target_arch = "x86_64") => {
                Backend::Native(Precision::Bf16)
            }
            _ => Backend::Candle(dtype),
        }
    }

    /// The native kernel this backend's matrix products run on
    /// ("avx512-vnni", "avx2", …), or `None` for candle or when
    /// `TARJAMA_CPU_ISA` is invalid.
    pub fn kernel_name(&self) -> Option<&'static str> {
        match self {
            Backend::Native(p) => native::kernels::isa::selected()
                .ok()
                .map(|isa| isa.kernel(*p).name()),
            Backend::Candle(_) => None,
        }
    }

    /// "f32", "bf16", "int8"… as the CLI spells it.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Backend::Native(p) => p.name(),
            Backend::Candle(DType::F16) => "f16",
            Backend::Candle(DType::BF16) => "bf16",
            Backend::Candle(_) => "f32",
        }
    }

    /// The dtype weights are read in (f32 for every native precision, which
    /// packs from f32).
    pub fn load_dtype(&self) -> DType {
        match self {
            Backend::Candle(d) => *d,
            Backend::Native(_) => DType::F32,
        }
    }

    pub fn engine_name(&self) -> &'static str {
        match self {
            Backend::Native(_) => "native",
            Backend::Candle(_) => "candle",
        }
    }
}

/// The candle form of the network.
#[derive(Debug, Clone)]
struct CandleNet {
    enc_embed: Tensor,
    dec_embed: Tensor,
    enc_pos: Tensor,
    dec_pos: Tensor,
    enc_layers: Vec<EncoderLayer>,
    dec_layers: Vec<DecoderLayer>,
    lm_head: Tensor,
    final_logits_bias: Tensor,
}

#[derive(Debug, Clone)]
enum Net {
    Candle(CandleNet),
    /// Shared: clones of a model (per worker, with timings) must not copy
    /// the packed weights.
    Native(Arc<native::Net>),
}

/// A loaded OPUS-MT model.
#[derive(Debug, Clone)]
pub struct MarianModel {
    cfg: MarianConfig,
    net: Net,
    backend: Backend,
    embed_scale: f64,
    device: Device,
    timings: Option<Arc<Timings>>,
}

/// Weight file names in a model directory, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn pack(lin: &Linear, p: Precision) -> Result<PackedLinear> {
    // `wt` is (in, out); the packer takes PyTorch's (out, in).
    let (k, n) = lin.wt.dims2()?;
    let w = host(&lin.wt.t()?.contiguous()?)?;
    Ok(PackedLinear::new(&w, n, k, Some(&host(&lin.b)?), p))
}

fn ln(l: &LayerNorm) -> Result<native::Ln> {
    Ok(native::Ln {
        w: host(&l.w)?,
        b: host(&l.b)?,
    })
}

fn native_enc(l: &EncoderLayer, p: Precision) -> Result<native::EncLayer> {
    Ok(native::EncLayer {
        qkv: pack(&l.attn.qkv, p)?,
        out: pack(&l.attn.out, p)?,
        ln1: ln(&l.attn_ln)?,
        fc1: pack(&l.ffn.fc1, p)?,
        fc2: pack(&l.ffn.fc2, p)?,
        ln2: ln(&l.ffn_ln)?,
    })
}

fn native_dec(l: &DecoderLayer, p: Precision) -> Result<native::DecLayer> {
    Ok(native::DecLayer {
        qkv: pack(&l.self_attn.qkv, p)?,
        out: pack(&l.self_attn.out, p)?,
        ln1: ln(&l.self_ln)?,
        cross_q: pack(&l.cross_q, p)?,
        cross_kv: pack(&l.cross_kv, p)?,
        cross_out: pack(&l.cross_out, p)?,
        ln2: ln(&l.cross_ln)?,
        fc1: pack(&l.ffn.fc1, p)?,
        fc2: pack(&l.ffn.fc2, p)?,
        ln3: ln(&l.ffn_ln)?,
    })
}

impl MarianModel {
    /// Loads `config.json` and the first of [`WEIGHT_FILES`] found in `dir`;
    /// also returns the generation defaults (config.json overridden by
    /// generation_config.json when present). The backend is
    /// [`Backend::default_for`] `dtype` and `device`.
    pub fn from_dir(
        dir: &Path,
        dtype: DType,
        device: &Device,
    ) -> Result<(Self, GenerationDefaults)> {
        Self::from_dir_with(dir, Backend::default_for(dtype, device), device)
    }

    /// [`MarianModel::from_dir`] on an explicit backend.
    pub fn from_dir_with(
        dir: &Path,
        backend: Backend,
        device: &Device,
    ) -> Result<(Self, GenerationDefaults)> {
        let cfg = MarianConfig::from_file(&dir.join("config.json"))?;
        let mut gen_defaults = cfg.generation.clone();
        let gen_path = dir.join("generation_config.json");
        if gen_path.is_file() {
            let file_defaults = GenerationDefaults::from_file(&gen_path)?;
            cfg.check_generation(&file_defaults, &gen_path)?;
            gen_defaults = gen_defaults.overridden_by(&file_defaults);
        }
        let file = WEIGHT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| MarianError::Io {
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {} in the model directory", WEIGHT_FILES.join(" or ")),
                ),
            })?;
        Ok((Self::load_with(cfg, &file, backend, device)?, gen_defaults))
    }

    /// Loads weights from a `.safetensors` file (memory-mapped) or a PyTorch
    /// pickle (`.bin` / `.pt` / `.pth`), converting them to `dtype`.
    pub fn load(cfg: MarianConfig, file: &Path, dtype: DType, device: &Device) -> Result<Self> {
        Self::load_with(cfg, file, Backend::default_for(dtype, device), device)
    }

    /// [`MarianModel::load`] on an explicit backend.
    pub fn load_with(
        cfg: MarianConfig,
        file: &Path,
        backend: Backend,
        device: &Device,
    ) -> Result<Self> {
        let w = Weights::open(file, backend.load_dtype(), device)?;
        Self::from_weights(cfg, &w, backend, device)
    }

    /// A model of architecture `cfg` with random weights (seeded, the same
    /// for a given `seed` whatever the thread count): benchmarks run on the
    /// published shapes without downloading a checkpoint. The weights go
    /// through the same loading code as a checkpoint's.
    pub fn random(cfg: MarianConfig, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        Self::random_with(cfg, seed, Backend::default_for(dtype, device), device)
    }

    /// [`MarianModel::random`] on an explicit backend.
    pub fn random_with(
        cfg: MarianConfig,
        seed: u64,
        backend: Backend,
        device: &Device,
    ) -> Result<Self> {
        let tensors = random::checkpoint(&cfg, seed)?;
        let w = Weights {
            vb: VarBuilder::from_tensors(tensors, backend.load_dtype(), device),
            file: PathBuf::from("<random weights>"),
        };
        Self::from_weights(cfg, &w, backend, device)
    }

    /// Accumulates the wall time of this model's stages into `timings` (see
    /// [`Timings`]); clones of the model made afterwards share it.
    pub fn with_timings(mut self, timings: Arc<Timings>) -> Self {
        self.timings = Some(timings);
        self
    }

    fn from_weights(
        cfg: MarianConfig,
        w: &Weights,
        backend: Backend,
        device: &Device,
    ) -> Result<Self> {
        let dtype = backend.load_dtype();
        let d = cfg.d_model;
        let v_src = cfg.vocab_size;
        let v_tgt = cfg.target_vocab_size();
        let precision = match backend {
            Backend::Native(p) => Some(p),
            Backend::Candle(_) => None,
        };
        if precision.is_some() {
            // A forced tier this CPU lacks fails here, before any work.
            native::kernels::isa::selected()?;
        }

        // Layers are converted one at a time for the native engine, so the
        // candle form of the whole network never sits next to the packed
        // one; the embeddings come last, for the same reason.
        let mut enc_layers = Vec::new();
        let mut enc_native = Vec::new();
        for i in 0..cfg.encoder_layers {
            let p = format!("model.encoder.layers.{i}");
            let layer = EncoderLayer {
                attn: SelfAttention::load(
                    w,
                    &format!("{p}.self_attn"),
                    d,
                    cfg.encoder_attention_heads,
                )?,
                attn_ln: LayerNorm::load(w, &format!("{p}.self_attn_layer_norm"), d)?,
                ffn: Ffn {
                    fc1: Linear::load(w, &format!("{p}.fc1"), cfg.encoder_ffn_dim, d)?,
                    fc2: Linear::load(w, &format!("{p}.fc2"), d, cfg.encoder_ffn_dim)?,
                    act: cfg.activation,
                },
                ffn_ln: LayerNorm::load(w, &format!("{p}.final_layer_norm"), d)?,
            };
            match precision {
                Some(pr) => enc_native.push(native_enc(&layer, pr)?),
                None => enc_layers.push(layer),
            }
        }
        let mut dec_layers = Vec::new();
        let mut dec_native = Vec::new();
        for i in 0..cfg.decoder_layers {
            let layer = DecoderLayer::load(w, &format!("model.decoder.layers.{i}"), &cfg)?;
            match precision {
                Some(pr) => dec_native.push(native_dec(&layer, pr)?),
                None => dec_layers.push(layer),
            }
        }
        // transformers 5 stores tied tensors once (model.shared.weight); older
        // checkpoints repeat them under every alias.
        let enc_embed = if cfg.share_encoder_decoder_embeddings {
            w.get_any(
                &[v_src, d],
                &["model.shared.weight", "model.encoder.embed_tokens.weight"],
            )?
        } else {
            w.get_any(
                &[v_src, d],
                &["model.encoder.embed_tokens.weight", "model.shared.weight"],
            )?
        };
        let dec_embed = if cfg.share_encoder_decoder_embeddings {
            enc_embed.clone()
        } else {
            w.get(
                &[cfg.decoder_vocab_size, d],
                "model.decoder.embed_tokens.weight",
            )?
        };
        let lm_head = if cfg.tie_word_embeddings {
            dec_embed.clone()
        } else {
            w.get(&[v_tgt, d], "lm_head.weight")?
        };
        if lm_head.dim(0)? != v_tgt {
            return Err(w.err(
                "lm_head.weight",
                format!("has {} rows, expected {v_tgt}", lm_head.dim(0)?),
            ));
        }
        let final_logits_bias = if w.has("final_logits_bias") {
            w.get(&[1, v_tgt], "final_logits_bias")?
        } else {
            Tensor::zeros((1, v_tgt), dtype, device)?
        };
        let n_pos = cfg.max_position_embeddings;
        let pos = |name: &str| -> Result<Tensor> {
            if w.has(name) {
                w.get(&[n_pos, d], name)
            } else {
                Ok(sinusoidal_table(n_pos, d, dtype, device)?)
            }
        };
        let enc_pos = pos("model.encoder.embed_positions.weight")?;
        let dec_pos = pos("model.decoder.embed_positions.weight")?;
        let embed_scale = if cfg.scale_embedding {
            (d as f64).sqrt()
        } else {
            1.0
        };
        let net = match precision {
            None => Net::Candle(CandleNet {
                enc_embed,
                dec_embed,
                enc_pos,
                dec_pos,
                enc_layers,
                dec_layers,
                lm_head,
                final_logits_bias,
            }),
            Some(pr) => {
                if cfg.encoder_attention_heads != cfg.decoder_attention_heads {
                    return Err(MarianError::Config(
                        "the native engine needs as many encoder as decoder heads".into(),
                    ));
                }
                // Tied f32 embeddings are read from the packed projection;
                // the candle tensors go before the projection is packed so
                // that the largest tensor exists at most twice.
                let lm_host = host(&lm_head)?;
                drop(lm_head);
                let from_proj = pr == Precision::F32 && cfg.tie_word_embeddings;
                let dec_table = if from_proj {
                    native::Table::Projection
                } else {
                    native::Table::Rows(Arc::new(host(&dec_embed)?))
                };
                let enc_table = if cfg.share_encoder_decoder_embeddings {
                    dec_table.clone()
                } else {
                    native::Table::Rows(Arc::new(host(&enc_embed)?))
                };
                drop((enc_embed, dec_embed));
                let proj =
                    PackedLinear::new(&lm_host, v_tgt, d, Some(&host(&final_logits_bias)?), pr);
                drop(lm_host);
                Net::Native(Arc::new(native::Net {
                    d,
                    heads: cfg.decoder_attention_heads,
                    act: cfg.activation,
                    embed_scale: embed_scale as f32,
                    enc_embed: native::Embedding {
                        table: enc_table,
                        pos: Arc::new(host(&enc_pos)?),
                    },
                    dec_embed: native::Embedding {
                        table: dec_table,
                        pos: Arc::new(host(&dec_pos)?),
                    },
                    enc: enc_native,
                    dec: dec_native,
                    proj,
                }))
            }
        };
        Ok(Self {
            cfg,
            net,
            backend,
            embed_scale,
            device: device.clone(),
            timings: None,
        })
    }

    pub fn config(&self) -> &MarianConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype weights were loaded in (f32 for every native precision).
    pub fn dtype(&self) -> DType {
        self.backend.load_dtype()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn check_ids(&self, ids: &[u32], vocab: usize, start: usize, t: usize) -> Result<()> {
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(MarianError::Input(format!(
                "token id {bad} is outside the vocabulary ({vocab})"
            )));
        }
        if start + t > self.cfg.max_position_embeddings {
            return Err(MarianError::Input(format!(
                "sequence of {} positions exceeds max_position_embeddings {}",
                start + t,
                self.cfg.max_position_embeddings
            )));
        }
        Ok(())
    }

    /// Runs the encoder over `batch` (token ids ending in EOS, as the
    /// tokenizer makes them), right-padding to the longest row.
    pub fn encode(&self, batch: &[Vec<u32>]) -> Result<EncoderOutput> {
        timings::timed(self.timings.as_deref(), Stage::Encode, || {
            self.encode_untimed(batch)
        })
    }

    fn encode_untimed(&self, batch: &[Vec<u32>]) -> Result<EncoderOutput> {
        if batch.is_empty() || batch.iter().any(|s| s.is_empty()) {
            return Err(MarianError::Input(
                "empty batch or empty source sequence".into(),
            ));
        }
        let b = batch.len();
        let s = batch.iter().map(Vec::len).max().unwrap();
        let lengths: Vec<usize> = batch.iter().map(Vec::len).collect();
        let ids = batch.concat();
        self.check_ids(&ids, self.cfg.vocab_size, 0, s)?;
        let d = self.cfg.d_model;
        match &self.net {
            Net::Native(net) => {
                let enc = net.encode(batch);
                let mut padded = vec![0f32; b * s * d];
                for (r, w) in enc.offsets.windows(2).enumerate() {
                    padded[r * s * d..(r * s + w[1] - w[0]) * d]
                        .copy_from_slice(&enc.hidden[w[0] * d..w[1] * d]);
                }
                Ok(EncoderOutput {
                    hidden: Tensor::from_vec(padded, (b, s, d), &self.device)?,
                    lengths,
                    inner: EncInner::Native(enc),
                })
            }
            Net::Candle(net) => {
                let mut ids = Vec::with_capacity(b * s);
                let mut mask = Vec::with_capacity(b * s);
                for row in batch {
                    ids.extend_from_slice(row);
                    ids.extend(std::iter::repeat_n(self.cfg.pad_token_id, s - row.len()));
                    mask.extend((0..s).map(|j| {
                        if j < row.len() {
                            0f32
                        } else {
                            f32::NEG_INFINITY
                        }
                    }));
                }
                let mask =
                    Tensor::from_vec(mask, (b, 1, 1, s), &self.device)?.to_dtype(self.dtype())?;
                let mut x = net.embed(&net.enc_embed, &net.enc_pos, &ids, b, 0, self)?;
                for layer in &net.enc_layers {
                    x = layer.forward(&x, &mask)?;
                }
                Ok(EncoderOutput {
                    hidden: x,
                    lengths,
                    inner: EncInner::Candle { mask },
                })
            }
        }
    }

    /// Fresh decoder state for the rows of `enc`: computes every layer's
    /// cross-attention keys and values once.
    pub fn start_decoder(&self, enc: &EncoderOutput, capacity: usize) -> Result<DecoderState> {
        timings::timed(self.timings.as_deref(), Stage::CrossKv, || {
            self.start_decoder_untimed(enc, capacity)
        })
    }

    fn start_decoder_untimed(&self, enc: &EncoderOutput, capacity: usize) -> Result<DecoderState> {
        let inner = match (&self.net, &enc.inner) {
            (Net::Native(net), EncInner::Native(e)) => StateInner::Native(net.start(e, capacity)),
            (Net::Candle(net), EncInner::Candle { mask }) => {
                let b = enc.lengths.len();
                let heads = self.cfg.decoder_attention_heads;
                let dh = self.cfg.d_model / heads;
                let mut self_kv = Vec::with_capacity(net.dec_layers.len());
                let mut cross = Vec::with_capacity(net.dec_layers.len());
                for layer in &net.dec_layers {
                    self_kv.push(KvCache::new(
                        b,
                        heads,
                        capacity.max(1),
                        dh,
                        self.dtype(),
                        &self.device,
                    )?);
                    cross.push(layer.cross_kv(&enc.hidden)?);
                }
                StateInner::Candle {
                    self_kv,
                    cross,
                    enc_mask: mask.clone(),
                    pos: 0,
                }
            }
            _ => {
                return Err(MarianError::Input(
                    "encoder output comes from a model on another backend".into(),
                ));
            }
        };
        Ok(DecoderState {
            src_lengths: enc.lengths.clone(),
            timings: self.timings.clone(),
            inner,
        })
    }

    /// Feeds `tokens` ((rows, t) row-major, same t for every row) and returns
    /// the logits of the last position only.
    pub fn decode_step(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        want_alignment: bool,
    ) -> Result<StepOutput> {
        let tm = self.timings.as_deref();
        let rows = state.rows();
        let vocab = self.cfg.target_vocab_size();
        match (&self.net, &mut state.inner) {
            (Net::Native(net), StateInner::Native(st)) => {
                let t = self.check_step(rows, tokens, st.pos)?;
                let (h, attn) = timings::timed(tm, Stage::Decoder, || {
                    net.decode(st, tokens, want_alignment)
                });
                let d = self.cfg.d_model;
                let last: Vec<f32> = if t == 1 {
                    h
                } else {
                    (0..rows)
                        .flat_map(|r| h[((r + 1) * t - 1) * d..(r + 1) * t * d].iter().copied())
                        .collect()
                };
                let spare = std::mem::take(&mut st.spare_logits);
                let logits = timings::timed(tm, Stage::Projection, || {
                    net.project_into(&last, rows, spare)
                });
                Ok(StepOutput {
                    logits,
                    vocab,
                    alignment: attn,
                })
            }
            (Net::Candle(net), StateInner::Candle { .. }) => {
                let (h, attn) = timings::timed(tm, Stage::Decoder, || {
                    self.candle_decoder_hidden(net, state, tokens, want_alignment)
                })?;
                let (rows, _, d) = h.dims3()?;
                let last = h.narrow(1, h.dim(1)? - 1, 1)?.reshape((rows, d))?;
                let logits = timings::timed(tm, Stage::Projection, || -> Result<Vec<f32>> {
                    host(&net.project(&last)?)
                })?;
                let alignment = match attn {
                    // (rows, heads, t, S): first head, last query.
                    Some(p) => {
                        let t = p.dim(2)?;
                        let rows = p
                            .narrow(1, 0, 1)?
                            .narrow(2, t - 1, 1)?
                            .squeeze(2)?
                            .squeeze(1)?
                            .to_dtype(DType::F32)?
                            .to_vec2::<f32>()?;
                        Some(
                            rows.into_iter()
                                .zip(state.src_lengths())
                                .map(|(mut r, &n)| {
                                    r.truncate(n);
                                    r
                                })
                                .collect(),
                        )
                    }
                    None => None,
                };
                Ok(StepOutput {
                    logits,
                    vocab,
                    alignment,
                })
            }
            _ => Err(MarianError::Input(
                "decoder state comes from a model on another backend".into(),
            )),
        }
    }

    fn check_step(&self, rows: usize, tokens: &[u32], past: usize) -> Result<usize> {
        if rows == 0 || !tokens.len().is_multiple_of(rows) || tokens.is_empty() {
            return Err(MarianError::Input(format!(
                "{} decoder tokens for {rows} rows",
                tokens.len()
            )));
        }
        let t = tokens.len() / rows;
        self.check_ids(tokens, self.cfg.decoder_vocab_size, past, t)?;
        Ok(t)
    }

    /// Teacher-forced logits of every position, (rows, t, vocab), f32.
    pub fn forward_logits(&self, enc: &EncoderOutput, decoder_ids: &[Vec<u32>]) -> Result<Tensor> {
        let rows = decoder_ids.len();
        let t = decoder_ids.first().map_or(0, Vec::len);
        if rows != enc.lengths.len() || t == 0 || decoder_ids.iter().any(|r| r.len() != t) {
            return Err(MarianError::Input(
                "decoder_ids must be one non-empty row per source, all of the same length".into(),
            ));
        }
        let mut state = self.start_decoder(enc, t)?;
        let flat: Vec<u32> = decoder_ids.concat();
        match (&self.net, &mut state.inner) {
            (Net::Native(net), StateInner::Native(st)) => {
                self.check_step(rows, &flat, 0)?;
                let (h, _) = net.decode(st, &flat, false);
                let logits = net.project_into(&h, rows * t, Vec::new());
                Ok(Tensor::from_vec(
                    logits,
                    (rows, t, self.cfg.target_vocab_size()),
                    &self.device,
                )?)
            }
            (Net::Candle(net), _) => {
                let (h, _) = self.candle_decoder_hidden(net, &mut state, &flat, false)?;
                let (_, _, d) = h.dims3()?;
                Ok(net
                    .project(&h.reshape((rows * t, d))?)?
                    .reshape((rows, t, ()))?)
            }
            _ => unreachable!("start_decoder matched the backend"),
        }
    }

    fn candle_decoder_hidden(
        &self,
        net: &CandleNet,
        state: &mut DecoderState,
        tokens: &[u32],
        want_attn: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let rows = state.rows();
        let StateInner::Candle {
            self_kv,
            cross,
            enc_mask,
            pos,
        } = &mut state.inner
        else {
            unreachable!("candle state");
        };
        let t = self.check_step(rows, tokens, *pos)?;
        let past = *pos;
        let mut x = net.embed(&net.dec_embed, &net.dec_pos, tokens, rows, past, self)?;
        let causal = if t > 1 {
            let total = past + t;
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (t, total), &self.device)?.to_dtype(self.dtype())?)
        } else {
            None
        };
        let n = net.dec_layers.len();
        let mut attn = None;
        for (i, layer) in net.dec_layers.iter().enumerate() {
            let (k, v) = &cross[i];
            let (y, a) = layer.forward(
                &x,
                &mut self_kv[i],
                causal.as_ref(),
                k,
                v,
                enc_mask,
                want_attn && i + 1 == n,
            )?;
            x = y;
            if a.is_some() {
                attn = a;
            }
        }
        *pos += t;
        Ok((x, attn))
    }
}

impl CandleNet {
    fn embed(
        &self,
        table: &Tensor,
        pos_table: &Tensor,
        ids: &[u32],
        rows: usize,
        start: usize,
        model: &MarianModel,
    ) -> Result<Tensor> {
        let t = ids.len() / rows;
        let idx = Tensor::new(ids, &model.device)?;
        let x = (table.index_select(&idx, 0)? * model.embed_scale)?.reshape((
            rows,
            t,
            model.cfg.d_model,
        ))?;
        Ok(x.broadcast_add(&pos_table.narrow(0, start, t)?.unsqueeze(0)?)?)
    }

    fn project(&self, h: &Tensor) -> Result<Tensor> {
        // (V, d) @ (d, rows): keeps the big tied embedding in its stored
        // layout (no transposed copy next to the embedding table) and is the
        // fast GEMM orientation for it.
        let logits = self
            .lm_head
            .matmul(&h.t()?)?
            .t()?
            .broadcast_add(&self.final_logits_bias)?;
        Ok(logits.to_dtype(DType::F32)?)
    }
}

impl EncoderOutput {
    /// Encoder states of row `i` without its padding, (len, d_model).
    pub fn row(&self, i: usize) -> Result<Tensor> {
        Ok(self.hidden.get(i)?.narrow(0, 0, self.lengths[i])?)
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}
