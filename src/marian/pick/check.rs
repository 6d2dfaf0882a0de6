//! The cases the CUDA twin of `pick_row` is checked on, and the check
//! itself, for the tests (through an emulation of the kernel) and for
//! `tarjama info --self-test` (on the GPU). Generated with a seed: logits on
//! a 1/64 grid (so that two distinct values stay distinct through a
//! log-softmax in any summation order, and only intended ties tie), exact
//! duplicates of the best values, -inf and NaN entries, all -inf rows,
//! penalties, repeated bans, forced rows, and bases of 0, -3.25 and the -1e9
//! of beams that must not be expanded yet (which folds every value of a row
//! into one f32, so the ranking is by token alone).

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::rng::SplitMix64;

use super::{DEVICE_MAX_K, PickOp, PickSpec, RowEdits, pick_rows, unflatten};

pub(super) struct Case {
    pub logits: Vec<f32>,
    pub vocab: usize,
    pub spec: PickSpec,
}

fn case(
    rng: &mut SplitMix64,
    rows: usize,
    vocab: usize,
    k: usize,
    log_probs: bool,
    nbases: usize,
) -> Case {
    let mut logits = Vec::with_capacity(rows * vocab);
    for r in 0..rows {
        let mut row: Vec<f32> = (0..vocab)
            // [-6, 6] on a 1/64 grid.
            .map(|_| (rng.below(769) as f32 - 384.0) / 64.0)
            .collect();
        match r % 7 {
            // Ties at the top.
            1 => {
                let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for _ in 0..3 {
                    let i = rng.below(vocab);
                    row[i] = best;
                }
            }
            2 => row
                .iter_mut()
                .step_by(3)
                .for_each(|v| *v = f32::NEG_INFINITY),
            3 => {
                let i = rng.below(vocab);
                row[i] = f32::NAN;
            }
            4 if vocab > 1 => row.fill(f32::NEG_INFINITY),
            5 => row.fill(1.5),
            _ => {}
        }
        logits.extend(row);
    }
    let penalties = [1.0, 1.0, 1.3, 0.75];
    let repetition_penalty = penalties[rng.below(penalties.len())];
    let base_choices = [0.0, -3.25, -1.0e9];
    let rows = (0..rows)
        .map(|r| {
            let mut penalised: Vec<u32> = (0..rng.below(12))
                .map(|_| rng.below(vocab) as u32)
                .collect();
            penalised.sort_unstable();
            penalised.dedup();
            let row = &logits[r * vocab..(r + 1) * vocab];
            let argmax = (0..vocab).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            let mut banned: Vec<u32> = (0..rng.below(6)).map(|_| rng.below(vocab) as u32).collect();
            if rng.chance(40) {
                banned.push(argmax as u32);
                banned.push(argmax as u32);
            }
            RowEdits {
                penalised,
                banned,
                forced: rng.chance(15),
                bases: (0..nbases)
                    .map(|_| base_choices[rng.below(base_choices.len())])
                    .collect(),
            }
        })
        .collect();
    let forced_tokens = (0..1 + rng.below(2))
        .map(|_| rng.below(vocab) as u32)
        .collect();
    Case {
        logits,
        vocab,
        spec: PickSpec {
            k,
            log_probs,
            renormalize: rng.chance(25),
            repetition_penalty,
            forced_tokens,
            rows,
        },
    }
}

/// Shapes covering greedy (k 1, one base), beams (k 8, first step with 4
/// bases), the kernel's largest k, a vocabulary smaller than a block and one
/// not a multiple of it.
pub(super) fn cases() -> Vec<Case> {
    let mut rng = SplitMix64::new(20261130);
    let mut out = Vec::new();
    for &(rows, vocab, k, log_probs, nbases) in &[
        (14, 1000, 1, false, 1),
        (14, 1000, 8, true, 1),
        (7, 1000, 8, true, 4),
        (7, 5003, 1, false, 1),
        (7, 5003, 12, true, 2),
        (7, 300, DEVICE_MAX_K, true, 1),
        (7, 100, 64, false, 1),
        (3, 1, 1, true, 1),
        (3, 9, 9, false, 3),
    ] {
        out.push(case(&mut rng, rows, vocab, k, log_probs, nbases));
    }
    out
}

pub(super) fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Equal up to the rounding of a different exp and summation order.
pub(super) fn close(a: f32, b: f32) -> bool {
    same_bits(a, b) || (a - b).abs() <= 1e-4 + 1e-6 * a.abs()
}

/// The result of [`check_device`].
#[derive(Debug, Clone, Serialize)]
pub struct KernelCheck {
    /// "cpu" or "cuda".
    pub device: String,
    pub cases: usize,
    pub picks: usize,
    /// Picks whose token differs, or whose score or log-prob is not
    /// [`close`]: the first few, described.
    pub mismatches: Vec<String>,
    pub mismatch_count: usize,
    /// Largest |score - host score| over finite pairs.
    pub max_score_diff: f32,
}

impl KernelCheck {
    pub fn passed(&self) -> bool {
        self.mismatch_count == 0
    }
}

/// Runs the token-selection op on `device` (on CUDA, `pick.cu`) over the
/// generated cases and compares every pick with the host implementation's.
pub fn check_device(device: &Device) -> candle_core::Result<KernelCheck> {
    let cases = cases();
    let mut check = KernelCheck {
        device: if device.is_cpu() { "cpu" } else { "cuda" }.into(),
        cases: cases.len(),
        picks: 0,
        mismatches: Vec::new(),
        mismatch_count: 0,
        max_score_diff: 0.0,
    };
    for (n, c) in cases.iter().enumerate() {
        let rows = c.spec.rows.len();
        let t = Tensor::from_slice(&c.logits, (rows, c.vocab), device)?;
        let got = unflatten(
            &t.apply_op1_no_bwd(&PickOp { spec: &c.spec })?
                .flatten_all()?
                .to_vec1()?,
        );
        let want = pick_rows(&mut c.logits.clone(), c.vocab, &c.spec);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            check.picks += 1;
            if g.score.is_finite() && w.score.is_finite() {
                check.max_score_diff = check.max_score_diff.max((g.score - w.score).abs());
            }
            if !(g.token == w.token && close(g.score, w.score) && close(g.logprob, w.logprob)) {
                check.mismatch_count += 1;
                if check.mismatches.len() < 5 {
                    check
                        .mismatches
                        .push(format!("case {n}, pick {i}: device {g:?}, host {w:?}"));
                }
            }
        }
        if got.len() != want.len() {
            check.mismatch_count += 1;
            check.mismatches.push(format!(
                "case {n}: {} picks from the device, {} from the host",
                got.len(),
                want.len()
            ));
        }
    }
    Ok(check)
}
