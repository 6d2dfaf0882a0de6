//! Throughput benchmark of the model and search, behind `tarjama bench`:
//! a reproducible workload of random source ids (or ids read from a file, so
//! that other engines run exactly the same inputs), generated in fixed-size
//! batches in input order with EOS disabled so that every sentence yields
//! exactly the same number of new tokens, and a report of sentences/s,
//! target tokens/s, where the time goes (encoder, cross-attention set-up,
//! decoder layers, vocabulary projection, token selection over the logits,
//! cache reordering, and the host-side search loop and beam bookkeeping) and
//! the peak resident memory. It owns the random architectures offered by
//! `--random` too. Tokenisation, scheduling and output are not measured:
//! this is the engine's floor, not an end-to-end translation benchmark.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::decode::{GenerationConfig, generate};
use crate::gpu::GpuInfo;
use crate::marian::{GenerationDefaults, MarianConfig, MarianModel, Timings};
use crate::rng::SplitMix64;

pub mod sweep;

/// Published OPUS-MT architectures that `--random` can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomArch {
    /// Helsinki-NLP/opus-mt-ar-en: d_model 512, 6+6 layers, 8 heads, FFN
    /// 2048, swish, vocabulary 62834 (pad = decoder start = 62833, EOS 0),
    /// tied embeddings.
    OpusMtArEn,
    /// Helsinki-NLP/opus-mt-tc-big-ar-en's shape: d_model 1024, 6+6 layers,
    /// 16 heads, FFN 4096, relu, tied embeddings; the vocabulary is taken as
    /// 57000 (the exact size of that checkpoint was not checked here).
    OpusMtTcBigArEn,
}

impl RandomArch {
    pub fn name(self) -> &'static str {
        match self {
            Self::OpusMtArEn => "opus-mt-ar-en",
            Self::OpusMtTcBigArEn => "opus-mt-tc-big-ar-en",
        }
    }

    pub fn config(self) -> MarianConfig {
        let (d, heads, ffn, act, vocab, pos) = match self {
            Self::OpusMtArEn => (512, 8, 2048, "swish", 62834, 512),
            Self::OpusMtTcBigArEn => (1024, 16, 4096, "relu", 57000, 1024),
        };
        let pad = vocab - 1;
        let json = serde_json::json!({
            "model_type": "marian",
            "d_model": d,
            "encoder_layers": 6,
            "decoder_layers": 6,
            "encoder_attention_heads": heads,
            "decoder_attention_heads": heads,
            "encoder_ffn_dim": ffn,
            "decoder_ffn_dim": ffn,
            "activation_function": act,
            "vocab_size": vocab,
            "decoder_vocab_size": vocab,
            "max_position_embeddings": pos,
            "pad_token_id": pad,
            "decoder_start_token_id": pad,
            "eos_token_id": 0,
            "forced_eos_token_id": 0,
            "scale_embedding": true,
            "share_encoder_decoder_embeddings": true,
            "tie_word_embeddings": true,
        });
        MarianConfig::from_json_str(&json.to_string()).expect("built-in config is valid")
    }
}

/// `n` random source sentences for `cfg`: lengths uniform in 10..=60 tokens
/// including the final EOS, other ids uniform over the vocabulary without
/// EOS and padding.
pub fn workload(n: usize, seed: u64, cfg: &MarianConfig) -> Vec<Vec<u32>> {
    let eos = cfg.eos_token_id.first().copied().unwrap_or(0);
    let pad = cfg.pad_token_id;
    let vocab = cfg.vocab_size as u64;
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let len = rng.range(10, 60) as usize;
            let mut row: Vec<u32> = Vec::with_capacity(len);
            while row.len() < len - 1 {
                let id = rng.range(0, vocab - 1) as u32;
                if id != eos && id != pad {
                    row.push(id);
                }
            }
            row.push(eos);
            row
        })
        .collect()
}

/// Reads a JSON list of source id lists (what `benches/peers/run.py` writes).
pub fn read_sources(path: &Path) -> Result<Vec<Vec<u32>>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let sources: Vec<Vec<u32>> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON list of id lists", path.display()))?;
    if sources.is_empty() || sources.iter().any(Vec::is_empty) {
        bail!("{}: no sources, or an empty one", path.display());
    }
    Ok(sources)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub batch_size: usize,
    /// 1 = greedy.
    pub beam: usize,
    /// New tokens generated for every sentence (EOS is disabled).
    pub new_tokens: usize,
    /// Shown in the report: where the model came from.
    pub model_label: String,
    /// Shown in the report: seed of the workload and random weights.
    pub seed: u64,
}

/// Seconds per stage over the timed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Split {
    pub encoder_s: f64,
    /// Cross-attention keys/values of the encoder output, once per batch.
    pub cross_kv_s: f64,
    /// Decoder layers, every step.
    pub decoder_s: f64,
    /// Vocabulary projection (logits), every step.
    pub projection_s: f64,
    /// Token selection over the logits, where they are: the processors'
    /// edits, log-softmax, argmax/top-k (on a GPU, also the wait for the
    /// step's kernels: the picks are the first thing read back).
    #[serde(default)]
    pub pick_s: f64,
    /// Dropping finished rows, beam expansion and reordering of the caches.
    pub reorder_s: f64,
    /// Everything else: the search loop on the host (the processors' edits,
    /// beam bookkeeping).
    pub search_s: f64,
    pub decode_steps: u64,
}

/// The result of a benchmark run; `--json` writes it as is (and a sweep
/// reads it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub model: String,
    pub device: String,
    pub dtype: String,
    /// "native" (packed-weight CPU kernels) or "candle".
    pub engine: String,
    /// The native kernel the weights' precision runs on ("avx512",
    /// "avx512-vnni", "avx2", "avx-vnni", "portable"…); `None` on candle.
    pub isa: Option<String>,
    /// The native kernels' instruction-set tier (`TARJAMA_CPU_ISA` or the
    /// best the CPU runs) and the CPU features the kernels look for that
    /// this CPU has.
    pub cpu_isa: Option<String>,
    pub cpu_features: Vec<String>,
    /// candle's matmul threads (RAYON_NUM_THREADS) and rayon's pool size.
    pub threads: usize,
    pub rayon_threads: usize,
    pub beam: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub sentences: usize,
    pub source_tokens: usize,
    /// Rows × longest row summed over batches.
    pub padded_source_tokens: usize,
    pub new_tokens_per_sentence: usize,
    /// Generated tokens, the start token excluded.
    pub target_tokens: usize,
    pub seconds: f64,
    pub sentences_per_second: f64,
    pub tokens_per_second: f64,
    pub split: Split,
    /// Peak resident set (VmHWM) of the process, model loading included.
    pub peak_rss_mb: Option<f64>,
    /// The GPU (on CUDA), its free memory read after the timed run.
    pub gpu: Option<GpuInfo>,
    /// Device memory in use after the timed run (total − free, as the
    /// driver counts it): the CUDA context, the weights, what candle's
    /// allocator keeps cached, and any other process on that GPU. No peak:
    /// the driver keeps none.
    pub gpu_memory_used_mb: Option<f64>,
}

/// Runs `sources` through `model` in batches of `opts.batch_size`, in order,
/// after an untimed warm-up on the first batch. `defaults` are the model's
/// generation defaults; only the beam size and length are overridden (and
/// EOS disabled), so the logits processors are those a translation uses.
pub fn run(
    model: &MarianModel,
    defaults: &GenerationDefaults,
    sources: &[Vec<u32>],
    opts: &BenchOptions,
) -> Result<BenchReport> {
    if opts.batch_size == 0 || opts.beam == 0 || opts.new_tokens == 0 {
        bail!("batch size, beam and new tokens must be at least 1");
    }
    let timings = Arc::new(Timings::new());
    let model = model.clone().with_timings(timings.clone());
    let mut cfg = GenerationConfig::from_defaults(model.config(), defaults);
    cfg.num_beams = opts.beam;
    cfg.max_length = opts.new_tokens + 1;
    cfg.min_length = 0;
    // No EOS: every sentence runs to max_length; a forced EOS at the limit
    // would still be one (counted) token of the same cost.
    cfg.eos_token_id.clear();
    cfg.forced_eos_token_id.clear();

    let first = &sources[..opts.batch_size.min(sources.len())];
    let mut warm = cfg.clone();
    warm.max_length = 3.min(cfg.max_length);
    generate(&model, first, &warm).context("warm-up")?;
    timings.reset();

    let start = Instant::now();
    let mut target_tokens = 0;
    let mut padded = 0;
    for batch in sources.chunks(opts.batch_size) {
        padded += batch.len() * batch.iter().map(Vec::len).max().unwrap_or(0);
        let hyps = generate(&model, batch, &cfg)?;
        target_tokens += hyps.iter().map(|h| h.ids.len()).sum::<usize>();
    }
    let seconds = start.elapsed().as_secs_f64();
    let t = timings.snapshot();
    let split = Split {
        encoder_s: t.encode.as_secs_f64(),
        cross_kv_s: t.cross_kv.as_secs_f64(),
        decoder_s: t.decoder.as_secs_f64(),
        projection_s: t.projection.as_secs_f64(),
        pick_s: t.pick.as_secs_f64(),
        reorder_s: t.reorder.as_secs_f64(),
        search_s: (seconds - t.model_total().as_secs_f64()).max(0.0),
        decode_steps: t.decode_steps,
    };
    let gpu = match crate::gpu::describe(model.device()) {
        Some(info) => Some(
            info.map_err(anyhow::Error::msg)
                .context("describing the GPU")?,
        ),
        None => None,
    };
    Ok(BenchReport {
        model: opts.model_label.clone(),
        device: match model.device().location() {
            candle_core::DeviceLocation::Cpu => "cpu".to_string(),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        },
        dtype: model.backend().dtype_name().to_string(),
        engine: model.backend().engine_name().to_string(),
        isa: model.backend().kernel_name().map(str::to_string),
        cpu_isa: crate::marian::selected_isa()
            .ok()
            .map(|isa| isa.name().to_string()),
        cpu_features: crate::marian::found_features()
            .into_iter()
            .map(str::to_string)
            .collect(),
        threads: candle_core::utils::get_num_threads(),
        rayon_threads: rayon::current_num_threads(),
        beam: opts.beam,
        batch_size: opts.batch_size,
        seed: opts.seed,
        sentences: sources.len(),
        source_tokens: sources.iter().map(Vec::len).sum(),
        padded_source_tokens: padded,
        new_tokens_per_sentence: opts.new_tokens,
        target_tokens,
        seconds,
        sentences_per_second: sources.len() as f64 / seconds,
        tokens_per_second: target_tokens as f64 / seconds,
        split,
        peak_rss_mb: peak_rss_mb(),
        gpu_memory_used_mb: gpu.as_ref().map(GpuInfo::used_mb),
        gpu,
    })
}

/// Peak resident set size of this process in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl std::fmt::Display for BenchReport {
    /// The human-readable report `tarjama bench` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.split;
        let pct = |x: f64| 100.0 * x / self.seconds.max(1e-12);
        writeln!(f, "model      {}", self.model)?;
        writeln!(
            f,
            "setup      device {}, {} engine, dtype {}, {} threads (rayon {}), beam {}, batch {}",
            self.device,
            self.engine,
            self.dtype,
            self.threads,
            self.rayon_threads,
            self.beam,
            self.batch_size
        )?;
        writeln!(
            f,
            "kernels    {} (tier {}; cpu features: {})",
            self.isa.as_deref().unwrap_or("candle's own"),
            self.cpu_isa.as_deref().unwrap_or("none"),
            if self.cpu_features.is_empty() {
                "none of the ones looked for".to_string()
            } else {
                self.cpu_features.join(" ")
            }
        )?;
        writeln!(
            f,
            "workload   {} sentences, {} source tokens ({} padded), {} new tokens each, seed {}",
            self.sentences,
            self.source_tokens,
            self.padded_source_tokens,
            self.new_tokens_per_sentence,
            self.seed
        )?;
        writeln!(
            f,
            "throughput {:.2} sentences/s, {:.1} target tokens/s ({} tokens in {:.2} s)",
            self.sentences_per_second, self.tokens_per_second, self.target_tokens, self.seconds
        )?;
        writeln!(f, "time split ({} decode steps)", s.decode_steps)?;
        for (name, v) in [
            ("encoder", s.encoder_s),
            ("cross-attention K/V", s.cross_kv_s),
            ("decoder layers", s.decoder_s),
            ("output projection", s.projection_s),
            ("token selection", s.pick_s),
            ("cache reorder", s.reorder_s),
            ("search loop (host)", s.search_s),
        ] {
            writeln!(f, "  {name:<20} {v:>8.3} s {:>5.1}%", pct(v))?;
        }
        if let Some(g) = &self.gpu {
            writeln!(
                f,
                "gpu        {}: {} (compute {}), {:.0} of {:.0} MB in use after the run",
                g.ordinal,
                g.name,
                g.compute_capability,
                g.used_mb(),
                g.total_mb
            )?;
        }
        match self.peak_rss_mb {
            Some(mb) => write!(f, "peak RSS   {mb:.0} MB"),
            None => write!(f, "peak RSS   unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// benches/peers/run.py reimplements the generator: these are the values
    /// it draws for seed 0, so a change on either side shows here.
    #[test]
    fn workload_matches_the_peers_script() {
        let cfg = RandomArch::OpusMtArEn.config();
        let w = workload(8, 0, &cfg);
        let lens: Vec<usize> = w.iter().map(Vec::len).collect();
        assert_eq!(lens, [56, 40, 21, 19, 56, 45, 35, 16]);
        assert_eq!(w[0][..5], [56772, 23817, 52536, 54373, 39180]);
        assert!(w.iter().all(|r| r.last() == Some(&0)));
        assert!(
            w.iter()
                .flat_map(|r| &r[..r.len() - 1])
                .all(|&i| i != 0 && i != cfg.pad_token_id)
        );
    }

    #[test]
    fn tc_big_config_is_the_big_shape() {
        let cfg = RandomArch::OpusMtTcBigArEn.config();
        assert_eq!((cfg.d_model, cfg.decoder_attention_heads), (1024, 16));
        assert_eq!(cfg.pad_token_id as usize, cfg.vocab_size - 1);
    }
}
