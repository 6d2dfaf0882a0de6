//! The kernels against a plain f64 evaluation of the same rounded inputs,
//! on shapes that exercise partial panels, partial row blocks, odd inner
//! dimensions and row chunking; every kernel this CPU runs.

use super::*;

use crate::rng::SplitMix64;

/// `n` values uniform in [-1, 1).
fn values(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.next_signed_unit()).collect()
}

fn quant(row: &[f32]) -> (Vec<f64>, f64) {
    let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
    let q = row
        .iter()
        .map(|&v| (v / s).round().clamp(-127.0, 127.0) as f64)
        .collect();
    (q, s as f64)
}

/// y = x Wᵀ + b in f64 from the inputs as the precision rounds them.
fn reference(
    p: Precision,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f64> {
    let mut y = vec![0f64; m * n];
    let wq: Vec<(Vec<f64>, f64)> = (0..n).map(|c| quant(&w[c * k..(c + 1) * k])).collect();
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        // The kernel quantises activations as v * (1 / s), not v / s.
        let xq: (Vec<f64>, f64) = {
            let amax = xr.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            let inv = 1.0 / s;
            (
                xr.iter()
                    .map(|&v| (v * inv).round().clamp(-127.0, 127.0) as f64)
                    .collect(),
                s as f64,
            )
        };
        for c in 0..n {
            let wr = &w[c * k..(c + 1) * k];
            let dot: f64 = match p {
                Precision::F32 => xr.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum(),
                Precision::Bf16 => xr
                    .iter()
                    .zip(wr)
                    .map(|(&a, &b)| {
                        bf16_to_f32(bf16_bits(a)) as f64 * bf16_to_f32(bf16_bits(b)) as f64
                    })
                    .sum(),
                Precision::Int8 => {
                    let s: f64 = xq.0.iter().zip(&wq[c].0).map(|(a, b)| a * b).sum();
                    s * (xq.1 as f32 * wq[c].1 as f32) as f64
                }
            };
            y[r * n + c] = dot + b[c] as f64;
        }
    }
    y
}

#[test]
fn kernels_match_reference_on_awkward_shapes() {
    let mut rng = SplitMix64::new(0x9e3779b97f4a7c15);
    let shapes = [
        (1, 1, 1),
        (1, 33, 7),
        (5, 31, 13),
        (12, 32, 16),
        (2, 45, 70),
        (13, 65, 64),
        (26, 40, 33),
        (30, 100, 129),
        (64, 40, 515),
        (200, 70, 2048),
    ];
    for &(m, n, k) in &shapes {
        let x = values(&mut rng, m * k);
        let w = values(&mut rng, n * k);
        let b = values(&mut rng, n);
        for p in [Precision::F32, Precision::Bf16, Precision::Int8] {
            let lin = PackedLinear::new(&w, n, k, Some(&b), p);
            let want = reference(p, &x, &w, &b, m, n, k);
            for kernel in Kernel::available(p) {
                let mut got = vec![f32::NAN; m * n];
                lin.forward_on(kernel, &x, m, &mut got);
                for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    // Only f32 summation order differs: ~k ulp of the sum's scale.
                    let tol = 1e-5 * (k as f64).sqrt().max(1.0) * (1.0 + e.abs());
                    assert!(
                        (g as f64 - e).abs() <= tol,
                        "{p:?} {kernel:?} {m}x{n}x{k} at {i}: {g} vs {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn reduced_precision_error_is_bounded_against_f32() {
    // What rounding costs on a typical shape: relative error of the outputs.
    let (m, n, k) = (16, 96, 512);
    let mut rng = SplitMix64::new(7);
    let x = values(&mut rng, m * k);
    let w: Vec<f32> = values(&mut rng, n * k).iter().map(|v| v * 0.05).collect();
    let exact = reference(Precision::F32, &x, &w, &vec![0.0; n], m, n, k);
    let norm = (exact.iter().map(|v| v * v).sum::<f64>() / exact.len() as f64).sqrt();
    for (p, bound) in [(Precision::Bf16, 1e-2), (Precision::Int8, 2e-2)] {
        let mut got = vec![0f32; m * n];
        PackedLinear::new(&w, n, k, None, p).forward(&x, m, &mut got);
        let rms = (got
            .iter()
            .zip(&exact)
            .map(|(&g, &e)| (g as f64 - e).powi(2))
            .sum::<f64>()
            / exact.len() as f64)
            .sqrt();
        assert!(
            rms / norm < bound,
            "{p:?}: relative rms error {}",
            rms / norm
        );
        assert!(rms / norm > 1e-5, "{p:?} did not round at all");
    }
}

#[test]
fn bf16_rounding_is_nearest_even() {
    assert_eq!(bf16_bits(1.0), 0x3f80);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
    assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even.
    assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(bf16_to_f32(bf16_bits(-2.5)), -2.5);
    assert!(bf16_to_f32(bf16_bits(f32::NAN)).is_nan());
}

#[test]
fn int8_kernels_agree_bit_for_bit() {
    // Every int8 kernel computes the same exact i32 sums and scales them the
    // same way, so their outputs must be identical, not merely close. The
    // inputs include values at the quantisation extremes (±127 after
    // scaling), where an i16 pair sum of (q + 128) · w would saturate.
    let (m, n, k) = (29, 70, 300);
    let mut rng = SplitMix64::new(99);
    let mut x = values(&mut rng, m * k);
    for r in 0..m {
        x[r * k] = 1.0;
        x[r * k + 1] = -1.0;
        x[r * k + 2] = 1.0;
    }
    let mut w = values(&mut rng, n * k);
    for c in 0..n {
        w[c * k + 1] = -1.0;
        w[c * k + 2] = 1.0;
    }
    let b = values(&mut rng, n);
    let lin = PackedLinear::new(&w, n, k, Some(&b), Precision::Int8);
    let mut want = vec![0f32; m * n];
    lin.forward_on(Kernel::Portable, &x, m, &mut want);
    for kernel in Kernel::available(Precision::Int8) {
        let mut got = vec![f32::NAN; m * n];
        lin.forward_on(kernel, &x, m, &mut got);
        assert_eq!(got, want, "{kernel:?}");
    }
}
