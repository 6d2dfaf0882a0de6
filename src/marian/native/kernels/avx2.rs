//! AVX2 micro-kernels over the same 32-column panels as the AVX-512 ones.
//! With 16 ymm registers a kernel covers one half of a panel (16 columns,
//! two vectors) for a few rows at a time: f32 keeps 6 rows × 16 columns of
//! sums (12 registers) plus two weight vectors and a broadcast, the layout
//! of the classic 6×16 AVX2 SGEMM kernel; the half-panel rows it streams are
//! whole 64-byte lines.
//!
//! int8 comes in two forms. With AVX-VNNI (`vpdpbusd` on ymm) it is the
//! AVX-512 VNNI kernel at half width: unsigned activations (q + 128) times
//! signed weights, corrected by the column sums. Without it, `vpmaddubsw`
//! would saturate its i16 pair sums on (q + 128) · w (up to 2 · 255 · 127),
//! so the kernel instead multiplies |q| by the weights with q's sign
//! (`vpsignb`): pairs stay within 2 · 127² < 2¹⁵, and `vpmaddwd` widens them
//! to exact i32 sums — the same integers as VNNI, no saturation. Its
//! activations come as |q| and q (two halves of each row, made when they
//! are quantised), not derived per panel.
//!
//! bf16 has no arithmetic below AVX512-BF16: its kernel widens both inputs
//! to f32 in registers (a 16-bit shift or a mask) and uses f32 FMAs, which
//! keeps bf16's rounding of the inputs and half the weight bytes of f32.

use super::{Block, NR, prefetch_panel_row};
use std::arch::x86_64::*;

/// Columns one kernel call covers.
const HALF: usize = 16;

/// Runs `kernel::<R>` over the block's rows in balanced groups of up to
/// `MAXR`, for each half panel that has columns.
macro_rules! drive {
    ($b:expr, $maxr:literal, $kernel:ident) => {{
        let b: &Block = $b;
        for h in 0..2 {
            if h * HALF >= b.cols {
                break;
            }
            // Balanced groups (8 rows: 4 + 4, not 6 + 2): a thin group
            // spends more on loads and broadcasts than on FMAs.
            let groups = b.rows.div_ceil($maxr);
            let mut r = 0;
            for g in 0..groups {
                let n = (b.rows - r) / (groups - g);
                match n {
                    1 => $kernel::<1>(b, r, h),
                    2 => $kernel::<2>(b, r, h),
                    3 => $kernel::<3>(b, r, h),
                    4 => $kernel::<4>(b, r, h),
                    5 => $kernel::<5>(b, r, h),
                    _ => $kernel::<6>(b, r, h),
                }
                r += n;
            }
        }
    }};
}

pub(super) unsafe fn f32(b: &Block) {
    unsafe {
        match b.rows {
            1 => kernel_f32_full::<1>(b),
            2 => kernel_f32_full::<2>(b),
            _ => drive!(b, 6, kernel_f32),
        }
    }
}

pub(super) unsafe fn bf16(b: &Block) {
    unsafe { drive!(b, 4, kernel_bf16) }
}

pub(super) unsafe fn vnni(b: &Block) {
    unsafe {
        match b.rows {
            1 => kernel_vnni_full::<1>(b),
            2 => kernel_vnni_full::<2>(b),
            _ => drive!(b, 6, kernel_vnni),
        }
    }
}

pub(super) unsafe fn int8(b: &Block) {
    unsafe { drive!(b, 4, kernel_i8) }
}

/// Fetches the line of panel row `w` that the second half-panel pass will
/// read (`p` points at the first half). Measured: without it the first pass
/// reads every other line of a panel streaming from memory and greedy
/// batch-32 decoding runs 30–40% slower (benches/NOTES.md).
#[inline(always)]
unsafe fn other_half<T>(p: *const T, w: usize) {
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<f32>().add(w * NR + HALF).cast()) }
}

/// Adds the bias to rows `r0..r0 + R` of half `h` and stores the columns
/// that exist.
#[inline(always)]
unsafe fn store<const R: usize>(b: &Block, r0: usize, h: usize, acc: &[[__m256; 2]; R]) {
    unsafe {
        let col0 = h * HALF;
        let cols = (b.cols - col0).min(HALF);
        let mut bias = [0f32; HALF];
        bias[..cols].copy_from_slice(&b.bias[col0..col0 + cols]);
        let b0 = _mm256_loadu_ps(bias.as_ptr());
        let b1 = _mm256_loadu_ps(bias.as_ptr().add(8));
        for (r, row) in acc.iter().enumerate() {
            let c = b.c.add((r0 + r) * b.ldc + col0);
            let (v0, v1) = (_mm256_add_ps(row[0], b0), _mm256_add_ps(row[1], b1));
            if cols == HALF {
                _mm256_storeu_ps(c, v0);
                _mm256_storeu_ps(c.add(8), v1);
            } else {
                let mut tmp = [0f32; HALF];
                _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), c, cols);
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_f32<const R: usize>(b: &Block, r0: usize, h: usize) {
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let a = b.a.as_ptr().cast::<f32>().add(r0 * b.lda);
        let p = b.panel.as_ptr().cast::<f32>().add(h * HALF);
        let pf = h == 0 && r0 == 0;
        // The next panel, fetched during the second half's first pass.
        let (pn, next) = (h == 1 && r0 == 0, b.panel.as_ptr().add(b.kw * NR));
        for w in 0..b.kw {
            if pf {
                other_half(p, w);
            }
            if pn {
                prefetch_panel_row(next, w);
            }
            let w0 = _mm256_load_ps(p.add(w * NR));
            let w1 = _mm256_load_ps(p.add(w * NR + 8));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(r * b.lda + w));
                row[0] = _mm256_fmadd_ps(av, w0, row[0]);
                row[1] = _mm256_fmadd_ps(av, w1, row[1]);
            }
        }
        store(b, r0, h, &acc);
    }
}

/// One or two rows over the whole panel: a matrix-vector product is bound
/// by the weight stream, which this reads line after line (the half-panel
/// kernels read every other line, then go back for the rest).
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_f32_full<const R: usize>(b: &Block) {
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        let a = b.a.as_ptr().cast::<f32>();
        let p = b.panel.as_ptr().cast::<f32>();
        for w in 0..b.kw {
            let wv = [0, 8, 16, 24].map(|o| _mm256_load_ps(p.add(w * NR + o)));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(r * b.lda + w));
                for (s, &v) in row.iter_mut().zip(&wv) {
                    *s = _mm256_fmadd_ps(av, v, *s);
                }
            }
        }
        for h in 0..2 {
            if h * HALF < b.cols {
                let half: [[__m256; 2]; R] =
                    std::array::from_fn(|r| [acc[r][2 * h], acc[r][2 * h + 1]]);
                store(b, 0, h, &half);
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_bf16<const R: usize>(b: &Block, r0: usize, h: usize) {
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let a = b.a.as_ptr().add(r0 * b.lda);
        let p = b.panel.as_ptr().cast::<__m256i>().add(h * 2);
        let hi_mask = _mm256_set1_epi32(0xffff_0000u32 as i32);
        let pf = h == 0 && r0 == 0;
        // The next panel, fetched during the second half's first pass.
        let (pn, next) = (h == 1 && r0 == 0, b.panel.as_ptr().add(b.kw * NR));
        for w in 0..b.kw {
            if pf {
                other_half(p, w);
            }
            if pn {
                prefetch_panel_row(next, w);
            }
            // Word = [even k in the low 16 bits | odd k in the high 16 bits].
            let w0 = _mm256_load_si256(p.add(w * NR / 8));
            let w1 = _mm256_load_si256(p.add(w * NR / 8 + 1));
            let (e0, o0) = (
                _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)),
                _mm256_castsi256_ps(_mm256_and_si256(w0, hi_mask)),
            );
            let (e1, o1) = (
                _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16)),
                _mm256_castsi256_ps(_mm256_and_si256(w1, hi_mask)),
            );
            for (r, row) in acc.iter_mut().enumerate() {
                let word = *a.add(r * b.lda + w);
                let ae = _mm256_set1_ps(f32::from_bits(word << 16));
                let ao = _mm256_set1_ps(f32::from_bits(word & 0xffff_0000));
                row[0] = _mm256_fmadd_ps(ao, o0, _mm256_fmadd_ps(ae, e0, row[0]));
                row[1] = _mm256_fmadd_ps(ao, o1, _mm256_fmadd_ps(ae, e1, row[1]));
            }
        }
        store(b, r0, h, &acc);
    }
}

/// Scales exact i32 sums (already offset-corrected) to f32 and stores them
/// with the bias, as the other int8 kernels do: `sum as f32 · (rs · cs)`.
#[inline(always)]
unsafe fn store_i32<const R: usize>(
    b: &Block,
    r0: usize,
    h: usize,
    iacc: &[[__m256i; 2]; R],
    offset: bool,
) {
    unsafe {
        let col0 = h * HALF;
        let cols = (b.cols - col0).min(HALF);
        let mut cs = [0f32; HALF];
        let mut sum = [0i32; HALF];
        cs[..cols].copy_from_slice(&b.col_scale[col0..col0 + cols]);
        if offset {
            for (s, &c) in sum.iter_mut().zip(&b.colsum[col0..col0 + cols]) {
                *s = 128 * c;
            }
        }
        let s0 = _mm256_loadu_ps(cs.as_ptr());
        let s1 = _mm256_loadu_ps(cs.as_ptr().add(8));
        let c0 = _mm256_loadu_si256(sum.as_ptr().cast());
        let c1 = _mm256_loadu_si256(sum.as_ptr().add(8).cast());
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for r in 0..R {
            let rs = _mm256_set1_ps(b.row_scale[r0 + r]);
            acc[r][0] = _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_sub_epi32(iacc[r][0], c0)),
                _mm256_mul_ps(rs, s0),
            );
            acc[r][1] = _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_sub_epi32(iacc[r][1], c1)),
                _mm256_mul_ps(rs, s1),
            );
        }
        store(b, r0, h, &acc);
    }
}

#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn kernel_vnni<const R: usize>(b: &Block, r0: usize, h: usize) {
    unsafe {
        let mut iacc = [[_mm256_setzero_si256(); 2]; R];
        let a = b.a.as_ptr().cast::<i32>().add(r0 * b.lda);
        let p = b.panel.as_ptr().cast::<__m256i>().add(h * 2);
        let pf = h == 0 && r0 == 0;
        // The next panel, fetched during the second half's first pass.
        let (pn, next) = (h == 1 && r0 == 0, b.panel.as_ptr().add(b.kw * NR));
        for w in 0..b.kw {
            if pf {
                other_half(p, w);
            }
            if pn {
                prefetch_panel_row(next, w);
            }
            let w0 = _mm256_load_si256(p.add(w * NR / 8));
            let w1 = _mm256_load_si256(p.add(w * NR / 8 + 1));
            for (r, row) in iacc.iter_mut().enumerate() {
                let av = _mm256_set1_epi32(*a.add(r * b.lda + w));
                row[0] = _mm256_dpbusd_avx_epi32(row[0], av, w0);
                row[1] = _mm256_dpbusd_avx_epi32(row[1], av, w1);
            }
        }
        store_i32(b, r0, h, &iacc, true);
    }
}

/// One or two rows over the whole panel, line after line (batch 1), as
/// [`kernel_f32_full`].
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn kernel_vnni_full<const R: usize>(b: &Block) {
    unsafe {
        let mut iacc = [[_mm256_setzero_si256(); 4]; R];
        let a = b.a.as_ptr().cast::<i32>();
        let p = b.panel.as_ptr().cast::<__m256i>();
        for w in 0..b.kw {
            let wv = [0, 1, 2, 3].map(|o| _mm256_load_si256(p.add(w * NR / 8 + o)));
            for (r, row) in iacc.iter_mut().enumerate() {
                let av = _mm256_set1_epi32(*a.add(r * b.lda + w));
                for (s, &v) in row.iter_mut().zip(&wv) {
                    *s = _mm256_dpbusd_avx_epi32(*s, av, v);
                }
            }
        }
        for h in 0..2 {
            if h * HALF < b.cols {
                let half: [[__m256i; 2]; R] =
                    std::array::from_fn(|r| [iacc[r][2 * h], iacc[r][2 * h + 1]]);
                store_i32(b, 0, h, &half, true);
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_i8<const R: usize>(b: &Block, r0: usize, h: usize) {
    unsafe {
        let mut iacc = [[_mm256_setzero_si256(); 2]; R];
        let a = b.a.as_ptr().cast::<i32>().add(r0 * b.lda);
        let p = b.panel.as_ptr().cast::<__m256i>().add(h * 2);
        let ones = _mm256_set1_epi16(1);
        let pf = h == 0 && r0 == 0;
        // The next panel, fetched during the second half's first pass.
        let (pn, next) = (h == 1 && r0 == 0, b.panel.as_ptr().add(b.kw * NR));
        for w in 0..b.kw {
            if pf {
                other_half(p, w);
            }
            if pn {
                prefetch_panel_row(next, w);
            }
            let w0 = _mm256_load_si256(p.add(w * NR / 8));
            let w1 = _mm256_load_si256(p.add(w * NR / 8 + 1));
            for (r, row) in iacc.iter_mut().enumerate() {
                // Row r holds |q| in words 0..kw and q in kw..2 kw.
                let mag = _mm256_set1_epi32(*a.add(r * b.lda + w));
                let q = _mm256_set1_epi32(*a.add(r * b.lda + b.kw + w));
                let p0 = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(w0, q));
                let p1 = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(w1, q));
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(p0, ones));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(p1, ones));
            }
        }
        store_i32(b, r0, h, &iacc, false);
    }
}

/// Lane `h` of the result is the sum of the 8 lanes of `y[h]` (three rounds
/// of `vhaddps`, then the two 128-bit halves added).
#[inline(always)]
pub(super) unsafe fn sum8(y: [__m256; 8]) -> __m256 {
    unsafe {
        let t0 = _mm256_hadd_ps(y[0], y[1]);
        let t1 = _mm256_hadd_ps(y[2], y[3]);
        let t2 = _mm256_hadd_ps(y[4], y[5]);
        let t3 = _mm256_hadd_ps(y[6], y[7]);
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(u0, u1),
            _mm256_permute2f128_ps::<0x31>(u0, u1),
        )
    }
}

/// 8 cache elements from element `i` of `k` as f32: f32 as stored, bf16
/// widened by a 16-bit shift.
#[inline(always)]
unsafe fn load_keys<const BF16: bool>(k: *const u8, i: usize) -> __m256 {
    unsafe {
        if BF16 {
            let h = _mm_loadu_si128(k.add(2 * i).cast());
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        } else {
            _mm256_loadu_ps(k.add(4 * i).cast())
        }
    }
}

head_scores_kernel!(
    "avx2,fma",
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_fmadd_ps,
    |a: __m256| a
);
