//! The Marian (OPUS-MT) encoder-decoder, exact against transformers'
//! `MarianMTModel` on padded batches. This module is the facade:
//! [`MarianModel`] (loading, encoding, incremental decoding) and the types
//! its callers see, whatever engine runs the network ([`Backend`]): the
//! native CPU engine on packed weights (`native/`) or candle tensors on any
//! device (`candle_net.rs`). Both are built from the host weights of
//! `checkpoint/`, which reads `model.safetensors` or `pytorch_model.bin`
//! under either tensor naming found in the wild, or makes random weights for
//! benchmarks. The decoder state ([`DecoderState`]) can be reordered or
//! compacted row by row, and a step's token selection ([`PickSpec`], in
//! `pick`) runs next to the logits, which is what greedy and beam search in
//! [`crate::decode`] build on; [`Timings`] optionally accumulates the time
//! spent per stage. Every parallel pass of the native engine and of the
//! host selection goes through `parallel`.

mod candle_net;
mod checkpoint;
mod config;
mod native;
mod parallel;
mod pick;
mod timings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};

use checkpoint::Checkpoint;
pub use checkpoint::WEIGHT_FILES;
pub use config::{Activation, EarlyStopping, GenerationDefaults, MarianConfig};
pub use native::kernels::Precision;
pub use native::kernels::isa::{
    FEATURES as CPU_FEATURES, ISA_VAR, Isa, IsaError, found_features, selected as selected_isa,
};
/// Which pool each matrix product ran in, for the worker tests of
/// [`crate::translate`].
#[cfg(test)]
pub(crate) use native::kernels::probe as kernel_probe;
/// Vector math of the search over logits (log-softmax, row maxima), the
/// kernels the native engine uses, shared with [`crate::decode`].
pub(crate) use native::kernels::vecmath as math;
/// The packed matrix product, for `benches/gemm.rs`: not part of the API.
#[doc(hidden)]
pub use native::kernels::{Kernel, PackedLinear};
pub use pick::check::{KernelCheck, check_device as check_pick_kernel};
pub use pick::{DEVICE_MAX_K, Pick, PickSpec, RowEdits};
use timings::Stage;

pub use timings::{TimingSplit, Timings};

/// Positions a decoder state's self-attention caches hold at first (a
/// generous `max_length` would otherwise reserve hundreds of MB up front).
pub const INITIAL_POSITIONS: usize = 32;

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
    /// A tensor missing, misshapen, unreadable or not finite.
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

    /// "f32", "bf16", "int8"… as the CLI spells it.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Backend::Native(p) => p.name(),
            Backend::Candle(DType::F16) => "f16",
            Backend::Candle(DType::BF16) => "bf16",
            Backend::Candle(_) => "f32",
        }
    }

    pub fn engine_name(&self) -> &'static str {
        match self {
            Backend::Native(_) => "native",
            Backend::Candle(_) => "candle",
        }
    }

    /// What a user should know about this backend on this CPU, when it
    /// runs but not as its name suggests: bf16 without bf16 arithmetic.
    pub fn caveat(&self) -> Option<&'static str> {
        let isa = native::kernels::isa::selected().ok()?;
        match self {
            Backend::Native(Precision::Bf16) if isa.kernel(Precision::Bf16) == Kernel::Avx2Bf16 => {
                Some(
                    "the selected kernels have no bf16 arithmetic (no AVX512-BF16, or TARJAMA_CPU_ISA \
                     below avx512): --dtype bf16 widens to f32 \
                     in the kernels and runs at about f32 speed with bf16's rounding; \
                     --dtype int8 is the faster reduced precision here",
                )
            }
            _ => None,
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
}

/// Encoder states of one batch, in the form of the engine that made them.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Unpadded source length of each row.
    lengths: Vec<usize>,
    inner: EncInner,
}

#[derive(Debug, Clone)]
enum EncInner {
    Candle(candle_net::Encoded),
    Native(native::Encoded),
}

impl EncoderOutput {
    /// Unpadded source length of each row.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Encoder states of row `i` without its padding, (len, d_model)
    /// row-major, on the host.
    pub fn row(&self, i: usize) -> Result<Vec<f32>> {
        match &self.inner {
            EncInner::Native(e) => Ok(e.row(i).to_vec()),
            EncInner::Candle(e) => e.row(i, self.lengths[i]),
        }
    }
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
    Candle(candle_net::State),
    Native(native::State),
}

impl DecoderState {
    pub fn rows(&self) -> usize {
        self.src_lengths.len()
    }

    /// Hands a step's logits buffer back for the next step to reuse (optional;
    /// saves the page faults of a fresh rows × vocab allocation per step).
    pub fn recycle(&mut self, step: StepOutput) {
        self.keep_logits(step.logits);
    }

    fn keep_logits(&mut self, logits: Vec<f32>) {
        if let StateInner::Native(s) = &mut self.inner {
            s.spare_logits = logits;
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
            StateInner::Candle(s) => s.select_rows(idx, same_sources)?,
            StateInner::Native(s) => s.select_rows(idx),
        }
        self.src_lengths = idx.iter().map(|&i| self.src_lengths[i as usize]).collect();
        Ok(())
    }
}

/// A step's last-position logits, (rows, vocab), where the network left them.
enum StepLogits {
    Host(Vec<f32>),
    Device(candle_core::Tensor),
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

/// Output of [`MarianModel::decode_pick`], on the host.
#[derive(Debug)]
pub struct StepPicks {
    /// [`PickSpec::per_row`] candidates per row, row after row.
    pub picks: Vec<Pick>,
    pub per_row: usize,
    /// As in [`StepOutput::alignment`].
    pub alignment: Option<Vec<Vec<f32>>>,
}

impl StepPicks {
    /// The candidates of row `r`: `k` per base, best first.
    pub fn row(&self, r: usize) -> &[Pick] {
        &self.picks[r * self.per_row..(r + 1) * self.per_row]
    }
}

#[derive(Debug, Clone)]
enum Net {
    Candle(candle_net::Net),
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
    device: Device,
    timings: Option<Arc<Timings>>,
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

    /// Loads weights from a `.safetensors` file or a PyTorch pickle (`.bin` /
    /// `.pt` / `.pth`) on [`Backend::default_for`] `dtype` and `device`.
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
        let ck = Checkpoint::open(file, &cfg)?;
        Self::build(cfg, &ck, backend, device)
    }

    /// A model of architecture `cfg` with random weights (seeded, the same
    /// for a given `seed` whatever the thread count): benchmarks run on the
    /// published shapes without downloading a checkpoint. The weights go
    /// through the same building code as a checkpoint's.
    pub fn random_with(
        cfg: MarianConfig,
        seed: u64,
        backend: Backend,
        device: &Device,
    ) -> Result<Self> {
        let ck = Checkpoint::random(&cfg, seed);
        Self::build(cfg, &ck, backend, device)
    }

    fn build(
        cfg: MarianConfig,
        ck: &Checkpoint,
        backend: Backend,
        device: &Device,
    ) -> Result<Self> {
        let net = match backend {
            Backend::Candle(dtype) => Net::Candle(candle_net::Net::build(&cfg, ck, dtype, device)?),
            Backend::Native(p) => Net::Native(Arc::new(native::Net::build(&cfg, ck, p)?)),
        };
        Ok(Self {
            cfg,
            net,
            backend,
            device: device.clone(),
            timings: None,
        })
    }

    /// Accumulates the wall time of this model's stages into `timings` (see
    /// [`Timings`]); clones of the model made afterwards share it.
    pub fn with_timings(mut self, timings: Arc<Timings>) -> Self {
        self.timings = Some(timings);
        self
    }

    pub fn config(&self) -> &MarianConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
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
    /// tokenizer makes them).
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
        let lengths: Vec<usize> = batch.iter().map(Vec::len).collect();
        let longest = *lengths.iter().max().unwrap();
        self.check_ids(&batch.concat(), self.cfg.vocab_size, 0, longest)?;
        let inner = match &self.net {
            Net::Native(net) => EncInner::Native(net.encode(batch)),
            Net::Candle(net) => EncInner::Candle(net.encode(batch)?),
        };
        Ok(EncoderOutput { lengths, inner })
    }

    /// Fresh decoder state for the rows of `enc`: computes every layer's
    /// cross-attention keys and values once. `max_positions` is the most
    /// positions the caller will feed (e.g. `max_length`): the self-attention
    /// caches start at [`INITIAL_POSITIONS`] or fewer and double up to it as
    /// needed (beyond it only if fed more).
    pub fn start_decoder(&self, enc: &EncoderOutput, max_positions: usize) -> Result<DecoderState> {
        timings::timed(self.timings.as_deref(), Stage::CrossKv, || {
            self.start_decoder_untimed(enc, max_positions)
        })
    }

    fn start_decoder_untimed(
        &self,
        enc: &EncoderOutput,
        max_positions: usize,
    ) -> Result<DecoderState> {
        let inner = match (&self.net, &enc.inner) {
            (Net::Native(net), EncInner::Native(e)) => {
                StateInner::Native(net.start(e, max_positions))
            }
            (Net::Candle(net), EncInner::Candle(e)) => {
                StateInner::Candle(net.start(e, max_positions)?)
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
        let (logits, alignment) = self.step_logits(state, tokens, want_alignment)?;
        let logits = match logits {
            StepLogits::Host(v) => v,
            StepLogits::Device(t) => {
                timings::timed(self.timings.as_deref(), Stage::Projection, || {
                    t.flatten_all()?.to_vec1::<f32>()
                })?
            }
        };
        Ok(StepOutput {
            logits,
            vocab: self.cfg.target_vocab_size(),
            alignment,
        })
    }

    /// Feeds `tokens` as [`MarianModel::decode_step`] does and selects from
    /// the last position's logits as `spec` says ([`PickSpec`]), on the
    /// device the network runs on: only the candidates come back.
    pub fn decode_pick(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        want_alignment: bool,
        spec: &PickSpec,
    ) -> Result<StepPicks> {
        let tm = self.timings.as_deref();
        let vocab = self.cfg.target_vocab_size();
        spec.check(state.rows(), vocab)
            .map_err(MarianError::Input)?;
        let (logits, alignment) = self.step_logits(state, tokens, want_alignment)?;
        let picks = match logits {
            StepLogits::Host(mut v) => {
                let picks =
                    timings::timed(tm, Stage::Pick, || pick::pick_rows(&mut v, vocab, spec));
                state.keep_logits(v);
                picks
            }
            StepLogits::Device(t) => {
                timings::timed(tm, Stage::Pick, || candle_net::pick(&t, spec))?
            }
        };
        Ok(StepPicks {
            picks,
            per_row: spec.per_row(),
            alignment,
        })
    }

    /// The decoder half of both step methods: checks, decoder layers and the
    /// projection of each row's last position, timed; the logits stay where
    /// the network computed them.
    fn step_logits(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        want_alignment: bool,
    ) -> Result<(StepLogits, Option<Vec<Vec<f32>>>)> {
        let tm = self.timings.as_deref();
        let rows = state.rows();
        let t = self.check_step(rows, tokens, state)?;
        match (&self.net, &mut state.inner) {
            (Net::Native(net), StateInner::Native(st)) => {
                let (h, attn) = timings::timed(tm, Stage::Decoder, || {
                    net.decode(st, tokens, want_alignment)
                });
                let last = net.last_positions(h, rows, t);
                let spare = std::mem::take(&mut st.spare_logits);
                let logits = timings::timed(tm, Stage::Projection, || {
                    net.project_into(&last, rows, spare)
                });
                Ok((StepLogits::Host(logits), attn))
            }
            (Net::Candle(net), StateInner::Candle(st)) => {
                let (h, attn) = timings::timed(tm, Stage::Decoder, || {
                    net.decode(st, tokens, rows, want_alignment)
                })?;
                let logits = timings::timed(tm, Stage::Projection, || {
                    net.logits(&candle_net::Net::last_position(&h)?)
                })?;
                let alignment = attn
                    .map(|p| candle_net::Net::alignment(&p, &state.src_lengths))
                    .transpose()?;
                Ok((StepLogits::Device(logits), alignment))
            }
            _ => Err(MarianError::Input(
                "decoder state comes from a model on another backend".into(),
            )),
        }
    }

    /// Positions per row of a step of `tokens`, after checking them.
    fn check_step(&self, rows: usize, tokens: &[u32], state: &DecoderState) -> Result<usize> {
        if rows == 0 || !tokens.len().is_multiple_of(rows) || tokens.is_empty() {
            return Err(MarianError::Input(format!(
                "{} decoder tokens for {rows} rows",
                tokens.len()
            )));
        }
        let past = match &state.inner {
            StateInner::Candle(s) => s.pos,
            StateInner::Native(s) => s.pos,
        };
        let t = tokens.len() / rows;
        self.check_ids(tokens, self.cfg.decoder_vocab_size, past, t)?;
        Ok(t)
    }

    /// Teacher-forced logits of every position, (rows, t, vocab) row-major.
    pub fn forward_logits(
        &self,
        enc: &EncoderOutput,
        decoder_ids: &[Vec<u32>],
    ) -> Result<Vec<f32>> {
        let rows = decoder_ids.len();
        let t = decoder_ids.first().map_or(0, Vec::len);
        if rows != enc.lengths.len() || t == 0 || decoder_ids.iter().any(|r| r.len() != t) {
            return Err(MarianError::Input(
                "decoder_ids must be one non-empty row per source, all of the same length".into(),
            ));
        }
        let mut state = self.start_decoder(enc, t)?;
        let flat: Vec<u32> = decoder_ids.concat();
        self.check_step(rows, &flat, &state)?;
        match (&self.net, &mut state.inner) {
            (Net::Native(net), StateInner::Native(st)) => {
                let (h, _) = net.decode(st, &flat, false);
                Ok(net.project_into(&h, rows * t, Vec::new()))
            }
            (Net::Candle(net), StateInner::Candle(st)) => {
                let (h, _) = net.decode(st, &flat, rows, false)?;
                net.project(&h)
            }
            _ => unreachable!("start_decoder matched the backend"),
        }
    }
}
