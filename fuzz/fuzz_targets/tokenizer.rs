//! The Marian tokenizer of the test fixture (tests/fixtures/marian, loaded
//! once): encoding arbitrary UTF-8 text, with and without truncation, and
//! decoding arbitrary id sequences. Ids in the vocabulary always decode;
//! any other id is `IdOutOfRange`, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tarjama::tokenizer::{MarianTokenizer, TokenizerError};

fn fixture() -> MarianTokenizer {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/marian");
    MarianTokenizer::from_dir(dir).expect("the test fixture's tokenizer loads")
}

/// The fixture's tokenizer, and the same truncating to 8 ids.
fn tokenizers() -> &'static (MarianTokenizer, MarianTokenizer) {
    static TOK: OnceLock<(MarianTokenizer, MarianTokenizer)> = OnceLock::new();
    TOK.get_or_init(|| {
        let tok = fixture();
        (tok.clone(), tok.with_truncation(Some(8)))
    })
}

fn check_decode(tok: &MarianTokenizer, ids: &[u32]) {
    for skip in [false, true] {
        match tok.decode(ids, skip) {
            Ok(_) => {}
            Err(TokenizerError::IdOutOfRange { id }) => {
                assert!(ids.contains(&id), "error names id {id}, not in the input");
                assert!(
                    tok.id_to_token(id).is_none(),
                    "id {id} is in vocab.json but failed to decode"
                );
            }
            Err(e) => panic!("decode({ids:?}): unexpected error {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (tok, truncating) = tokenizers();
    let vocab = tok.vocab_size() as u32;

    if let Ok(text) = std::str::from_utf8(data) {
        let ids = tok.encode(text).expect("encoding cannot fail");
        assert_eq!(
            ids.last(),
            Some(&tok.eos_id()),
            "{ids:?} does not end in </s>"
        );
        for &id in &ids {
            assert!(tok.id_to_token(id).is_some(), "encode made id {id}");
        }
        for skip in [false, true] {
            tok.decode(&ids, skip).expect("encoded ids decode");
        }
        let short = truncating.encode(text).expect("encoding cannot fail");
        assert!(short.len() <= 8);
        assert_eq!(short.last(), Some(&tok.eos_id()));
        assert_eq!(short[..short.len() - 1], ids[..short.len() - 1]);
        let target = tok.encode_target(text).expect("encoding cannot fail");
        assert_eq!(target.last(), Some(&tok.eos_id()));
    }

    // The same bytes as ids: raw u32s (mostly out of range), and reduced
    // modulo the vocabulary size (all in range).
    let raw: Vec<u32> = data
        .chunks(4)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect();
    check_decode(tok, &raw);
    let in_range: Vec<u32> = raw.iter().map(|id| id % vocab).collect();
    check_decode(tok, &in_range);
    // Every id of vocab.json is its own token: decoding may not fail.
    if in_range.iter().all(|&id| tok.id_to_token(id).is_some()) {
        tok.decode(&in_range, false)
            .expect("in-vocabulary ids decode");
    }
    // Two-byte ids reach the region just past the vocabulary.
    let small: Vec<u32> = data
        .chunks(2)
        .map(|c| u32::from(c[0]) | u32::from(*c.get(1).unwrap_or(&0)) << 8)
        .map(|id| id % (2 * vocab))
        .collect();
    check_decode(tok, &small);
});
