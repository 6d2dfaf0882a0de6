//! Token selection over a decoder step's logits: the part of greedy and beam
//! search that reads every entry of a vocabulary row. The search loops of
//! [`crate::decode`] describe a step's selection as a [`PickSpec`] (the
//! logits processors' edits as short per-row lists, whether to select on
//! log-probabilities, how many candidates) and get back only `k` [`Pick`]s
//! per row, so that on a GPU the (rows × vocabulary) logits never leave the
//! device. This module owns those semantics and their two implementations:
//! the host one (the native engine's logits, and candle's CPU tensors through
//! the custom op [`PickOp`]) and its CUDA twin `pick.cu`, which the tests
//! below run against the host one on this machine by compiling it for an
//! emulation of CUDA's block model, and `tarjama info --self-test` runs on a
//! GPU ([`check`]). candle has no top-k: its `arg_sort_last_dim` is a full
//! bitonic sort of each row with the row's indices in shared memory (65,536
//! of them for this vocabulary, 256 KB, more than a block may have) and is
//! not stable, so ties would not break as transformers breaks them; hence
//! the custom op.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};

use super::math::{MAXIMA_CHUNK, chunk_maxima, log_softmax_in_place, max_and_log_sum_exp};
use super::parallel::par_chunks2;

/// Candidates per row and base the CUDA kernel keeps (per thread, in
/// registers); more falls back to the host (`k` is twice the beam).
pub const DEVICE_MAX_K: usize = 64;

/// What to select from a step's logits, for every row.
#[derive(Debug, Clone, PartialEq)]
pub struct PickSpec {
    /// Candidates per row and base, best first.
    pub k: usize,
    /// Beam search: the row is log-softmaxed before the edits, candidates are
    /// ranked by processed log-probability plus base and report the processed
    /// log-probability. Greedy search (false): the edits apply to the logits,
    /// and a candidate reports the log-softmax of the processed row at it.
    pub log_probs: bool,
    /// Log-softmax again after the edits (transformers' `renormalize_logits`).
    pub renormalize: bool,
    /// Repetition penalty on [`RowEdits::penalised`] (1 = none): a negative
    /// value is multiplied by it, any other divided.
    pub repetition_penalty: f32,
    /// The tokens a forced row keeps (at 0; every other token gets -inf).
    pub forced_tokens: Vec<u32>,
    /// One entry per row.
    pub rows: Vec<RowEdits>,
}

/// The processors' edits of one row, applied in transformers' order:
/// penalties, then bans, then forcing (which overrides both).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowEdits {
    /// Distinct tokens the repetition penalty applies to.
    pub penalised: Vec<u32>,
    /// Tokens set to -inf (repeats allowed).
    pub banned: Vec<u32>,
    /// Keep only [`PickSpec::forced_tokens`].
    pub forced: bool,
    /// Added to the row's values before ranking; `k` candidates per base (a
    /// beam's running score; before the first step every beam of a sentence
    /// shares one row). The same number for every row.
    pub bases: Vec<f32>,
}

/// One candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pick {
    pub token: u32,
    /// Processed value plus base: what candidates are ranked by.
    pub score: f32,
    /// See [`PickSpec::log_probs`].
    pub logprob: f32,
}

impl PickSpec {
    /// Candidates returned per row.
    pub fn per_row(&self) -> usize {
        self.k * self.rows.first().map_or(1, |r| r.bases.len())
    }

    /// Checks the spec against `rows` logit rows of `vocab` entries.
    pub fn check(&self, rows: usize, vocab: usize) -> Result<(), String> {
        let bases = self.rows.first().map_or(0, |r| r.bases.len());
        let out_of_range = |t: &u32| *t as usize >= vocab;
        if self.rows.len() != rows {
            Err(format!("{} row edits for {rows} rows", self.rows.len()))
        } else if self.k == 0 || self.k > vocab {
            Err(format!("k = {} for a vocabulary of {vocab}", self.k))
        } else if vocab >= 1 << 24 {
            // Token ids travel as f32 in the op's output.
            Err(format!("a vocabulary of {vocab} is too large"))
        } else if bases == 0 || self.rows.iter().any(|r| r.bases.len() != bases) {
            Err("every row needs the same, non-zero number of bases".into())
        } else if self.forced_tokens.iter().any(out_of_range)
            || self
                .rows
                .iter()
                .any(|r| r.penalised.iter().chain(&r.banned).any(out_of_range))
        {
            Err(format!("edited token outside the vocabulary ({vocab})"))
        } else {
            Ok(())
        }
    }
}

/// Selects from `logits` ((rows, vocab) row-major, processed in place), the
/// rows in parallel: `per_row()` picks per row.
pub(crate) fn pick_rows(logits: &mut [f32], vocab: usize, spec: &PickSpec) -> Vec<Pick> {
    let per_row = spec.per_row();
    let mut out = vec![Pick::default(); spec.rows.len() * per_row];
    par_chunks2(logits, vocab, &mut out, per_row, 1, |r, row, out| {
        pick_row(row, spec, &spec.rows[r], out)
    });
    out
}

/// The reference semantics, one row; `pick.cu` is its twin.
fn pick_row(row: &mut [f32], spec: &PickSpec, e: &RowEdits, out: &mut [Pick]) {
    if spec.log_probs {
        log_softmax_in_place(row);
    }
    if e.forced {
        row.fill(f32::NEG_INFINITY);
        for &t in &spec.forced_tokens {
            row[t as usize] = 0.0;
        }
    } else {
        let p = spec.repetition_penalty;
        if p != 1.0 {
            for &t in &e.penalised {
                let s = row[t as usize];
                row[t as usize] = if s < 0.0 { s * p } else { s / p };
            }
        }
        for &t in &e.banned {
            row[t as usize] = f32::NEG_INFINITY;
        }
    }
    if spec.renormalize {
        log_softmax_in_place(row);
    }
    let norm = (!spec.log_probs).then(|| max_and_log_sum_exp(row));
    let k = spec.k;
    for (slot, &base) in out.chunks_mut(k).zip(&e.bases) {
        for (o, (t, score)) in slot.iter_mut().zip(row_top_k(row, base, k)) {
            let v = row[t as usize];
            *o = Pick {
                token: t,
                score,
                logprob: norm.map_or(v, |(m, lse)| v - m - lse),
            };
        }
    }
}

/// The `k` best (token, value + base) of a row, best first, ties to the
/// lower token, NaN ranked as -inf; the sums are compared as transformers
/// compares them (in f32, after adding).
fn row_top_k(row: &[f32], base: f32, k: usize) -> Vec<(u32, f32)> {
    thread_local! {
        static MAXIMA: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    MAXIMA.with_borrow_mut(|maxima| {
        chunk_maxima(row, maxima);
        for (c, (chunk, &m)) in row.chunks(MAXIMA_CHUNK).zip(maxima.iter()).enumerate() {
            // Rounding is monotonic, so a chunk whose maximum cannot enter
            // cannot contribute anything (later tokens lose ties).
            if best.len() == k && key(m + base) <= best[k - 1].1 {
                continue;
            }
            for (i, &v) in chunk.iter().enumerate() {
                let v = key(v + base);
                if best.len() == k && v <= best[k - 1].1 {
                    continue;
                }
                let pos = best.iter().position(|&(_, b)| v > b).unwrap_or(best.len());
                best.insert(pos, ((c * MAXIMA_CHUNK + i) as u32, v));
                best.truncate(k);
            }
        }
    });
    best
}

/// `pick_rows` as a candle op on a contiguous (rows, vocab) f32 tensor:
/// (rows, per_row, 3) f32 out, each candidate as (token, score, logprob).
/// On the CPU it runs the host code on a copy of each row; on CUDA, the
/// kernel of `pick.cu` (one thread block per row), or the host code after
/// a copy when `k` exceeds [`DEVICE_MAX_K`].
pub(crate) struct PickOp<'a> {
    pub spec: &'a PickSpec,
}

impl PickOp<'_> {
    fn dims(&self, layout: &Layout) -> candle_core::Result<(usize, usize, usize)> {
        let (rows, vocab) = layout.shape().dims2()?;
        let Some((start, _)) = layout.contiguous_offsets() else {
            candle_core::bail!("pick: logits must be contiguous");
        };
        self.spec
            .check(rows, vocab)
            .map_err(|e| candle_core::Error::Msg(format!("pick: {e}")))?;
        Ok((rows, vocab, start))
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.spec.rows.len(), self.spec.per_row(), 3))
    }
}

/// Candidates as the op's flat output.
fn flatten(picks: &[Pick]) -> Vec<f32> {
    picks
        .iter()
        .flat_map(|p| [p.token as f32, p.score, p.logprob])
        .collect()
}

/// The op's output read back.
pub(crate) fn unflatten(v: &[f32]) -> Vec<Pick> {
    v.chunks_exact(3)
        .map(|c| Pick {
            token: c[0] as u32,
            score: c[1],
            logprob: c[2],
        })
        .collect()
}

impl CustomOp1 for PickOp<'_> {
    fn name(&self) -> &'static str {
        "tarjama-pick"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, vocab, start) = self.dims(layout)?;
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("pick: logits must be f32");
        };
        let mut logits = data[start..start + rows * vocab].to_vec();
        let picks = pick_rows(&mut logits, vocab, self.spec);
        Ok((CpuStorage::F32(flatten(&picks)), self.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (rows, vocab, start) = self.dims(layout)?;
        let out = cuda::pick(storage, rows, vocab, start, self.spec)?;
        Ok((out, self.out_shape()))
    }
}

/// A [`PickSpec`]'s rows in the flat form `pick.cu` reads: the edits as
/// one list with row offsets (`tokens[offsets[r]..offsets[r + 1]]` are row
/// `r`'s, penalised first, each with its kind), forced flags, and the bases
/// row after row.
#[cfg(any(feature = "cuda", test))]
struct Flat {
    offsets: Vec<i32>,
    tokens: Vec<i32>,
    kinds: Vec<i32>,
    forced_rows: Vec<i32>,
    forced_tokens: Vec<i32>,
    bases: Vec<f32>,
}

/// Edit kinds: `PICK_PENALISE` and `PICK_BAN` in pick.cu.
#[cfg(any(feature = "cuda", test))]
const PENALISE: i32 = 0;
#[cfg(any(feature = "cuda", test))]
const BAN: i32 = 1;

#[cfg(any(feature = "cuda", test))]
impl Flat {
    fn new(spec: &PickSpec) -> Self {
        let mut offsets = Vec::with_capacity(spec.rows.len() + 1);
        let (mut tokens, mut kinds) = (Vec::new(), Vec::new());
        offsets.push(0);
        for r in &spec.rows {
            for (list, kind) in [(&r.penalised, PENALISE), (&r.banned, BAN)] {
                tokens.extend(list.iter().map(|&t| t as i32));
                kinds.extend(std::iter::repeat_n(kind, list.len()));
            }
            offsets.push(tokens.len() as i32);
        }
        Self {
            offsets,
            tokens,
            kinds,
            forced_rows: spec.rows.iter().map(|r| i32::from(r.forced)).collect(),
            forced_tokens: spec.forced_tokens.iter().map(|&t| t as i32).collect(),
            bases: spec.rows.iter().flat_map(|r| r.bases.clone()).collect(),
        }
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    //! Launches `pick.cu` on the spec's [`Flat`] form; the processed rows
    //! are written to a scratch buffer on the device, never read back.

    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use candle_core::{CudaStorage, Result};

    use super::{DEVICE_MAX_K, Flat, PickSpec, flatten, pick_rows};

    mod ptx {
        include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
    }

    /// Threads per block: `PICK_THREADS` in pick.cu.
    const THREADS: u32 = 256;

    pub(super) fn pick(
        storage: &CudaStorage,
        rows: usize,
        vocab: usize,
        start: usize,
        spec: &PickSpec,
    ) -> Result<CudaStorage> {
        let dev = storage.device();
        let logits = storage.as_cuda_slice::<f32>()?;
        let logits = logits.slice(start..start + rows * vocab);
        if spec.k > DEVICE_MAX_K {
            let mut host = dev.clone_dtoh(&logits)?;
            let picks = pick_rows(&mut host, vocab, spec);
            let out = dev.clone_htod(&flatten(&picks))?;
            return Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()));
        }
        let flat = Flat::new(spec);
        // cudarc refuses empty copies: pad the lists the kernel may not read.
        let padded = |v: &[i32]| [v, &[0]].concat();
        let n_forced = flat.forced_tokens.len() as i32;
        let nbases = spec.rows[0].bases.len();
        let offsets = dev.clone_htod(&flat.offsets)?;
        let tokens = dev.clone_htod(&padded(&flat.tokens))?;
        let kinds = dev.clone_htod(&padded(&flat.kinds))?;
        let forced_rows = dev.clone_htod(&flat.forced_rows)?;
        let forced_tokens = dev.clone_htod(&padded(&flat.forced_tokens))?;
        let bases = dev.clone_htod(&flat.bases)?;
        // SAFETY: every element is written by the kernel before it is read.
        let work = unsafe { dev.alloc::<f32>(rows * vocab)? };
        let out = unsafe { dev.alloc::<f32>(rows * spec.per_row() * 3)? };

        let func = dev.get_or_load_custom_func("tarjama_pick", "tarjama_pick", ptx::PICK)?;
        let mut b = func.builder();
        let (vocab, k, nbases) = (vocab as i32, spec.k as i32, nbases as i32);
        let (log_probs, renorm) = (i32::from(spec.log_probs), i32::from(spec.renormalize));
        let penalty = spec.repetition_penalty;
        b.arg(&logits);
        b.arg(&work);
        b.arg(&vocab);
        b.arg(&k);
        b.arg(&nbases);
        b.arg(&log_probs);
        b.arg(&renorm);
        b.arg(&penalty);
        b.arg(&offsets);
        b.arg(&tokens);
        b.arg(&kinds);
        b.arg(&forced_rows);
        b.arg(&forced_tokens);
        b.arg(&n_forced);
        b.arg(&bases);
        b.arg(&out);
        let cfg = LaunchConfig {
            grid_dim: (rows as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the argument list is the kernel's signature; every buffer
        // holds what the kernel indexes (checked by `PickSpec::check`).
        unsafe { b.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
    }
}

pub mod check;
#[cfg(test)]
mod tests;
