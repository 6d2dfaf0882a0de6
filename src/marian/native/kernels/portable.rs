//! The reference arithmetic of every precision in plain code: the kernels
//! of CPUs without AVX2, and what the vector kernels are tested against.

use super::{Block, NR, Precision, bf16_to_f32};

impl Block<'_> {
    /// The reference arithmetic: the same rounded inputs, f32 (bf16) or i32
    /// (int8) sums.
    pub(super) fn portable(&self, p: Precision) {
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
