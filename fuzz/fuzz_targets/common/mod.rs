//! What the two checkpoint targets share: tiny configurations, a scratch
//! folder for the weights file (the loader reads files, not bytes), and the
//! load-then-run check.

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{DType, Device};
use tarjama::marian::{MarianConfig, MarianModel};

/// Two tiny architectures: tied embeddings (the OPUS-MT default), and
/// separate decoder embeddings plus an `lm_head`, so both tensor tables are
/// exercised. Seeds (fuzz/gen_seeds.py) are written for these.
pub const CONFIGS: [&str; 2] = [
    r#"{"model_type": "marian", "vocab_size": 8, "decoder_vocab_size": 8, "d_model": 4,
        "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 8, "decoder_ffn_dim": 8,
        "max_position_embeddings": 8, "activation_function": "swish", "pad_token_id": 7,
        "decoder_start_token_id": 7, "eos_token_id": 0, "forced_eos_token_id": 0,
        "scale_embedding": true, "share_encoder_decoder_embeddings": true,
        "tie_word_embeddings": true}"#,
    r#"{"model_type": "marian", "vocab_size": 8, "decoder_vocab_size": 6, "d_model": 4,
        "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 8, "decoder_ffn_dim": 8,
        "max_position_embeddings": 8, "activation_function": "swish", "pad_token_id": 5,
        "decoder_start_token_id": 5, "eos_token_id": 0, "forced_eos_token_id": 0,
        "scale_embedding": true, "share_encoder_decoder_embeddings": false,
        "tie_word_embeddings": false}"#,
];

/// A scratch folder for this process, and one-thread rayon (the loader
/// checks tensors in parallel; fuzzing is one process on one core).
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        tempfile::tempdir().expect("a scratch folder")
    })
}

/// Writes `bytes` as `file_name` in the scratch folder.
pub fn write(file_name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().path().join(file_name);
    std::fs::write(&path, bytes).expect("writing the scratch weights file");
    path
}

/// Loads `bytes` as the weights of configuration `which` from a file named
/// `file_name` (the extension picks the reader); a model that loads must
/// run. Errors are fine, panics are not.
pub fn load_and_run(which: usize, file_name: &str, bytes: &[u8]) {
    let cfg = MarianConfig::from_json_str(CONFIGS[which % CONFIGS.len()]).expect("tiny config");
    let path = write(file_name, bytes);
    let loaded = MarianModel::load(cfg, &path, DType::F32, &Device::Cpu);
    // For triage: why an input was refused (`TARJAMA_FUZZ_VERBOSE=1 <target> <file>`).
    if std::env::var_os("TARJAMA_FUZZ_VERBOSE").is_some() {
        eprintln!("load: {:?}", loaded.as_ref().map(|_| "ok"));
    }
    let Ok(model) = loaded else {
        return;
    };
    let start = model.config().decoder_start_token_id;
    let enc = model
        .encode(&[vec![1, 2, 0]])
        .expect("a loaded model encodes");
    model
        .forward_logits(&enc, &[vec![start, 1]])
        .expect("a loaded model decodes");
}
