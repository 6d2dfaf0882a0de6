//! Packed GEMM kernels (`tarjama::marian::PackedLinear`, every kernel this CPU runs) on the shapes of opus-mt-ar-en:
//! throughput in FLOP/s (criterion's "elements" are multiply-adds × 2).
//! `RAYON_NUM_THREADS=2 cargo bench --bench gemm`; `GEMM_PRECISIONS=int8`
//! limits it to some precisions.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tarjama::marian::{Kernel, PackedLinear, Precision};

fn shapes(c: &mut Criterion) {
    // (rows, out, in): decoder steps at batch 32 / beam 4 × 32, the fused QKV,
    // the FFN, the output projection, an encoder batch and batch 1.
    let cases = [
        ("qkv/32", 32, 1536, 512),
        ("ffn1/32", 32, 2048, 512),
        ("ffn2/32", 32, 512, 2048),
        ("proj/1", 1, 62834, 512),
        ("proj/32", 32, 62834, 512),
        ("proj/128", 128, 62834, 512),
        ("ffn1/1120", 1120, 2048, 512),
    ];
    let filter = std::env::var("GEMM_PRECISIONS").unwrap_or_else(|_| "f32,bf16,int8".into());
    let mut g = c.benchmark_group("gemm");
    for (name, m, n, k) in cases {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-4 - 0.05)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let mut y = vec![0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for p in [Precision::F32, Precision::Bf16, Precision::Int8] {
            if !filter.split(',').any(|f| f == p.name()) {
                continue;
            }
            let lin = PackedLinear::new(&w, n, k, None, p);
            for kernel in Kernel::available(p) {
                g.bench_function(format!("{name}/{}/{}", p.name(), kernel.name()), |b| {
                    b.iter(|| lin.forward_on(kernel, black_box(&x), m, &mut y))
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, shapes);
criterion_main!(benches);
