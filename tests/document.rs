//! The document model's central promise: sentences and the gaps between them
//! rebuild the original text byte for byte, and sentences never hold a line
//! break or start or end with white space.

mod common;
use common::Rng;

use tarjama::document::Document;

fn check_round_trip(name: &str, text: &str) {
    let doc = Document::parse(name, text.to_string());
    let gaps = doc.gaps();
    let sentences: Vec<_> = doc.sentences().collect();
    assert_eq!(gaps.len(), sentences.len() + 1);
    let mut rebuilt = String::from(gaps[0]);
    for (s, gap) in sentences.iter().zip(&gaps[1..]) {
        assert!(!s.text.is_empty(), "{name}: empty sentence");
        assert_eq!(s.text.trim(), s.text, "{name}: untrimmed {:?}", s.text);
        assert!(
            !s.text.contains(['\n', '\r', '\u{2029}', '\u{2028}']),
            "{name}: line break inside {:?}",
            s.text
        );
        assert_eq!(&text[s.start..s.end], s.text);
        rebuilt.push_str(s.text);
        rebuilt.push_str(gap);
    }
    for gap in &gaps {
        let inner = gap.strip_prefix('\u{feff}').unwrap_or(gap);
        assert!(
            inner.chars().all(char::is_whitespace),
            "{name}: gap holds text {gap:?}"
        );
    }
    assert_eq!(rebuilt, text, "{name}: round trip");
    // Paragraphs are exactly the lines with something other than white space.
    let non_empty_lines = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .split([
            '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
        ])
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(doc.paragraphs.len(), non_empty_lines, "{name}");
}

#[test]
fn corpus_round_trips() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        check_round_trip(&path.display().to_string(), &text);
        // The same article with Windows and old-Mac line endings and a BOM.
        check_round_trip("crlf", &format!("\u{feff}{}", text.replace('\n', "\r\n")));
        check_round_trip("cr", &text.replace('\n', "\r"));
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn generated_documents_round_trip() {
    const PIECES: &[&str] = &[
        "قال",
        "الوزير",
        "كازاخستان",
        "ك.",
        "د.",
        "2022",
        "١٢٫٥",
        "3.5%",
        "7.1.2022",
        "10:08",
        "U.S.",
        "Dr.",
        "e.g.",
        "https://bit.ly/3FTnezU",
        "a@b.org",
        "@dw_arabic",
        "#كازاخستان",
        ".",
        "...",
        "؟",
        "!",
        "?!",
        "…",
        "۔",
        "،",
        "؛",
        ":",
        "\"",
        "“",
        "”",
        "«",
        "»",
        "(",
        ")",
        "[",
        "]",
        "'",
        " ",
        " ",
        " ",
        "\u{a0}",
        "\u{2003}",
        "\t",
        "\n",
        "\r\n",
        "\r",
        "\n\u{a0}\n",
        "\u{feff}",
        "\u{200f}",
        "ـ",
        "ﻻ",
        "😀",
        "The",
        "end.",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        let len = (rng.next() % 60) as usize;
        let text: String = (0..len).map(|_| rng.pick(PIECES)).collect();
        check_round_trip(&format!("generated #{case}: {text:?}"), &text);
    }
}
