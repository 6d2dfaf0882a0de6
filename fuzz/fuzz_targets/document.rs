//! The document reader and its two splitters on arbitrary bytes: invalid
//! UTF-8 is an error at the right offset, and for valid text every sentence
//! is a non-empty range inside its paragraph, at char boundaries, in order
//! and non-overlapping, and `gaps()` + sentences rebuild the input exactly.
//! The same through `decode_with` in other encodings, where each sentence's
//! byte range in the input must decode to the sentence.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tarjama::document::{Document, InputError, TextEncoding};

/// Line breaks `Document` splits paragraphs at.
const BREAKS: [char; 7] = [
    '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
];

fn check(doc: &Document, bytes: &[u8], lines_mode: bool) {
    let text = doc.text.as_str();
    let utf8 = doc.encoding.name() == "UTF-8";
    if utf8 {
        assert_eq!(
            text.as_bytes(),
            bytes,
            "the text is the input, byte for byte"
        );
    }

    // Paragraphs and sentences as ranges of `text`.
    let mut para_end = 0;
    let mut sent_end = 0;
    for p in &doc.paragraphs {
        let r = &p.range;
        assert!(
            para_end <= r.start && r.start <= r.end && r.end <= text.len(),
            "{r:?}"
        );
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        assert!(!text[r.clone()].trim().is_empty(), "empty paragraph {r:?}");
        assert!(
            !text[r.clone()].contains(BREAKS),
            "line break inside paragraph {r:?}"
        );
        para_end = r.end;
        assert!(!p.sentences.is_empty(), "a non-empty line has a sentence");
        if lines_mode {
            assert_eq!(p.sentences.len(), 1, "lines mode: one sentence per line");
        }
        for s in &p.sentences {
            assert!(
                sent_end <= s.start,
                "sentence {s:?} overlaps or is out of order"
            );
            assert!(s.start < s.end, "empty sentence {s:?}");
            assert!(r.start <= s.start && s.end <= r.end, "{s:?} outside {p:?}");
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            assert_eq!(
                &text[s.clone()],
                text[s.clone()].trim(),
                "not trimmed: {s:?}"
            );
            sent_end = s.end;
        }
    }

    // The same sentences located in the input bytes.
    let mut pos = 0;
    let mut count = 0;
    for s in doc.sentences() {
        let r = doc.paragraphs[s.para].sentences[s.sent].clone();
        assert_eq!(s.text, &text[r.clone()]);
        if utf8 {
            assert_eq!(s.start..s.end, r, "UTF-8 offsets are text offsets");
        } else {
            assert!(
                pos <= s.start && s.start < s.end && s.end <= bytes.len(),
                "{s:?}"
            );
            let decoded = doc
                .encoding
                .decode_without_bom_handling_and_without_replacement(&bytes[s.start..s.end]);
            assert_eq!(
                decoded.as_deref(),
                Some(s.text),
                "{} bytes {}..{} are not the sentence",
                doc.encoding.name(),
                s.start,
                s.end
            );
        }
        pos = s.end;
        count += 1;
    }

    let gaps = doc.gaps();
    assert_eq!(gaps.len(), count + 1);
    let mut rebuilt = String::with_capacity(text.len());
    rebuilt.push_str(gaps[0]);
    for (s, gap) in doc.sentences().zip(&gaps[1..]) {
        rebuilt.push_str(s.text);
        rebuilt.push_str(gap);
    }
    assert_eq!(rebuilt, text, "gaps + sentences must rebuild the text");
}

/// Encodings `decode_with` is fuzzed with (the first byte picks one): `auto`
/// and labels `--encoding` accepts whose sentence offsets are exact.
const ENCODINGS: [&str; 9] = [
    "auto",
    "utf-8",
    "windows-1256",
    "iso-8859-6",
    "utf-16le",
    "utf-16be",
    "x-user-defined",
    "windows-1252",
    "koi8-r",
];

/// Multi-byte legacy encodings, whose decoding does not round-trip through
/// `encode`: src/document.rs's `encoded_len` misplaces their sentences (see
/// the ignored test in tests/fuzz_regressions.rs). Fuzzed only with
/// `TARJAMA_FUZZ_ALL_ENCODINGS=1`, to check a fix.
const MULTI_BYTE: [&str; 5] = ["big5", "gb18030", "shift_jis", "euc-kr", "iso-2022-jp"];

fn encodings() -> &'static [&'static str] {
    static ALL: std::sync::OnceLock<Vec<&str>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = ENCODINGS.to_vec();
        if std::env::var_os("TARJAMA_FUZZ_ALL_ENCODINGS").is_some() {
            all.extend(MULTI_BYTE);
        }
        all
    })
}

fuzz_target!(|data: &[u8]| {
    match Document::from_bytes("fuzz", data.to_vec()) {
        Ok(doc) => {
            check(&doc, data, false);
            let doc = Document::from_bytes_with("fuzz", data.to_vec(), Document::parse_lines)
                .expect("valid UTF-8 above");
            check(&doc, data, true);
        }
        Err(InputError::InvalidUtf8 { name, offset }) => {
            assert_eq!(name, "fuzz");
            let valid = std::str::from_utf8(data).unwrap_err().valid_up_to();
            assert_eq!(offset, valid);
        }
        Err(e) => panic!("unexpected error {e}"),
    }

    // Other encodings: the first byte picks one, the rest is the input.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let label = encodings()[usize::from(pick) % encodings().len()];
    let encoding: TextEncoding = label.parse().expect("a known label");
    for (split, lines) in [
        (Document::parse as fn(String, String) -> Document, false),
        (Document::parse_lines, true),
    ] {
        if let Ok(doc) = Document::decode_with("fuzz", rest.to_vec(), encoding, split) {
            check(&doc, rest, lines);
        }
    }
});
