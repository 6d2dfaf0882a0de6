//! Matrix products of activations with packed weights, the arithmetic of the
//! native CPU engine ([`crate::marian`] on the CPU). This module owns the
//! packed weight layouts in three precisions and the kernels over them:
//! `f32`, `bf16` (weights and activations rounded to bfloat16, products
//! accumulated in f32 with AVX512-BF16 `vdpbf16ps`) and `int8` (weights
//! quantised per output channel, activations per row at run time, i32
//! accumulation with AVX512-VNNI `vpdpbusd`, the scheme CTranslate2 uses).
//!
//! A [`PackedLinear`] is a `nn.Linear` (`y = x Wᵀ + b`, `W` of shape
//! (out, in)) re-laid out once at load time into panels of [`NR`] output
//! columns, each panel holding its columns interleaved along the inner
//! dimension, so that a kernel streams one panel contiguously while it keeps
//! a block of up to [`MR`] activation rows × 32 columns of sums in registers.
//! [`PackedLinear::forward`] splits the work into (row chunk, panel range)
//! tasks on rayon; each task writes its own disjoint columns of the output.
//! The AVX-512 kernels are chosen at run time; every precision has a
//! portable fallback with the same rounding of its inputs, so results differ
//! between the two paths only by f32 summation order.

use rayon::prelude::*;

/// Output columns per packed panel (two 16-lane vectors).
pub const NR: usize = 32;
/// Most activation rows a kernel keeps in registers at once.
pub const MR: usize = 12;

/// Arithmetic of a packed weight matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    Bf16,
    Int8,
}

impl Precision {
    /// Inner-dimension elements per 32-bit lane of a packed panel.
    fn group(self) -> usize {
        match self {
            Precision::F32 => 1,
            Precision::Bf16 => 2,
            Precision::Int8 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

/// Which kernels run: the AVX-512 ones where the CPU has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Portable,
}

fn isa(p: Precision) -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::portable_forced() {
            return Isa::Portable;
        }
        let ok = std::arch::is_x86_feature_detected!("avx512f")
            && match p {
                Precision::F32 => true,
                Precision::Bf16 => std::arch::is_x86_feature_detected!("avx512bf16"),
                Precision::Int8 => std::arch::is_x86_feature_detected!("avx512vnni"),
            };
        if ok {
            return Isa::Avx512;
        }
    }
    let _ = p;
    Isa::Portable
}

/// 32-bit words aligned to a cache line, so that panel rows never straddle
/// two lines.
struct Words {
    buf: Vec<u32>,
    start: usize,
    len: usize,
}

impl Words {
    fn zeroed(len: usize) -> Self {
        let buf = vec![0u32; len + 16];
        let start = buf.as_ptr().align_offset(64).min(15);
        Self { buf, start, len }
    }

    fn as_slice(&self) -> &[u32] {
        &self.buf[self.start..self.start + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl Clone for Words {
    // A derived clone would lose the alignment.
    fn clone(&self) -> Self {
        let mut w = Self::zeroed(self.len);
        w.as_mut_slice().copy_from_slice(self.as_slice());
        w
    }
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Words({})", self.len)
    }
}

/// Rounds to the nearest bfloat16, ties to even (as `vcvtne2ps2bf16` and
/// torch do), returned as its 16 bits.
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// A bfloat16 (as its 16 bits) widened back to f32.
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// A linear layer packed for the kernels of one [`Precision`].
#[derive(Debug, Clone)]
pub struct PackedLinear {
    n: usize,
    k: usize,
    /// `k` rounded up to the precision's group.
    kp: usize,
    precision: Precision,
    bias: Vec<f32>,
    /// Panels of `kp / group` words × NR columns.
    data: Words,
    /// Int8: per output column dequantisation scale and the column sums of
    /// the quantised weights (for the unsigned-activation offset).
    scale: Vec<f32>,
    colsum: Vec<i32>,
}

impl PackedLinear {
    /// Packs `w` ((n, k) row-major, PyTorch's layout) and `bias` (n values,
    /// or none for zeros).
    pub fn new(w: &[f32], n: usize, k: usize, bias: Option<&[f32]>, precision: Precision) -> Self {
        assert_eq!(w.len(), n * k, "weight is not {n} x {k}");
        let g = precision.group();
        let kp = k.div_ceil(g) * g;
        let kw = kp / g;
        let panels = n.div_ceil(NR);
        let mut data = Words::zeroed(panels * kw * NR);
        let mut scale = Vec::new();
        let mut colsum = Vec::new();
        let out = data.as_mut_slice();
        let at = |col: usize, word: usize| (col / NR) * kw * NR + word * NR + col % NR;
        match precision {
            Precision::F32 => {
                for col in 0..n {
                    for kk in 0..k {
                        out[at(col, kk)] = w[col * k + kk].to_bits();
                    }
                }
            }
            Precision::Bf16 => {
                for col in 0..n {
                    for kk in 0..k {
                        let h = bf16_bits(w[col * k + kk]) as u32;
                        out[at(col, kk / 2)] |= h << (16 * (kk % 2));
                    }
                }
            }
            Precision::Int8 => {
                for col in 0..n {
                    let row = &w[col * k..(col + 1) * k];
                    let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
                    let mut sum = 0i32;
                    for (kk, &v) in row.iter().enumerate() {
                        let q = (v / s).round().clamp(-127.0, 127.0) as i8;
                        sum += q as i32;
                        out[at(col, kk / 4)] |= (q as u8 as u32) << (8 * (kk % 4));
                    }
                    scale.push(s);
                    colsum.push(sum);
                }
            }
        }
        Self {
            n,
            k,
            kp,
            precision,
            bias: bias.map_or_else(|| vec![0.0; n], <[f32]>::to_vec),
            data,
            scale,
            colsum,
        }
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.n
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.k
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Row `i` of the packed (n, k) weight, exactly as given, when packed in
    /// f32 (a tied embedding table can then be read from its projection);
    /// `None` for the rounded precisions.
    pub fn weight_row(&self, i: usize) -> Option<impl Iterator<Item = f32> + '_> {
        if self.precision != Precision::F32 || i >= self.n {
            return None;
        }
        let panel = &self.data.as_slice()[(i / NR) * self.k * NR..];
        Some((0..self.k).map(move |kk| f32::from_bits(panel[kk * NR + i % NR])))
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.data.len * 4
    }

    /// `out = x Wᵀ + b` for the `m` rows of `x` ((m, k) row-major); `out` is
    /// (m, n) row-major.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.forward_on(isa(self.precision), x, m, out);
    }

    fn forward_on(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        assert_eq!(x.len(), m * self.k, "input is not {m} x {}", self.k);
        assert_eq!(out.len(), m * self.n, "output is not {m} x {}", self.n);
        if m == 0 {
            return;
        }
        match self.precision {
            Precision::F32 => {
                // The kernels read activations as 32-bit words.
                // SAFETY: f32 and u32 have the same size and alignment.
                let words =
                    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<u32>(), x.len()) };
                self.run(isa, words, self.k, m, &[], out);
            }
            Precision::Bf16 => {
                let kw = self.kp / 2;
                let mut a = vec![0u32; m * kw];
                a.par_chunks_mut(kw)
                    .zip(x.par_chunks(self.k))
                    .for_each(|(dst, src)| {
                        for (kk, &v) in src.iter().enumerate() {
                            dst[kk / 2] |= (bf16_bits(v) as u32) << (16 * (kk % 2));
                        }
                    });
                self.run(isa, &a, kw, m, &[], out);
            }
            Precision::Int8 => {
                let kw = self.kp / 4;
                let mut a = vec![0u32; m * kw];
                let mut sa = vec![0f32; m];
                a.par_chunks_mut(kw)
                    .zip(sa.par_iter_mut())
                    .zip(x.par_chunks(self.k))
                    .for_each(|((dst, s), src)| {
                        let amax = src.iter().fold(0f32, |m, v| m.max(v.abs()));
                        *s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
                        let inv = 1.0 / *s;
                        for (kk, &v) in src.iter().enumerate() {
                            let q = ((v * inv).round().clamp(-127.0, 127.0) as i32 + 128) as u32;
                            dst[kk / 4] |= q << (8 * (kk % 4));
                        }
                        // Padding lanes must count as zero: 128 is the
                        // unsigned zero, matched by zero weights.
                        for kk in src.len()..kw * 4 {
                            dst[kk / 4] |= 128 << (8 * (kk % 4));
                        }
                    });
                self.run(isa, &a, kw, m, &sa, out);
            }
        }
    }

    /// Splits (rows, panels) into tasks and runs the kernels. `a` holds the
    /// activations as `lda` words per row; `row_scale` is int8's.
    fn run(&self, isa: Isa, a: &[u32], lda: usize, m: usize, row_scale: &[f32], out: &mut [f32]) {
        let panels = self.n.div_ceil(NR);
        let kw = self.kp / self.precision.group();
        // Row chunks whose activations (up to 512 KiB, half of a Zen 5 L2)
        // stay in L2 while panels stream by: 252 rows at K = 512, so a beam-4
        // batch of 32 reads the 129 MB projection once per step, not twice.
        let mc = ((512 * 1024 / (lda * 4)).max(MR) / MR * MR).min(m.div_ceil(MR) * MR);
        let row_chunks = m.div_ceil(mc);
        let threads = rayon::current_num_threads().max(1);
        // Enough tasks to balance, few enough to keep panels long.
        let want = (threads * 4).div_ceil(row_chunks).max(1);
        let per = panels.div_ceil(want).max(1);
        let panel_chunks = panels.div_ceil(per);
        let out_ptr = SendPtr(out.as_mut_ptr());
        let n = self.n;
        (0..row_chunks * panel_chunks)
            .into_par_iter()
            .for_each(|task| {
                let rc = task / panel_chunks;
                let pc = task % panel_chunks;
                let r0 = rc * mc;
                let r1 = (r0 + mc).min(m);
                let p0 = pc * per;
                let p1 = (p0 + per).min(panels);
                let out_ptr = &out_ptr;
                for p in p0..p1 {
                    let col0 = p * NR;
                    let cols = NR.min(n - col0);
                    let panel = &self.data.as_slice()[p * kw * NR..(p + 1) * kw * NR];
                    let mut r = r0;
                    while r < r1 {
                        let rows = MR.min(r1 - r);
                        let job = Block {
                            a: &a[r * lda..],
                            lda,
                            kw,
                            rows,
                            panel,
                            bias: &self.bias[col0..col0 + cols],
                            cols,
                            // SAFETY: tasks own disjoint (row, column) blocks.
                            c: unsafe { out_ptr.0.add(r * n + col0) },
                            ldc: n,
                            row_scale: part(row_scale, r..r + rows),
                            col_scale: part(&self.scale, col0..col0 + cols),
                            colsum: part(&self.colsum, col0..col0 + cols),
                        };
                        job.run(self.precision, isa);
                        r += rows;
                    }
                }
            });
    }
}

/// `v[range]`, or nothing for the int8-only vectors of other precisions.
fn part<T>(v: &[T], range: std::ops::Range<usize>) -> &[T] {
    if v.is_empty() { &[] } else { &v[range] }
}

struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint output blocks to rayon tasks.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// One kernel call: `rows` (≤ MR) activation rows times one panel.
struct Block<'a> {
    a: &'a [u32],
    lda: usize,
    kw: usize,
    rows: usize,
    panel: &'a [u32],
    bias: &'a [f32],
    cols: usize,
    c: *mut f32,
    ldc: usize,
    row_scale: &'a [f32],
    col_scale: &'a [f32],
    colsum: &'a [i32],
}

impl Block<'_> {
    fn run(&self, p: Precision, isa: Isa) {
        debug_assert!(self.a.len() >= (self.rows - 1) * self.lda + self.kw);
        debug_assert_eq!(self.panel.len(), self.kw * NR);
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 {
            // SAFETY: `isa` checked the CPU features; the slices cover what
            // the kernels read (asserted above) and `c` a rows × cols block.
            unsafe {
                match p {
                    Precision::F32 => avx512::dispatch_f32(self),
                    Precision::Bf16 => avx512::dispatch_bf16(self),
                    Precision::Int8 => avx512::dispatch_i8(self),
                }
            }
            return;
        }
        let _ = isa;
        self.portable(p);
    }

    /// The reference arithmetic: the same rounded inputs, f32 (bf16) or i32
    /// (int8) sums.
    fn portable(&self, p: Precision) {
        let mut acc = [0f32; NR];
        for r in 0..self.rows {
            let row = &self.a[r * self.lda..r * self.lda + self.kw];
            match p {
                Precision::F32 => {
                    acc = [0f32; NR];
                    for (w, &av) in row.iter().enumerate() {
                        let av = f32::from_bits(av);
                        let b = &self.panel[w * NR..(w + 1) * NR];
                        for j in 0..NR {
                            acc[j] += av * f32::from_bits(b[j]);
                        }
                    }
                }
                Precision::Bf16 => {
                    acc = [0f32; NR];
                    for (w, &av) in row.iter().enumerate() {
                        let (a0, a1) = (bf16_to_f32(av as u16), bf16_to_f32((av >> 16) as u16));
                        let b = &self.panel[w * NR..(w + 1) * NR];
                        for j in 0..NR {
                            let (b0, b1) =
                                (bf16_to_f32(b[j] as u16), bf16_to_f32((b[j] >> 16) as u16));
                            acc[j] += a0 * b0 + a1 * b1;
                        }
                    }
                }
                Precision::Int8 => {
                    let mut iacc = [0i32; NR];
                    for (w, &av) in row.iter().enumerate() {
                        let b = &self.panel[w * NR..(w + 1) * NR];
                        for j in 0..NR {
                            for l in 0..4 {
                                let x = ((av >> (8 * l)) & 0xff) as i32;
                                let y = ((b[j] >> (8 * l)) & 0xff) as u8 as i8 as i32;
                                iacc[j] += x * y;
                            }
                        }
                    }
                    for j in 0..self.cols {
                        acc[j] = (iacc[j] - 128 * self.colsum[j]) as f32
                            * (self.row_scale[r] * self.col_scale[j]);
                    }
                }
            }
            for (j, (&v, &b)) in acc.iter().zip(self.bias).enumerate() {
                // SAFETY: inside this block's rows × cols (bias has cols values).
                unsafe { *self.c.add(r * self.ldc + j) = v + b };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Block, MR, NR};
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
            for w in 0..b.kw {
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
            for w in 0..b.kw {
                let b0: __m512bh = std::mem::transmute(_mm512_load_si512(p.add(w * NR).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_load_si512(p.add(w * NR + 16).cast()));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*a.add(r * b.lda + w)));
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
            for w in 0..b.kw {
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
            let sum1 =
                _mm512_mullo_epi32(off, _mm512_maskz_loadu_epi32(m1, b.colsum.as_ptr().add(hi)));
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
}

#[cfg(test)]
mod tests;
