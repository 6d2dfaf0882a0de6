//! Memory read bandwidth, for the batch-1 floor of `benches/README.md`: a
//! batch-1 decoder step reads every decoder and output-projection weight
//! once (217 MB in f32, 54 MB in int8 for opus-mt-ar-en), so B bytes/s of
//! read bandwidth allow at most B / 217 MB f32 tokens/s. This reads a buffer
//! of that size (far beyond the L3), split in contiguous halves across the
//! threads as the engine splits a weight matrix, summing it with 64 lanes so
//! that the loop is bound by memory, not by the adds; criterion reports
//! bytes/s. `cargo bench --bench bandwidth`; `BANDWIDTH_THREADS=1,2` (the
//! default) chooses the thread counts.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use std::hint::black_box;

/// The f32 bytes of one opus-mt-ar-en batch-1 step: 54.2 M weights.
const STEP_BYTES: usize = 54_190_080 * 4;

fn sum(x: &[f32]) -> f32 {
    let (chunks, rest) = x.as_chunks::<64>();
    let mut s = [0f32; 64];
    for c in chunks {
        for l in 0..64 {
            s[l] += c[l];
        }
    }
    s.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

fn bandwidth(c: &mut Criterion) {
    let buf: Vec<f32> = (0..STEP_BYTES / 4).map(|i| (i % 7) as f32).collect();
    let threads = std::env::var("BANDWIDTH_THREADS").unwrap_or_else(|_| "1,2".into());
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(STEP_BYTES as u64));
    g.sample_size(20);
    for t in threads
        .split(',')
        .filter_map(|t| t.trim().parse::<usize>().ok())
    {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        let part = buf.len().div_ceil(t);
        g.bench_function(format!("217MB/{t}-threads"), |b| {
            b.iter(|| pool.install(|| buf.par_chunks(part).map(|p| sum(black_box(p))).sum::<f32>()))
        });
    }
    g.finish();
}

criterion_group!(benches, bandwidth);
criterion_main!(benches);
