//! The native CPU engine: the same Marian network as the candle layers of
//! this module, run on weights packed once for [`kernels`] and
//! on plain row-major buffers. It owns the CPU forward passes: an encoder
//! that runs on the concatenated tokens of a batch (no padding rows), cross
//! keys/values kept once per source sentence (rows point at their source, so
//! beams share them and reordering copies nothing), a self-attention cache
//! laid out (row, position, [k | v]) so that a step appends one contiguous
//! vector per row and row selection copies one block per row, and the
//! vector math (layer norm, softmax, activations) around the matrix
//! products. Every matrix product goes through [`PackedLinear`], so the same
//! code runs in f32, bf16 or int8.

use std::sync::Arc;

use rayon::prelude::*;

pub(crate) mod kernels;

use super::Activation;
use kernels::PackedLinear;
use kernels::vecmath as ops;

/// Applies `act` in place, in parallel chunks.
fn activate(act: Activation, x: &mut [f32]) {
    x.par_chunks_mut(16 * 1024).for_each(|c| match act {
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
pub(super) struct Ln {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

#[derive(Debug, Clone)]
pub(super) struct EncLayer {
    pub qkv: PackedLinear,
    pub out: PackedLinear,
    pub ln1: Ln,
    pub fc1: PackedLinear,
    pub fc2: PackedLinear,
    pub ln2: Ln,
}

#[derive(Debug, Clone)]
pub(super) struct DecLayer {
    pub qkv: PackedLinear,
    pub out: PackedLinear,
    pub ln1: Ln,
    pub cross_q: PackedLinear,
    pub cross_kv: PackedLinear,
    pub cross_out: PackedLinear,
    pub ln2: Ln,
    pub fc1: PackedLinear,
    pub fc2: PackedLinear,
    pub ln3: Ln,
}

/// Where a side's token embeddings are read from.
#[derive(Debug, Clone)]
pub(super) enum Table {
    /// (vocab, d) row-major; shared between sides when tied.
    Rows(Arc<Vec<f32>>),
    /// The rows of the f32 output projection (tied embeddings): no second
    /// copy of the largest tensor.
    Projection,
}

/// Token embeddings and positions of one side.
#[derive(Debug, Clone)]
pub(super) struct Embedding {
    pub table: Table,
    /// (positions, d) row-major.
    pub pos: Arc<Vec<f32>>,
}

#[derive(Debug, Clone)]
pub(super) struct Net {
    pub d: usize,
    pub heads: usize,
    pub act: Activation,
    pub embed_scale: f32,
    pub enc_embed: Embedding,
    pub dec_embed: Embedding,
    pub enc: Vec<EncLayer>,
    pub dec: Vec<DecLayer>,
    /// Output projection with `final_logits_bias` as its bias.
    pub proj: PackedLinear,
}

/// Encoder states of a batch, tokens of all rows concatenated.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    /// (Σ lengths, d).
    pub hidden: Arc<Vec<f32>>,
    /// Start of each row's tokens; one more entry than rows.
    pub offsets: Arc<Vec<usize>>,
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
    /// Per layer: (rows, cap, 2d), each position [k | v].
    kv: Vec<Vec<f32>>,
    /// Per layer: (Σ source lengths, 2d), each token [k | v].
    cross: Arc<Vec<Vec<f32>>>,
    offsets: Arc<Vec<usize>>,
    /// Source sentence of each row.
    pub row_src: Vec<usize>,
    scratch: Scratch,
    /// A logits buffer handed back by the search, reused by the next step.
    pub spare_logits: Vec<f32>,
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
        let n = idx.len();
        // Distinct sources of moved rows, each copied out once.
        let mut sources: Vec<usize> = idx
            .iter()
            .enumerate()
            .filter(|&(i, &j)| i != j as usize)
            .map(|(_, &j)| j as usize)
            .collect();
        sources.sort_unstable();
        sources.dedup();
        self.kv.par_iter_mut().for_each(|kv| {
            let mut saved = vec![0f32; sources.len() * used];
            for (slot, &j) in sources.iter().enumerate() {
                saved[slot * used..(slot + 1) * used]
                    .copy_from_slice(&kv[j * block..j * block + used]);
            }
            kv.resize(n * block, 0.0);
            for (i, &j) in idx.iter().enumerate() {
                let j = j as usize;
                if i != j {
                    let slot = sources.binary_search(&j).expect("saved source");
                    kv[i * block..i * block + used]
                        .copy_from_slice(&saved[slot * used..(slot + 1) * used]);
                }
            }
        });
        self.row_src = idx.iter().map(|&i| self.row_src[i as usize]).collect();
        self.rows = n;
    }

    fn reserve(&mut self, need: usize) {
        if need <= self.cap {
            return;
        }
        let w = 2 * self.d;
        let new_cap = need.max(self.cap * 2);
        let used = self.pos * w;
        for kv in &mut self.kv {
            let mut next = vec![0f32; self.rows * new_cap * w];
            for r in 0..self.rows {
                next[r * new_cap * w..r * new_cap * w + used]
                    .copy_from_slice(&kv[r * self.cap * w..r * self.cap * w + used]);
            }
            *kv = next;
        }
        self.cap = new_cap;
    }
}

/// Rows whose work is worth splitting across threads.
const PAR_ROWS: usize = 4;

impl Net {
    fn dh(&self) -> usize {
        self.d / self.heads
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
        x.par_chunks_mut(d)
            .with_min_len(16)
            .enumerate()
            .for_each(|(i, row)| {
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
            });
        x
    }

    /// `x = LN(x + lin(input))`.
    fn residual(&self, l: (&PackedLinear, &Ln), input: &[f32], x: &mut [f32], sc: &mut Scratch) {
        let rows = x.len() / self.d;
        let y = buf(&mut sc.y, rows * l.0.out_dim());
        l.0.forward(input, rows, y);
        ops::add_layer_norm(x, y, &l.1.w, &l.1.b, self.d);
    }

    /// `x = LN(x + fc2(act(fc1(x))))`.
    fn ffn(&self, fc: (&PackedLinear, &PackedLinear), ln: &Ln, x: &mut [f32], sc: &mut Scratch) {
        let rows = x.len() / self.d;
        let h = buf(&mut sc.h, rows * fc.0.out_dim());
        fc.0.forward(x, rows, h);
        activate(self.act, h);
        let y = buf(&mut sc.y, rows * self.d);
        fc.1.forward(h, rows, y);
        ops::add_layer_norm(x, y, &ln.w, &ln.b, self.d);
    }

    /// Multi-head attention of one query `q` (d values) over `n` keys and
    /// values, `stride` floats apart, each d values split into heads; the
    /// result goes to `out` (d values). Heads run last to first so that
    /// `scores` ends holding the first head's probabilities (the alignment
    /// head).
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
        let dh = self.dh();
        for h in (0..self.heads).rev() {
            let head = h * dh..(h + 1) * dh;
            ops::attend(
                &q[head.clone()],
                &keys[head.start..],
                &values[head.start..],
                stride,
                n,
                scores,
                &mut out[head],
            );
        }
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
            buf(&mut ctx, total * d)
                .par_chunks_mut(d)
                .enumerate()
                .for_each_init(Vec::new, |scores, (i, out)| {
                    let r = row_of[i];
                    let (s0, s1) = (offsets[r], offsets[r + 1]);
                    let q = &qkv_s[i * 3 * d..i * 3 * d + d];
                    let keys = &qkv_s[s0 * 3 * d..s1 * 3 * d];
                    self.attend_heads(q, &keys[d..], &keys[2 * d..], 3 * d, s1 - s0, scores, out);
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
    pub fn start(&self, enc: &Encoded, capacity: usize) -> State {
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
        let cap = capacity.max(1);
        State {
            d: self.d,
            rows,
            pos: 0,
            cap,
            kv: vec![vec![0f32; rows * cap * 2 * self.d]; self.dec.len()],
            cross: Arc::new(cross),
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
        let d = self.d;
        let rows = st.rows;
        let t = tokens.len() / rows;
        let past = st.pos;
        st.reserve(past + t);
        let n = rows * t;
        let mut x = self.embed(&self.dec_embed, tokens, |i| past + i % t);
        let cap = st.cap;
        let mut attn = None;
        let last = self.dec.len() - 1;
        let mut sc = std::mem::take(&mut st.scratch);
        for (li, l) in self.dec.iter().enumerate() {
            // Self-attention: project, append to the cache, attend.
            let mut qkv = std::mem::take(&mut sc.qkv);
            let qkv_s = buf(&mut qkv, n * 3 * d);
            l.qkv.forward(&x, n, qkv_s);
            let qkv_s = &*qkv_s;
            let kv = &mut st.kv[li];
            kv.par_chunks_mut(cap * 2 * d)
                .enumerate()
                .for_each(|(r, cache)| {
                    for i in 0..t {
                        let src = &qkv_s[(r * t + i) * 3 * d + d..(r * t + i + 1) * 3 * d];
                        cache[(past + i) * 2 * d..(past + i + 1) * 2 * d].copy_from_slice(src);
                    }
                });
            let kv = &st.kv[li];
            let mut ctx = std::mem::take(&mut sc.ctx);
            buf(&mut ctx, n * d)
                .par_chunks_mut(d)
                .with_min_len(n.div_ceil(PAR_ROWS * 8).max(1))
                .enumerate()
                .for_each_init(Vec::new, |scores, (i, out)| {
                    let (r, ti) = (i / t, i % t);
                    let cache = &kv[r * cap * 2 * d..];
                    let q = &qkv_s[i * 3 * d..i * 3 * d + d];
                    self.attend_heads(q, cache, &cache[d..], 2 * d, past + ti + 1, scores, out);
                });
            self.residual((&l.out, &l.ln1), &ctx[..n * d], &mut x, &mut sc);

            // Cross-attention over each row's source.
            let mut q = std::mem::take(&mut sc.q);
            let q_s = buf(&mut q, n * d);
            l.cross_q.forward(&x, n, q_s);
            let q_s = &*q_s;
            let cross = &st.cross[li];
            let offsets = &st.offsets;
            let row_src = &st.row_src;
            let keep = want_attn && li == last;
            let per_row: Vec<Option<Vec<f32>>> = buf(&mut ctx, n * d)
                .par_chunks_mut(d)
                .with_min_len(n.div_ceil(PAR_ROWS * 8).max(1))
                .enumerate()
                .map_init(Vec::new, |scores, (i, out)| {
                    let (r, ti) = (i / t, i % t);
                    let s = row_src[r];
                    let (s0, s1) = (offsets[s], offsets[s + 1]);
                    let src = &cross[s0 * 2 * d..s1 * 2 * d];
                    let qi = &q_s[i * d..(i + 1) * d];
                    self.attend_heads(qi, src, &src[d..], 2 * d, s1 - s0, scores, out);
                    // `scores` now holds the first head's probabilities.
                    (keep && ti + 1 == t).then(|| scores[..s1 - s0].to_vec())
                })
                .collect();
            if keep {
                let mut probs: Vec<Vec<f32>> = vec![Vec::new(); rows];
                for (i, p) in per_row.into_iter().enumerate() {
                    if let Some(p) = p {
                        probs[i / t] = p;
                    }
                }
                attn = Some(probs);
            }
            self.residual((&l.cross_out, &l.ln2), &ctx[..n * d], &mut x, &mut sc);
            self.ffn((&l.fc1, &l.fc2), &l.ln3, &mut x, &mut sc);
            sc.qkv = qkv;
            sc.ctx = ctx;
            sc.q = q;
        }
        st.scratch = sc;
        st.pos += t;
        (x, attn)
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
