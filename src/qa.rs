//! Quality flags on a translation pair. This module owns the checks that
//! catch what users report most of OPUS-MT output — numbers dropped or
//! changed, names and acronyms lost, truncated or runaway output, n-gram
//! loops, Arabic copied through untranslated — as [`check`]`(src, tgt)`, a
//! pure function of the two texts (a sentence pair or any larger span, e.g.
//! an aligned group of sentences), and [`Tally`], the run's count of flagged
//! pairs. The rules are heuristics tuned to stay quiet on good translations:
//! each says why in its doc comment, and a flag means "look at this pair",
//! never "this pair is wrong".

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// One problem [`check`] found in a pair; shown and serialised as its
/// [`Flag::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// A number of the source is missing from the target, or changed.
    Numbers,
    /// A Latin-script token of the source (name, acronym, URL, e-mail,
    /// handle) is missing from the target.
    Latin,
    /// The target is much shorter (truncated, dropped) or much longer
    /// (hallucinated) than the source.
    Length,
    /// The target repeats itself: an n-gram or a character sequence looping.
    Loop,
    /// Much of the target is Arabic script: the source copied untranslated.
    Untranslated,
}

impl Flag {
    /// Every flag, in the order [`check`] reports them.
    pub const ALL: [Flag; 5] = [
        Flag::Numbers,
        Flag::Latin,
        Flag::Length,
        Flag::Loop,
        Flag::Untranslated,
    ];

    /// `numbers`, `latin`, `length`, `loop` or `untranslated`.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Numbers => "numbers",
            Flag::Latin => "latin",
            Flag::Length => "length",
            Flag::Loop => "loop",
            Flag::Untranslated => "untranslated",
        }
    }
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The flags of the pair Arabic `src`, English `tgt`, in [`Flag::ALL`]
/// order; empty when nothing looks wrong.
pub fn check(src: &str, tgt: &str) -> Vec<Flag> {
    let fired = [
        (Flag::Numbers, numbers_missing(src, tgt)),
        (Flag::Latin, latin_missing(src, tgt)),
        (Flag::Length, length_off(src, tgt)),
        // A loop the source has too (a chant, a row of dots) is faithful.
        (Flag::Loop, loops(tgt) && !loops(src)),
        (Flag::Untranslated, untranslated(tgt)),
    ];
    fired
        .into_iter()
        .filter_map(|(flag, on)| on.then_some(flag))
        .collect()
}

/// Pairs checked and flagged, per flag: the run summary's QA line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub pairs: usize,
    /// Pairs with at least one flag.
    pub flagged: usize,
    counts: [usize; Flag::ALL.len()],
}

impl Tally {
    /// Counts one pair with these flags.
    pub fn add(&mut self, flags: &[Flag]) {
        self.pairs += 1;
        if !flags.is_empty() {
            self.flagged += 1;
        }
        for &f in flags {
            self.counts[f as usize] += 1;
        }
    }

    /// Pairs with flag `f`.
    pub fn count(&self, f: Flag) -> usize {
        self.counts[f as usize]
    }
}

impl std::fmt::Display for Tally {
    /// `12 of 153 pairs flagged (numbers 3, length 5, loop 1)`: only the
    /// flags that fired, in [`Flag::ALL`] order.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} pairs flagged", self.flagged, self.pairs)?;
        let parts: Vec<String> = Flag::ALL
            .iter()
            .filter(|&&g| self.count(g) > 0)
            .map(|&g| format!("{g} {}", self.count(g)))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- numbers

/// Whether some number written in digits in `src` has no counterpart in
/// `tgt`. Both sides are read as a sequence of numbers, each with the values
/// it may stand for, and every source number must be paired with a distinct
/// target number sharing a value (a multiset match: `5 … 5` needs two 5s).
/// Only one direction is checked: numbers the target adds (Arabic number
/// words rendered as digits, "the 1990s") are normal.
///
/// What counts as the same number, because translations legitimately write
/// numbers differently:
/// - digits: Arabic-Indic `٠-٩` and Extended Arabic-Indic (Persian) `۰-۹`
///   are read as `0-9`, `٫` as the decimal point and `٬` as the thousands
///   separator, so `٢٠٢٢` = `2022` and `٣٫٥` = `3.5`;
/// - separators: a run like `1,234.5`, `1.234,5`, `1,000,000` or `3,5` is
///   one number, its last separator a decimal point unless the groups after
///   the first are all of three digits (then thousands separators), and when
///   both readings fit (`1,000`) the number has both values; a run that fits
///   neither (a date `12.05.2022`, an IP address) is its parts;
/// - the canonical value drops leading and trailing zeros (`3.50` = `3.5`);
/// - a scale word after a number also gives the scaled value (`3,5 مليار` =
///   `3.5 billion` = `3500000000`; `20 ألف` = `20,000`);
/// - on the English side, number words count as numbers: 0–20, the tens,
///   `twenty-five`, ordinals to twelfth, `once`, `twice`, `dozen`, the
///   scale words themselves (`a million`), and month names as their numbers
///   (`7/1/2022` → "7 January 2022"). MT writes small numbers as words and
///   dates with month names often enough ("3 أشخاص" → "three people") that
///   without them the flag would be noise.
fn numbers_missing(src: &str, tgt: &str) -> bool {
    let src = numbers(src, false);
    if src.is_empty() {
        return false;
    }
    let tgt = numbers(tgt, true);
    src.len() > tgt.len() || !all_matched(&src, &tgt)
}

/// A number as the values it may stand for, canonical decimal strings.
type Number = Vec<String>;

/// A piece of text as [`numbers`] reads it.
enum Item {
    Number(Number),
    Word(String),
}

/// The numbers of `text` in order; with `words`, English number words too.
fn numbers(text: &str, words: bool) -> Vec<Number> {
    mentions(text, words)
        .into_iter()
        .map(|m| m.values)
        .collect()
}

/// A number in a text as this module reads it (see [`check`]'s number
/// rules): the canonical values it may stand for, and whether it was a word
/// (`three`, `January`) rather than digits. The aligner's number anchors are
/// these, so that both agree on what the same number is.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    pub values: Vec<String>,
    pub spelled: bool,
}

/// The numbers of `text` in order; with `words`, English number words too.
pub fn mentions(text: &str, words: bool) -> Vec<Mention> {
    let items = items(text);
    let mut out: Vec<Mention> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let spelled = matches!(items[i], Item::Word(_));
        let mut number = match &items[i] {
            Item::Number(n) => n.clone(),
            Item::Word(w) if words => match number_word(w) {
                Some(v) => {
                    // "twenty-five", "twenty five": one number.
                    let unit = match (v < 100 && v % 10 == 0 && v >= 20, items.get(i + 1)) {
                        (true, Some(Item::Word(next))) => number_word(next).filter(|&u| u < 10),
                        _ => None,
                    };
                    if let Some(u) = unit {
                        i += 1;
                        vec![(v + u).to_string()]
                    } else {
                        vec![v.to_string()]
                    }
                }
                None => {
                    i += 1;
                    continue;
                }
            },
            Item::Word(_) => {
                i += 1;
                continue;
            }
        };
        if let Some(Item::Word(next)) = items.get(i + 1)
            && let Some(zeros) = scale(next)
        {
            let scaled: Vec<String> = number.iter().map(|v| shift(v, zeros)).collect();
            number.extend(scaled);
        }
        out.push(Mention {
            values: number,
            spelled,
        });
        i += 1;
    }
    out
}

/// `text` as numbers (digit runs with their separators) and words (runs of
/// letters, lower-cased), everything else dropped.
fn items(text: &str) -> Vec<Item> {
    let chars: Vec<char> = text.chars().map(ascii_digit).collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let mut groups: Vec<String> = Vec::new();
            let mut seps: Vec<char> = Vec::new();
            loop {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                groups.push(chars[start..i].iter().collect());
                match (chars.get(i), chars.get(i + 1)) {
                    (Some(&s @ ('.' | ',')), Some(d)) if d.is_ascii_digit() => {
                        seps.push(s);
                        i += 1;
                    }
                    _ => break,
                }
            }
            items.extend(read_number(&groups, &seps).into_iter().map(Item::Number));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            items.push(Item::Word(word.to_lowercase()));
        } else {
            i += 1;
        }
    }
    items
}

/// Arabic-Indic and Extended Arabic-Indic digits as ASCII digits, the Arabic
/// decimal and thousands separators as `.` and `,`.
fn ascii_digit(c: char) -> char {
    match c {
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        '\u{066B}' => '.',
        '\u{066C}' => ',',
        c => c,
    }
}

/// The numbers a run of digit `groups` joined by `seps` (`.` or `,`) stands
/// for: one number with every reading that fits, or, when none does, each
/// group on its own.
fn read_number(groups: &[String], seps: &[char]) -> Vec<Number> {
    let Some((&last, head_seps)) = seps.split_last() else {
        return vec![vec![canonical(&groups[0], "")]];
    };
    // Thousands grouping: one separator throughout, 1–3 digits (no leading
    // zero: `0.001` is a fraction), then threes.
    let grouped = |gs: &[String], ss: &[char]| {
        ss.iter().all(|&s| s == ss[0])
            && (1..=3).contains(&gs[0].len())
            && !gs[0].starts_with('0')
            && gs[1..].iter().all(|g| g.len() == 3)
    };
    let mut values = Vec::new();
    if grouped(groups, seps) {
        values.push(canonical(&groups.concat(), ""));
    }
    let (head, frac) = groups.split_at(groups.len() - 1);
    if head_seps.is_empty() || (head_seps[0] != last && grouped(head, head_seps)) {
        values.push(canonical(&head.concat(), &frac[0]));
    }
    if values.is_empty() {
        groups.iter().map(|g| vec![canonical(g, "")]).collect()
    } else {
        vec![values]
    }
}

/// A decimal as one string per value: no leading zeros in the integer part,
/// no trailing zeros in the fraction, no point without a fraction.
fn canonical(int: &str, frac: &str) -> String {
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// A canonical value times 10^`zeros`.
fn shift(value: &str, zeros: usize) -> String {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let mut digits = format!("{int}{frac}");
    let point = int.len() + zeros;
    while digits.len() < point {
        digits.push('0');
    }
    canonical(&digits[..point], &digits[point..])
}

/// The power of ten a scale word after a number multiplies it by, English or
/// Arabic (the forms after numerals: singular, plural, dual, accusative).
fn scale(word: &str) -> Option<usize> {
    let zeros = match word {
        "hundred" | "hundreds" => 2,
        "thousand" | "thousands" | "k" => 3,
        "million" | "millions" | "mn" | "m" => 6,
        "billion" | "billions" | "bn" => 9,
        "trillion" | "trillions" | "tn" => 12,
        "الف" | "الاف" => 3,
        _ => {
            let arabic = [
                ("مئة", 2),
                ("مائة", 2),
                ("ألف", 3),
                ("آلاف", 3),
                ("مليون", 6),
                ("ملايين", 6),
                ("مليار", 9),
                ("بليون", 9),
                ("بلايين", 9),
                ("تريليون", 12),
                ("ترليون", 12),
            ];
            return arabic
                .iter()
                .find(|(stem, _)| word.starts_with(stem))
                .map(|&(_, z)| z);
        }
    };
    Some(zeros)
}

/// The value of an English number word (lower case).
fn number_word(w: &str) -> Option<u64> {
    const UNITS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    const ORDINALS: [&str; 13] = [
        "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    const MONTHS: [&str; 13] = [
        "",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if let Some(v) = UNITS.iter().position(|&u| u == w) {
        return Some(v as u64);
    }
    if let Some(v) = ORDINALS.iter().position(|&u| !u.is_empty() && u == w) {
        return Some(v as u64);
    }
    if let Some(v) = TENS.iter().position(|&u| !u.is_empty() && u == w) {
        return Some(10 * v as u64);
    }
    if let Some(v) = MONTHS.iter().position(|&u| !u.is_empty() && u == w) {
        return Some(v as u64);
    }
    match w {
        "once" | "single" => Some(1),
        "twice" | "double" => Some(2),
        "thrice" | "triple" => Some(3),
        "dozen" => Some(12),
        "hundred" => Some(100),
        "thousand" => Some(1_000),
        "million" => Some(1_000_000),
        "billion" => Some(1_000_000_000),
        "trillion" => Some(1_000_000_000_000),
        _ => None,
    }
}

/// Above this many source numbers (a table pasted as a paragraph) the
/// matching stays greedy: augmenting paths cost up to quadratic time and
/// recursion as deep as the count, for a case where the greedy pairing is
/// all but always right anyway.
const MAX_AUGMENTED: usize = 256;

/// Whether every source number can be paired with its own target number
/// sharing a value. Greedy first (linear: each value keeps a cursor past the
/// target numbers already taken), which settles the usual pair; then, for
/// what is left, augmenting paths (a maximum bipartite matching), as an
/// ambiguous number (`1,000`: 1000 or 1) may have taken the partner another
/// needs.
fn all_matched(src: &[Number], tgt: &[Number]) -> bool {
    let mut by_value: HashMap<&str, (Vec<usize>, usize)> = HashMap::new();
    for (j, n) in tgt.iter().enumerate() {
        for v in n {
            by_value.entry(v).or_default().0.push(j);
        }
    }
    let mut owner: Vec<Option<usize>> = vec![None; tgt.len()];
    let mut unmatched = Vec::new();
    for (i, n) in src.iter().enumerate() {
        let free = n.iter().find_map(|v| {
            let (js, cursor) = by_value.get_mut(v.as_str())?;
            while js.get(*cursor).is_some_and(|&j| owner[j].is_some()) {
                *cursor += 1;
            }
            js.get(*cursor).copied()
        });
        match free {
            Some(j) => owner[j] = Some(i),
            None => unmatched.push(i),
        }
    }
    if unmatched.is_empty() {
        return true;
    }
    if src.len() > MAX_AUGMENTED {
        return false;
    }
    let partners: Vec<Vec<usize>> = src
        .iter()
        .map(|n| {
            let mut js: Vec<usize> = n
                .iter()
                .filter_map(|v| by_value.get(v.as_str()))
                .flat_map(|(js, _)| js.iter().copied())
                .collect();
            js.sort_unstable();
            js.dedup();
            js
        })
        .collect();
    fn augment(
        i: usize,
        partners: &[Vec<usize>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for &j in &partners[i] {
            if seen[j] {
                continue;
            }
            seen[j] = true;
            if owner[j].is_none_or(|k| augment(k, partners, seen, owner)) {
                owner[j] = Some(i);
                return true;
            }
        }
        false
    }
    // A source number with no augmenting path now never gets one later
    // (Kuhn), so the first failure settles it.
    unmatched
        .into_iter()
        .all(|i| augment(i, &partners, &mut vec![false; tgt.len()], &mut owner))
}

// ------------------------------------------------------------------ latin

/// Whether a Latin-script token of `src` — a name or acronym (`KNB`,
/// `Kassym-Jomart`, `U.S.`), a URL or bare domain (`bit.ly/3FTnezU`), an
/// e-mail address, a `@handle` or `#tag` — is missing from `tgt`. Such
/// tokens are already English (or meant to stay as written), so a
/// translation keeps them; MT drops or garbles them. The comparison ignores
/// case and needs the token with no Latin letter touching it in the target (`AI`
/// is not found in "said"). A name is its letters only (`COVID-19` →
/// `COVID`, `MH17` → `MH`, a glued `2022In` → `In`): digits are the numbers
/// check's, and splitting there keeps a typo from making a token no
/// translation could contain. Names of
/// one letter (`(a)`, `x`, `5G`) are skipped: list markers and symbols more
/// often than names.
fn latin_missing(src: &str, tgt: &str) -> bool {
    let tokens = latin_tokens(src);
    if tokens.is_empty() {
        return false;
    }
    let tgt = fold(tgt);
    // A plain word is a lookup; a token with joiners or an address a search.
    let words: HashSet<&str> = tgt.split(|c: char| !is_latin(c)).collect();
    tokens.iter().map(|t| fold(t)).any(|t| {
        if t.chars().all(is_latin) {
            !words.contains(t.as_str())
        } else {
            !contains_word(&tgt, &t)
        }
    })
}

/// The Latin-script tokens of Arabic text: names, acronyms, addresses.
pub fn latin_tokens(src: &str) -> Vec<String> {
    const OPEN: &[char] = &['(', '[', '{', '<', '«', '"', '\'', '“', '‘'];
    const CLOSE: &[char] = &[
        '.', ',', ';', ':', '!', '?', ')', ']', '}', '>', '»', '"', '\'', '”', '’', '،', '؛', '؟',
    ];
    let mut tokens = Vec::new();
    for chunk in src.split_whitespace() {
        let trimmed = chunk.trim_start_matches(OPEN).trim_end_matches(CLOSE);
        if is_address(trimmed) {
            tokens.push(trimmed.to_string());
            continue;
        }
        // Names inside a chunk: Latin letters with the joiners of names and
        // acronyms inside (`Kassym-Jomart`, `U.S`, `O'Brien`, `AT&T`).
        let joiner = |c: char| matches!(c, '-' | '.' | '\'' | '’' | '&' | '_');
        for run in chunk.split(|c: char| !(is_latin(c) || joiner(c))) {
            let run = run.trim_matches(joiner);
            if run.chars().filter(|&c| is_latin(c)).count() >= 2 {
                tokens.push(run.to_string());
            }
        }
    }
    tokens.sort();
    tokens.dedup();
    tokens
}

/// A URL, a bare domain with or without a path, an e-mail address, or an
/// all-Latin `@handle` / `#tag`: a token to carry over whole.
fn is_address(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if ["http://", "https://", "www."]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    let ascii_word = |w: &str| {
        w.chars().any(|c| c.is_ascii_alphabetic())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(rest) = s.strip_prefix(['@', '#']) {
        return ascii_word(rest);
    }
    // `name.tld` up to the first `/` (the `@` of an e-mail before it):
    // ASCII labels, the last 2–24 letters (`U.S` and `7.1.2022In` are not).
    let host = s.split('/').next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|t| {
            (2..=24).contains(&t.len()) && t.chars().all(|c| c.is_ascii_alphabetic())
        })
}

/// A Latin letter (Basic Latin, Latin-1, Latin Extended-A/B and Additional).
pub fn is_latin(c: char) -> bool {
    c.is_alphabetic()
        && (c.is_ascii() || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}'))
}

/// Text for comparing tokens: lower case, one apostrophe.
pub fn fold(s: &str) -> String {
    s.to_lowercase().replace('’', "'")
}

/// Whether `word` occurs in `text` with no Latin letter right before or
/// after it (the edges of a token in [`latin_tokens`]: digits may touch it,
/// `MH` is in `MH17` as the source had it).
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, m)| {
        let before = text[..i].chars().next_back();
        let after = text[i + m.len()..].chars().next();
        !before.is_some_and(is_latin) && !after.is_some_and(is_latin)
    })
}

// ----------------------------------------------------------------- length

/// The expected band of target letters per source letter. English takes
/// more letters than Arabic for the same content: Arabic script leaves short
/// vowels unwritten and attaches articles, prepositions and conjunctions to
/// the word (`والحكومة` = "and the government"); hand translations of the
/// sample corpus run 1.0–1.6 English letters per Arabic letter, ~1.2 on
/// long sentences. Below 0.6 the translation has lost about half of what a
/// normal one has (truncation, a dropped clause); above 2.5 it holds about
/// twice too much (hallucination, repetition).
const LENGTH_BAND: (f64, f64) = (0.6, 2.5);

/// Letters of slack on both sides of the band: a short segment (a headline,
/// `س:`) has a ratio dominated by one word, so the band only bites once a
/// segment is a few words long.
const LENGTH_SLACK: f64 = 10.0;

/// Whether `tgt`'s length is outside the band for `src`'s. Length is counted
/// in letters and digits (not spaces, punctuation or Arabic diacritics,
/// which vary with typing habits, not content). An empty translation of a
/// source with letters is always flagged.
fn length_off(src: &str, tgt: &str) -> bool {
    let (s, t) = (letters(src) as f64, letters(tgt) as f64);
    if s == 0.0 {
        return false;
    }
    let (lo, hi) = LENGTH_BAND;
    t == 0.0 || t < lo * s - LENGTH_SLACK || t > hi * s + LENGTH_SLACK
}

/// Letters and digits of `s`, Arabic diacritics and tatweel left out.
pub fn letters(s: &str) -> usize {
    s.chars()
        .filter(|&c| c.is_alphanumeric() && !is_arabic_mark(c))
        .count()
}

/// Arabic combining marks (harakat, Quranic marks) and the tatweel.
fn is_arabic_mark(c: char) -> bool {
    matches!(c,
        '\u{0610}'..='\u{061A}'
        | '\u{0640}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0670}'
        | '\u{06D6}'..='\u{06ED}'
        | '\u{08D3}'..='\u{08FF}')
}

// ------------------------------------------------------------------- loop

/// Whether `text` repeats itself the way a degenerate decoder does ("the the
/// the the", "in the city, in the city, in the city", "hahahahahahahahaha"):
/// - an n-gram of words (case and punctuation ignored) repeated back to back:
///   one word 4 times or more (3 is rhetoric: "very, very, very"), 2 to 8
///   words 3 times or more ("again and again and again" is not 3 times);
/// - over at least 12 words, fewer than half of the word trigrams distinct
///   (a loop with variations);
/// - a sequence of 1 to 12 characters (spaces ignored) repeated at least 4
///   times back to back over at least 16 characters (a loop within a word,
///   which has no word n-grams).
///
/// [`check`] flags a loop only when the source has none, so a faithful
/// repetition is not flagged.
fn loops(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() || is_arabic_mark(c))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    repeated_ngram(&words) || few_distinct_trigrams(&words) || repeated_chars(text)
}

/// A run of `n` words repeated back to back (see [`loops`]).
fn repeated_ngram(words: &[String]) -> bool {
    (1..=8).any(|n| {
        let times = if n == 1 { 4 } else { 3 };
        periodic(words, n, times * n)
    })
}

/// Whether `xs` holds a stretch of at least `min_len` items that repeats
/// with period `n`.
fn periodic<T: PartialEq>(xs: &[T], n: usize, min_len: usize) -> bool {
    if xs.len() < min_len {
        return false;
    }
    // `run` consecutive positions equal to the one `n` later make a stretch
    // of `run + n` items with period `n`.
    let mut run = 0;
    for i in n..xs.len() {
        if xs[i] == xs[i - n] {
            run += 1;
            if run + n >= min_len {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Fewer than half of the word trigrams distinct, over at least 12 words.
fn few_distinct_trigrams(words: &[String]) -> bool {
    if words.len() < 12 {
        return false;
    }
    let trigrams: Vec<&[String]> = words.windows(3).collect();
    let distinct: HashSet<&[String]> = trigrams.iter().copied().collect();
    distinct.len() * 2 < trigrams.len()
}

/// A sequence of characters repeated back to back (see [`loops`]).
fn repeated_chars(text: &str) -> bool {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    (1..=12).any(|n| periodic(&chars, n, (4 * n).max(16)))
}

// ----------------------------------------------------------- untranslated

/// Whether Arabic letters make up at least a fifth of `tgt`'s letters and
/// digits. An
/// English translation has essentially none (OPUS-MT transliterates names),
/// so this is the source copied through, whole or in part (the model's
/// fallback on input it cannot translate). A target equal to a source
/// without Arabic (`COVID-19`, a URL) is a correct translation, not a copy.
fn untranslated(tgt: &str) -> bool {
    let arabic = tgt.chars().filter(|&c| is_arabic_letter(c)).count();
    arabic > 0 && arabic * 5 >= letters(tgt)
}

/// A letter of the Arabic script (any of its blocks); not its digits or marks.
fn is_arabic_letter(c: char) -> bool {
    c.is_alphabetic()
        && !is_arabic_mark(c)
        && matches!(c,
            '\u{0600}'..='\u{06FF}'
            | '\u{0750}'..='\u{077F}'
            | '\u{08A0}'..='\u{08FF}'
            | '\u{FB50}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fires(flag: Flag, src: &str, tgt: &str) -> bool {
        check(src, tgt).contains(&flag)
    }

    /// `flag` fires on every `bad` pair and not on any `good` one.
    fn cases(flag: Flag, bad: &[(&str, &str)], good: &[(&str, &str)]) {
        for (src, tgt) in bad {
            assert!(
                fires(flag, src, tgt),
                "{flag} should fire: {src:?} → {tgt:?}"
            );
        }
        for (src, tgt) in good {
            assert!(
                !fires(flag, src, tgt),
                "{flag} should not fire: {src:?} → {tgt:?} ({:?})",
                check(src, tgt)
            );
        }
    }

    #[test]
    fn numbers_flag() {
        cases(
            Flag::Numbers,
            &[
                // Dropped.
                (
                    "قُتل 164 شخصاً في الاشتباكات.",
                    "People were killed in the clashes.",
                ),
                // Changed.
                ("في عام ٢٠٢٢ ارتفعت الأسعار.", "In 2023 prices rose."),
                (
                    "ارتفع التضخم إلى 3,5 في المئة.",
                    "Inflation rose to 35 percent.",
                ),
                (
                    "بلغ العجز 1,5 مليار دولار.",
                    "The deficit reached $15 billion.",
                ),
                // Two in the source, one in the target.
                (
                    "اعتقل 5 أشخاص في المدينة و5 في العاصمة.",
                    "5 people were arrested in the city and others in the capital.",
                ),
                // A date's parts.
                ("وقع ذلك في 12.05.2022.", "It happened on 12.05.2021."),
                // A word for the wrong number.
                ("وصل 3 وزراء.", "Four ministers arrived."),
                (
                    "في 7/1/2022 بدأت الاحتجاجات.",
                    "On 7 February 2022 the protests began.",
                ),
            ],
            &[
                ("في عام ٢٠٢٢ ارتفعت الأسعار.", "In 2022 prices rose."),
                ("في عام ۱۴۰۰ ارتفعت الأسعار.", "In 1400 prices rose."),
                (
                    "ارتفع التضخم إلى 3,5 في المئة.",
                    "Inflation rose to 3.5 percent.",
                ),
                ("ارتفع التضخم إلى ٣٫٥ في المئة.", "Inflation rose to 3.5%."),
                ("ارتفع التضخم إلى 3.50%.", "Inflation rose to 3.5%."),
                ("حضر ١٬٠٠٠ شخص.", "1,000 people attended."),
                ("حضر 1,000 شخص.", "1000 people attended."),
                ("حضر 1.000.000 شخص.", "1,000,000 people attended."),
                ("بلغ الدين 1.234,5 دولار.", "The debt was $1,234.5."),
                (
                    "بلغ العجز 1,5 مليار دولار.",
                    "The deficit reached $1.5 billion.",
                ),
                (
                    "بلغ العجز 1,5 مليار دولار.",
                    "The deficit reached $1,500,000,000.",
                ),
                ("شارك 20 ألف متظاهر.", "20,000 protesters took part."),
                ("شارك 20000 متظاهر.", "20 thousand protesters took part."),
                ("وصل 3 وزراء.", "Three ministers arrived."),
                (
                    "في 7/1/2022 بدأت الاحتجاجات.",
                    "On 7 January 2022 the protests began.",
                ),
                ("عقد الاجتماع 2 مرة.", "The meeting was held twice."),
                ("بلغ عدد القتلى 25.", "The death toll reached twenty-five."),
                ("حضر 1000000 شخص.", "A million people attended."),
                (
                    "اعتقل 5 أشخاص في المدينة و5 في العاصمة.",
                    "5 people were arrested in the city and 5 in the capital.",
                ),
                ("في القرن 21.", "In the 21st century."),
                ("الفصل 007 من القانون.", "Chapter 7 of the law."),
                ("وقع ذلك في 12.05.2022.", "It happened on 12.05.2022."),
                // No numbers in the source; the target may add some.
                ("قتل ثلاثة أشخاص.", "3 people were killed."),
            ],
        );
    }

    #[test]
    fn an_ambiguous_number_does_not_take_the_partner_another_needs() {
        // `1,000` may be 1000 or 1; only 1 is left for it once 1000 has
        // the 1000 (a greedy pairing in source order would fail).
        assert!(!fires(Flag::Numbers, "1,000 و1000", "1000 and 1"));
        assert!(fires(Flag::Numbers, "1,000 و1000", "1000 and 2"));
    }

    #[test]
    fn long_spans_are_checked_in_linear_time() {
        // A table pasted as one line: 20,000 numbers and names on each side.
        let src: String = (0..20_000)
            .map(|i| format!("{} Name{} ", i % 7, i % 5))
            .collect();
        let start = std::time::Instant::now();
        assert!(!fires(Flag::Numbers, &src, &src));
        assert!(!fires(Flag::Latin, &src, &src));
        let dropped = src.replacen("6 ", "", 1);
        assert!(fires(Flag::Numbers, &src, &dropped));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn any_text_is_checked_without_panicking() {
        // Pieces that meet at awkward places: separators next to digits of
        // both scripts, addresses, marks, joiners, multi-byte letters.
        let pieces = [
            "1",
            "٢",
            "۳",
            ".",
            ",",
            "٫",
            "٬",
            "/",
            "@",
            "#",
            "-",
            "'",
            "’",
            "&",
            "_",
            " ",
            "\n",
            "a",
            "KNB",
            "É",
            "ß",
            "ق",
            "\u{064e}",
            "\u{0640}",
            "ﻣ",
            "www.",
            "http://",
            "x.io",
            "million",
            "مليار",
            "twenty",
            "five",
            "🙂",
            "\u{301}",
            "(",
            "»",
            "،",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut text = |len: usize| -> String {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    pieces[(state % pieces.len() as u64) as usize]
                })
                .collect()
        };
        for i in 0..3000 {
            let (src, tgt) = (text(i % 40), text((i * 7) % 50));
            let flags = check(&src, &tgt);
            assert!(flags.windows(2).all(|w| w[0] < w[1]), "{flags:?}");
            // A pair with itself: nothing missing, nothing untranslated
            // that was not Arabic already.
            let same = check(&src, &src);
            assert!(!same.contains(&Flag::Numbers), "{src:?}");
            assert!(!same.contains(&Flag::Latin), "{src:?}");
            assert!(!same.contains(&Flag::Loop), "{src:?}");
        }
    }

    #[test]
    fn latin_flag() {
        cases(
            Flag::Latin,
            &[
                (
                    "قالت لجنة الأمن القومي (KNB) إنها اعتقلت رئيسها.",
                    "The National Security Committee said it had arrested its head.",
                ),
                (
                    "للمزيد زوروا https://example.org/report-2022.",
                    "For more, visit the website.",
                ),
                (
                    "راسلونا على info@example.org.",
                    "Write to us at info @ example.org.",
                ),
                ("كتب @AbishKZ على تويتر.", "Abish wrote on Twitter."),
                // A substring of another word is not the token.
                ("قال مسؤول في AI.", "An official said."),
                (
                    "التقى بممثلي Kassym-Jomart.",
                    "He met representatives of Kassym.",
                ),
                (
                    "المصدر: pic.twitter.com/ol4kapoEQ4",
                    "Source: pic.twitter.com/ol4kapoeq",
                ),
                ("المصدر: bit.ly/3FTnezU", "Source: bit.ly"),
                ("قال (@dw_arabic) ذلك.", "He said so."),
            ],
            &[
                (
                    "قالت لجنة الأمن القومي (KNB) إنها اعتقلت رئيسها.",
                    "The National Security Committee (knb) said it had arrested its head.",
                ),
                (
                    "للمزيد زوروا https://example.org/report-2022.",
                    "For more, visit https://example.org/report-2022",
                ),
                ("كتب @AbishKZ على تويتر.", "@AbishKZ wrote on Twitter."),
                ("تراجع نفوذ KNB.", "KNB's influence waned."),
                ("قال مسؤول في الـ U.S.", "A U.S. official said."),
                ("قال O’Brien ذلك.", "O'Brien said so."),
                ("أُصيب بـ COVID-19.", "He caught COVID-19."),
                ("أُصيب بـ COVID-19.", "He caught COVID."),
                ("سقطت طائرة MH17.", "Flight MH17 crashed."),
                ("طائرة MH17 و F-16.", "MH17 and F-16 planes."),
                // A typo glues a date to a word: the word is still found.
                ("7.1.2022In Kazakhstan", "7.1.2022 In Kazakhstan"),
                ("7.1.2022In Kazakhstan", "7.1.2022In Kazakhstan"),
                (
                    "المصدر: pic.twitter.com/ol4kapoEQ4",
                    "Source: pic.twitter.com/ol4kapoEQ4.",
                ),
                ("قال (@dw_arabic) ذلك.", "@dw_arabic said so."),
                // An Arabic tag: its Arabic is translated, its Latin kept.
                ("#مسائية_DW", "#Evening_DW"),
                (
                    "الصورة: Sputnik Kremlin/dpa/picture-alliance",
                    "Photo: Sputnik Kremlin/dpa/picture-alliance",
                ),
                // One letter: a list marker, not a name.
                ("(a) البند الأول.", "The first item."),
                ("لا حروف لاتينية هنا.", "No Latin letters here."),
            ],
        );
    }

    #[test]
    fn length_flag() {
        let src = "انزلقت كازاخستان في الفوضى وأعمال العنف في الشوارع، ما بدا للعالم على أنه انتفاضة شعبية ضد الحكومة.";
        let good = "Kazakhstan slid into chaos and street violence, in what looked to the world like a popular uprising against the government.";
        cases(
            Flag::Length,
            &[
                // Truncated after the first clause.
                (src, "Kazakhstan slid into chaos."),
                // Dropped.
                (src, ""),
                ("نعم.", " "),
                // Runaway.
                (
                    "بدأت الاحتجاجات.",
                    "The protests began, and then the protests spread to every city of the country, and the government fell.",
                ),
                (src, &format!("{good} {good} {good}")),
            ],
            &[
                (src, good),
                // Headlines and labels: short, their ratio meaningless.
                ("بؤرة صراع؟", "A focus of conflict?"),
                ("س:", "Question:"),
                ("د.", "Dr."),
                ("…", ""),
            ],
        );
        // Diacritics and tatweel are typing habits, not length.
        assert_eq!(letters("قَالَ الـــــرَّئِيسُ ٢٠٢٢"), letters("قال الرئيس 2022"));
    }

    #[test]
    fn loop_flag() {
        cases(
            Flag::Loop,
            &[
                ("قال إن", "He said that the the the the government"),
                (
                    "في المدينة",
                    "in the city, in the city, in the city, in the city",
                ),
                (
                    "قالت الحكومة",
                    "The government said that the government said that the government said that",
                ),
                ("ضحك", "Hahahahahahahahahahaha"),
                ("ضحك", "لكلكلكلكلكلكلكلكلكلكلكلكلك"),
                (
                    "ذهب الولد إلى المدرسة.",
                    ".1.2022.1.2022.1.2022.1.2022.1.2022.1.2022",
                ),
                (
                    "قال الرئيس",
                    "the president of the state of the president of the state of the president of the state",
                ),
            ],
            &[
                ("قال", "He said it again and again and again."),
                ("جدا", "It is very, very, very important."),
                ("ها ها ها", "Ha ha ha."),
                ("تبين الخطوات", "Step by step by step."),
                (
                    "رقم 1، رقم 2، رقم 3",
                    "No. 1, No. 2, No. 3, No. 4 and No. 5.",
                ),
                // The source repeats: a faithful repetition.
                ("لا لا لا لا لا", "No no no no no"),
                ("انتظر..................", "Wait.................."),
                (
                    "انزلقت كازاخستان في الفوضى وأعمال العنف في الشوارع.",
                    "Kazakhstan slid into chaos and violence in the streets, in what looked like an uprising.",
                ),
            ],
        );
    }

    #[test]
    fn untranslated_flag() {
        cases(
            Flag::Untranslated,
            &[
                ("قال الوزير إن الوضع هادئ.", "قال الوزير إن الوضع هادئ."),
                ("قال الوزير إن الوضع هادئ.", "The minister said الوضع هادئ."),
                ("ما هذا؟", "ﻣﺎ ﻫﺬا?"),
            ],
            &[
                (
                    "قال الوزير إن الوضع هادئ.",
                    "The minister said the situation is calm.",
                ),
                // Latin text copied through is a correct translation.
                ("COVID-19", "COVID-19"),
                ("https://example.org", "https://example.org"),
                // Arabic digits and a lone word in a long sentence.
                (
                    "في عام ٢٠٢٢ قالت الحكومة إن الوضع هادئ في جميع أنحاء البلاد.",
                    "In ٢٠٢٢ the government said the situation was calm throughout the country (البلاد).",
                ),
            ],
        );
    }

    #[test]
    fn a_good_translation_has_no_flags() {
        let src = "في أوائل يناير/كانون الثاني 2022، انزلقت كازاخستان في الفوضى وأعمال العنف في الشوارع، وفقاً لمسؤولين في لجنة الأمن القومي (KNB).";
        let tgt = "In early January 2022, Kazakhstan slid into chaos and street violence, according to officials of the National Security Committee (KNB).";
        assert_eq!(check(src, tgt), []);
        assert_eq!(check("", ""), []);
    }

    #[test]
    fn flags_come_in_order_and_serialise_by_name() {
        let flags = check("قال 5 من KNB إن الوضع هادئ في البلاد كلها اليوم.", "قال");
        assert_eq!(
            flags,
            [Flag::Numbers, Flag::Latin, Flag::Length, Flag::Untranslated]
        );
        assert_eq!(
            serde_json::to_string(&Flag::ALL).unwrap(),
            r#"["numbers","latin","length","loop","untranslated"]"#
        );
        for f in Flag::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
            let back: Flag = serde_json::from_value(f.name().into()).unwrap();
            assert_eq!(back, f);
        }
    }

    #[test]
    fn tally_counts_pairs_and_flags() {
        let mut t = Tally::default();
        assert_eq!(t.to_string(), "0 of 0 pairs flagged");
        t.add(&[]);
        t.add(&[Flag::Numbers, Flag::Length]);
        t.add(&[Flag::Length]);
        assert_eq!((t.pairs, t.flagged), (3, 2));
        assert_eq!(t.count(Flag::Length), 2);
        assert_eq!(t.to_string(), "2 of 3 pairs flagged (numbers 1, length 2)");
    }

    #[test]
    fn number_reading() {
        let vals = |s: &str| numbers(s, true);
        assert_eq!(vals("1,000"), [vec!["1000", "1"]]);
        assert_eq!(vals("3,5"), [vec!["3.5"]]);
        assert_eq!(vals("٣٫٥٠"), [vec!["3.5"]]);
        assert_eq!(vals("1.234.567,80"), [vec!["1234567.8"]]);
        assert_eq!(vals("192.168.1.1"), [["192"], ["168"], ["1"], ["1"]]);
        assert_eq!(vals("2.5 bn"), [vec!["2.5", "2500000000"]]);
        assert_eq!(vals("0.001"), [vec!["0.001"]]);
        assert_eq!(vals("0,5"), [vec!["0.5"]]);
        assert_eq!(vals("ninety-nine and 0"), [["99"], ["0"]]);
        assert!(numbers("three", false).is_empty());
    }
}
