//! OPUS-MT `config.json` / `generation_config.json` parsing with transformers'
//! defaults for fields older checkpoints leave out.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::MarianError;

/// Feed-forward activation, named as transformers' `ACT2FN` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `swish` / `silu`: `x * sigmoid(x)` (the OPUS-MT default).
    Silu,
    Relu,
    /// `gelu`: the exact erf form.
    GeluErf,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Tanh,
    Sigmoid,
}

impl Activation {
    fn parse(name: &str) -> Result<Self, MarianError> {
        Ok(match name {
            "swish" | "silu" => Self::Silu,
            "relu" => Self::Relu,
            "gelu" => Self::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "tanh" => Self::Tanh,
            "sigmoid" => Self::Sigmoid,
            other => {
                return Err(MarianError::Config(format!(
                    "unsupported activation_function `{other}`"
                )));
            }
        })
    }
}

/// `early_stopping` as transformers reads it: `true`, `false` or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    True,
    #[default]
    False,
    Never,
}

/// Generation defaults a checkpoint ships (config.json, then overridden by
/// generation_config.json). `None` means "not set": transformers' own default
/// applies at generation time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationDefaults {
    pub num_beams: Option<usize>,
    pub max_length: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub min_length: Option<usize>,
    pub min_new_tokens: Option<usize>,
    pub length_penalty: Option<f64>,
    pub early_stopping: Option<EarlyStopping>,
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f64>,
    pub renormalize_logits: Option<bool>,
    pub eos_token_id: Option<Vec<u32>>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    pub pad_token_id: Option<u32>,
    pub decoder_start_token_id: Option<u32>,
}

/// The architecture half of a Marian `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct MarianConfig {
    pub vocab_size: usize,
    pub decoder_vocab_size: usize,
    pub max_position_embeddings: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub activation: Activation,
    pub scale_embedding: bool,
    pub share_encoder_decoder_embeddings: bool,
    pub tie_word_embeddings: bool,
    pub pad_token_id: u32,
    pub decoder_start_token_id: u32,
    pub eos_token_id: Vec<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    /// Generation fields found in config.json (older checkpoints keep them there).
    pub generation: GenerationDefaults,
}

/// Serde view of the file: every field optional so that defaults come from
/// one place (transformers' `MarianConfig` signature).
#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    decoder_vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    d_model: Option<usize>,
    encoder_layers: Option<usize>,
    decoder_layers: Option<usize>,
    encoder_attention_heads: Option<usize>,
    decoder_attention_heads: Option<usize>,
    encoder_ffn_dim: Option<usize>,
    decoder_ffn_dim: Option<usize>,
    activation_function: Option<String>,
    scale_embedding: Option<bool>,
    share_encoder_decoder_embeddings: Option<bool>,
    tie_word_embeddings: Option<bool>,
    static_position_embeddings: Option<bool>,
    normalize_before: Option<bool>,
    normalize_embedding: Option<bool>,
    add_final_layer_norm: Option<bool>,
}

/// A token id: a JSON integer that fits in a u32 (a larger one is an error,
/// never truncated to some other id).
fn token_id(x: &Value) -> Option<u32> {
    x.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn ids(v: &Value, field: &str) -> Result<Option<Vec<u32>>, MarianError> {
    let bad = || {
        MarianError::Config(format!(
            "`{field}` must be a token id or a list of ids (integers from 0 to {})",
            u32::MAX
        ))
    };
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x @ Value::Number(_)) => Ok(Some(vec![token_id(x).ok_or_else(bad)?])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| token_id(x).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad()),
    }
}

fn one_id(v: &Value, field: &str) -> Result<Option<u32>, MarianError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => token_id(x).map(Some).ok_or_else(|| {
            MarianError::Config(format!(
                "`{field}` must be a token id (an integer from 0 to {})",
                u32::MAX
            ))
        }),
    }
}

fn opt<T: serde::de::DeserializeOwned>(v: &Value, field: &str) -> Result<Option<T>, MarianError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => serde_json::from_value(x.clone())
            .map(Some)
            .map_err(|e| MarianError::Config(format!("`{field}`: {e}"))),
    }
}

/// A config error prefixed with the file it is about.
fn in_file(path: &Path, e: MarianError) -> MarianError {
    match e {
        MarianError::Config(m) => MarianError::Config(format!("{}: {m}", path.display())),
        other => other,
    }
}

impl GenerationDefaults {
    /// Reads the generation fields of a config.json or generation_config.json.
    pub fn from_json_value(v: &Value) -> Result<Self, MarianError> {
        let early_stopping = match v.get("early_stopping") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(true)) => Some(EarlyStopping::True),
            Some(Value::Bool(false)) => Some(EarlyStopping::False),
            Some(Value::String(s)) if s == "never" => Some(EarlyStopping::Never),
            Some(other) => {
                return Err(MarianError::Config(format!(
                    "`early_stopping` must be true, false or \"never\", got {other}"
                )));
            }
        };
        Ok(Self {
            num_beams: opt(v, "num_beams")?,
            max_length: opt(v, "max_length")?,
            max_new_tokens: opt(v, "max_new_tokens")?,
            min_length: opt(v, "min_length")?,
            min_new_tokens: opt(v, "min_new_tokens")?,
            length_penalty: opt(v, "length_penalty")?,
            early_stopping,
            bad_words_ids: opt(v, "bad_words_ids")?,
            no_repeat_ngram_size: opt(v, "no_repeat_ngram_size")?,
            repetition_penalty: opt(v, "repetition_penalty")?,
            renormalize_logits: opt(v, "renormalize_logits")?,
            eos_token_id: ids(v, "eos_token_id")?,
            forced_eos_token_id: ids(v, "forced_eos_token_id")?,
            pad_token_id: one_id(v, "pad_token_id")?,
            decoder_start_token_id: one_id(v, "decoder_start_token_id")?,
        })
    }

    /// Fields set in `other` replace ours (generation_config.json over config.json).
    pub fn overridden_by(&self, other: &Self) -> Self {
        macro_rules! pick {
            ($($f:ident),*) => { Self { $($f: other.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            num_beams,
            max_length,
            max_new_tokens,
            min_length,
            min_new_tokens,
            length_penalty,
            early_stopping,
            bad_words_ids,
            no_repeat_ngram_size,
            repetition_penalty,
            renormalize_logits,
            eos_token_id,
            forced_eos_token_id,
            pad_token_id,
            decoder_start_token_id
        )
    }

    /// Reads a `generation_config.json`.
    pub fn from_file(path: &Path) -> Result<Self, MarianError> {
        let text = std::fs::read_to_string(path).map_err(|e| MarianError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| MarianError::Config(format!("{}: {e}", path.display())))?;
        Self::from_json_value(&v)
            .map_err(|e| MarianError::Config(format!("{}: {e}", path.display())))
    }
}

impl MarianConfig {
    /// Parses the text of a `config.json`.
    pub fn from_json_str(text: &str) -> Result<Self, MarianError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| MarianError::Config(format!("invalid JSON: {e}")))?;
        let raw: RawConfig =
            serde_json::from_value(v.clone()).map_err(|e| MarianError::Config(e.to_string()))?;
        match raw.model_type.as_deref() {
            Some("marian") => {}
            Some(other) => {
                return Err(MarianError::Config(format!(
                    "model_type is `{other}`, not `marian`: this is not a Marian (OPUS-MT) model"
                )));
            }
            None => {
                return Err(MarianError::Config(
                    "no `model_type` field: not a transformers Marian config".into(),
                ));
            }
        }
        // Options that select architectures transformers' Marian port does not
        // implement either; refuse rather than silently compute something else.
        if raw.static_position_embeddings == Some(false) {
            return Err(MarianError::Config(
                "static_position_embeddings=false (learned positions) is not supported".into(),
            ));
        }
        if raw.normalize_before == Some(true)
            || raw.normalize_embedding == Some(true)
            || raw.add_final_layer_norm == Some(true)
        {
            return Err(MarianError::Config(
                "pre-norm / embedding layer norm variants are not Marian and are not supported"
                    .into(),
            ));
        }
        // Defaults: transformers' configuration_marian.py.
        let vocab_size = raw.vocab_size.unwrap_or(58101);
        let pad_token_id = one_id(&v, "pad_token_id")?.unwrap_or(58100);
        let eos_token_id = if v.get("eos_token_id").is_some() {
            ids(&v, "eos_token_id")?.unwrap_or_default()
        } else {
            vec![0]
        };
        let forced_eos_token_id = if v.get("forced_eos_token_id").is_some() {
            ids(&v, "forced_eos_token_id")?
        } else {
            Some(vec![0])
        };
        let cfg = Self {
            vocab_size,
            decoder_vocab_size: raw.decoder_vocab_size.unwrap_or(vocab_size),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(1024),
            d_model: raw.d_model.unwrap_or(1024),
            encoder_layers: raw.encoder_layers.unwrap_or(12),
            decoder_layers: raw.decoder_layers.unwrap_or(12),
            encoder_attention_heads: raw.encoder_attention_heads.unwrap_or(16),
            decoder_attention_heads: raw.decoder_attention_heads.unwrap_or(16),
            encoder_ffn_dim: raw.encoder_ffn_dim.unwrap_or(4096),
            decoder_ffn_dim: raw.decoder_ffn_dim.unwrap_or(4096),
            activation: Activation::parse(raw.activation_function.as_deref().unwrap_or("gelu"))?,
            scale_embedding: raw.scale_embedding.unwrap_or(false),
            share_encoder_decoder_embeddings: raw.share_encoder_decoder_embeddings.unwrap_or(true),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
            pad_token_id,
            decoder_start_token_id: one_id(&v, "decoder_start_token_id")?.unwrap_or(58100),
            eos_token_id,
            forced_eos_token_id,
            generation: GenerationDefaults::from_json_value(&v)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a `config.json`; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, MarianError> {
        let text = std::fs::read_to_string(path).map_err(|e| MarianError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        Self::from_json_str(&text).map_err(|e| in_file(path, e))
    }

    /// Output vocabulary: transformers sizes `lm_head` by `vocab_size` when the
    /// embeddings are shared, by `decoder_vocab_size` otherwise.
    pub fn target_vocab_size(&self) -> usize {
        if self.share_encoder_decoder_embeddings {
            self.vocab_size
        } else {
            self.decoder_vocab_size
        }
    }

    /// Rejects values no checkpoint can have, so that a broken `config.json`
    /// fails when it is read, before any weights load: sizes of zero, too few
    /// positions for a source token and its EOS, heads that do not divide
    /// `d_model`, special token ids outside the vocabulary. Messages name the
    /// field; [`MarianConfig::from_file`] prefixes the file.
    fn validate(&self) -> Result<(), MarianError> {
        let err = |m: String| Err(MarianError::Config(m));
        for (field, value, min) in [
            ("vocab_size", self.vocab_size, 1),
            ("decoder_vocab_size", self.decoder_vocab_size, 1),
            ("d_model", self.d_model, 1),
            ("encoder_layers", self.encoder_layers, 1),
            ("decoder_layers", self.decoder_layers, 1),
            ("encoder_attention_heads", self.encoder_attention_heads, 1),
            ("decoder_attention_heads", self.decoder_attention_heads, 1),
            ("encoder_ffn_dim", self.encoder_ffn_dim, 1),
            ("decoder_ffn_dim", self.decoder_ffn_dim, 1),
            // A source needs at least one token and its EOS.
            ("max_position_embeddings", self.max_position_embeddings, 2),
        ] {
            if value < min {
                return err(format!("{field} must be at least {min}, got {value}"));
            }
        }
        for (heads, field) in [
            (self.encoder_attention_heads, "encoder_attention_heads"),
            (self.decoder_attention_heads, "decoder_attention_heads"),
        ] {
            if !self.d_model.is_multiple_of(heads) {
                return err(format!(
                    "d_model {} is not divisible by {field} {heads}",
                    self.d_model
                ));
            }
        }
        if !self.d_model.is_multiple_of(2) {
            return err(format!(
                "d_model must be even (sinusoidal positions), got {}",
                self.d_model
            ));
        }
        self.check_ids(&GenerationDefaults {
            pad_token_id: Some(self.pad_token_id),
            decoder_start_token_id: Some(self.decoder_start_token_id),
            eos_token_id: Some(self.eos_token_id.clone()),
            forced_eos_token_id: self.forced_eos_token_id.clone(),
            bad_words_ids: self.generation.bad_words_ids.clone(),
            ..GenerationDefaults::default()
        })
    }

    /// Checks the token ids of a `generation_config.json` read from `path`
    /// against this config's vocabulary, as [`MarianConfig::from_file`] checks
    /// those of `config.json`; errors name the file and the field.
    pub fn check_generation(&self, g: &GenerationDefaults, path: &Path) -> Result<(), MarianError> {
        self.check_ids(g).map_err(|e| in_file(path, e))
    }

    /// Special token ids (those set in `g`) inside the vocabulary they index,
    /// `bad_words_ids` entries non-empty.
    fn check_ids(&self, g: &GenerationDefaults) -> Result<(), MarianError> {
        // transformers builds its embeddings with `padding_idx=pad_token_id`:
        // the encoder's over `vocab_size`, the decoder's over the target
        // vocabulary; the other special ids index the target vocabulary.
        let (src, tgt) = (self.vocab_size, self.target_vocab_size());
        let mut ids: Vec<(&str, u32, usize)> = Vec::new();
        ids.extend(g.pad_token_id.map(|t| ("pad_token_id", t, src.min(tgt))));
        ids.extend(
            g.decoder_start_token_id
                .map(|t| ("decoder_start_token_id", t, tgt)),
        );
        ids.extend(
            g.eos_token_id
                .iter()
                .flatten()
                .map(|&t| ("eos_token_id", t, tgt)),
        );
        ids.extend(
            g.forced_eos_token_id
                .iter()
                .flatten()
                .map(|&t| ("forced_eos_token_id", t, tgt)),
        );
        ids.extend(
            g.bad_words_ids
                .iter()
                .flatten()
                .flatten()
                .map(|&t| ("bad_words_ids", t, tgt)),
        );
        for (field, id, vocab) in ids {
            if id as usize >= vocab {
                return Err(MarianError::Config(format!(
                    "{field} {id} is outside the vocabulary (size {vocab})"
                )));
            }
        }
        if let Some(w) = g.bad_words_ids.iter().flatten().find(|w| w.is_empty()) {
            return Err(MarianError::Config(format!(
                "bad_words_ids has an empty entry {w:?}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The committed tiny fixture's architecture (tests/fixtures/marian).
    fn base() -> Value {
        json!({
            "model_type": "marian",
            "vocab_size": 1035,
            "decoder_vocab_size": 1035,
            "d_model": 32,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "max_position_embeddings": 128,
            "activation_function": "swish",
            "pad_token_id": 1034,
            "decoder_start_token_id": 1034,
            "eos_token_id": 0,
            "forced_eos_token_id": 0,
            "bad_words_ids": [[1034]],
        })
    }

    /// The config error of `base()` with `edits` applied.
    fn rejected(edits: Value) -> String {
        let mut v = base();
        for (k, x) in edits.as_object().unwrap() {
            v[k] = x.clone();
        }
        match MarianConfig::from_json_str(&v.to_string()) {
            Err(MarianError::Config(m)) => m,
            other => panic!("{edits}: expected a config error, got {other:?}"),
        }
    }

    fn assert_rejected(edits: Value, want: &str) {
        let m = rejected(edits.clone());
        assert_eq!(m, want, "{edits}");
    }

    #[test]
    fn the_base_config_is_valid() {
        MarianConfig::from_json_str(&base().to_string()).unwrap();
    }

    #[test]
    fn zero_layers_are_rejected() {
        for f in ["encoder_layers", "decoder_layers"] {
            assert_rejected(json!({ f: 0 }), &format!("{f} must be at least 1, got 0"));
        }
    }

    #[test]
    fn zero_d_model_is_rejected() {
        assert_rejected(json!({"d_model": 0}), "d_model must be at least 1, got 0");
    }

    #[test]
    fn odd_d_model_is_rejected() {
        assert_rejected(
            json!({"d_model": 33, "encoder_attention_heads": 1, "decoder_attention_heads": 1}),
            "d_model must be even (sinusoidal positions), got 33",
        );
    }

    #[test]
    fn fewer_than_two_positions_are_rejected() {
        for n in [0, 1] {
            assert_rejected(
                json!({ "max_position_embeddings": n }),
                &format!("max_position_embeddings must be at least 2, got {n}"),
            );
        }
        let cfg = MarianConfig::from_json_str(
            &json!({"max_position_embeddings": 2, "model_type": "marian", "vocab_size": 8,
                    "pad_token_id": 7, "decoder_start_token_id": 7, "d_model": 8,
                    "encoder_attention_heads": 2, "decoder_attention_heads": 2})
            .to_string(),
        )
        .unwrap();
        assert_eq!(cfg.max_position_embeddings, 2);
    }

    #[test]
    fn zero_heads_are_rejected() {
        for f in ["encoder_attention_heads", "decoder_attention_heads"] {
            assert_rejected(json!({ f: 0 }), &format!("{f} must be at least 1, got 0"));
        }
    }

    #[test]
    fn heads_that_do_not_divide_d_model_are_rejected() {
        for f in ["encoder_attention_heads", "decoder_attention_heads"] {
            assert_rejected(
                json!({ f: 3 }),
                &format!("d_model 32 is not divisible by {f} 3"),
            );
        }
    }

    #[test]
    fn zero_vocab_sizes_are_rejected() {
        for f in ["vocab_size", "decoder_vocab_size"] {
            assert_rejected(json!({ f: 0 }), &format!("{f} must be at least 1, got 0"));
        }
    }

    #[test]
    fn zero_ffn_dims_are_rejected() {
        for f in ["encoder_ffn_dim", "decoder_ffn_dim"] {
            assert_rejected(json!({ f: 0 }), &format!("{f} must be at least 1, got 0"));
        }
    }

    #[test]
    fn pad_outside_either_vocabulary_is_rejected() {
        assert_rejected(
            json!({"pad_token_id": 1035}),
            "pad_token_id 1035 is outside the vocabulary (size 1035)",
        );
        // Separate decoder embeddings: the smaller vocabulary bounds pad.
        assert_rejected(
            json!({"share_encoder_decoder_embeddings": false, "decoder_vocab_size": 500,
                   "decoder_start_token_id": 0, "bad_words_ids": null}),
            "pad_token_id 1034 is outside the vocabulary (size 500)",
        );
        // Absent, pad takes transformers' default 58100.
        let mut v = base();
        v.as_object_mut().unwrap().remove("pad_token_id");
        let m = MarianConfig::from_json_str(&v.to_string()).unwrap_err();
        assert_eq!(
            m.to_string(),
            "invalid Marian config: pad_token_id 58100 is outside the vocabulary (size 1035)"
        );
    }

    #[test]
    fn decoder_start_outside_the_target_vocabulary_is_rejected() {
        assert_rejected(
            json!({"decoder_start_token_id": 5000}),
            "decoder_start_token_id 5000 is outside the vocabulary (size 1035)",
        );
    }

    #[test]
    fn eos_outside_the_target_vocabulary_is_rejected() {
        assert_rejected(
            json!({"eos_token_id": [0, 1035]}),
            "eos_token_id 1035 is outside the vocabulary (size 1035)",
        );
        assert_rejected(
            json!({"forced_eos_token_id": 2000}),
            "forced_eos_token_id 2000 is outside the vocabulary (size 1035)",
        );
    }

    #[test]
    fn bad_words_outside_the_vocabulary_or_empty_are_rejected() {
        assert_rejected(
            json!({"bad_words_ids": [[1034], [3, 1040]]}),
            "bad_words_ids 1040 is outside the vocabulary (size 1035)",
        );
        assert_rejected(
            json!({"bad_words_ids": [[1034], []]}),
            "bad_words_ids has an empty entry []",
        );
    }

    #[test]
    fn generation_config_ids_are_checked_against_the_vocabulary() {
        let cfg = MarianConfig::from_json_str(&base().to_string()).unwrap();
        let path = Path::new("m/generation_config.json");
        let check = |v: Value| {
            let g = GenerationDefaults::from_json_value(&v).unwrap();
            cfg.check_generation(&g, path).map_err(|e| e.to_string())
        };
        check(json!({"eos_token_id": 0, "bad_words_ids": [[1034]], "num_beams": 4})).unwrap();
        check(json!({})).unwrap();
        for (v, want) in [
            (json!({"eos_token_id": [0, 1035]}), "eos_token_id 1035"),
            (
                json!({"forced_eos_token_id": 1100}),
                "forced_eos_token_id 1100",
            ),
            (json!({"pad_token_id": 1035}), "pad_token_id 1035"),
            (
                json!({"decoder_start_token_id": 7000}),
                "decoder_start_token_id 7000",
            ),
            (json!({"bad_words_ids": [[1035]]}), "bad_words_ids 1035"),
        ] {
            assert_eq!(
                check(v).unwrap_err(),
                format!(
                    "invalid Marian config: m/generation_config.json: {want} is outside the vocabulary (size 1035)"
                )
            );
        }
        assert_eq!(
            check(json!({"bad_words_ids": [[]]})).unwrap_err(),
            "invalid Marian config: m/generation_config.json: bad_words_ids has an empty entry []"
        );
    }

    /// Found by `cargo fuzz run config`: ids past u32::MAX were truncated
    /// (`as u32`), so 11111111135 was read as pad id 2521176543, and
    /// 2^32 + 1034 as the valid id 1034.
    #[test]
    fn ids_past_u32_max_are_rejected_not_truncated() {
        // The minimised fuzz input, as a generation_config.json.
        let v: Value = serde_json::from_str(r#"{"pad_token_id":11111111135}"#).unwrap();
        assert_eq!(
            GenerationDefaults::from_json_value(&v)
                .unwrap_err()
                .to_string(),
            "invalid Marian config: `pad_token_id` must be a token id (an integer from 0 to 4294967295)"
        );
        let wrapped = (1u64 << 32) + 1034;
        for field in ["pad_token_id", "decoder_start_token_id"] {
            assert_rejected(
                json!({ field: wrapped }),
                &format!("`{field}` must be a token id (an integer from 0 to 4294967295)"),
            );
        }
        for (field, ids) in [
            ("eos_token_id", json!(1u64 << 32)),
            ("eos_token_id", json!([0, wrapped])),
            ("forced_eos_token_id", json!(wrapped)),
        ] {
            assert_rejected(
                json!({ field: ids }),
                &format!(
                    "`{field}` must be a token id or a list of ids (integers from 0 to 4294967295)"
                ),
            );
        }
        assert_rejected(
            json!({"bad_words_ids": [[wrapped]]}),
            "`bad_words_ids`: invalid value: integer `4294968330`, expected u32",
        );
        // u32::MAX itself is an id (outside this vocabulary).
        assert_rejected(
            json!({"eos_token_id": u32::MAX}),
            "eos_token_id 4294967295 is outside the vocabulary (size 1035)",
        );
    }

    #[test]
    fn errors_from_a_file_name_the_file_and_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.json");
        let mut v = base();
        v["decoder_layers"] = json!(0);
        std::fs::write(&path, v.to_string()).unwrap();
        let err = MarianConfig::from_file(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid Marian config: {}: decoder_layers must be at least 1, got 0",
                path.display()
            )
        );
    }
}
