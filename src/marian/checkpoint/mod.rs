//! Weights on the host: reading a Marian checkpoint (`model.safetensors`,
//! streamed tensor by tensor, or `pytorch_model.bin`) or building a random
//! one, into f32 buffers with their shapes. It owns the one table of tensor
//! names, aliases and shapes ([`layout`]), the checks every tensor passes
//! (present, right shape, finite) with errors naming the file and the
//! tensor, and the weight preparation both engines share (stacked
//! projections, the attention scaling). The networks
//! (`candle_net`, `native`) build themselves from what it hands out, one
//! layer at a time, so a whole network in one form never sits next to the
//! other.

pub(crate) mod layout;
mod pickle;
mod random;
mod safetensors;

use std::path::{Path, PathBuf};

use candle_core::DType;
use candle_core::pickle::PthTensors;
use rayon::prelude::*;

use super::{MarianConfig, MarianError, Result};
pub(crate) use layout::{Affine, Attention, DecoderLayer, Embeddings, EncoderLayer};
use layout::{Init, Layout, MapTensors, Spec};

/// Weight file names in a model directory, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// An f32 tensor on the host, row-major.
#[derive(Debug, Clone)]
pub(crate) struct HostTensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// Where tensors come from.
enum Source {
    Safetensors(safetensors::Reader),
    Pth(PthTensors),
    Random { seed: u64 },
}

/// A checkpoint opened for reading, with the table of what it must hold.
pub(crate) struct Checkpoint {
    source: Source,
    /// Named in every error.
    file: PathBuf,
    layout: Layout,
}

impl Checkpoint {
    /// Opens `file`: `.safetensors` is read with positioned reads, anything
    /// else as a PyTorch pickle (`.bin` / `.pt` / `.pth`).
    pub fn open(file: &Path, cfg: &MarianConfig) -> Result<Self> {
        if !file.is_file() {
            return Err(MarianError::Io {
                path: file.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such weights file"),
            });
        }
        let source = if file.extension().is_some_and(|e| e == "safetensors") {
            safetensors::Reader::open(file).map(Source::Safetensors)
        } else {
            pickle::check_archive(file)
                .map_err(|e| candle_core::Error::Msg(format!("malformed PyTorch pickle: {e}")))
                .and_then(|()| contain_pickle_panics(|| PthTensors::new(file, None)))
                .map(Source::Pth)
        }
        .map_err(|source| MarianError::WeightsFile {
            file: file.to_owned(),
            source,
        })?;
        Ok(Self {
            source,
            file: file.to_owned(),
            layout: Layout::new(cfg),
        })
    }

    /// Random weights of architecture `cfg` (see `random.rs`), made on
    /// demand tensor by tensor.
    pub fn random(cfg: &MarianConfig, seed: u64) -> Self {
        Self {
            source: Source::Random { seed },
            file: PathBuf::from("<random weights>"),
            layout: Layout::new(cfg),
        }
    }

    pub fn encoder_layer(&self, i: usize) -> Result<EncoderLayer<HostTensor>> {
        self.layout.encoder[i].try_map(&mut |s| self.read(s))
    }

    pub fn decoder_layer(&self, i: usize) -> Result<DecoderLayer<HostTensor>> {
        self.layout.decoder[i].try_map(&mut |s| self.read(s))
    }

    pub fn embeddings(&self) -> Result<Embeddings<HostTensor>> {
        self.layout.embeddings.try_map(&mut |s| self.read(s))
    }

    /// The first of the spec's names present, checked; an optional tensor
    /// that is absent is its default.
    fn read(&self, spec: &Spec) -> Result<HostTensor> {
        let name = match &self.source {
            Source::Random { seed } => return Ok(random::tensor(spec, *seed)),
            Source::Safetensors(r) => spec.names.iter().find(|n| r.contains(n)),
            Source::Pth(p) => spec
                .names
                .iter()
                .find(|n| p.tensor_infos().contains_key(*n)),
        };
        let Some(name) = name else {
            if spec.optional {
                return Ok(default(spec));
            }
            let also = match &spec.names[1..] {
                [] => String::new(),
                rest => format!(" (also tried {rest:?})"),
            };
            return Err(self.err(&spec.names[0], format!("missing from the checkpoint{also}")));
        };
        // Check the declared shape before reading: a header may declare any
        // size, and its data would be allocated before a later check.
        let declared = match &self.source {
            Source::Safetensors(r) => r.shape(name),
            Source::Pth(p) => p.tensor_infos().get(name).map(|i| i.layout.dims()),
            Source::Random { .. } => unreachable!("handled above"),
        };
        if let Some(shape) = declared.filter(|s| *s != spec.shape.as_slice()) {
            return Err(self.err(
                name,
                format!("has shape {shape:?}, expected {:?}", spec.shape),
            ));
        }
        let t = match &self.source {
            Source::Safetensors(r) => r.get(name),
            Source::Pth(p) => pth_tensor(p, name),
            Source::Random { .. } => unreachable!("handled above"),
        }
        .map_err(|e| self.err(name, format!("unreadable: {e}")))?;
        if t.shape != spec.shape {
            return Err(self.err(
                name,
                format!("has shape {:?}, expected {:?}", t.shape, spec.shape),
            ));
        }
        // A NaN or inf weight spreads to every logit and decodes as nothing:
        // refuse the checkpoint instead.
        let bad: usize = t
            .data
            .par_chunks(1 << 16)
            .map(|c| c.iter().filter(|v| !v.is_finite()).count())
            .sum();
        if bad > 0 {
            return Err(self.err(name, format!("{bad} non-finite values (NaN/inf)")));
        }
        Ok(t)
    }

    fn err(&self, name: &str, msg: String) -> MarianError {
        MarianError::Tensor {
            file: self.file.clone(),
            tensor: name.to_owned(),
            msg,
        }
    }
}

/// Runs candle's unpickler, turning its panics into errors: on malformed
/// pickles it indexes short tuples and overflows on negative offsets (found
/// by `cargo fuzz run pytorch_bin`; candle-core 0.11.1, pickle.rs). What
/// would exhaust memory instead is refused before, by [`pickle`].
fn contain_pickle_panics<T>(f: impl FnOnce() -> candle_core::Result<T>) -> candle_core::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown");
        Err(candle_core::Error::Msg(format!(
            "malformed PyTorch pickle (the reader failed: {why})"
        )))
    })
}

fn pth_tensor(p: &PthTensors, name: &str) -> candle_core::Result<HostTensor> {
    let t = contain_pickle_panics(|| p.get(name))?
        .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.into() })?;
    Ok(HostTensor {
        shape: t.dims().to_vec(),
        data: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
    })
}

/// A tensor filled as `spec.init` says (not for [`Init::Random`]).
fn default(spec: &Spec) -> HostTensor {
    let n = spec.shape.iter().product();
    let data = match spec.init {
        Init::Zeros => vec![0f32; n],
        Init::Ones => vec![1f32; n],
        Init::Sinusoidal => sinusoidal_table(spec.shape[0], spec.shape[1]),
        Init::Random => unreachable!("random tensors come from random.rs"),
    };
    HostTensor {
        data,
        shape: spec.shape.clone(),
    }
}

/// Marian's sinusoidal table: sin of the even frequencies in the first half,
/// cos in the second (not interleaved), computed in f64 like transformers'
/// numpy code before rounding.
fn sinusoidal_table(n_pos: usize, dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut data = vec![0f32; n_pos * dim];
    for pos in 0..n_pos {
        for j in 0..half {
            let angle = pos as f64 / 10000f64.powf((2 * j) as f64 / dim as f64);
            data[pos * dim + j] = angle.sin() as f32;
            data[pos * dim + half + j] = angle.cos() as f32;
        }
    }
    data
}

// ---- weight preparation both engines share ----

/// Factor of the token embeddings (sqrt(d_model) when `scale_embedding`).
pub(crate) fn embed_scale(cfg: &MarianConfig) -> f64 {
    if cfg.scale_embedding {
        (cfg.d_model as f64).sqrt()
    } else {
        1.0
    }
}

impl Affine<HostTensor> {
    /// Output rows of `parts` stacked: one projection computing all of them.
    pub fn stacked(parts: &[&Affine<HostTensor>]) -> Self {
        let cat = |t: &dyn Fn(&Affine<HostTensor>) -> &HostTensor| {
            let mut shape = t(parts[0]).shape.clone();
            shape[0] = parts.iter().map(|p| t(p).shape[0]).sum();
            HostTensor {
                data: parts
                    .iter()
                    .flat_map(|p| t(p).data.iter().copied())
                    .collect(),
                shape,
            }
        };
        Self {
            weight: cat(&|p| &p.weight),
            bias: cat(&|p| &p.bias),
        }
    }

    /// (out, in) rows and columns of the weight.
    pub fn dims(&self) -> (usize, usize) {
        (self.weight.shape[0], self.weight.shape[1])
    }
}

impl Attention<HostTensor> {
    /// The attention scaling 1/sqrt(head_dim), which both engines fold into
    /// Q's weight and bias at load time (each in its own arithmetic).
    pub fn q_scaling(&self, heads: usize) -> f64 {
        ((self.q.dims().0 / heads) as f64).powf(-0.5)
    }

    /// K and V as one projection.
    pub fn fused_kv(&self) -> Affine<HostTensor> {
        Affine::stacked(&[&self.k, &self.v])
    }
}
