//! The arithmetic of the native CPU engine: matrix products of activations
//! with packed weights, and the vector math around them ([`vecmath`]). This
//! module owns the packed weight layouts in three precisions and the kernels
//! over them: `f32`, `bf16` (weights and activations rounded to bfloat16,
//! products accumulated in f32) and `int8` (weights quantised per output
//! channel, activations per row at run time, exact i32 sums, the scheme
//! CTranslate2 uses).
//!
//! A [`PackedLinear`] is a `nn.Linear` (`y = x Wᵀ + b`, `W` of shape
//! (out, in)) re-laid out once at load time into panels of [`NR`] output
//! columns, each panel holding its columns interleaved along the inner
//! dimension, so that a kernel streams one panel contiguously while it keeps
//! a block of activation rows × columns of sums in registers.
//! [`PackedLinear::forward`] splits the work into (row chunk, panel range)
//! tasks run by `parallel::par_tasks`; each task writes its own disjoint block
//! of the output. The kernels per instruction set ([`avx512`], [`avx2`],
//! [`portable`]) are chosen at run time by [`isa`]; every kernel of a
//! precision rounds its inputs the same way, so results differ between
//! kernels only by f32 summation order (int8: not at all before the final
//! scaling).

#[cfg(target_endian = "big")]
compile_error!(
    "the packed layouts reinterpret little-endian bytes; big-endian targets are unsupported"
);

/// Defines a tier's `head_scores` from its vector width and operations
/// (`$to8` folds one accumulator to 8 lanes), so that both tiers run one
/// loop: attention scores `scores[h · n + j] = q_h · k_j` for `heads` heads
/// of `dh` (a multiple of `$lanes`; `heads` a multiple of 8) over `n` keys
/// `stride` elements apart in `k` (f32, or with `BF16` bfloat16 bits, read by
/// the module's `load_keys`). Per head one register of partial sums, then
/// eight heads' registers reduced together by `avx2::sum8` (a compiler-
/// vectorised dot product reduced each head's lanes one by one, ~30
/// instructions per score). A macro, not a generic function: generic over a
/// lanes trait, the intrinsics stopped inlining and it ran 8% slower.
///
/// The generated function's safety contract: the CPU has `$features`; `k`
/// holds `(n - 1) · stride + heads · dh` elements; `q` is `heads · dh` floats
/// and `scores` at least `heads · n`.
#[cfg(target_arch = "x86_64")]
macro_rules! head_scores_kernel {
    ($features:literal, $lanes:literal, $zero:path, $loadq:path, $fma:path, $to8:expr) => {
        /// See `head_scores_kernel!` in `kernels/mod.rs`.
        ///
        /// # Safety
        /// As `head_scores_kernel!` says.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn head_scores<const BF16: bool>(
            q: &[f32],
            k: *const u8,
            stride: usize,
            n: usize,
            heads: usize,
            scores: &mut [f32],
        ) {
            unsafe {
                let dh = q.len() / heads;
                for j in 0..n {
                    for g in (0..heads).step_by(8) {
                        let mut acc = [$zero(); 8];
                        for (h, a) in acc.iter_mut().enumerate() {
                            let base = (g + h) * dh;
                            for c in (0..dh).step_by($lanes) {
                                let qv = $loadq(q.as_ptr().add(base + c));
                                *a = $fma(qv, load_keys::<BF16>(k, j * stride + base + c), *a);
                            }
                        }
                        let mut s = [0f32; 8];
                        _mm256_storeu_ps(s.as_mut_ptr(), super::avx2::sum8(acc.map($to8)));
                        for (h, &v) in s.iter().enumerate() {
                            scores[(g + h) * n + j] = v;
                        }
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod isa;
mod portable;
pub mod vecmath;

use crate::marian::parallel::{par_chunks, par_chunks2, par_tasks};

pub use isa::Kernel;

/// Output columns per packed panel (two 16-lane vectors).
pub const NR: usize = 32;

/// Fetches row `w` of a panel (its two cache lines) into L2; the kernels
/// call it on the *next* panel while they multiply this one. The weights
/// stream from memory once per decoder step (the 128 MB projection and 84 MB
/// of layers stay in no cache) and the hardware prefetchers stop at each
/// 4 KiB page. The last panel's next one lies past the weights: prefetches
/// never fault.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_panel_row<T>(panel: *const T, w: usize) {
    use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
    let line = panel.cast::<f32>().wrapping_add(w * NR);
    // SAFETY: a prefetch reads nothing architecturally and cannot fault.
    unsafe {
        _mm_prefetch::<_MM_HINT_T1>(line.cast());
        _mm_prefetch::<_MM_HINT_T1>(line.wrapping_add(16).cast());
    }
}
/// Most activation rows a kernel call covers.
pub const MR: usize = 12;

/// Activation rows a task converts to bf16 or int8 (a pass per product, so
/// a beam-4 batch of 32 is 8 tasks).
const PACK_ROWS: usize = 16;

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

/// One cache line of 32-bit words.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

/// 32-bit words starting on a cache line, so that the kernels' aligned
/// panel loads are valid and panel rows never straddle two lines.
#[derive(Clone)]
struct Words {
    lines: Vec<Line>,
    len: usize,
}

impl Words {
    fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![Line([0; 16]); len.div_ceil(16)],
            len,
        }
    }

    fn as_slice(&self) -> &[u32] {
        // SAFETY: `Line` is 16 u32 with no padding; `len` ≤ 16 × lines.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        // SAFETY: as above, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
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

    /// `out = x Wᵀ + b` for the `m` rows of `x` ((m, k) row-major); `out` is
    /// (m, n) row-major.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        #[cfg(test)]
        probe::record();
        self.forward_on(isa::current().kernel(self.precision), x, m, out);
    }

    /// [`Self::forward`] on a given kernel, which the CPU must support.
    pub fn forward_on(&self, kernel: Kernel, x: &[f32], m: usize, out: &mut [f32]) {
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
                self.run(kernel, words, self.k, m, &[], out);
            }
            Precision::Bf16 => {
                let kw = self.kp / 2;
                let mut a = vec![0u32; m * kw];
                par_chunks(&mut a, kw, PACK_ROWS, |r0, a| {
                    for (dst, src) in a.chunks_mut(kw).zip(x[r0 * self.k..].chunks(self.k)) {
                        for (kk, &v) in src.iter().enumerate() {
                            dst[kk / 2] |= (bf16_bits(v) as u32) << (16 * (kk % 2));
                        }
                    }
                });
                self.run(kernel, &a, kw, m, &[], out);
            }
            Precision::Int8 => {
                let kw = self.kp / 4;
                // VNNI and the portable code take q + 128 (unsigned) and
                // correct with column sums; the AVX2 kernel without VNNI
                // takes |q| then q (signed), 2 kw words per row, so that it
                // need not derive them per panel.
                let split = kernel == Kernel::Avx2Int8;
                let lda = if split { 2 * kw } else { kw };
                let mut a = vec![0u32; m * lda];
                let mut sa = vec![0f32; m];
                par_chunks2(&mut a, lda, &mut sa, 1, PACK_ROWS, |r0, a, sa| {
                    let rows = a
                        .chunks_mut(lda)
                        .zip(sa)
                        .zip(x[r0 * self.k..].chunks(self.k));
                    for ((dst, s), src) in rows {
                        // SAFETY: u32 words viewed as their bytes; the
                        // layouts are little-endian (see compile_error above).
                        let bytes = unsafe {
                            std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast(), dst.len() * 4)
                        };
                        *s = vecmath::quantize_i8(src, bytes, split);
                    }
                });
                self.run(kernel, &a, lda, m, &sa, out);
            }
        }
    }

    /// Splits (rows, panels) into tasks and runs the kernels. `a` holds the
    /// activations as `lda` words per row; `row_scale` is int8's.
    fn run(
        &self,
        kernel: Kernel,
        a: &[u32],
        lda: usize,
        m: usize,
        row_scale: &[f32],
        out: &mut [f32],
    ) {
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
        par_tasks(row_chunks * panel_chunks, |task| {
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
                    job.run(self.precision, kernel);
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
// SAFETY: used only to hand disjoint output blocks to parallel tasks.
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
    fn run(&self, p: Precision, kernel: Kernel) {
        // Real asserts: a wrong extent here would read out of bounds in
        // the unchecked kernels; their cost is nothing beside the block's
        // rows × 32 × kw multiply-adds.
        assert!(self.rows >= 1 && self.rows <= MR && self.cols >= 1 && self.cols <= NR);
        // The AVX2 int8 kernel reads |q| and q: two kw-word halves per row.
        let row_words = if kernel == Kernel::Avx2Int8 {
            2 * self.kw
        } else {
            self.kw
        };
        assert!(row_words <= self.lda && self.a.len() >= (self.rows - 1) * self.lda + row_words);
        assert_eq!(self.panel.len(), self.kw * NR);
        assert_eq!(self.panel.as_ptr().align_offset(64), 0, "unaligned panel");
        assert_eq!(self.bias.len(), self.cols);
        if p == Precision::Int8 {
            assert!(self.row_scale.len() == self.rows && self.col_scale.len() == self.cols);
            assert_eq!(self.colsum.len(), self.cols);
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `Kernel` values come from `Isa::kernel` on a supported
            // tier (or `Kernel::available`), so the CPU has the features;
            // the slices cover what the kernels read (asserted above) and
            // `c` a rows × cols block of the output.
            unsafe {
                match kernel {
                    Kernel::Avx512F32 => return avx512::dispatch_f32(self),
                    Kernel::Avx512Bf16 => return avx512::dispatch_bf16(self),
                    Kernel::Avx512Vnni => return avx512::dispatch_i8(self),
                    Kernel::Avx2F32 => return avx2::f32(self),
                    Kernel::Avx2Bf16 => return avx2::bf16(self),
                    Kernel::AvxVnni => return avx2::vnni(self),
                    Kernel::Avx2Int8 => return avx2::int8(self),
                    Kernel::Portable => {}
                }
            }
        }
        let _ = kernel;
        self.portable(p);
    }
}

/// Records, for each matrix product, the name of the thread it was called
/// on and the size of the rayon pool it ran in, so tests can check which
/// pool a worker's kernels use. Tests run in parallel in one process: a
/// test keeps only the records of its own (named) threads.
#[cfg(test)]
pub(crate) mod probe {
    use std::sync::Mutex;

    static CALLS: Mutex<Vec<(Option<String>, usize)>> = Mutex::new(Vec::new());

    pub(super) fn record() {
        let name = std::thread::current().name().map(str::to_owned);
        CALLS
            .lock()
            .unwrap()
            .push((name, rayon::current_num_threads()));
    }

    /// `(thread name, pool size)` of every product since the last call.
    pub(crate) fn take() -> Vec<(Option<String>, usize)> {
        std::mem::take(&mut CALLS.lock().unwrap())
    }
}

#[cfg(test)]
mod tests;
