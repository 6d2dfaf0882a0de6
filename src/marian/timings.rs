//! Optional wall-clock counters for the model's stages, for `tarjama bench`.
//! A model without attached [`Timings`] pays one `Option` check per call; with
//! them, two `Instant::now()` calls (tens of nanoseconds against
//! millisecond-scale stages). On CUDA kernels run asynchronously, so a stage is
//! charged for the time the host waits in it, not for its kernels.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A timed stage of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// [`super::MarianModel::encode`]: embeddings and encoder layers.
    Encode,
    /// [`super::MarianModel::start_decoder`]: cross-attention keys/values.
    CrossKv,
    /// The decoder layers of a `decode_step`.
    Decoder,
    /// The vocabulary projection (logits) of a `decode_step`.
    Projection,
    /// Token selection over the logits (`decode_pick`): the processors'
    /// edits, log-softmax, argmax / top-k.
    Pick,
    /// [`super::DecoderState::select_rows`]: dropping finished rows, beam
    /// expansion and reordering of the caches.
    Reorder,
}

/// Nanoseconds spent per stage, shared across clones of a model and threads.
#[derive(Debug, Default)]
pub struct Timings {
    nanos: [AtomicU64; 6],
    decode_steps: AtomicU64,
}

/// A snapshot of [`Timings`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimingSplit {
    pub encode: Duration,
    pub cross_kv: Duration,
    pub decoder: Duration,
    pub projection: Duration,
    pub pick: Duration,
    pub reorder: Duration,
    /// Number of `decode_step` calls.
    pub decode_steps: u64,
}

impl Timings {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, stage: Stage, d: Duration) {
        self.nanos[stage as usize].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        if stage == Stage::Projection {
            self.decode_steps.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> TimingSplit {
        let get = |s: Stage| Duration::from_nanos(self.nanos[s as usize].load(Ordering::Relaxed));
        TimingSplit {
            encode: get(Stage::Encode),
            cross_kv: get(Stage::CrossKv),
            decoder: get(Stage::Decoder),
            projection: get(Stage::Projection),
            pick: get(Stage::Pick),
            reorder: get(Stage::Reorder),
            decode_steps: self.decode_steps.load(Ordering::Relaxed),
        }
    }

    /// Zeroes every counter (e.g. after a warm-up run).
    pub fn reset(&self) {
        for n in &self.nanos {
            n.store(0, Ordering::Relaxed);
        }
        self.decode_steps.store(0, Ordering::Relaxed);
    }
}

impl TimingSplit {
    /// Time inside the model (every stage).
    pub fn model_total(&self) -> Duration {
        self.encode + self.cross_kv + self.decoder + self.projection + self.pick + self.reorder
    }
}

/// Runs `f`, charging its wall time to `stage` when timings are attached.
pub(super) fn timed<T>(t: Option<&Timings>, stage: Stage, f: impl FnOnce() -> T) -> T {
    match t {
        None => f(),
        Some(t) => {
            let start = Instant::now();
            let r = f();
            t.add(stage, start.elapsed());
            r
        }
    }
}
