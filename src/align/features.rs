//! What the aligner knows of one sentence (or of a block of consecutive
//! sentences at a coarse level): its length, the anchors that need no model
//! (numbers, Latin-script tokens, month names, punctuation shape) and, when a
//! translation is compared, its hashed character n-gram counts.

use crate::qa;

/// Character n-gram orders counted, as chrF does (1 to 6, white space
/// removed).
const MAX_ORDER: usize = 6;
/// Buckets of the hashed n-gram count vector. 2048 keeps collisions between
/// the ~600 distinct n-grams of a news sentence rare enough that unrelated
/// sentences stay far below related ones, at 2 KB per sentence.
pub(super) const BUCKETS: usize = 2048;

/// Anchor kinds; the index into the weights of [`super::search`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// A number (read as [`crate::qa`] reads numbers, so the aligner and
    /// the QA flags agree on what the same number is), or a month.
    Number,
    /// A Latin-script token (name, acronym, URL) in a text that is mostly
    /// in another script; it is looked for among the other side's words.
    Latin,
    /// Punctuation shape: `?`/`؟`, `!`, quotation marks, brackets, colons.
    Punct,
}

/// One anchor: its kind, a hash of its normalised form, and whether it is
/// soft — a number written as an English word or a month name, which may
/// match but is never missed (`one of the` is not a number; `مارس` is also
/// a verb).
pub(super) type Anchor = (Kind, u64, bool);

#[derive(Debug, Clone, Default)]
pub(super) struct Feat {
    /// Letters and digits, without white space, combining marks or tatweel.
    pub len: f32,
    /// The paragraph the sentence is in (the first one, for a block).
    pub para: u32,
    /// The last paragraph (differs from `para` for a block that spans two).
    pub para_end: u32,
    /// Sorted anchors: numbers, months, punctuation; and for a mostly
    /// non-Latin text its Latin tokens.
    pub anchors: Vec<Anchor>,
    /// Sorted hashes of the Latin words and tokens of a mostly Latin text:
    /// where the other side's Latin anchors are looked for.
    pub words: Vec<u64>,
    /// Hashed character n-gram counts (saturating) and their total.
    pub grams: Option<Box<[u8]>>,
    pub grams_total: u32,
}

impl Feat {
    /// The features of `text` in paragraph `para`. `latin_side` says
    /// whether the text's side is mostly Latin script (see
    /// [`mostly_latin`]); `gram_text` is what to count n-grams of (the text
    /// itself, or its translation on the source side), if anything.
    pub fn new(text: &str, para: u32, latin_side: bool, gram_text: Option<&str>) -> Feat {
        let mut anchors: Vec<Anchor> = qa::mentions(text, latin_side)
            .into_iter()
            .map(|m| (Kind::Number, hash(m.values[0].as_bytes()), m.spelled))
            .collect();
        let mut words = Vec::new();
        if latin_side {
            // Whole tokens (`kassym-jomart`, a URL) and the words inside them.
            for chunk in text.split_whitespace() {
                let token = chunk.trim_matches(|c: char| !c.is_alphanumeric());
                words.push(hash(qa::fold(token).as_bytes()));
                for w in token
                    .split(|c: char| !qa::is_latin(c))
                    .filter(|w| !w.is_empty())
                {
                    words.push(hash(qa::fold(w).as_bytes()));
                }
            }
        } else {
            anchors.extend(
                qa::latin_tokens(text)
                    .iter()
                    .map(|t| (Kind::Latin, hash(qa::fold(t).as_bytes()), false)),
            );
            let mut months: Vec<u32> = Vec::new();
            let arabic: Vec<&str> = text
                .split(|c: char| !c.is_alphabetic() || c.is_ascii())
                .filter(|w| !w.is_empty())
                .collect();
            for (k, w) in arabic.iter().enumerate() {
                months.extend(arabic_month(w, arabic.get(k + 1).copied()));
            }
            // A month named twice (`يناير/كانون الثاني`) is one date.
            months.sort_unstable();
            months.dedup();
            anchors.extend(
                months
                    .into_iter()
                    .map(|m| (Kind::Number, hash(m.to_string().as_bytes()), true)),
            );
        }
        anchors.extend(
            text.chars()
                .filter_map(punct)
                .map(|p| (Kind::Punct, p as u64, false)),
        );
        anchors.sort_unstable();
        words.sort_unstable();
        let (grams, grams_total) = match gram_text {
            Some(t) => {
                let (g, total) = ngrams(t);
                (Some(g), total)
            }
            None => (None, 0),
        };
        Feat {
            len: qa::letters(text) as f32,
            para,
            para_end: para,
            anchors,
            words,
            grams,
            grams_total,
        }
    }

    /// The features of two consecutive sentences (or blocks) together.
    pub fn merge(&self, next: &Feat) -> Feat {
        let mut anchors = [self.anchors.as_slice(), next.anchors.as_slice()].concat();
        anchors.sort_unstable();
        let mut words = [self.words.as_slice(), next.words.as_slice()].concat();
        words.sort_unstable();
        let grams = match (&self.grams, &next.grams) {
            (Some(a), Some(b)) => Some(
                a.iter()
                    .zip(b.iter())
                    .map(|(x, y)| x.saturating_add(*y))
                    .collect(),
            ),
            _ => None,
        };
        Feat {
            len: self.len + next.len,
            para: self.para,
            para_end: next.para_end,
            anchors,
            words,
            grams,
            grams_total: self.grams_total + next.grams_total,
        }
    }
}

/// Whether most letters of these texts are Latin script: that side's Latin
/// tokens are ordinary words, not anchors.
pub(super) fn mostly_latin<'a>(texts: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut latin, mut other) = (0usize, 0usize);
    for c in texts
        .into_iter()
        .flat_map(str::chars)
        .filter(|c| c.is_alphabetic())
    {
        if qa::is_latin(c) {
            latin += 1;
        } else {
            other += 1;
        }
    }
    latin > other
}

/// FNV-1a: stable within a run, fast on short keys.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Hashed counts of the character n-grams (orders 1–6) of `text`,
/// lower-cased, white space removed.
fn ngrams(text: &str) -> (Box<[u8]>, u32) {
    let chars: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let mut counts = vec![0u8; BUCKETS].into_boxed_slice();
    let mut total = 0u32;
    for start in 0..chars.len() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (order, &c) in chars[start..].iter().take(MAX_ORDER).enumerate() {
            h = (h ^ c as u64).wrapping_mul(0x0100_0000_01b3);
            // Mix the order in so that `a` and the bigram starting with `a`
            // land apart; the top bits of the product are the best mixed.
            let b = (h
                .wrapping_add(order as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                >> 53) as usize;
            counts[b % BUCKETS] = counts[b % BUCKETS].saturating_add(1);
            total += 1;
        }
    }
    (counts, total)
}

fn punct(c: char) -> Option<u8> {
    Some(match c {
        '?' | '؟' => 0,
        '!' => 1,
        '«' | '»' | '“' | '”' | '"' | '„' | '‹' | '›' => 2,
        '(' | '[' => 3,
        ':' => 4,
        _ => return None,
    })
}

/// Month names of the Gregorian calendar as written in Egypt and the Gulf
/// (`يناير`) and in the Levant and Iraq (`كانون الثاني`), after an
/// optional clitic (`و` `ب` `ف` `ل`). `next` is the following word, for the
/// two-word Levantine names.
fn arabic_month(word: &str, next: Option<&str>) -> Option<u32> {
    const SINGLE: [(&str, u32); 21] = [
        ("يناير", 1),
        ("فبراير", 2),
        ("مارس", 3),
        ("أبريل", 4),
        ("ابريل", 4),
        ("إبريل", 4),
        ("مايو", 5),
        ("يونيو", 6),
        ("يونيه", 6),
        ("يوليو", 7),
        ("يوليه", 7),
        ("أغسطس", 8),
        ("اغسطس", 8),
        ("سبتمبر", 9),
        ("أكتوبر", 10),
        ("اكتوبر", 10),
        ("نوفمبر", 11),
        ("ديسمبر", 12),
        ("شباط", 2),
        ("آذار", 3),
        ("نيسان", 4),
    ];
    const MORE: [(&str, u32); 5] = [
        ("أيار", 5),
        ("حزيران", 6),
        ("تموز", 7),
        ("آب", 8),
        ("أيلول", 9),
    ];
    let stems = std::iter::once(word).chain(
        ['و', 'ب', 'ف', 'ل']
            .into_iter()
            .filter_map(|p| word.strip_prefix(p)),
    );
    for w in stems {
        if let Some(&(_, m)) = SINGLE
            .iter()
            .chain(MORE.iter())
            .find(|(name, _)| *name == w)
        {
            return Some(m);
        }
        let first = matches!(next, Some("الأول" | "الاول"));
        let second = matches!(next, Some("الثاني"));
        match w {
            "كانون" if first => return Some(12),
            "كانون" if second => return Some(1),
            "تشرين" if first => return Some(10),
            "تشرين" if second => return Some(11),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_of_an_arabic_and_an_english_sentence_meet() {
        let ar = Feat::new(
            "في يناير/كانون الثاني ٢٠٢٢، قالت لجنة الأمن القومي (KNB) إن 3,5 مليون قتلوا؟",
            0,
            false,
            None,
        );
        let en = Feat::new(
            "In January 2022, the National Security Committee (KNB) said 3.5 million were killed?",
            0,
            true,
            None,
        );
        let of = |f: &Feat, k: Kind, soft: bool| {
            f.anchors
                .iter()
                .filter(|a| a.0 == k && a.2 == soft)
                .map(|a| a.1)
                .collect::<Vec<_>>()
        };
        // The month, though named twice, is one soft number on each side
        // (English also reads "million" as a number word).
        assert_eq!(of(&ar, Kind::Number, true), [hash(b"1")]);
        assert!(of(&en, Kind::Number, true).contains(&hash(b"1")));
        let mut digits = vec![hash(b"2022"), hash(b"3.5")];
        digits.sort_unstable();
        assert_eq!(of(&ar, Kind::Number, false), digits);
        assert_eq!(of(&en, Kind::Number, false), digits);
        assert_eq!(of(&ar, Kind::Latin, false), [hash(b"knb")]);
        assert!(of(&en, Kind::Latin, false).is_empty());
        assert!(en.words.binary_search(&hash(b"knb")).is_ok());
        assert_eq!(of(&ar, Kind::Punct, false), of(&en, Kind::Punct, false));
        // Letters only: no harakat, tatweel, spaces or punctuation.
        assert_eq!(Feat::new("كَتَبَ  الـكتاب.", 0, false, None).len, 9.0);
    }

    #[test]
    fn latin_script_majority() {
        assert!(mostly_latin(["The KNB said", "more"]));
        assert!(!mostly_latin(["قالت لجنة KNB"]));
    }

    #[test]
    fn two_word_levantine_months() {
        assert_eq!(arabic_month("كانون", Some("الثاني")), Some(1));
        assert_eq!(arabic_month("وتشرين", Some("الأول")), Some(10));
        assert_eq!(arabic_month("كانون", None), None);
        assert_eq!(arabic_month("بيناير", None), Some(1));
    }

    #[test]
    fn ngram_counts_cover_orders_one_to_six() {
        let (g, total) = ngrams("ab cd");
        // 4 characters: 4 + 3 + 2 + 1 n-grams of orders 1..4.
        assert_eq!(total, 10);
        assert_eq!(g.iter().map(|&c| c as u32).sum::<u32>(), 10);
    }
}
