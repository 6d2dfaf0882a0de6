//! `tarjama translate` with a broken `config.json` or `generation_config.json`:
//! a clear error naming the file and the field, exit 1, raised before the
//! weights are read and before any output is written.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{run, translate_into};

const MODEL: &str = "tests/fixtures/marian";

/// The fixture model folder in `dir` with `edit` set to `value` in its
/// config.json. The weights file is garbage: the config error must come first.
fn broken_model(dir: &Path, edit: &str, value: Value) -> PathBuf {
    broken_file(dir, "config.json", edit, value)
}

/// The fixture model folder in `dir` with `edit` set to `value` in `file`.
fn broken_file(dir: &Path, file: &str, edit: &str, value: Value) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(MODEL);
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    for f in [
        "source.spm",
        "target.spm",
        "vocab.json",
        "config.json",
        "generation_config.json",
    ] {
        std::fs::copy(root.join(f), model.join(f)).unwrap();
    }
    std::fs::write(model.join("model.safetensors"), b"not safetensors").unwrap();
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
    v[edit] = value;
    std::fs::write(model.join(file), v.to_string()).unwrap();
    model
}

#[test]
fn a_broken_config_is_named_and_stops_before_any_output() {
    for (field, value, want) in [
        (
            "decoder_layers",
            Value::from(0),
            "decoder_layers must be at least 1, got 0",
        ),
        // Once a panic in the engine setup.
        (
            "max_position_embeddings",
            Value::from(1),
            "max_position_embeddings must be at least 2, got 1",
        ),
        (
            "encoder_attention_heads",
            Value::from(3),
            "d_model 32 is not divisible by encoder_attention_heads 3",
        ),
        (
            "eos_token_id",
            Value::from(1035),
            "eos_token_id 1035 is outside the vocabulary (size 1035)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model = broken_model(dir.path(), field, value);
        let out = dir.path().join("out");
        let o = translate_into("corpus/", &model, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{field}: {err}");
        let named = format!("{}: {want}", model.join("config.json").display());
        assert!(err.contains(&named), "{field}: want {named:?} in\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{field}: output written");
    }
}

#[test]
fn a_broken_config_writes_nothing_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = broken_model(dir.path(), "d_model", Value::from(0));
    let o = run(
        &[
            "translate",
            "-",
            "--model",
            model.to_str().unwrap(),
            "--out",
            "-",
            "--format",
            "jsonl",
        ],
        Some("قال الوزير إن الوضع هادئ.\n".as_bytes()),
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("config.json: d_model must be at least 1, got 0"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn a_generation_config_id_outside_the_vocabulary_is_named_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = broken_file(
        dir.path(),
        "generation_config.json",
        "forced_eos_token_id",
        Value::from(5000),
    );
    let out = dir.path().join("out");
    let o = translate_into("corpus/", &model, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let named = format!(
        "{}: forced_eos_token_id 5000 is outside the vocabulary (size 1035)",
        model.join("generation_config.json").display()
    );
    assert!(err.contains(&named), "want {named:?} in\n{err}");
    assert!(!out.exists());
}
