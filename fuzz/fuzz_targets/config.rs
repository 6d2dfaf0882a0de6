//! `config.json` and `generation_config.json` parsing and validation on
//! arbitrary text: never a panic, and a config that is accepted holds what
//! validation promises (sizes at least 1, heads dividing an even d_model,
//! special ids inside the vocabulary) and the ids the file wrote, unchanged.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tarjama::marian::{GenerationDefaults, MarianConfig};

/// The test fixture's config, for checking generation configs against.
fn fixture() -> &'static MarianConfig {
    static CFG: OnceLock<MarianConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/marian/config.json"
        );
        MarianConfig::from_file(Path::new(path)).expect("the fixture config parses")
    })
}

/// The integers a token-id field holds in the JSON (a number or a list).
fn json_ids(v: &Value, field: &str) -> Option<Vec<Option<u64>>> {
    match v.get(field)? {
        Value::Null => None,
        Value::Array(a) => Some(a.iter().map(Value::as_u64).collect()),
        x => Some(vec![x.as_u64()]),
    }
}

/// An accepted id field holds exactly the ids written in the file.
fn same_ids(v: &Value, field: &str, parsed: Option<&[u32]>) {
    let Some(written) = json_ids(v, field) else {
        return;
    };
    let parsed: Vec<Option<u64>> = parsed
        .unwrap_or_else(|| panic!("`{field}` written as {:?} but not parsed", v[field]))
        .iter()
        .map(|&id| Some(u64::from(id)))
        .collect();
    assert_eq!(parsed, written, "`{field}` accepted as different ids");
}

fn check_config(v: &Value, cfg: &MarianConfig) {
    for (field, value, min) in [
        ("vocab_size", cfg.vocab_size, 1),
        ("decoder_vocab_size", cfg.decoder_vocab_size, 1),
        ("d_model", cfg.d_model, 2),
        ("encoder_layers", cfg.encoder_layers, 1),
        ("decoder_layers", cfg.decoder_layers, 1),
        ("encoder_attention_heads", cfg.encoder_attention_heads, 1),
        ("decoder_attention_heads", cfg.decoder_attention_heads, 1),
        ("encoder_ffn_dim", cfg.encoder_ffn_dim, 1),
        ("decoder_ffn_dim", cfg.decoder_ffn_dim, 1),
        ("max_position_embeddings", cfg.max_position_embeddings, 2),
    ] {
        assert!(value >= min, "{field} = {value} accepted");
    }
    assert_eq!(cfg.d_model % 2, 0);
    assert_eq!(cfg.d_model % cfg.encoder_attention_heads, 0);
    assert_eq!(cfg.d_model % cfg.decoder_attention_heads, 0);
    let tgt = cfg.target_vocab_size();
    assert!((cfg.pad_token_id as usize) < cfg.vocab_size.min(tgt));
    assert!((cfg.decoder_start_token_id as usize) < tgt);
    assert!(cfg.eos_token_id.iter().all(|&id| (id as usize) < tgt));
    same_ids(v, "pad_token_id", Some(&[cfg.pad_token_id]));
    same_ids(
        v,
        "decoder_start_token_id",
        Some(&[cfg.decoder_start_token_id]),
    );
    same_ids(v, "eos_token_id", Some(&cfg.eos_token_id));
    same_ids(v, "forced_eos_token_id", cfg.forced_eos_token_id.as_deref());
    check_generation(v, &cfg.generation);
}

fn check_generation(v: &Value, g: &GenerationDefaults) {
    same_ids(v, "eos_token_id", g.eos_token_id.as_deref());
    same_ids(v, "forced_eos_token_id", g.forced_eos_token_id.as_deref());
    same_ids(
        v,
        "pad_token_id",
        g.pad_token_id.as_ref().map(std::slice::from_ref),
    );
    same_ids(
        v,
        "decoder_start_token_id",
        g.decoder_start_token_id.as_ref().map(std::slice::from_ref),
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As a config.json.
    if let Ok(cfg) = MarianConfig::from_json_str(text) {
        let v: Value = serde_json::from_str(text).expect("accepted text is JSON");
        check_config(&v, &cfg);
    }
    // As a generation_config.json, checked against the fixture's vocabulary.
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Ok(g) = GenerationDefaults::from_json_value(&v) {
        check_generation(&v, &g);
        let base = fixture();
        let path = Path::new("generation_config.json");
        if base.check_generation(&g, path).is_ok() {
            let tgt = base.target_vocab_size();
            for id in g.eos_token_id.iter().flatten() {
                assert!((*id as usize) < tgt);
            }
            if let Some(words) = &g.bad_words_ids {
                assert!(words.iter().all(|w| !w.is_empty()));
                assert!(words.iter().flatten().all(|&id| (id as usize) < tgt));
            }
        }
        let merged = base.generation.overridden_by(&g);
        assert_eq!(merged.num_beams, g.num_beams.or(base.generation.num_beams));
    }
});
