//! Parity of `tarjama::tokenizer::MarianTokenizer` with transformers'
//! `MarianTokenizer`, replayed from the fixture that
//! `tests/fixtures/gen_tokenizer.py` recorded (no Python needed here).
//! `TARJAMA_TOKENIZER_FIXTURE=DIR` points the parity tests at another
//! generated fixture folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tarjama::tokenizer::{MarianTokenizer, TokenizerError};

#[derive(Deserialize)]
struct Fixture {
    special_tokens: Specials,
    vocab_size: usize,
    encode: Vec<EncodeCase>,
    target_encode: Vec<EncodeCase>,
    decode: Vec<DecodeCase>,
}

#[derive(Deserialize)]
struct Specials {
    eos: u32,
    unk: u32,
    pad: u32,
}

#[derive(Deserialize)]
struct EncodeCase {
    name: String,
    text: String,
    #[serde(default)]
    max_length: Option<usize>,
    ids: Vec<u32>,
    /// The reference's decode of `ids`: [keep specials, skip specials].
    decoded: [String; 2],
}

#[derive(Deserialize)]
struct DecodeCase {
    name: String,
    ids: Vec<u32>,
    decoded: [String; 2],
}

fn fixture_dir() -> PathBuf {
    match std::env::var_os("TARJAMA_TOKENIZER_FIXTURE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer"),
    }
}

fn load_fixture(dir: &Path) -> Fixture {
    let path = dir.join("tokenizer_cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad {}: {e}", path.display()))
}

/// Checks every case, prints each mismatch (both sides) and the totals, and
/// fails if any case differs.
fn check_parity(tok: &MarianTokenizer, fx: &Fixture, label: &str) {
    assert_eq!(tok.vocab_size(), fx.vocab_size, "vocab size");
    assert_eq!(tok.eos_id(), fx.special_tokens.eos, "eos id");
    assert_eq!(tok.unk_id(), fx.special_tokens.unk, "unk id");
    assert_eq!(tok.pad_id(), fx.special_tokens.pad, "pad id");

    let mut failures = Vec::new();
    let mut checked = 0usize;
    let mut check = |what: String, ok: bool, detail: &dyn Fn() -> String| {
        checked += 1;
        if !ok {
            failures.push(format!("{what}\n{}", detail()));
        }
    };

    for (side, cases) in [("encode", &fx.encode), ("target_encode", &fx.target_encode)] {
        for c in cases {
            let truncating;
            let t = match c.max_length {
                Some(m) => {
                    truncating = tok.clone().with_truncation(Some(m));
                    &truncating
                }
                None => tok,
            };
            let got = if side == "encode" {
                t.encode(&c.text)
            } else {
                t.encode_target(&c.text)
            }
            .unwrap_or_else(|e| panic!("{side} {}: {e}", c.name));
            check(format!("{side} ids: {}", c.name), got == c.ids, &|| {
                format!(
                    "  text:      {:?}\n  reference: {:?}\n  ours:      {:?}",
                    c.text, c.ids, got
                )
            });
            decode_checks(
                tok,
                &format!("{side} {}", c.name),
                &c.ids,
                &c.decoded,
                &mut check,
            );
        }
    }
    for c in &fx.decode {
        decode_checks(
            tok,
            &format!("decode {}", c.name),
            &c.ids,
            &c.decoded,
            &mut check,
        );
    }

    // The batch path must agree with the one-by-one path.
    let texts: Vec<&str> = fx
        .encode
        .iter()
        .filter(|c| c.max_length.is_none())
        .map(|c| c.text.as_str())
        .collect();
    let batch = tok.encode_batch(&texts).unwrap();
    let expected: Vec<&Vec<u32>> = fx
        .encode
        .iter()
        .filter(|c| c.max_length.is_none())
        .map(|c| &c.ids)
        .collect();
    check(
        "encode_batch".into(),
        batch.iter().collect::<Vec<_>>() == expected,
        &|| "batch differs".into(),
    );

    eprintln!(
        "{label}: {} of {checked} checks identical to MarianTokenizer ({} encode + {} target-encode inputs, {} extra decode inputs)",
        checked - failures.len(),
        fx.encode.len(),
        fx.target_encode.len(),
        fx.decode.len()
    );
    for other in failures.iter().skip(1).take(19) {
        eprintln!("also differs: {other}");
    }
    if let Some(first) = failures.first() {
        panic!(
            "{label}: {} of {checked} checks differ from MarianTokenizer; first mismatch:\n{first}",
            failures.len()
        );
    }
}

fn decode_checks(
    tok: &MarianTokenizer,
    what: &str,
    ids: &[u32],
    expected: &[String; 2],
    check: &mut impl FnMut(String, bool, &dyn Fn() -> String),
) {
    for (skip, want) in [(false, &expected[0]), (true, &expected[1])] {
        let got = tok
            .decode(ids, skip)
            .unwrap_or_else(|e| panic!("decode {what}: {e}"));
        check(
            format!("{what} decode(skip_special_tokens={skip})"),
            &got == want,
            &|| format!("  ids:       {ids:?}\n  reference: {want:?}\n  ours:      {got:?}"),
        );
    }
}

#[test]
fn parity_with_marian_tokenizer_from_spm() {
    let dir = fixture_dir();
    let fx = load_fixture(&dir);
    let tok = MarianTokenizer::from_dir(&dir).expect("load fixture tokenizer");
    check_parity(&tok, &fx, &format!("{} (.spm)", dir.display()));
}

#[test]
fn parity_with_marian_tokenizer_from_tokenizer_json_pair() {
    let dir = fixture_dir();
    let fx = load_fixture(&dir);
    let tok = MarianTokenizer::from_dir(&dir).expect("load fixture tokenizer");
    let tmp = tempfile::tempdir().unwrap();
    tok.save_tokenizer_json(tmp.path()).unwrap();
    std::fs::copy(dir.join("vocab.json"), tmp.path().join("vocab.json")).unwrap();
    let reloaded = MarianTokenizer::from_dir(tmp.path()).expect("load tokenizer.json pair");
    check_parity(
        &reloaded,
        &fx,
        &format!("{} (tokenizer.json pair)", dir.display()),
    );
}

/// A fixture copy in a temp dir, with one file replaced.
fn broken_copy(file: &str, contents: Option<&[u8]>) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["source.spm", "target.spm", "vocab.json"] {
        std::fs::copy(src.join(name), tmp.path().join(name)).unwrap();
    }
    match contents {
        Some(bytes) => std::fs::write(tmp.path().join(file), bytes).unwrap(),
        None => std::fs::remove_file(tmp.path().join(file)).unwrap(),
    }
    tmp
}

fn load_error(dir: &Path) -> (TokenizerError, String) {
    let err = MarianTokenizer::from_dir(dir).expect_err("loading should fail");
    let msg = err.to_string();
    eprintln!("{msg}");
    (err, msg)
}

#[test]
fn missing_files_are_errors_naming_the_file() {
    for file in ["source.spm", "target.spm", "vocab.json"] {
        let dir = broken_copy(file, None);
        let (err, msg) = load_error(dir.path());
        assert!(matches!(err, TokenizerError::Io { .. }), "{file}: {err:?}");
        assert!(msg.contains(file), "{msg}");
    }
    let empty = tempfile::tempdir().unwrap();
    let (err, _) = load_error(empty.path());
    assert!(
        matches!(err, TokenizerError::NoModelFiles { .. }),
        "{err:?}"
    );
}

#[test]
fn corrupt_spm_is_an_error_naming_the_file() {
    let cases: [&[u8]; 3] = [
        b"this is not a sentencepiece model \xff\xff\xff",
        b"",
        &[0x0a, 0xff, 0xff, 0xff, 0x0f],
    ];
    for bytes in cases {
        let dir = broken_copy("source.spm", Some(bytes));
        let (err, msg) = load_error(dir.path());
        assert!(matches!(err, TokenizerError::InvalidSpm { .. }), "{err:?}");
        assert!(
            msg.contains("source.spm") && msg.contains("SentencePiece"),
            "{msg}"
        );
    }
    // A truncated model: valid protobuf prefix, broken message.
    let good = std::fs::read(fixture_default().join("target.spm")).unwrap();
    let dir = broken_copy("target.spm", Some(&good[..good.len() / 2]));
    let (err, msg) = load_error(dir.path());
    assert!(matches!(err, TokenizerError::InvalidSpm { .. }), "{err:?}");
    assert!(msg.contains("target.spm"), "{msg}");
}

#[test]
fn vocab_json_that_is_not_json_is_an_error() {
    for bytes in [
        &b"{\"</s>\": 0, "[..],
        b"[\"</s>\", \"<unk>\"]",
        b"{\"</s>\": \"zero\"}",
    ] {
        let dir = broken_copy("vocab.json", Some(bytes));
        let (err, msg) = load_error(dir.path());
        assert!(
            matches!(err, TokenizerError::InvalidVocab { .. }),
            "{err:?}"
        );
        assert!(msg.contains("vocab.json"), "{msg}");
    }
}

#[test]
fn vocab_without_a_special_token_is_an_error() {
    let vocab: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(fixture_default().join("vocab.json")).unwrap(),
    )
    .unwrap();
    for token in ["</s>", "<unk>", "<pad>"] {
        let mut v = vocab.clone();
        v.remove(token);
        let dir = broken_copy(
            "vocab.json",
            Some(serde_json::to_string(&v).unwrap().as_bytes()),
        );
        let (err, msg) = load_error(dir.path());
        assert!(
            matches!(&err, TokenizerError::MissingSpecialToken { token: t, .. } if *t == token),
            "{err:?}"
        );
        assert!(msg.contains("vocab.json") && msg.contains(token), "{msg}");
    }
}

#[test]
fn ids_outside_every_vocab_are_an_error() {
    let tok = MarianTokenizer::from_dir(fixture_default()).unwrap();
    let id = u32::try_from(tok.vocab_size()).unwrap() + 100_000;
    assert!(matches!(
        tok.decode(&[id], false),
        Err(TokenizerError::IdOutOfRange { .. })
    ));
}

#[test]
fn small_api() {
    let tok = MarianTokenizer::from_dir(fixture_default()).unwrap();
    assert_eq!(tok.eos_id(), 0);
    assert_eq!(tok.unk_id(), 1);
    assert_eq!(tok.pad_id() as usize, tok.vocab_size() - 1);
    assert_eq!(tok.token_to_id(">>eng<<"), Some(2));
    assert_eq!(tok.id_to_token(2), Some(">>eng<<"));
    assert_eq!(
        tok.language_codes(),
        [">>deu<<", ">>eng<<", ">>fra<<", ">>spa<<"]
    );
    assert_eq!(tok.encode("").unwrap(), [tok.eos_id()]);
    let ids = tok.encode(">>eng<< مرحبا").unwrap();
    assert_eq!(ids[0], 2);
    assert_eq!(tok.decode(&ids, true).unwrap(), ">>eng<< مرحبا");
    let truncated = tok.clone().with_truncation(Some(3));
    assert_eq!(truncated.encode(">>eng<< مرحبا بكم").unwrap().len(), 3);
}

fn fixture_default() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}
