//! Weights files read as `pytorch_model.bin` by the model loader (candle's
//! pickle reader behind src/marian/checkpoint/mod.rs). The first byte picks
//! the tiny configuration (bit 1) and what the rest is (bit 0): 0, the whole
//! file (a zip archive); 1, only the pickle (`data.pkl`), which the target
//! zips (stored, like torch.save) with 64 storages `data/0`..`data/63` of
//! 64 small f32 values each, so mutations reach the unpickler instead of
//! breaking the archive.
#![no_main]

mod common;

use std::io::{Cursor, Write};

use libfuzzer_sys::fuzz_target;
use zip::write::SimpleFileOptions;

fn archive(pickle: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    zip.write_all(pickle).unwrap();
    let storage: Vec<u8> = (0..64u32)
        .flat_map(|i| ((i % 13) as f32 * 0.01 - 0.06).to_le_bytes())
        .collect();
    for key in 0..64 {
        zip.start_file(format!("archive/data/{key}"), opts).unwrap();
        zip.write_all(&storage).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// candle's unpickler panics on some malformed pickles, and the loader
/// catches those panics as errors (`contain_pickle_panics` in
/// src/marian/checkpoint/mod.rs). libfuzzer-sys's panic hook would abort
/// before the unwind reaches it, so panics raised inside candle-core unwind
/// quietly instead; one the loader does not catch still aborts (libfuzzer-sys
/// catches it at the top). `TARJAMA_FUZZ_VERBOSE=1` prints them.
fn let_candle_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        let verbose = std::env::var_os("TARJAMA_FUZZ_VERBOSE").is_some();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().contains("candle-core"))
            {
                if verbose {
                    eprintln!("candle panicked: {info}");
                }
                return;
            }
            fuzzer_hook(info)
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_candle_panics_unwind();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let which = usize::from(mode >> 1 & 1);
    if mode & 1 == 0 {
        common::load_and_run(which, "pytorch_model.bin", rest);
    } else {
        common::load_and_run(which, "pytorch_model.bin", &archive(rest));
    }
});
