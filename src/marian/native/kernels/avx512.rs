//! AVX-512 micro-kernels: f32 (`vfmadd`), bf16 (`vdpbf16ps`) and int8
//! (`vpdpbusd`), each holding up to MR rows × 32 columns of sums in zmm
//! registers.
use super::{Block, MR, NR, prefetch_panel_row};
use std::arch::x86_64::*;

macro_rules! dispatch {
    ($name:ident, $kernel:ident) => {
        pub(super) unsafe fn $name(b: &Block) {
            unsafe {
                match b.rows {
                    1 => $kernel::<1>(b),
                    2 => $kernel::<2>(b),
                    3 => $kernel::<3>(b),
                    4 => $kernel::<4>(b),
                    5 => $kernel::<5>(b),
                    6 => $kernel::<6>(b),
                    7 => $kernel::<7>(b),
                    8 => $kernel::<8>(b),
                    9 => $kernel::<9>(b),
                    10 => $kernel::<10>(b),
                    11 => $kernel::<11>(b),
                    _ => $kernel::<MR>(b),
                }
            }
        }
    };
}
dispatch!(dispatch_f32, kernel_f32);
dispatch!(dispatch_bf16, kernel_bf16);
dispatch!(dispatch_i8, kernel_i8);

/// Column masks of a (possibly partial) panel: lanes 0..16 and 16..32.
#[inline(always)]
fn masks(cols: usize) -> (__mmask16, __mmask16) {
    let lo = if cols >= 16 {
        0xffff
    } else {
        ((1u32 << cols) - 1) as u16
    };
    let hi = if cols >= 32 {
        0xffff
    } else if cols > 16 {
        ((1u32 << (cols - 16)) - 1) as u16
    } else {
        0
    };
    (lo, hi)
}

#[inline(always)]
unsafe fn store<const R: usize>(b: &Block, acc: &[[__m512; 2]; R]) {
    unsafe {
        let (m0, m1) = masks(b.cols);
        let bias0 = _mm512_maskz_loadu_ps(m0, b.bias.as_ptr());
        let bias1 = _mm512_maskz_loadu_ps(m1, b.bias.as_ptr().add(16.min(b.cols)));
        for (r, row) in acc.iter().enumerate() {
            let c = b.c.add(r * b.ldc);
            _mm512_mask_storeu_ps(c, m0, _mm512_add_ps(row[0], bias0));
            _mm512_mask_storeu_ps(c.add(16), m1, _mm512_add_ps(row[1], bias1));
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn kernel_f32<const R: usize>(b: &Block) {
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let a = b.a.as_ptr().cast::<f32>();
        let p = b.panel.as_ptr().cast::<f32>();
        let next = p.add(b.kw * NR);
        for w in 0..b.kw {
            prefetch_panel_row(next, w);
            let b0 = _mm512_load_ps(p.add(w * NR));
            let b1 = _mm512_load_ps(p.add(w * NR + 16));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * b.lda + w));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
        store(b, &acc);
    }
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel_bf16<const R: usize>(b: &Block) {
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let a = b.a.as_ptr().cast::<i32>();
        let p = b.panel.as_ptr().cast::<i32>();
        let next = p.add(b.kw * NR);
        for w in 0..b.kw {
            prefetch_panel_row(next, w);
            let b0: __m512bh = std::mem::transmute(_mm512_load_si512(p.add(w * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_load_si512(p.add(w * NR + 16).cast()));
            for (r, row) in acc.iter_mut().enumerate() {
                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r * b.lda + w)));
                row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                row[1] = _mm512_dpbf16_ps(row[1], av, b1);
            }
        }
        store(b, &acc);
    }
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn kernel_i8<const R: usize>(b: &Block) {
    unsafe {
        let mut iacc = [[_mm512_setzero_si512(); 2]; R];
        let a = b.a.as_ptr().cast::<i32>();
        let p = b.panel.as_ptr().cast::<i32>();
        let next = p.add(b.kw * NR);
        for w in 0..b.kw {
            prefetch_panel_row(next, w);
            let b0 = _mm512_load_si512(p.add(w * NR).cast());
            let b1 = _mm512_load_si512(p.add(w * NR + 16).cast());
            for (r, row) in iacc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(*a.add(r * b.lda + w));
                row[0] = _mm512_dpbusd_epi32(row[0], av, b0);
                row[1] = _mm512_dpbusd_epi32(row[1], av, b1);
            }
        }
        let (m0, m1) = masks(b.cols);
        let hi = 16.min(b.cols);
        let off = _mm512_set1_epi32(128);
        let sum0 = _mm512_mullo_epi32(off, _mm512_maskz_loadu_epi32(m0, b.colsum.as_ptr()));
        let sum1 = _mm512_mullo_epi32(off, _mm512_maskz_loadu_epi32(m1, b.colsum.as_ptr().add(hi)));
        let s0 = _mm512_maskz_loadu_ps(m0, b.col_scale.as_ptr());
        let s1 = _mm512_maskz_loadu_ps(m1, b.col_scale.as_ptr().add(hi));
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for r in 0..R {
            let rs = _mm512_set1_ps(b.row_scale[r]);
            acc[r][0] = _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_sub_epi32(iacc[r][0], sum0)),
                _mm512_mul_ps(rs, s0),
            );
            acc[r][1] = _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_sub_epi32(iacc[r][1], sum1)),
                _mm512_mul_ps(rs, s1),
            );
        }
        store(b, &acc);
    }
}

/// 16 cache elements from element `i` of `k` as f32: f32 as stored, bf16
/// widened by a 16-bit shift.
#[inline(always)]
unsafe fn load_keys<const BF16: bool>(k: *const u8, i: usize) -> __m512 {
    unsafe {
        if BF16 {
            let h = _mm256_loadu_si256(k.add(2 * i).cast());
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        } else {
            _mm512_loadu_ps(k.add(4 * i).cast())
        }
    }
}

head_scores_kernel!(
    "avx512f,avx2,fma",
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    |a: __m512| {
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)));
        _mm256_add_ps(_mm512_castps512_ps256(a), hi)
    }
);
