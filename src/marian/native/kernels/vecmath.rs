//! Vector math around the matrix products: residual + layer norm,
//! activations, one attention query, log-softmax over the vocabulary (for
//! the search) and an exp that vectorises. Each entry point runs one generic
//! body compiled for the selected tier (AVX-512 or AVX2 + FMA; the crate
//! itself targets baseline x86-64), or as plain code on the portable tier.

use super::isa::{self, Isa};

/// Defines `pub fn $name` (optionally generic over one type parameter) that
/// runs `$body` compiled for the selected tier.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident $(<$g:ident: $bound:path>)? ($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        pub fn $name $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn avx512 $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                    generic $(::<$g>)? ($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                    generic $(::<$g>)? ($($arg),*)
                }
                // SAFETY: the selected tier is one the CPU supports.
                match isa::current() {
                    Isa::Avx512 => return unsafe { avx512 $(::<$g>)? ($($arg),*) },
                    Isa::Avx2Vnni | Isa::Avx2 => return unsafe { avx2 $(::<$g>)? ($($arg),*) },
                    Isa::Portable => {}
                }
            }
            generic $(::<$g>)? ($($arg),*)
        }
    };
}

/// e^x within 2 ulp for normal results, 0 below e^-87, +inf above e^88.7;
/// branch-free and free of float-to-int conversions so that loops over it
/// vectorise: `n = round(x log2 e)` comes from adding 1.5 · 2^23 (the sum's
/// low mantissa bits are n, rounded to nearest even as `round_ties_even`
/// does), where `n as i32` compiled to one scalar conversion per lane
/// (Rust's `as` saturates; the vector instruction does not). The same
/// results as the `round_ties_even` form for every f32 (checked on all
/// 2^32 inputs), 2.7× faster over a vocabulary row.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.7);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // Cephes' expf polynomial on [-ln2/2, ln2/2].
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = (p * r * r + r) + 1.0;
    // 2^n in two halves: n reaches ±128, beyond a normal f32 exponent.
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let (n1, n2) = (n / 2, n - n / 2);
    let pow = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let scaled = e * pow(n1) * pow(n2);
    if x < -87.0 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else {
        scaled
    }
}

multiversion! {
    /// `x = LayerNorm(x + y)` over rows of `d` (torch's biased variance, eps 1e-5).
    fn add_layer_norm(x: &mut [f32], y: &[f32], w: &[f32], b: &[f32], d: usize) {
        for (xr, yr) in x.chunks_mut(d).zip(y.chunks(d)) {
            let mut sum = [0f32; 16];
            for (xv, yv) in xr.chunks_mut(16).zip(yr.chunks(16)) {
                for j in 0..xv.len() {
                    xv[j] += yv[j];
                    sum[j] += xv[j];
                }
            }
            let mean = sum.iter().sum::<f32>() / d as f32;
            let mut sq = [0f32; 16];
            for xv in xr.chunks(16) {
                for j in 0..xv.len() {
                    let c = xv[j] - mean;
                    sq[j] += c * c;
                }
            }
            let var = sq.iter().sum::<f32>() / d as f32;
            let inv = 1.0 / (var + 1e-5).sqrt();
            for j in 0..d {
                xr[j] = (xr[j] - mean) * inv * w[j] + b[j];
            }
        }
    }
}

multiversion! {
    fn silu(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v /= 1.0 + fast_exp(-*v);
        }
    }
}

multiversion! {
    fn relu(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = v.max(0.0);
        }
    }
}

/// An element of the attention caches: f32, or bfloat16 for the reduced
/// precisions (half the bytes that attention reads each step).
pub trait CacheElem: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// Whether the element is bfloat16 bits (else an f32), for the kernels
    /// that load several at once.
    const BF16: bool;
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
}

impl CacheElem for f32 {
    const BF16: bool = false;
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

/// A bfloat16, as its bits (rounded to nearest even from f32).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(transparent)]
pub struct Bf16(pub u16);

impl CacheElem for Bf16 {
    const BF16: bool = true;
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        Bf16(super::bf16_bits(v))
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
}

/// Attention scores `scores[h · n + j] = q_h · k_j` of one query over `n`
/// keys `stride` elements apart, `heads` heads of `q.len() / heads` values:
/// the tier's kernel for whole groups of 8 heads of 16-value multiples (8
/// on AVX2), the plain dot product otherwise.
pub fn head_scores<E: CacheElem>(
    q: &[f32],
    k: &[E],
    stride: usize,
    n: usize,
    heads: usize,
    scores: &mut [f32],
) {
    let d = q.len();
    let dh = d / heads;
    assert!(dh * heads == d && scores.len() >= heads * n);
    if n == 0 {
        return;
    }
    assert!(k.len() >= (n - 1) * stride + d, "keys too short");
    #[cfg(target_arch = "x86_64")]
    if heads.is_multiple_of(8) {
        let kp = k.as_ptr().cast::<u8>();
        // SAFETY: the tier is one the CPU runs; lengths checked above.
        match isa::current() {
            Isa::Avx512 if dh.is_multiple_of(16) => {
                let f = if E::BF16 {
                    super::avx512::head_scores::<true>
                } else {
                    super::avx512::head_scores::<false>
                };
                return unsafe { f(q, kp, stride, n, heads, scores) };
            }
            Isa::Avx2Vnni | Isa::Avx2 if dh.is_multiple_of(8) => {
                let f = if E::BF16 {
                    super::avx2::head_scores::<true>
                } else {
                    super::avx2::head_scores::<false>
                };
                return unsafe { f(q, kp, stride, n, heads, scores) };
            }
            _ => {}
        }
    }
    for j in 0..n {
        let kj = &k[j * stride..j * stride + d];
        for (h, (qh, kh)) in q.chunks_exact(dh).zip(kj.chunks_exact(dh)).enumerate() {
            scores[h * n + j] = dot(qh, kh);
        }
    }
}

/// `q · k` on the portable tier: 16 lanes, then their sum, then the
/// remainder.
#[inline(always)]
fn dot<E: CacheElem>(q: &[f32], k: &[E]) -> f32 {
    let mut acc = [0f32; 16];
    let (qc, qr) = q.as_chunks::<16>();
    let (kc, kr) = k.as_chunks::<16>();
    for (a, b) in qc.iter().zip(kc) {
        for l in 0..16 {
            acc[l] += a[l] * b[l].to_f32();
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (a, b) in qr.iter().zip(kr) {
        s += a * b.to_f32();
    }
    s
}

multiversion! {
    /// One attention query over `n` positions, all `heads` heads at once: `q`
    /// and `out` are d floats (head after head), position j's keys and values
    /// are the d values at `j · stride` of `k` and `v`. `scores` ends as (heads,
    /// n) probabilities, the first head's first. Positions are the outer loop,
    /// so each position's keys and values are read once, in one contiguous run,
    /// for every head (per head, positions `stride` floats apart were read in
    /// eight separate strided scans).
    #[allow(clippy::too_many_arguments)]
    fn attend_heads<E: CacheElem>(
        q: &[f32],
        k: &[E],
        v: &[E],
        stride: usize,
        n: usize,
        heads: usize,
        scores: &mut Vec<f32>,
        out: &mut [f32]
    ) {
        let d = q.len();
        let dh = d / heads;
        scores.clear();
        scores.resize(heads * n, 0.0);
        head_scores(q, k, stride, n, heads, scores);
        for sh in scores.chunks_exact_mut(n.max(1)) {
            let max = sh.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            for s in sh.iter_mut() {
                *s = fast_exp(*s - max);
            }
            // In order, as one query of one head summed them.
            let inv = 1.0 / sh.iter().fold(0f32, |a, &s| a + s);
            for s in sh.iter_mut() {
                *s *= inv;
            }
        }
        out.fill(0.0);
        for j in 0..n {
            let vj = &v[j * stride..j * stride + d];
            for (h, (oh, vh)) in out
                .chunks_exact_mut(dh)
                .zip(vj.chunks_exact(dh))
                .enumerate()
            {
                let p = scores[h * n + j];
                for (o, &x) in oh.iter_mut().zip(vh) {
                    *o += p * x.to_f32();
                }
            }
        }
    }
}

/// Lanes of the reductions over a vocabulary row: four vector registers'
/// worth, so that consecutive maxima or sums do not wait on each other
/// (one register: 19 µs for a 62,834-entry row's maximum; four: 2 µs).
const LANES: usize = 64;

/// The maximum of `x` (-inf when empty; NaNs ignored).
#[inline(always)]
fn max_inline(x: &[f32]) -> f32 {
    let (chunks, rest) = x.as_chunks::<LANES>();
    let mut m = [f32::NEG_INFINITY; LANES];
    for c in chunks {
        for l in 0..LANES {
            m[l] = m[l].max(c[l]);
        }
    }
    rest.iter().fold(
        m.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        |a, &v| a.max(v),
    )
}

/// The piece length of [`chunk_maxima`].
pub const MAXIMA_CHUNK: usize = 64;

/// The maximum of 64 values by halving, so that the reduction is vector
/// maxima and not the 64 dependent ones of a fold (which made a top-k
/// scan's maxima a third of the token selection). -inf when all are NaN,
/// as [`max_inline`].
#[inline(always)]
fn max64(c: &[f32; MAXIMA_CHUNK]) -> f32 {
    // `f32::max` (NaN-aware) stayed scalar here; a compare-and-select is
    // one vector instruction. NaNs lose every comparison, so they drop out
    // in the first level, which starts from -inf.
    #[inline(always)]
    fn sel(a: f32, b: f32) -> f32 {
        if b > a { b } else { a }
    }
    let mut m = [f32::NEG_INFINITY; 16];
    for q in 0..4 {
        for l in 0..16 {
            m[l] = sel(m[l], c[16 * q + l]);
        }
    }
    for w in [8, 4, 2, 1] {
        for l in 0..w {
            m[l] = sel(m[l], m[l + w]);
        }
    }
    m[0]
}

multiversion! {
    /// The maximum of each [`MAXIMA_CHUNK`]-long piece of `x` into `out`
    /// (cleared first), in one pass: what a top-k scan skips pieces by.
    fn chunk_maxima(x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        let (chunks, rest) = x.as_chunks::<MAXIMA_CHUNK>();
        // A loop, not `extend(map(..))`: the iterator's fold was compiled
        // apart from this function's target features (SSE code).
        for c in chunks {
            out.push(max64(c));
        }
        if !rest.is_empty() {
            out.push(max_inline(rest));
        }
    }
}

multiversion! {
    /// The maximum of `x` and `ln Σ exp(x - max)`, as torch's log-softmax
    /// splits them (`x - max - ln Σ`).
    fn max_and_log_sum_exp(x: &[f32]) -> (f32, f32) {
        let max = max_inline(x);
        let (chunks, rest) = x.as_chunks::<LANES>();
        let mut s = [0f32; LANES];
        for c in chunks {
            for l in 0..LANES {
                s[l] += fast_exp(c[l] - max);
            }
        }
        let sum = rest
            .iter()
            .fold(s.iter().sum::<f32>(), |a, &v| a + fast_exp(v - max));
        (max, sum.ln())
    }
}

multiversion! {
    /// `x = log_softmax(x)`; a row that is all -inf stays as it is.
    fn log_softmax_in_place(x: &mut [f32]) {
        let (max, lse) = max_and_log_sum_exp(x);
        if max == f32::NEG_INFINITY {
            return;
        }
        for v in x.iter_mut() {
            *v = *v - max - lse;
        }
    }
}

multiversion! {
    /// int8 quantisation of one activation row by its absolute maximum
    /// (scale amax / 127, or 1 for a zero row; values `x · (1 / scale)`
    /// rounded half away from zero, as `f32::round`, then clamped to ±127).
    /// `out` holds the row's bytes: q + 128 in the first `x.len()` and 128
    /// (zero) in the padding, or — `split` — |q| in the first half and q in
    /// the second, padding 0. Returns the scale. Written to vectorise:
    /// `f32::round` is a libm call on the baseline target (5% of an int8
    /// beam search on AVX2 before).
    fn quantize_i8(x: &[f32], out: &mut [u8], split: bool) -> f32 {
        let mut m = [0f32; 16];
        let (chunks, rest) = x.as_chunks::<16>();
        for c in chunks {
            for l in 0..16 {
                m[l] = m[l].max(c[l].abs());
            }
        }
        let amax = rest.iter().fold(m.iter().copied().fold(0f32, f32::max), |a, v| a.max(v.abs()));
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let inv = 1.0 / scale;
        // trunc and the remainder are exact for |v| < 2^23: the same result
        // as `round`, which has no vector instruction.
        // The integral r in [-127, 127] is read from the bits of r + 1.5 · 2^23
        // rather than with `as i32`, which compiles to one scalar conversion
        // per lane (it saturates; the vector instruction does not); NaN
        // gives 0 as `as` does.
        const ROUND: f32 = 12_582_912.0;
        let q = |v: f32| {
            let y = v * inv;
            let t = y.trunc();
            let r = if (y - t).abs() >= 0.5 { t + 1f32.copysign(y) } else { t };
            let r = if r.is_nan() { 0.0 } else { r.clamp(-127.0, 127.0) };
            (r + ROUND).to_bits() as i32 - ROUND.to_bits() as i32
        };
        if split {
            let half = out.len() / 2;
            let (mag, signed) = out.split_at_mut(half);
            for ((a, s), &v) in mag.iter_mut().zip(signed.iter_mut()).zip(x) {
                let q = q(v);
                *a = q.unsigned_abs() as u8;
                *s = q as u8;
            }
            mag[x.len()..].fill(0);
            signed[x.len()..].fill(0);
        } else {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = (q(v) + 128) as u8;
            }
            out[x.len()..].fill(128);
        }
        scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece's maximum as a plain fold that skips NaNs (-inf for a
    /// piece of NaNs), on rows with NaNs, -infs, signed zeros and a short
    /// last piece, whose maximum sits at every position of a piece in turn.
    #[test]
    fn chunk_maxima_are_each_pieces_maximum() {
        let mut rng = crate::rng::SplitMix64::new(7);
        let mut got = Vec::new();
        for len in [1, 63, 64, 65, 64 * 5 + 17, 1000] {
            for trial in 0..70 {
                let mut x: Vec<f32> = (0..len)
                    .map(|_| match rng.below(10) {
                        0 => f32::NAN,
                        1 => f32::NEG_INFINITY,
                        2 => -0.0,
                        _ => (rng.below(2001) as f32 - 1000.0) / 8.0,
                    })
                    .collect();
                if trial % 7 == 0 {
                    x[..len.min(64)].fill(f32::NAN);
                }
                let peak = (trial * 13) % len;
                x[peak] = 1.0e6;
                chunk_maxima(&x, &mut got);
                let want: Vec<f32> = x
                    .chunks(MAXIMA_CHUNK)
                    .map(|c| {
                        c.iter()
                            .filter(|v| !v.is_nan())
                            .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a })
                    })
                    .collect();
                assert_eq!(got, want, "len {len}, trial {trial}");
            }
        }
    }

    /// `fast_exp` as first written: `round_ties_even` and `as i32`.
    fn exp_by_rounding(x: f32) -> f32 {
        let xc = x.clamp(-87.0, 88.7);
        let n = (xc * std::f32::consts::LOG2_E).round_ties_even();
        let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4f32;
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = p * r + c;
        }
        let e = (p * r * r + r) + 1.0;
        let n = n as i32;
        let pow = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
        let scaled = e * pow(n / 2) * pow(n - n / 2);
        if x < -87.0 {
            0.0
        } else if x > 88.7 {
            f32::INFINITY
        } else {
            scaled
        }
    }

    /// The vectorising form rounds as `round_ties_even` does: the same bits
    /// on every 61st f32 (all 2^32 were checked once, outside the suite),
    /// the neighbourhoods of the rounding ties included.
    #[test]
    fn fast_exp_is_the_rounding_form_bit_for_bit() {
        let same = |x: f32| {
            let (a, b) = (fast_exp(x), exp_by_rounding(x));
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        };
        for bits in (0..=u32::MAX).step_by(61) {
            let x = f32::from_bits(bits);
            assert!(same(x), "{x:e} ({bits:#x})");
        }
        // x · log2 e at half-integers, where the rounding direction matters.
        for k in -260..260 {
            let x = (k as f32 + 0.5) / std::f32::consts::LOG2_E;
            for d in -3i32..=3 {
                let y = f32::from_bits((x.to_bits() as i32 + d) as u32);
                assert!(same(y), "{y:e}");
            }
        }
    }

    /// Every shape the tier's score kernel takes (groups of 8 heads) and the
    /// plain path's (others), f32 and bf16 keys, against f64 dot products
    /// of the same values.
    #[test]
    fn head_scores_match_f64_dot_products() {
        let mut rng = crate::rng::SplitMix64::new(7);
        for (heads, dh) in [(8, 64), (16, 64), (8, 16), (8, 8), (8, 24), (4, 64), (3, 5)] {
            let d = heads * dh;
            for n in [1, 7, 37] {
                let stride = 2 * d + 3;
                let q: Vec<f32> = (0..d).map(|_| rng.next_signed_unit()).collect();
                let k: Vec<f32> = (0..(n - 1) * stride + d)
                    .map(|_| rng.next_signed_unit())
                    .collect();
                let kb: Vec<Bf16> = k.iter().map(|&v| Bf16::from_f32(v)).collect();
                let check = |keys: &dyn Fn(usize) -> f32, got: &[f32], what: &str| {
                    for h in 0..heads {
                        for j in 0..n {
                            let (mut want, mut mag) = (0f64, 0f64);
                            for (l, &ql) in q.iter().enumerate().skip(h * dh).take(dh) {
                                let p = ql as f64 * keys(j * stride + l) as f64;
                                want += p;
                                mag += p.abs();
                            }
                            let g = got[h * n + j] as f64;
                            assert!(
                                (g - want).abs() <= 1e-6 * mag + 1e-30,
                                "{what} heads {heads} dh {dh} n {n} ({h}, {j}): {g} vs {want}"
                            );
                        }
                    }
                };
                let mut got = vec![f32::NAN; heads * n];
                head_scores(&q, &k, stride, n, heads, &mut got);
                check(&|i| k[i], &got, "f32");
                let mut got = vec![f32::NAN; heads * n];
                head_scores(&q, &kb, stride, n, heads, &mut got);
                check(&|i| kb[i].to_f32(), &got, "bf16");
            }
        }
    }

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0f64;
        let mut x = -90.0f32;
        while x < 89.0 {
            let (g, e) = (fast_exp(x), (x as f64).exp());
            if e > 1e-37 && e < 3e38 {
                worst = worst.max(((g as f64 - e) / e).abs());
            }
            x += 0.00731;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(fast_exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(fast_exp(-100.0), 0.0);
        assert_eq!(fast_exp(0.0), 1.0);
    }

    #[test]
    fn quantize_i8_rounds_as_f32_round() {
        // amax 127 gives scale 1: q is round(x) exactly, ties away from zero.
        let mut x = vec![
            127.0,
            -127.0,
            2.5,
            -2.5,
            0.5,
            -0.5,
            1.5,
            0.499_999_97,
            -3.499_999_8,
        ];
        x.extend((0..40).map(|i| i as f32 * 0.25 - 5.0));
        let want: Vec<i32> = x.iter().map(|v| v.round() as i32).collect();
        let mut out = vec![0u8; 2 * 52];
        assert_eq!(quantize_i8(&x, &mut out, true), 1.0);
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(out[i] as i32, w.abs(), "|q| at {i}");
            assert_eq!(out[52 + i] as i8 as i32, w, "q at {i}");
        }
        assert!(out[x.len()..52].iter().all(|&b| b == 0));
        let mut out = vec![0u8; 52];
        quantize_i8(&x, &mut out, false);
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(out[i] as i32 - 128, w, "q + 128 at {i}");
        }
        assert!(out[x.len()..].iter().all(|&b| b == 128));
        // NaN quantises to 0, as `NaN as i32` gives.
        let mut out = vec![0u8; 16];
        quantize_i8(&[f32::NAN, 127.0, -127.0], &mut out, false);
        assert_eq!(&out[..3], &[128, 255, 1]);
    }
}
