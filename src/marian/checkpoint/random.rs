//! Random checkpoints: every tensor of the table ([`super::layout`]) made on
//! demand, so that `MarianModel::random_with` builds its networks through the
//! checkpoint path. Values follow transformers' initialisation in spirit
//! (weights ~ U(-a, a) with the std of `init_std` = 0.02, biases 0, layer
//! norms 1/0, sinusoidal positions, no logits bias); only the shapes matter
//! for speed.

use super::layout::{Init, Spec};
use super::{HostTensor, default};
use crate::rng::SplitMix64;

/// Tensor `spec` of the random checkpoint `seed`. Each tensor has its own
/// stream derived from `seed` and its place in the table, so the values do
/// not depend on the order tensors are read in.
pub(super) fn tensor(spec: &Spec, seed: u64) -> HostTensor {
    if spec.init != Init::Random {
        return default(spec);
    }
    // U(-a, a) has std a / sqrt(3).
    let a = 0.02f32 * 3f32.sqrt();
    let mut rng = SplitMix64::new(seed ^ (spec.index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let n: usize = spec.shape.iter().product();
    HostTensor {
        data: (0..n).map(|_| a * rng.next_signed_unit()).collect(),
        shape: spec.shape.clone(),
    }
}
