//! One encoder pass and one decoder step (decoder layers + vocabulary
//! projection, no search) of the random full-size opus-mt-ar-en model at
//! batch 1 and 32: sources of 35 tokens (the mean of `tarjama bench`'s
//! workload), decoder steps at position 20 (half of its 40 new tokens).
//! Threads: RAYON_NUM_THREADS, as for the CLI.

use std::hint::black_box;

use candle_core::{DType, Device};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tarjama::bench::{RandomArch, workload};
use tarjama::marian::{Backend, MarianModel};

const SOURCE_LEN: usize = 35;
const POSITION: usize = 20;

fn bench(c: &mut Criterion) {
    let cfg = RandomArch::OpusMtArEn.config();
    let backend = Backend::default_for(DType::F32, &Device::Cpu);
    let model = MarianModel::random_with(cfg.clone(), 0, backend, &Device::Cpu).unwrap();
    let start = cfg.decoder_start_token_id;
    let mut g = c.benchmark_group("opus-mt-ar-en");
    g.sample_size(10);
    for batch in [1usize, 32] {
        // Fixed-length rows: the workload's ids, cut to SOURCE_LEN with EOS.
        let sources: Vec<Vec<u32>> = workload(batch * 4, 0, &cfg)
            .into_iter()
            .filter(|r| r.len() >= SOURCE_LEN)
            .take(batch)
            .map(|mut r| {
                r.truncate(SOURCE_LEN - 1);
                r.push(0);
                r
            })
            .collect();
        assert_eq!(sources.len(), batch);

        g.throughput(Throughput::Elements((batch * SOURCE_LEN) as u64));
        g.bench_function(format!("encode/batch{batch}"), |b| {
            b.iter(|| model.encode(black_box(&sources)).unwrap())
        });

        let enc = model.encode(&sources).unwrap();
        let mut state = model.start_decoder(&enc, 64).unwrap();
        model
            .decode_step(&mut state, &vec![start; batch * POSITION], false)
            .unwrap();
        let tokens = vec![start; batch];
        g.throughput(Throughput::Elements(batch as u64));
        // Each iteration steps a clone of the state at POSITION; the clones
        // share the preallocated cache storage and write the same slot.
        g.bench_function(format!("decode_step/batch{batch}"), |b| {
            b.iter_batched(
                || state.clone(),
                |mut s| {
                    model
                        .decode_step(&mut s, black_box(&tokens), false)
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
