//! What the aligner knows of one sentence (or of a block of consecutive
//! sentences at a coarse level): its length, the anchors that need no model
//! (numbers, Latin-script tokens, month names, punctuation shape) and, when a
//! translation is compared, its hashed character n-gram counts.

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
    /// A number written in digits (Arabic-Indic or Latin), normalised.
    Number,
    /// A number written as an English word, or a month name: it may match a
    /// digit or a month on the other side but is never missed (`one of the`
    /// is not a number; `مارس` is also a verb).
    Soft,
    /// A Latin-script token (name, acronym, URL) in a text that is mostly
    /// in another script; it is looked for among the other side's tokens.
    Latin,
    /// Punctuation shape: `?`/`؟`, `!`, quotation marks, brackets, colons.
    Punct,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Feat {
    /// Letters and digits, without white space, combining marks or tatweel.
    pub len: f32,
    /// The paragraph the sentence is in (the first one, for a block).
    pub para: u32,
    /// The last paragraph (differs from `para` for a block that spans two).
    pub para_end: u32,
    /// Sorted `(kind, hash)`: numbers, soft anchors, punctuation; and for a
    /// mostly non-Latin text its Latin tokens.
    pub anchors: Vec<(Kind, u64)>,
    /// Sorted hashes of every Latin token, for a mostly Latin text: where
    /// the other side's Latin anchors are looked for.
    pub words: Vec<u64>,
    /// Hashed character n-gram counts (saturating) and their total.
    pub grams: Option<Box<[u8]>>,
    pub grams_total: u32,
}

impl Feat {
    /// The features of `text` in paragraph `para`. `latin_side` says
    /// whether the text's side is mostly Latin script (see
    /// [`mostly_latin`]); `grams` whether to count n-grams of `gram_text`
    /// (the text itself, or its translation on the source side).
    pub fn new(text: &str, para: u32, latin_side: bool, gram_text: Option<&str>) -> Feat {
        let mut anchors = Vec::new();
        let mut words = Vec::new();
        let tokens = tokens(text);
        let mut months = Vec::new();
        for (k, tok) in tokens.iter().enumerate() {
            match tok {
                Token::Number(n) => anchors.push((Kind::Number, hash(n.as_bytes()))),
                Token::Latin(w) => {
                    let lower = w.to_lowercase();
                    if latin_side {
                        words.push(hash(lower.as_bytes()));
                        if let Some(n) = number_word(&lower) {
                            anchors.push((Kind::Soft, hash(n.to_string().as_bytes())));
                        }
                        if let Some(m) = english_month(w) {
                            months.push(m);
                        }
                    } else {
                        anchors.push((Kind::Latin, hash(lower.as_bytes())));
                    }
                }
                Token::Word(w) => {
                    let next = tokens.get(k + 1).and_then(|t| match t {
                        Token::Word(n) => Some(n.as_str()),
                        _ => None,
                    });
                    if let Some(m) = arabic_month(w, next) {
                        months.push(m);
                    }
                }
                Token::Punct(p) => anchors.push((Kind::Punct, *p as u64)),
            }
        }
        // A month named twice (`يناير/كانون الثاني`) is one date.
        months.sort_unstable();
        months.dedup();
        anchors.extend(
            months
                .into_iter()
                .map(|m| (Kind::Soft, hash(format!("month{m}").as_bytes()))),
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
            len: length(text) as f32,
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
            (Some(a), Some(b)) => Some(a.iter().zip(b.iter()).map(|(x, y)| x.saturating_add(*y)).collect()),
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
    for c in texts.into_iter().flat_map(str::chars).filter(|c| c.is_alphabetic()) {
        if c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(&c) {
            latin += 1;
        } else {
            other += 1;
        }
    }
    latin > other
}

/// Letters and digits: white space, punctuation, combining marks (harakat)
/// and tatweel say nothing about how much a sentence says.
fn length(text: &str) -> usize {
    text.chars()
        .filter(|&c| c.is_alphanumeric() && !is_mark(c))
        .count()
}

fn is_mark(c: char) -> bool {
    matches!(c, '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}' | '\u{0640}')
        || ('\u{0300}'..='\u{036F}').contains(&c)
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
            let b = (h.wrapping_add(order as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 53) as usize;
            counts[b % BUCKETS] = counts[b % BUCKETS].saturating_add(1);
            total += 1;
        }
    }
    (counts, total)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// Digits normalised: ASCII, `.` as the decimal mark, no thousands
    /// separators, no leading zeros.
    Number(String),
    /// A run of Latin letters and digits (with `.-_'@/:` inside: acronyms,
    /// URLs, e-mail addresses).
    Latin(String),
    /// A word in another script.
    Word(String),
    Punct(u8),
}

fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '\u{0660}'..='\u{0669}' => Some(c as u32 - 0x0660),
        '\u{06F0}'..='\u{06F9}' => Some(c as u32 - 0x06F0),
        _ => None,
    }
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

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if digit(c).is_some() {
            let (num, next) = number(&chars, i);
            out.extend(num.into_iter().map(Token::Number));
            i = next;
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || matches!(chars[i], '.' | '-' | '_' | '\'' | '’' | '@' | '/' | ':' | '%' | '?' | '=' | '&')
                        && chars.get(i + 1).is_some_and(|d| d.is_ascii_alphanumeric()))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token::Latin(word));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphabetic() || is_mark(chars[i])) && !chars[i].is_ascii() {
                i += 1;
            }
            let word: String = chars[start..i].iter().filter(|&&c| !is_mark(c)).collect();
            out.push(Token::Word(word));
        } else {
            if let Some(p) = punct(c) {
                out.push(Token::Punct(p));
            }
            i += 1;
        }
    }
    out
}

/// The number starting at `chars[i]` and where it ends. A separator (`.`,
/// `,`, `٫`, `٬`) between digits followed by exactly three digits is a
/// thousands separator; any other one a decimal mark (`3,5` = `3.5`, as
/// Arabic and most of Europe write it). More than one decimal mark
/// (`7.1.2022`) is a date or a version: its parts are numbers of their own.
fn number(chars: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut groups: Vec<String> = vec![String::new()];
    let mut seps: Vec<bool> = Vec::new(); // per separator: thousands?
    loop {
        while let Some(d) = chars.get(i).copied().and_then(digit) {
            groups.last_mut().unwrap().push(char::from_digit(d, 10).unwrap());
            i += 1;
        }
        let sep = chars.get(i).copied();
        let after = chars.get(i + 1).copied().and_then(digit);
        if !matches!(sep, Some('.' | ',' | '٫' | '٬')) || after.is_none() {
            break;
        }
        let run = chars[i + 1..].iter().take_while(|&&c| digit(c).is_some()).count();
        seps.push(run == 3 && sep != Some('٫'));
        groups.push(String::new());
        i += 1;
    }
    let decimals = seps.iter().filter(|t| !**t).count();
    let strip = |g: &str| {
        let t = g.trim_start_matches('0');
        if t.is_empty() { "0".to_string() } else { t.to_string() }
    };
    if decimals > 1 {
        return (groups.iter().map(|g| strip(g)).collect(), i);
    }
    let mut s = strip(&groups[0]);
    for (g, thousands) in groups[1..].iter().zip(&seps) {
        if !thousands {
            s.push('.');
        }
        s.push_str(g);
    }
    (vec![s], i)
}

fn number_word(w: &str) -> Option<u32> {
    const WORDS: [&str; 21] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen", "twenty",
    ];
    const TENS: [&str; 7] = ["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    if let Some(n) = WORDS.iter().position(|&x| x == w) {
        return Some(n as u32);
    }
    TENS.iter().position(|&x| x == w).map(|n| 30 + 10 * n as u32)
}

fn english_month(w: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ];
    MONTHS.iter().position(|&m| m == w).map(|m| m as u32 + 1)
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
    const MORE: [(&str, u32); 5] = [("أيار", 5), ("حزيران", 6), ("تموز", 7), ("آب", 8), ("أيلول", 9)];
    let stems = std::iter::once(word).chain(
        ['و', 'ب', 'ف', 'ل']
            .into_iter()
            .filter_map(|p| word.strip_prefix(p)),
    );
    for w in stems {
        if let Some(&(_, m)) = SINGLE.iter().chain(MORE.iter()).find(|(name, _)| *name == w) {
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

    fn numbers(text: &str) -> Vec<String> {
        tokens(text)
            .into_iter()
            .filter_map(|t| match t {
                Token::Number(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn numbers_are_normalised_across_scripts_and_conventions() {
        assert_eq!(numbers("عام ٢٠٢٢ و2022"), ["2022", "2022"]);
        assert_eq!(numbers("۱۹۹۰"), ["1990"]);
        assert_eq!(numbers("2,2 مليون و 3.5"), ["2.2", "3.5"]);
        assert_eq!(numbers("٣٫٥ و ١٬٠٠٠"), ["3.5", "1000"]);
        assert_eq!(numbers("1,000,000 and 1.000"), ["1000000", "1000"]);
        assert_eq!(numbers("7.1.2022 at 09"), ["7", "1", "2022", "9"]);
        assert_eq!(numbers("2022."), ["2022"]);
    }

    #[test]
    fn anchors_of_an_arabic_and_an_english_sentence_meet() {
        let ar = Feat::new(
            "في يناير/كانون الثاني 2022، قالت لجنة الأمن القومي (KNB) إن 3 قتلوا؟",
            0,
            false,
            None,
        );
        let en = Feat::new(
            "In January 2022, the National Security Committee (KNB) said three were killed?",
            0,
            true,
            None,
        );
        let kinds = |f: &Feat, k: Kind| f.anchors.iter().filter(|a| a.0 == k).count();
        assert_eq!(kinds(&ar, Kind::Number), 2);
        assert_eq!(kinds(&ar, Kind::Latin), 1);
        // One month, though named twice; `3` is a number, `three` a soft one.
        assert_eq!(kinds(&ar, Kind::Soft), 1);
        assert_eq!(kinds(&en, Kind::Soft), 2);
        assert_eq!(kinds(&en, Kind::Latin), 0);
        assert!(en.words.binary_search(&hash(b"knb")).is_ok());
        let month = hash(b"month1");
        assert!(ar.anchors.contains(&(Kind::Soft, month)));
        assert!(en.anchors.contains(&(Kind::Soft, month)));
        assert_eq!(kinds(&ar, Kind::Punct), kinds(&en, Kind::Punct));
    }

    #[test]
    fn length_ignores_harakat_tatweel_and_spaces() {
        assert_eq!(length("كَتَبَ  الـكتاب."), length("كتب الكتاب"));
        assert_eq!(length("a b, c"), 3);
    }

    #[test]
    fn latin_script_majority() {
        assert!(mostly_latin(["The KNB said", "more"]));
        assert!(!mostly_latin(["قالت لجنة KNB"]));
    }

    #[test]
    fn ngram_counts_cover_orders_one_to_six() {
        let (g, total) = ngrams("ab cd");
        // 4 characters: 4 + 3 + 2 + 1 n-grams of orders 1..4.
        assert_eq!(total, 10);
        assert_eq!(g.iter().map(|&c| c as u32).sum::<u32>(), 10);
    }
}
