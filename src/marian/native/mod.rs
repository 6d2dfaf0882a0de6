//! The native CPU engine: the same Marian network as `candle_net`, built
//! from the checkpoint's host weights packed once for [`kernels`], run on
//! plain row-major buffers. It owns the CPU forward passes: an encoder that
//! runs on the concatenated tokens of a batch (no padding rows), cross
//! keys/values kept once per source sentence (rows point at their source, so
//! beams share them and reordering copies nothing), a self-attention cache
//! laid out (row, position, [k | v]) so that a step appends one contiguous
//! vector per row and row selection copies one block per row, and the
//! vector math (layer norm, softmax, activations) around the matrix
//! products. Every matrix product goes through [`PackedLinear`], so the same
//! code runs in f32, bf16 or int8.

use std::sync::Arc;

use super::parallel::{par_chunks, par_chunks2};

pub(crate) mod kernels;

use super::checkpoint::{Affine, Attention, Checkpoint, Embeddings, HostTensor, embed_scale};
use super::{Activation, MarianConfig, MarianError, Result};
use kernels::vecmath::{self as ops, Bf16, CacheElem};
use kernels::{PackedLinear, Precision};

/// Applies `act` in place, in parallel chunks.
fn activate(act: Activation, x: &mut [f32]) {
    par_chunks(x, 16 * 1024, 1, |_, c| match act {
        Activation::Silu => ops::silu(c),
        Activation::Relu => ops::relu(c),
        Activation::GeluErf => c.iter_mut().for_each(|v| *v = gelu_erf(*v)),
        Activation::GeluTanh => c.iter_mut().for_each(|v| {
            let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
            *v = 0.5 * *v * (1.0 + u.tanh());
        }),
        Activation::Tanh => c.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Sigmoid => c.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
    });
}

fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x as f64 / std::f64::consts::SQRT_2) as f32)
}

/// Layer-norm affine parameters.
#[derive(Debug, Clone)]
struct Ln {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Ln {
    fn new(a: Affine<HostTensor>) -> Self {
        Self {
            w: a.weight.data,
            b: a.bias.data,
        }
    }
}

/// Q with the attention scaling folded in, in f32.
fn scaled_q(a: &Attention<HostTensor>, heads: usize) -> Affine<HostTensor> {
    let s = a.q_scaling(heads) as f32;
    let scale = |t: &HostTensor| HostTensor {
        data: t.data.iter().map(|v| v * s).collect(),
        shape: t.shape.clone(),
    };
    Affine {
        weight: scale(&a.q.weight),
        bias: scale(&a.q.bias),
    }
}

/// Self-attention's Q (scaled), K and V as one projection.
fn fused_qkv(a: &Attention<HostTensor>, heads: usize) -> Affine<HostTensor> {
    Affine::stacked(&[&scaled_q(a, heads), &a.k, &a.v])
}

fn pack(a: &Affine<HostTensor>, p: Precision) -> PackedLinear {
    let (n, k) = a.dims();
    PackedLinear::new(&a.weight.data, n, k, Some(&a.bias.data), p)
}

#[derive(Debug, Clone)]
struct EncLayer {
    qkv: PackedLinear,
    out: PackedLinear,
    ln1: Ln,
    fc1: PackedLinear,
    fc2: PackedLinear,
    ln2: Ln,
}

#[derive(Debug, Clone)]
struct DecLayer {
    qkv: PackedLinear,
    out: PackedLinear,
    ln1: Ln,
    cross_q: PackedLinear,
    cross_kv: PackedLinear,
    cross_out: PackedLinear,
    ln2: Ln,
    fc1: PackedLinear,
    fc2: PackedLinear,
    ln3: Ln,
}

/// Where a side's token embeddings are read from.
#[derive(Debug, Clone)]
enum Table {
    /// (vocab, d) row-major; shared between sides when tied.
    Rows(Arc<Vec<f32>>),
    /// The rows of the f32 output projection (tied embeddings): no second
    /// copy of the largest tensor.
    Projection,
}

/// Token embeddings and positions of one side.
#[derive(Debug, Clone)]
struct Embedding {
    table: Table,
    /// (positions, d) row-major.
    pos: Arc<Vec<f32>>,
}

#[derive(Debug, Clone)]
pub(super) struct Net {
    d: usize,
    heads: usize,
    act: Activation,
    embed_scale: f32,
    enc_embed: Embedding,
    dec_embed: Embedding,
    enc: Vec<EncLayer>,
    dec: Vec<DecLayer>,
    /// Output projection with `final_logits_bias` as its bias.
    proj: PackedLinear,
    /// Attention caches in bfloat16 (the reduced precisions).
    bf16_caches: bool,
}

/// Encoder states of a batch, tokens of all rows concatenated.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    /// (Σ lengths, d).
    hidden: Arc<Vec<f32>>,
    /// Start of each row's tokens; one more entry than rows.
    offsets: Arc<Vec<usize>>,
}

impl Encoded {
    /// Row `i`'s states, (len, d) row-major.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.hidden.len() / self.offsets.last().unwrap();
        &self.hidden[self.offsets[i] * d..self.offsets[i + 1] * d]
    }
}

/// Buffers a decoder step reuses instead of allocating (fresh pages cost a
/// page fault and a clear each, about 10% of a step when allocated anew).
#[derive(Debug, Clone, Default)]
struct Scratch {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    q: Vec<f32>,
    y: Vec<f32>,
    h: Vec<f32>,
}

/// `v` as a slice of `n` values; old contents stay (every user overwrites).
fn buf(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// Decoder state: per-layer self-attention cache and the batch's cross
/// keys/values.
#[derive(Debug, Clone)]
pub(super) struct State {
    d: usize,
    pub rows: usize,
    pub pos: usize,
    cap: usize,
    /// What `cap` may double up to (the most positions the caller feeds).
    limit: usize,
    caches: AnyCaches,
    offsets: Arc<Vec<usize>>,
    /// Source sentence of each row.
    pub row_src: Vec<usize>,
    scratch: Scratch,
    /// A logits buffer handed back by the search, reused by the next step.
    pub spare_logits: Vec<f32>,
}

/// The attention caches of a decoder state.
#[derive(Debug, Clone)]
struct Caches<E> {
    /// Per layer: (rows, cap, 2d), each position [k | v].
    kv: Vec<Vec<E>>,
    /// Per layer: (Σ source lengths, 2d), each token [k | v].
    cross: Arc<Vec<Vec<E>>>,
}

/// f32 caches for `--dtype f32` (exact), bfloat16 for the reduced
/// precisions: attention reads every row's caches each step, more bytes
/// than the int8 decoder weights at beam 4 (benches/NOTES.md).
#[derive(Debug, Clone)]
enum AnyCaches {
    F32(Caches<f32>),
    Bf16(Caches<Bf16>),
}

impl<E: CacheElem> Caches<E> {
    fn new(cross: Vec<Vec<f32>>, layers: usize, self_len: usize) -> Self {
        let cross = cross
            .into_iter()
            .map(|c| c.into_iter().map(E::from_f32).collect())
            .collect();
        Caches {
            kv: vec![vec![E::default(); self_len]; layers],
            cross: Arc::new(cross),
        }
    }

    /// See [`State::select_rows`]: `sources` are the distinct rows that
    /// move, blocks of `block` values of which `used` are filled.
    fn select_rows(&mut self, idx: &[u32], sources: &[usize], block: usize, used: usize) {
        let n = idx.len();
        par_chunks(&mut self.kv, 1, 1, |_, kv| {
            let kv = &mut kv[0];
            let mut saved = vec![E::default(); sources.len() * used];
            for (slot, &j) in sources.iter().enumerate() {
                saved[slot * used..(slot + 1) * used]
                    .copy_from_slice(&kv[j * block..j * block + used]);
            }
            kv.resize(n * block, E::default());
            for (i, &j) in idx.iter().enumerate() {
                let j = j as usize;
                if i != j {
                    let slot = sources.binary_search(&j).expect("saved source");
                    kv[i * block..i * block + used]
                        .copy_from_slice(&saved[slot * used..(slot + 1) * used]);
                }
            }
        });
    }

    /// Rows of `cap` positions become rows of `new_cap`, `used` values each
    /// kept; `w` values per position.
    fn grow(&mut self, rows: usize, cap: usize, new_cap: usize, w: usize, used: usize) {
        for kv in &mut self.kv {
            let mut next = vec![E::default(); rows * new_cap * w];
            for r in 0..rows {
                next[r * new_cap * w..r * new_cap * w + used]
                    .copy_from_slice(&kv[r * cap * w..r * cap * w + used]);
            }
            *kv = next;
        }
    }
}

impl State {
    /// Keeps rows `idx` in that order (repeats allowed). Rows that stay in
    /// place are not touched; only the used positions of moved rows are
    /// copied (beam reordering moves a few rows, dropping finished rows
    /// shifts the rest).
    pub fn select_rows(&mut self, idx: &[u32]) {
        let w = 2 * self.d;
        let block = self.cap * w;
        let used = self.pos * w;
        // Distinct sources of moved rows, each copied out once.
        let mut sources: Vec<usize> = idx
            .iter()
            .enumerate()
            .filter(|&(i, &j)| i != j as usize)
            .map(|(_, &j)| j as usize)
            .collect();
        sources.sort_unstable();
        sources.dedup();
        match &mut self.caches {
            AnyCaches::F32(c) => c.select_rows(idx, &sources, block, used),
            AnyCaches::Bf16(c) => c.select_rows(idx, &sources, block, used),
        }
        self.row_src = idx.iter().map(|&i| self.row_src[i as usize]).collect();
        self.rows = idx.len();
    }

    fn reserve(&mut self, need: usize) {
        if need <= self.cap {
            return;
        }
        let w = 2 * self.d;
        let new_cap = need.max((self.cap * 2).min(self.limit));
        let used = self.pos * w;
        let (rows, cap) = (self.rows, self.cap);
        match &mut self.caches {
            AnyCaches::F32(c) => c.grow(rows, cap, new_cap, w, used),
            AnyCaches::Bf16(c) => c.grow(rows, cap, new_cap, w, used),
        }
        self.cap = new_cap;
    }
}

/// The shape of one decoder step.
#[derive(Debug, Clone, Copy)]
struct Step {
    rows: usize,
    /// Positions fed per row.
    t: usize,
    /// Positions already in the caches.
    past: usize,
    /// Positions each row's cache holds.
    cap: usize,
    want_attn: bool,
}

/// Rows whose work is worth splitting across threads.
const PAR_ROWS: usize = 4;

impl Net {
    /// Packs the network in precision `p`, one layer of host weights at a
    /// time (the f32 form of the whole network never exists), the
    /// embeddings last.
    pub fn build(cfg: &MarianConfig, ck: &Checkpoint, p: Precision) -> Result<Self> {
        if cfg.encoder_attention_heads != cfg.decoder_attention_heads {
            return Err(MarianError::Config(
                "the native engine needs as many encoder as decoder heads".into(),
            ));
        }
        // A forced tier this CPU lacks fails here, before any work.
        kernels::isa::selected()?;
        let heads = cfg.decoder_attention_heads;
        let enc = (0..cfg.encoder_layers)
            .map(|i| -> Result<_> {
                let l = ck.encoder_layer(i)?;
                Ok(EncLayer {
                    qkv: pack(&fused_qkv(&l.self_attn, heads), p),
                    out: pack(&l.self_attn.out, p),
                    ln1: Ln::new(l.self_attn_norm),
                    fc1: pack(&l.fc1, p),
                    fc2: pack(&l.fc2, p),
                    ln2: Ln::new(l.final_norm),
                })
            })
            .collect::<Result<_>>()?;
        let dec = (0..cfg.decoder_layers)
            .map(|i| -> Result<_> {
                let l = ck.decoder_layer(i)?;
                Ok(DecLayer {
                    qkv: pack(&fused_qkv(&l.self_attn, heads), p),
                    out: pack(&l.self_attn.out, p),
                    ln1: Ln::new(l.self_attn_norm),
                    cross_q: pack(&scaled_q(&l.cross_attn, heads), p),
                    cross_kv: pack(&l.cross_attn.fused_kv(), p),
                    cross_out: pack(&l.cross_attn.out, p),
                    ln2: Ln::new(l.cross_attn_norm),
                    fc1: pack(&l.fc1, p),
                    fc2: pack(&l.fc2, p),
                    ln3: Ln::new(l.final_norm),
                })
            })
            .collect::<Result<_>>()?;
        let Embeddings {
            enc_tokens,
            dec_tokens,
            lm_head,
            final_logits_bias,
            enc_pos,
            dec_pos,
        } = ck.embeddings()?;
        let w = lm_head
            .as_ref()
            .or(dec_tokens.as_ref())
            .unwrap_or(&enc_tokens);
        let (n, k) = (w.shape[0], w.shape[1]);
        let proj = PackedLinear::new(&w.data, n, k, Some(&final_logits_bias.data), p);
        drop((lm_head, final_logits_bias));
        // Tied f32 embeddings are read from the packed projection: no second
        // copy of the largest tensor.
        let from_proj = p == Precision::F32 && cfg.tie_word_embeddings;
        let shared = dec_tokens.is_none();
        let enc_rows = Arc::new(enc_tokens.data);
        let dec_table = match dec_tokens {
            _ if from_proj => Table::Projection,
            Some(t) => Table::Rows(Arc::new(t.data)),
            None => Table::Rows(enc_rows.clone()),
        };
        let enc_table = if shared {
            dec_table.clone()
        } else {
            Table::Rows(enc_rows)
        };
        Ok(Self {
            d: cfg.d_model,
            heads,
            act: cfg.activation,
            embed_scale: embed_scale(cfg) as f32,
            enc_embed: Embedding {
                table: enc_table,
                pos: Arc::new(enc_pos.data),
            },
            dec_embed: Embedding {
                table: dec_table,
                pos: Arc::new(dec_pos.data),
            },
            enc,
            dec,
            proj,
            bf16_caches: p != Precision::F32,
        })
    }

    fn embed(
        &self,
        e: &Embedding,
        ids: &[u32],
        positions: impl Fn(usize) -> usize + Sync,
    ) -> Vec<f32> {
        let d = self.d;
        let mut x = vec![0f32; ids.len() * d];
        let scale = self.embed_scale;
        par_chunks(&mut x, d, 16, |first, rows| {
            for (i, row) in (first..).zip(rows.chunks_mut(d)) {
                let id = ids[i] as usize;
                let p = positions(i);
                let p = &e.pos[p * d..(p + 1) * d];
                match &e.table {
                    Table::Rows(t) => {
                        let t = &t[id * d..(id + 1) * d];
                        for j in 0..d {
                            row[j] = t[j] * scale + p[j];
                        }
                    }
                    Table::Projection => {
                        let t = self.proj.weight_row(id).expect("f32 projection");
                        for ((o, w), &pj) in row.iter_mut().zip(t).zip(p) {
                            *o = w * scale + pj;
                        }
                    }
                }
            }
        });
        x
    }

    /// `x = LN(x + lin(input))`.
    fn residual(&self, l: (&PackedLinear, &Ln), input: &[f32], x: &mut [f32], sc: &mut Scratch) {
        let rows = x.len() / self.d;
        let y = buf(&mut sc.y, rows * l.0.out_dim());
        l.0.forward(input, rows, y);
        self.add_layer_norm(x, y, l.1);
    }

    /// `x = LN(x + fc2(act(fc1(x))))`.
    fn ffn(&self, fc: (&PackedLinear, &PackedLinear), ln: &Ln, x: &mut [f32], sc: &mut Scratch) {
        let rows = x.len() / self.d;
        let h = buf(&mut sc.h, rows * fc.0.out_dim());
        fc.0.forward(x, rows, h);
        activate(self.act, h);
        let y = buf(&mut sc.y, rows * self.d);
        fc.1.forward(h, rows, y);
        self.add_layer_norm(x, y, ln);
    }

    /// `x = LN(x + y)`, rows split across the pool: on one thread the other
    /// cores would wait through it between two matrix products.
    fn add_layer_norm(&self, x: &mut [f32], y: &[f32], ln: &Ln) {
        let d = self.d;
        let per = (x.len() / d)
            .div_ceil(rayon::current_num_threads())
            .max(PAR_ROWS)
            * d;
        par_chunks(x, per, 1, |i, x| {
            ops::add_layer_norm(x, &y[i * per..i * per + x.len()], &ln.w, &ln.b, d)
        });
    }

    /// Multi-head attention of one query `q` (d values) over `n` keys and
    /// values, `stride` floats apart, each d values split into heads; the
    /// result goes to `out` (d values) and `scores` starts with the first
    /// head's probabilities (the alignment head).
    #[allow(clippy::too_many_arguments)]
    fn attend_heads(
        &self,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        stride: usize,
        n: usize,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        ops::attend_heads(q, keys, values, stride, n, self.heads, scores, out);
    }

    /// Encodes every row of `batch`, without padding.
    pub fn encode(&self, batch: &[Vec<u32>]) -> Encoded {
        let d = self.d;
        let mut offsets = Vec::with_capacity(batch.len() + 1);
        offsets.push(0);
        for s in batch {
            offsets.push(offsets.last().unwrap() + s.len());
        }
        let total = *offsets.last().unwrap();
        let ids: Vec<u32> = batch.concat();
        // Position of each token inside its row.
        let pos: Vec<usize> = batch.iter().flat_map(|s| 0..s.len()).collect();
        let row_of: Vec<usize> = batch
            .iter()
            .enumerate()
            .flat_map(|(r, s)| std::iter::repeat_n(r, s.len()))
            .collect();
        let mut x = self.embed(&self.enc_embed, &ids, |i| pos[i]);
        let mut sc = Scratch::default();
        for l in &self.enc {
            let mut qkv = std::mem::take(&mut sc.qkv);
            let qkv_s = buf(&mut qkv, total * 3 * d);
            l.qkv.forward(&x, total, qkv_s);
            let qkv_s = &*qkv_s;
            let mut ctx = std::mem::take(&mut sc.ctx);
            let per = total.div_ceil(PAR_ROWS * 8).max(1);
            par_chunks(buf(&mut ctx, total * d), d, per, |first, outs| {
                let mut scores = Vec::new();
                for (i, out) in (first..).zip(outs.chunks_mut(d)) {
                    let r = row_of[i];
                    let (s0, s1) = (offsets[r], offsets[r + 1]);
                    let q = &qkv_s[i * 3 * d..i * 3 * d + d];
                    let keys = &qkv_s[s0 * 3 * d..s1 * 3 * d];
                    let (k, v) = (&keys[d..], &keys[2 * d..]);
                    self.attend_heads(q, k, v, 3 * d, s1 - s0, &mut scores, out);
                }
            });
            self.residual((&l.out, &l.ln1), &ctx[..total * d], &mut x, &mut sc);
            self.ffn((&l.fc1, &l.fc2), &l.ln2, &mut x, &mut sc);
            sc.qkv = qkv;
            sc.ctx = ctx;
        }
        Encoded {
            hidden: Arc::new(x),
            offsets: Arc::new(offsets),
        }
    }

    /// A decoder state for the rows of `enc`: cross keys/values of every layer.
    pub fn start(&self, enc: &Encoded, max_positions: usize) -> State {
        let total = *enc.offsets.last().unwrap();
        let cross = self
            .dec
            .iter()
            .map(|l| {
                let mut kv = vec![0f32; total * 2 * self.d];
                l.cross_kv.forward(&enc.hidden, total, &mut kv);
                kv
            })
            .collect();
        let rows = enc.offsets.len() - 1;
        let limit = max_positions.max(1);
        let cap = limit.min(super::INITIAL_POSITIONS);
        let (layers, self_len) = (self.dec.len(), rows * cap * 2 * self.d);
        State {
            d: self.d,
            rows,
            pos: 0,
            cap,
            limit,
            caches: if self.bf16_caches {
                AnyCaches::Bf16(Caches::new(cross, layers, self_len))
            } else {
                AnyCaches::F32(Caches::new(cross, layers, self_len))
            },
            offsets: enc.offsets.clone(),
            row_src: (0..rows).collect(),
            scratch: Scratch::default(),
            spare_logits: Vec::new(),
        }
    }

    /// Runs `tokens` ((rows, t) row-major) through the decoder layers and
    /// returns the hidden states of all rows × t positions, plus, when asked,
    /// the last layer's first-head cross-attention of each row's last
    /// position (unpadded).
    pub fn decode(
        &self,
        st: &mut State,
        tokens: &[u32],
        want_attn: bool,
    ) -> (Vec<f32>, Option<Vec<Vec<f32>>>) {
        let rows = st.rows;
        let t = tokens.len() / rows;
        let past = st.pos;
        st.reserve(past + t);
        let mut x = self.embed(&self.dec_embed, tokens, |i| past + i % t);
        let cap = st.cap;
        let mut sc = std::mem::take(&mut st.scratch);
        let step = Step {
            rows,
            t,
            past,
            cap,
            want_attn,
        };
        let (offsets, row_src) = (&st.offsets, &st.row_src);
        let attn = match &mut st.caches {
            AnyCaches::F32(c) => self.decode_layers(c, &step, offsets, row_src, &mut x, &mut sc),
            AnyCaches::Bf16(c) => self.decode_layers(c, &step, offsets, row_src, &mut x, &mut sc),
        };
        st.scratch = sc;
        st.pos += t;
        (x, attn)
    }

    /// The decoder layers of one step over caches of element `E`; the
    /// last layer's first-head cross-attention when `step.want_attn`.
    fn decode_layers<E: CacheElem>(
        &self,
        caches: &mut Caches<E>,
        step: &Step,
        offsets: &[usize],
        row_src: &[usize],
        x: &mut [f32],
        sc: &mut Scratch,
    ) -> Option<Vec<Vec<f32>>> {
        let d = self.d;
        let heads = self.heads;
        let Step {
            rows,
            t,
            past,
            cap,
            want_attn,
        } = *step;
        let n = rows * t;
        let last = self.dec.len() - 1;
        let mut attn = None;
        for (li, l) in self.dec.iter().enumerate() {
            // Self-attention: project, append to the cache, attend.
            let mut qkv = std::mem::take(&mut sc.qkv);
            let qkv_s = buf(&mut qkv, n * 3 * d);
            l.qkv.forward(x, n, qkv_s);
            let qkv_s = &*qkv_s;
            let mut ctx = std::mem::take(&mut sc.ctx);
            let per = rows.div_ceil(PAR_ROWS * 8).max(1);
            let (ctx_s, kv) = (
                buf(&mut ctx, n * d),
                &mut caches.kv[li][..rows * cap * 2 * d],
            );
            let append = |r: usize, cache: &mut [E]| {
                for i in 0..t {
                    let src = &qkv_s[(r * t + i) * 3 * d + d..(r * t + i + 1) * 3 * d];
                    let dst = &mut cache[(past + i) * 2 * d..(past + i + 1) * 2 * d];
                    for (c, &v) in dst.iter_mut().zip(src) {
                        *c = E::from_f32(v);
                    }
                }
            };
            let attend = |i: usize, cache: &[E], scores: &mut Vec<f32>, out: &mut [f32]| {
                let q = &qkv_s[i * 3 * d..i * 3 * d + d];
                let n_keys = past + i % t + 1;
                ops::attend_heads(q, cache, &cache[d..], 2 * d, n_keys, heads, scores, out);
            };
            if t == 1 {
                // Decoding: one task per row appends its position to its
                // cache and attends (one parallel pass, not two).
                par_chunks2(ctx_s, d, kv, cap * 2 * d, per, |first, outs, caches| {
                    let mut scores = Vec::new();
                    let rows = outs.chunks_mut(d).zip(caches.chunks_mut(cap * 2 * d));
                    for (r, (out, cache)) in (first..).zip(rows) {
                        append(r, cache);
                        attend(r, cache, &mut scores, out);
                    }
                });
            } else {
                // Several positions per row (teacher forcing): append, then
                // split the queries, so that one long row still uses every
                // thread.
                par_chunks(kv, cap * 2 * d, per, |first, caches| {
                    for (r, cache) in (first..).zip(caches.chunks_mut(cap * 2 * d)) {
                        append(r, cache);
                    }
                });
                let kv = &*kv;
                par_chunks(ctx_s, d, n.div_ceil(PAR_ROWS * 8).max(1), |first, outs| {
                    let mut scores = Vec::new();
                    for (i, out) in (first..).zip(outs.chunks_mut(d)) {
                        let r = i / t;
                        let cache = &kv[r * cap * 2 * d..(r + 1) * cap * 2 * d];
                        attend(i, cache, &mut scores, out);
                    }
                });
            }
            self.residual((&l.out, &l.ln1), &ctx[..n * d], x, sc);

            // Cross-attention over each row's source.
            let mut q = std::mem::take(&mut sc.q);
            let q_s = buf(&mut q, n * d);
            l.cross_q.forward(x, n, q_s);
            let q_s = &*q_s;
            let cross = &caches.cross[li];
            let keep = want_attn && li == last;
            let mut per_row: Vec<Option<Vec<f32>>> = vec![None; n];
            let per = n.div_ceil(PAR_ROWS * 8).max(1);
            let ctx_s = buf(&mut ctx, n * d);
            par_chunks2(ctx_s, d, &mut per_row, 1, per, |first, outs, kept| {
                let mut scores = Vec::new();
                for (i, out) in (first..).zip(outs.chunks_mut(d)) {
                    let (r, ti) = (i / t, i % t);
                    let s = row_src[r];
                    let (s0, s1) = (offsets[s], offsets[s + 1]);
                    let src = &cross[s0 * 2 * d..s1 * 2 * d];
                    let qi = &q_s[i * d..(i + 1) * d];
                    ops::attend_heads(qi, src, &src[d..], 2 * d, s1 - s0, heads, &mut scores, out);
                    // `scores` now holds the first head's probabilities.
                    if keep && ti + 1 == t {
                        kept[i - first] = Some(scores[..s1 - s0].to_vec());
                    }
                }
            });
            if keep {
                let mut probs: Vec<Vec<f32>> = vec![Vec::new(); rows];
                for (i, p) in per_row.into_iter().enumerate() {
                    if let Some(p) = p {
                        probs[i / t] = p;
                    }
                }
                attn = Some(probs);
            }
            self.residual((&l.cross_out, &l.ln2), &ctx[..n * d], x, sc);
            self.ffn((&l.fc1, &l.fc2), &l.ln3, x, sc);
            sc.qkv = qkv;
            sc.ctx = ctx;
            sc.q = q;
        }
        attn
    }

    /// The last of every `t` positions of `rows` rows of hidden states.
    pub fn last_positions(&self, h: Vec<f32>, rows: usize, t: usize) -> Vec<f32> {
        if t == 1 {
            return h;
        }
        let d = self.d;
        (0..rows)
            .flat_map(|r| h[((r + 1) * t - 1) * d..(r + 1) * t * d].iter().copied())
            .collect()
    }

    /// Logits of `rows` hidden states, (rows, vocab), written into `out`
    /// (resized; a recycled buffer saves clearing fresh pages).
    pub fn project_into(&self, h: &[f32], rows: usize, mut out: Vec<f32>) -> Vec<f32> {
        let n = rows * self.proj.out_dim();
        out.truncate(n);
        buf(&mut out, n);
        self.proj.forward(h, rows, &mut out);
        out
    }
}
