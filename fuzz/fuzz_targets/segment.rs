//! `tarjama::segment::sentence_ranges` on arbitrary text, against its
//! documented contract: ranges in order, non-overlapping, non-empty, at char
//! boundaries, trimmed, and only white space between (and around) them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tarjama::segment::sentence_ranges;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ranges = sentence_ranges(text);
    let mut pos = 0;
    for r in &ranges {
        assert!(
            pos <= r.start,
            "{r:?} overlaps or is out of order in {ranges:?}"
        );
        assert!(
            r.start < r.end && r.end <= text.len(),
            "{r:?} empty or out of bounds"
        );
        assert!(
            text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
            "{r:?}"
        );
        let s = &text[r.clone()];
        assert_eq!(s, s.trim(), "{r:?} is not trimmed");
        assert!(
            text[pos..r.start].chars().all(char::is_whitespace),
            "non-space text {:?} outside every sentence",
            &text[pos..r.start]
        );
        pos = r.end;
    }
    assert!(
        text[pos..].chars().all(char::is_whitespace),
        "non-space text {:?} after the last sentence",
        &text[pos..]
    );
    // Deterministic.
    assert_eq!(sentence_ranges(text), ranges);
});
