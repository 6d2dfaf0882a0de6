//! Golden-file and property tests for `tarjama::segment::sentence_ranges`.

mod common;
use common::Rng;

use std::ops::Range;
use std::path::Path;

use tarjama::segment::sentence_ranges;

const ARTICLES: &[&str] = &["kazakhstan-unrest-report", "kazakhstan-unrest-opinion"];

/// Paragraphs of a document: its lines, minus a trailing `\r`, skipping
/// lines that are empty or only (Unicode) white space.
fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
}

/// What `tarjama segment --format lines` prints for one document.
fn lines_format(text: &str) -> String {
    let mut out = String::new();
    for (i, p) in paragraphs(text).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for r in sentence_ranges(p) {
            out.push_str(&p[r]);
            out.push('\n');
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn corpus_matches_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ARTICLES {
        let text = read(&root.join("corpus").join(format!("{name}.ar.txt")));
        let golden_path = root
            .join("tests/golden")
            .join(format!("{name}.ar.sentences.txt"));
        let golden = read(&golden_path);
        let actual = lines_format(&text);
        if actual == golden {
            continue;
        }
        let dump = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.ar.sentences.txt"));
        std::fs::write(&dump, &actual).unwrap();
        let (mut a, mut g) = (actual.split('\n'), golden.split('\n'));
        for line in 1.. {
            let (x, y) = (a.next(), g.next());
            assert_eq!(
                x,
                y,
                "{name}: first difference at line {line} of {} (actual output written to {})",
                golden_path.display(),
                dump.display()
            );
            if x.is_none() {
                break;
            }
        }
        unreachable!("outputs differ but no differing line found");
    }
}

/// The invariants of the interface: ordered, non-overlapping, non-empty,
/// trimmed, on char boundaries, and only white space between ranges.
fn check_round_trip(p: &str, ranges: &[Range<usize>]) {
    let mut pos = 0;
    for r in ranges {
        assert!(r.start < r.end, "empty range {r:?} in {p:?}");
        assert!(pos <= r.start, "overlap or disorder at {r:?} in {p:?}");
        assert!(
            p.is_char_boundary(r.start) && p.is_char_boundary(r.end),
            "{r:?} in {p:?}"
        );
        assert!(
            p[pos..r.start].chars().all(char::is_whitespace),
            "gap {:?} in {p:?}",
            &p[pos..r.start]
        );
        let s = &p[r.clone()];
        assert!(
            !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace),
            "untrimmed {s:?}"
        );
        pos = r.end;
    }
    assert!(
        p[pos..].chars().all(char::is_whitespace),
        "tail {:?} in {p:?}",
        &p[pos..]
    );
    if ranges.is_empty() {
        assert!(p.trim().is_empty(), "no sentence in {p:?}");
    }
    // Concatenating sentences and gaps gives the paragraph back.
    let mut rebuilt = String::new();
    let mut pos = 0;
    for r in ranges {
        rebuilt.push_str(&p[pos..r.start]);
        rebuilt.push_str(&p[r.clone()]);
        pos = r.end;
    }
    rebuilt.push_str(&p[pos..]);
    assert_eq!(rebuilt, p);
}

#[test]
fn corpus_round_trips() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ARTICLES {
        let text = read(&root.join("corpus").join(format!("{name}.ar.txt")));
        for p in paragraphs(&text) {
            check_round_trip(p, &sentence_ranges(p));
        }
    }
}

const PIECES: &[&str] = &[
    "قال",
    "الوزير",
    "كازاخستان",
    "د",
    "ك",
    "م",
    "هـ",
    "ق.م",
    "إلى",
    "و",
    "حتى",
    "ص",
    "ج",
    "إلخ",
    "قالت",
    "أضاف",
    "The",
    "he",
    "Dr",
    "U.S",
    "e.g",
    "No",
    "Inc",
    "E",
    "B",
    "Sanger",
    "said",
    "2022",
    "1950",
    "2,2",
    "3.5%",
    "7.1.2022",
    "10:08",
    "١٢٫٥",
    "٣",
    "1",
    "IV",
    "https://bit.ly/3FTnezU",
    "pic.twitter.com/x",
    "a.b@c.io",
    "@dw_arabic",
    "#كازاخستان",
    "#مسائية_DW",
    "x?q=1",
    "دُ",
    "ّ",
    "\u{200f}",
    "\u{0640}",
    "é",
    "𝔸",
    "👍🏽",
    "e\u{301}",
];
const PUNCT: &[&str] = &[
    ".", "..", "...", "…", "!", "?", "؟", "۔", "?!", "؟!", ".\"", "!»", ".)", "]", "”", "'", "\"",
    "«", "“", "(", "[", "،", "؛", ",", ":", ";", "–", "—", "#", "@", "/",
];
const SPACES: &[&str] = &[
    " ", " ", " ", "  ", "\u{a0}", "\u{2003}", "\t", "\u{3000}", "\u{202f}", "",
];

fn random_paragraph(rng: &mut Rng) -> String {
    let len = (rng.next() % 40) as usize;
    let mut p = String::new();
    for _ in 0..len {
        match rng.next() % 4 {
            0 | 1 => p.push_str(rng.pick(PIECES)),
            2 => p.push_str(rng.pick(PUNCT)),
            _ => p.push_str(rng.pick(SPACES)),
        }
    }
    p
}

#[test]
fn generated_paragraphs_round_trip() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..50_000 {
        let p = random_paragraph(&mut rng);
        check_round_trip(&p, &sentence_ranges(&p));
    }
}

#[test]
fn ten_megabyte_line() {
    let unit = "وقال د. محمد إن ك. ك. ماسيموف اعتقل في 7.1.2022 م. وأضاف \"لا!\" قال. \
                Dr. E. Sanger said... U.S. No. 5 at https://bit.ly/x?q=1. Then?\u{a0}";
    let mut p = unit.repeat(10_000_000 / unit.len() + 1);
    p.push_str(&"1.".repeat(500_000));
    p.push_str(&".".repeat(500_000));
    assert!(p.len() > 10_000_000);
    let ranges = sentence_ranges(&p);
    assert!(ranges.len() > 100_000);
    check_round_trip(&p, &ranges);
}
