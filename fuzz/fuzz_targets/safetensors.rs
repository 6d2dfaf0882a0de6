//! Weights files read as `model.safetensors` by the model loader
//! (src/marian/checkpoint/safetensors.rs and the tensor checks of
//! checkpoint/mod.rs). The first byte picks the tiny configuration (bit 1)
//! and what the rest is (bit 0): 0, the whole file; 1, only the JSON header,
//! which the target frames with its length and follows with a fixed data
//! block, so mutations of the header do not have to keep the length prefix
//! in step.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

/// Data after a header-only input: 1024 small f32 values.
fn data_block() -> Vec<u8> {
    (0..1024u32)
        .flat_map(|i| ((i % 17) as f32 * 0.01 - 0.08).to_le_bytes())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let which = usize::from(mode >> 1 & 1);
    if mode & 1 == 0 {
        common::load_and_run(which, "model.safetensors", rest);
    } else {
        let mut file = (rest.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(rest);
        file.extend(data_block());
        common::load_and_run(which, "model.safetensors", &file);
    }
});
