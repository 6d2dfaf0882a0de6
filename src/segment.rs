//! Sentence segmentation of one paragraph of Arabic (or mixed Arabic/English)
//! news text: this module owns the rules that decide where a sentence ends —
//! terminal punctuation and its trailing closers, and the exceptions for
//! numbers, dates, initials, Arabic and Latin abbreviations, era markers after
//! years, URLs, handles and quotations that close inside a running sentence.
//!
//! It follows UAX #29 (sentence boundaries) in spirit — a terminator run plus
//! closers ends a sentence when followed by white space, not before a
//! lower-case letter or a continuation mark — but it does not call
//! `unicode-segmentation`'s sentence iterator. That iterator's SB8 look-ahead
//! is unbounded (the crate marks it "currently quadratic"): `a.` followed by
//! 80 KB of spaces took 27 s in a release build, 4x the time of 40 KB. And its
//! rules are wrong for this text in ways we would have to undo anyway: it
//! breaks after `Dr.`, `ك.` and every `.` before an Arabic letter (Arabic is
//! `OLetter`, so SB8 never applies), it does not treat `…` as a terminator,
//! and it breaks after `؟` glued to a URL query. Instead there is one forward
//! pass; every decision looks at most `WINDOW` bytes behind or ahead, and
//! Unicode properties come from `char` (white space, case, alphabetic,
//! numeric) and from `unicode-segmentation`'s grapheme clusters; the only
//! hand-written character sets are the punctuation the rules name and the
//! bidi marks and harakat that must be looked through. "Caseless letter" (alphabetic, neither upper
//! nor lower case) stands for Arabic script: it is what makes a letter start
//! a new sentence without a capital.
//!
//! Decisions on ambiguous cases (each one is in the test table):
//! - `.` glued to the next letter or digit (`7.1.2022In`, `bit.ly/x`,
//!   `د.محمد`) is never a boundary: a missing space after a full stop is rarer
//!   in edited news than a domain name, a number or a glued Arabic title.
//!   `?` `!` `؟` `۔` glued to a letter, `#` or `@` do end a sentence
//!   (`عليها؟#مسائية`), unless the token looks like a URL or e-mail.
//! - Exactly two dots (`..`) are the Arabic headline pause
//!   (`“كازاخستان”.. مكسر عصا`), not a terminator; `...`, `…` and `. . .` are,
//!   except after a single word opening the sentence (`#كازاخستان... لماذا`)
//!   and inside brackets (`(...)`, `[…]`, `(!)`), which mark an elision.
//! - An ellipsis is also an omission, not an end, after `,` `،` `;` `؛` `:` or
//!   an opener (`قال، ... إن`), before `إلخ` or a closing bracket (`(روسيا ...)
//!   في`), and inside a bracket or quotation opened within `WINDOW` bytes
//!   behind that closes within `WINDOW` ahead (`«قال ... ثم»`). An ellipsis
//!   that closes a quotation (`...»`) or has its own stop (`...).`) still ends.
//! - `م.` `هـ.` `ق.م.` after a year, and `ص.`/`م.` after a clock time, end the
//!   sentence unless the next word continues it (`إلى`, `حتى`, `و`, a digit):
//!   a reader sees one dot doing both jobs at `عام 1950م. وكان`.
//! - Any other single Arabic letter with a dot is an initial or an
//!   abbreviation (`ك. ك. ماسيموف`, `د.`, `ص.`, `ج.`) and never ends a
//!   sentence; a single Latin capital is an initial unless the next word is a
//!   common English sentence opener or Arabic (`Plan B. The`).
//! - A Latin letter spelled in Arabic (`إف.` `جي.` `إتش.`, list at
//!   `is_letter_name`) is an initial before another initial, or before an
//!   Arabic word that is not a common opener or definite noun, unless a number
//!   precedes it: `جون إف. كينيدي` runs on, `فيتامين دي. وقال` and `5 جي. تغطي` end.
//! - A quotation that ends with its own terminator (`"…!" قال`) runs on when
//!   the next word is lower-case Latin or an Arabic verb of saying; after
//!   `". ` the period is the sentence's own and it always ends.
//! - A sentence inside a longer quotation ends at its terminator even though
//!   the quotation is still open: quotes are not tracked.
//! - Unlike UAX #29, a dash after a stop (`. – KNB`) does not continue the
//!   sentence: in Arabic news ` - ` after a full stop opens a clause or byline.
//! - Reference lines are split like prose (`Highway. 8.1.2022. Sputnik. On:`).

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

/// Bytes that any look-behind or look-ahead may inspect; keeps the pass linear.
const WINDOW: usize = 64;

/// Byte ranges of the sentences of one paragraph (one line of text, no line breaks inside).
/// Ranges are in order, non-overlapping, non-empty, and trimmed: they never start or end with
/// white space (Unicode white space incl. U+00A0). Text between ranges is only white space.
pub fn sentence_ranges(paragraph: &str) -> Vec<Range<usize>> {
    let s = paragraph;
    let mut out = Vec::new();
    // Start of the sentence being built, `None` while in the gap between sentences.
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut word_start = 0;
    let mut in_space = true;
    // Whether the current sentence has white space in it, i.e. more than one token.
    let mut multi_word = false;
    let mut last_char: Option<char> = None;
    let mut prev_word_last: Option<char> = None;
    let mut token_urlish = false;
    let mut pairs = OpenPairs::default();
    let mut ahead = PairAhead::default();
    let mut i = 0;
    while let Some(c) = char_at(s, i) {
        step();
        if c.is_whitespace() {
            if !in_space {
                in_space = true;
                prev_word_last = last_char;
                multi_word = true;
            }
            i += c.len_utf8();
            continue;
        }
        if in_space {
            in_space = false;
            word_start = i;
            token_urlish = false;
            if start.is_none() {
                start = Some(i);
                multi_word = false;
                prev_word_last = None;
            }
        }
        if !is_terminator(c) {
            pairs.see(s, i, c);
            token_urlish |= matches!(c, '/' | '@' | ':' | '=' | '&');
            last_char = Some(c);
            i += c.len_utf8();
            end = i;
            continue;
        }

        let mut cluster = Cluster::default();
        let mut j = i;
        while let Some(d) = char_at(s, j) {
            if is_terminator(d) {
                cluster.add_terminator(d);
            } else if is_closer(d) {
                cluster.add_closer(d);
                pairs.close(d);
            } else if !is_invisible(d) {
                // A bidi mark right after the stop (`.\u{200F} `) is part of it.
                break;
            }
            step();
            j += d.len_utf8();
            last_char = Some(d);
        }
        // Only a stop that could be an ellipsis asks whether its bracket or
        // quotation closes ahead; the memo keeps those scans linear overall.
        let maybe_ellipsis = cluster.is_ellipsis() || (cluster.dots == 1 && i == word_start);
        let in_open_pair = maybe_ellipsis
            && !cluster.strong
            && !cluster.closers
            && pairs
                .innermost(i)
                .is_some_and(|close| ahead.closes_within(s, close, j));
        let ctx = Context {
            text: s,
            word: word_start..i,
            multi_word,
            prev_word_last,
            token_urlish,
            cluster,
            in_open_pair,
        };
        let boundary = ctx.is_boundary(&peek_next(s, j));
        token_urlish |= cluster.dots > 0;
        end = j;
        i = j;
        if boundary {
            out.push(start.take().unwrap_or(word_start)..j);
            prev_word_last = None;
            if char_at(s, j).is_some_and(|d| !d.is_whitespace()) {
                // Glued start (`؟#tag`): the next sentence begins right here.
                start = Some(j);
                word_start = j;
                multi_word = false;
                token_urlish = false;
                last_char = None;
            }
        }
    }
    if let Some(st) = start {
        out.push(st..end);
    }
    out
}

#[derive(Clone, Copy, Default)]
struct Cluster {
    dots: usize,
    strong: bool,
    ellipsis_char: bool,
    closers: bool,
    /// A quotation mark among the closers (not only brackets).
    quote_closer: bool,
    /// A terminator after a closer (`...).`): the sentence's own stop.
    stop_after_closer: bool,
}

impl Cluster {
    fn add_closer(&mut self, c: char) {
        self.closers = true;
        self.quote_closer |= !matches!(c, ')' | ']' | '}');
    }

    fn add_terminator(&mut self, c: char) {
        self.stop_after_closer |= self.closers;
        match c {
            '.' => self.dots += 1,
            '…' => self.ellipsis_char = true,
            _ => self.strong = true,
        }
    }

    fn is_ellipsis(&self) -> bool {
        self.ellipsis_char || self.dots >= 2
    }
}

/// What follows a terminator cluster, seen through a bounded window.
struct Next<'a> {
    /// Nothing but (at most a window of) white space follows: the paragraph ends.
    at_end: bool,
    /// The character right after the cluster, when it is not white space.
    glued: Option<char>,
    /// First character after white space, opening quotes, brackets and bidi marks.
    first: Option<char>,
    /// The letters and digits starting at `first`, cut at the window.
    word: &'a str,
    /// The character right after `word`, inside the window.
    after_word: Option<char>,
}

fn peek_next(s: &str, from: usize) -> Next<'_> {
    let limit = floor_boundary(s, from.saturating_add(WINDOW).min(s.len()));
    let glued = char_at(s, from).filter(|c| !c.is_whitespace());
    let mut k = from;
    let mut first = None;
    while let Some(c) = char_at(s, k).filter(|_| k < limit) {
        step();
        if !c.is_whitespace() && !is_opener(c) && !is_invisible(c) {
            first = Some(c);
            break;
        }
        k += c.len_utf8();
    }
    let mut w = k;
    if first.is_some_and(char::is_alphanumeric) {
        while let Some(c) = char_at(s, w).filter(|_| w < limit) {
            step();
            if !c.is_alphanumeric() {
                break;
            }
            w += c.len_utf8();
        }
    }
    Next {
        // A window of nothing but white space is as good as the end.
        at_end: first.is_none() && (k >= s.len() || glued.is_none()),
        glued,
        first,
        word: &s[k..w],
        after_word: char_at(s, w).filter(|_| w < limit),
    }
}

struct Context<'a> {
    text: &'a str,
    /// The token before the cluster, from the last white space.
    word: Range<usize>,
    multi_word: bool,
    prev_word_last: Option<char>,
    token_urlish: bool,
    cluster: Cluster,
    /// The cluster has no closers, and the innermost bracket or quotation
    /// opened within `WINDOW` bytes behind is closed within `WINDOW` ahead.
    in_open_pair: bool,
}

impl Context<'_> {
    fn is_boundary(&self, next: &Next) -> bool {
        let cl = self.cluster;
        if self.text[self.word.clone()].ends_with(['(', '[']) {
            // `(...)`, `[…]`, `(!)`, `(؟)`: an editorial mark inside brackets.
            return false;
        }
        if next.at_end {
            return true;
        }
        if let Some(g) = next.glued {
            let starts = (g.is_alphabetic() && !g.is_lowercase()) || g == '#' || g == '@';
            if !cl.strong || self.token_urlish || !starts {
                return false;
            }
        }
        let Some(f) = next.first else { return true };
        if matches!(f, ',' | '،' | ';' | '؛' | ':') || f.is_lowercase() {
            return false;
        }
        if !cl.strong && matches!(f, '.' | '…') {
            // Spaced ellipsis `. . .`: the run goes on after the space.
            return false;
        }
        if self.is_omission(next) {
            return false;
        }
        if cl.closers && continues_after_quote(next.word) {
            return false;
        }
        if cl.strong {
            return true;
        }
        if cl.is_ellipsis() {
            let two_dots = cl.dots == 2 && !cl.ellipsis_char;
            return !two_dots && self.multi_word;
        }
        if self.is_enumerator() {
            return false;
        }
        if cl.closers {
            return true;
        }
        self.after_single_dot(next)
    }

    /// An ellipsis (`...`, `…`, `. . .`) marking words left out of a running
    /// sentence: after clause punctuation or an opener (`قال، ... إن`,
    /// `«... ثم`), before `إلخ`, before a closing bracket (`(روسيا ...) في`),
    /// or inside a bracket or quotation that closes ahead (`«قال ... ثم»`).
    fn is_omission(&self, next: &Next) -> bool {
        let cl = self.cluster;
        if cl.strong || !(cl.is_ellipsis() || (cl.dots == 1 && self.word.is_empty())) {
            return false;
        }
        let (before, dots_before) = before_ellipsis(self.text, self.word.end);
        // A lone `.` token ends an ellipsis only as the last of `. . .`.
        if !cl.is_ellipsis() && dots_before < 2 {
            return false;
        }
        if cl.closers {
            // `…)` leaves the aside open to the sentence; `...).` and `...»`
            // end as before.
            return !cl.quote_closer && !cl.stop_after_closer;
        }
        let after_mark = before.is_some_and(|(at, b)| {
            matches!(b, ',' | '،' | ';' | '؛' | ':') || opens_pair(self.text, at, b).is_some()
        });
        after_mark || has_word("إلخ الخ", &plain(next.word)) || self.in_open_pair
    }

    /// `1. Introduction`, `٣. الاقتصاد`, `IV. Results`, `2.) Item`: a list
    /// number opening the paragraph or sentence.
    fn is_enumerator(&self) -> bool {
        if self.multi_word || self.word.len() > 8 {
            return false;
        }
        let w = &self.text[self.word.clone()];
        let digits = w.chars().count() <= 3 && w.chars().all(char::is_numeric);
        let roman = w.len() <= 4 && is_roman_numeral(w);
        !w.is_empty() && (digits || roman)
    }

    /// A lone `.`: decide between abbreviation / initial / number and full stop.
    fn after_single_dot(&self, next: &Next) -> bool {
        if self.word.is_empty() {
            return true;
        }
        if self.word.len() > WINDOW {
            // Too long for any abbreviation; only a number could matter and
            // a long number before ". " ends the sentence anyway.
            return true;
        }
        let raw = &self.text[self.word.clone()];
        steps(raw.len());
        let w = raw.trim_start_matches(|c| is_opener(c) || is_invisible(c));
        let Some(last) = w.chars().next_back() else {
            return true;
        };
        let next_numeric = next.first.is_some_and(char::is_numeric);

        if last.is_numeric() {
            return true;
        }
        let core = plain(w);
        let after_number = self.prev_word_last.is_some_and(char::is_numeric);
        if (after_number && is_era_or_clock_marker(&core)) || has_numeric_era_suffix(&core) {
            return !continues_after_era(next);
        }
        if is_single_caseless_letter(&core) {
            return false;
        }
        if is_letter_name(&core) {
            return !self.letter_name_is_initial(next);
        }
        if core.strip_prefix('و').is_some_and(is_letter_name) && next_is_initial(next) {
            // `وتي. إس. إليوت`: a conjunction glued to the first of a chain of initials.
            return false;
        }
        if core.contains('.') {
            return self.dotted_abbreviation(&core, after_number, next);
        }
        let mut letters = core.chars();
        if let (Some(c), None) = (letters.next(), letters.next())
            && c.is_alphabetic()
        {
            // A single Latin letter: an initial (`David E. Sanger`, `p. 5`).
            return c.is_uppercase() && (is_sentence_opener(next) || starts_caseless(next));
        }
        if has_word(LATIN_TITLES, &core) {
            return false;
        }
        if has_word(LATIN_BEFORE_NUMBER, &core) {
            return !next_numeric;
        }
        if has_word(LATIN_MAY_END, &core) {
            return is_sentence_opener(next);
        }
        true
    }

    /// `جون إف. كينيدي`, `جي. كي. رولينغ`: a Latin letter spelled in Arabic is
    /// an initial when another initial follows, or an Arabic word that is not
    /// a common sentence opener, and no number comes before (`5 جي.` is a
    /// label). Otherwise it ends the sentence (`فيتامين دي. وقال`, `اتصل بي. ثم`).
    fn letter_name_is_initial(&self, next: &Next) -> bool {
        next_is_initial(next)
            || (starts_caseless(next)
                && !is_arabic_opener(next.word)
                && !self.prev_word_last.is_some_and(char::is_numeric))
    }

    fn dotted_abbreviation(&self, core: &str, after_number: bool, next: &Next) -> bool {
        let parts_ok = core
            .split('.')
            .all(|p| !p.is_empty() && p.chars().count() <= 3 && p.chars().all(char::is_alphabetic));
        if !parts_ok {
            // A domain or file name (`example.com.`): the last dot is a full stop.
            return true;
        }
        if core.chars().any(is_caseless_letter) {
            if after_number && (core == "ق.م" || core == "ب.م") {
                return !continues_after_era(next);
            }
            return false;
        }
        if has_word(LATIN_NEVER_END, core) {
            return false;
        }
        is_sentence_opener(next)
    }
}

/// The next token is an initial: a letter name, a single Arabic letter or a
/// Latin capital, then a dot (`جي. كي.`, `جيه. ر.`).
fn next_is_initial(next: &Next) -> bool {
    let w = next.word;
    next.after_word == Some('.')
        && (is_letter_name(w)
            || is_single_caseless_letter(&plain(w))
            || (w.chars().count() == 1 && w.chars().all(char::is_uppercase)))
}

fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..)?.chars().next()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '؟' | '۔' | '…' | '‼' | '⁇' | '⁈' | '⁉')
}

fn is_closer(c: char) -> bool {
    matches!(c, '”' | '’' | '»' | '›' | '"' | '\'' | ')' | ']' | '}')
}

fn is_opener(c: char) -> bool {
    // `”` opens quotes in some Arabic typesetting (`و”الشخصيات`).
    matches!(
        c,
        '“' | '‘' | '„' | '«' | '‹' | '"' | '\'' | '(' | '[' | '{' | '”'
    )
}

/// Bidi and zero-width format marks common in Arabic web text; invisible, so
/// they must not hide the first letter of the next sentence.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Arabic harakat (short vowels, shadda, sukun, dagger alif): they sit on a
/// letter and do not change which word it is.
fn is_arabic_mark(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}')
}

fn is_caseless_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_lowercase() && !c.is_uppercase()
}

fn starts_caseless(next: &Next) -> bool {
    next.first.is_some_and(is_caseless_letter)
}

const TATWEEL: char = '\u{0640}';

/// One user-perceived letter, optionally stretched by tatweel (`هـ`).
fn is_single_caseless_letter(core: &str) -> bool {
    let base = core.trim_end_matches(TATWEEL);
    let mut g = base.graphemes(true);
    matches!((g.next(), g.next()), (Some(one), None)
        if one.chars().next().is_some_and(|c| is_caseless_letter(c) && c != TATWEEL))
}

/// `م` (CE) / `هـ` (AH) after a year, `م`/`ص` (pm/am) after a clock time.
fn is_era_or_clock_marker(core: &str) -> bool {
    matches!(core.trim_end_matches(TATWEEL), "م" | "ه" | "ص")
}

/// `2022م`, `1443هـ`: a year with the era letter glued on.
fn has_numeric_era_suffix(core: &str) -> bool {
    let letters = core.trim_start_matches(char::is_numeric);
    letters.len() < core.len() && matches!(letters.trim_end_matches(TATWEEL), "م" | "ه")
}

/// Words that carry a date or clock phrase on (`من 1950 م. إلى 1960 م.`,
/// `10 ص. بتوقيت موسكو`).
fn continues_after_era(next: &Next) -> bool {
    const CARRY_ON: &str = "إلى الى حتى و أو او وحتى وإلى والى الموافق بتوقيت بالتوقيت تقريبا";
    let mut w = next.word.chars();
    next.first.is_some_and(char::is_numeric)
        || (w.next() == Some('و') && w.next().is_some_and(char::is_numeric))
        || has_word(CARRY_ON, &plain(next.word))
}

/// Words that, right after a quotation closed on its own terminator, attribute
/// or continue it instead of starting a new sentence (`"لن نتراجع!" قال
/// الوزير`, `"سنرد!" ثم غادر`, `"…." مضيفاً أن`): verbs and participles of
/// saying, and a few connectives. `وقال`/`وأضاف` are not here: with the
/// conjunction they open the next sentence of a report.
fn continues_after_quote(word: &str) -> bool {
    has_word(ATTRIBUTION, &plain(word))
}

const ATTRIBUTION: &str = "\
    قال قالت يقول تقول أضاف أضافت يضيف تضيف تابع تابعت أكد أكدت يؤكد صرح صرحت أوضح أوضحت \
    رد ردت كتب كتبت سأل سألت علق علقت مضيفا مضيفة مؤكدا مؤكدة مشيرا مشيرة موضحا موضحة \
    قائلا قائلة معتبرا معتبرة لافتا لافتة ثم حسب بحسب وفق وفقا";

/// Latin letter names as Arabic spells them (A إيه, B/P بي, C سي, D دي, E إي,
/// F إف, G جي, H إتش, I آي, J جيه, K كي, L إل, M إم, N إن, O أو, Q كيو, R آر,
/// S إس, T تي, U يو, V في/ڤي, W دبليو, X إكس, Y واي, Z زد), compared after
/// `fold` so hamza-less and `ى` spellings match. Left out: `زي` and `جاي`,
/// dialect words ("like", "coming") that end sentences more often than they
/// abbreviate names.
fn is_letter_name(core: &str) -> bool {
    const NAMES: &str = "\
        إيه أيه بي سي دي إي إف جي إتش إيتش آي جيه كي كيه إل إم إن أو كيو آر إس تي يو في ڤي \
        دبليو إكس واي زد";
    has_folded(NAMES, core)
}

/// A word that commonly starts an Arabic sentence and is not a name: a
/// function word or verb of saying, bare or after `و`/`ف`, or a definite
/// noun (`ال` or `لل` and at least three more letters, so `والاس` is a name).
/// The article is checked unfolded: it never carries hamza, names often do
/// (`إليوت`, `ألين`).
fn is_arabic_opener(word: &str) -> bool {
    const OPENERS: &str = "\
        و ف ثم لكن لكنه لكنها كما إذ إذا إن أن إنه إنها لأن حيث بينما أما إلا بل قد لقد كان \
        كانت يكون تكون ليس ليست لم لن لا ما هل هذا هذه ذلك تلك هؤلاء هناك هو هي هم نحن أنا \
        في من على إلى عن مع بعد قبل منذ عند خلال كذلك أيضا";
    let w = plain(word);
    let bare = w
        .strip_prefix(['و', 'ف'])
        .filter(|r| r.chars().count() >= 2);
    [Some(w.as_str()), bare].into_iter().flatten().any(|w| {
        let definite = ["ال", "لل"]
            .iter()
            .any(|a| w.strip_prefix(a).is_some_and(|r| r.chars().count() >= 3));
        definite || has_folded(OPENERS, w) || has_folded(ATTRIBUTION, w)
    })
}

/// Spelling variants writers mix freely: harakat dropped, every alif with
/// hamza or madda as bare alif, final alif maqsura as ya.
fn fold(word: &str) -> impl Iterator<Item = char> + '_ {
    word.chars()
        .filter(|&c| !is_arabic_mark(c))
        .map(|c| match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ى' => 'ي',
            c => c,
        })
}

/// Membership in a space-separated word list, both sides folded.
fn has_folded(list: &str, word: &str) -> bool {
    fold(word).next().is_some()
        && list
            .split_ascii_whitespace()
            .any(|w| fold(w).eq(fold(word)))
}

/// The word without harakat, which writers add or leave out at will.
fn plain(word: &str) -> String {
    word.chars().filter(|&c| !is_arabic_mark(c)).collect()
}

/// Membership in a space-separated word list.
fn has_word(list: &str, word: &str) -> bool {
    !word.is_empty() && list.split_ascii_whitespace().any(|w| w == word)
}

/// The last character before the ellipsis ending at `at` (with its
/// position), looking back through white space, bidi marks and the dots of a
/// spaced `. . .`, and how many dots that walk crossed; within `WINDOW`.
fn before_ellipsis(s: &str, at: usize) -> (Option<(usize, char)>, usize) {
    let lo = ceil_boundary(s, at.saturating_sub(WINDOW));
    let mut dots = 0;
    for (k, c) in s[lo..at].char_indices().rev() {
        step();
        match c {
            '.' => dots += 1,
            '…' => dots += 3,
            c if c.is_whitespace() || is_invisible(c) => {}
            c => return (Some((lo + k, c)), dots),
        }
    }
    (None, dots)
}

/// The closing mark expected if `c` at `at` opens a bracket or quotation. A
/// straight `"` opens unless it follows a letter, digit, stop or closer.
fn opens_pair(s: &str, at: usize, c: char) -> Option<char> {
    match c {
        '(' => Some(')'),
        '[' => Some(']'),
        '{' => Some('}'),
        '«' => Some('»'),
        '‹' => Some('›'),
        '“' => Some('”'),
        '"' => {
            let closes = s[..at]
                .chars()
                .next_back()
                .is_some_and(|p| p.is_alphanumeric() || is_terminator(p) || is_pair_closer(p));
            (!closes).then_some('"')
        }
        _ => None,
    }
}

fn is_pair_closer(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '»' | '›' | '”' | '"')
}

/// Brackets and quotations opened and not closed yet, innermost last. Kept
/// by the forward pass (O(1) a character); only an opener within `WINDOW`
/// bytes behind is ever reported.
#[derive(Default)]
struct OpenPairs {
    /// (position, expected closing mark); the oldest is dropped past `MAX`.
    open: Vec<(usize, char)>,
}

impl OpenPairs {
    const MAX: usize = 8;

    fn see(&mut self, s: &str, at: usize, c: char) {
        if let Some(close) = opens_pair(s, at, c) {
            if self.open.len() == Self::MAX {
                self.open.remove(0);
            }
            self.open.push((at, close));
        } else if is_pair_closer(c) {
            self.close(c);
        }
    }

    /// A closer also closes whatever was left open inside its pair.
    fn close(&mut self, c: char) {
        if let Some(k) = self.open.iter().rposition(|&(_, close)| close == c) {
            self.open.truncate(k);
        }
    }

    /// The closing mark of the innermost pair, if opened within `WINDOW` before `at`.
    fn innermost(&self, at: usize) -> Option<char> {
        let &(pos, close) = self.open.last()?;
        (at - pos <= WINDOW).then_some(close)
    }
}

/// Answers "is the first mark of this pair within `WINDOW` bytes after
/// `from` its closer?", remembering the last scan so that no byte is read
/// twice while `from` moves forward.
#[derive(Default)]
struct PairAhead {
    close: char,
    /// No mark of the pair lies in `from..to`, except `hit` (the first one).
    from: usize,
    to: usize,
    hit: Option<(usize, bool)>,
}

impl PairAhead {
    fn closes_within(&mut self, s: &str, close: char, from: usize) -> bool {
        let stale = match self.hit {
            Some((q, _)) => q < from,
            None => self.to < from,
        };
        if close != self.close || from < self.from || stale {
            *self = PairAhead {
                close,
                from,
                to: from,
                hit: None,
            };
        }
        let limit = floor_boundary(s, from.saturating_add(WINDOW).min(s.len()));
        if self.hit.is_none() {
            let mut k = self.to;
            while let Some(c) = char_at(s, k).filter(|_| k < limit) {
                step();
                let opens = opens_pair(s, k, c) == Some(close);
                if opens || c == close {
                    self.hit = Some((k, !opens));
                    break;
                }
                k += c.len_utf8();
            }
            self.to = k;
        }
        matches!(self.hit, Some((q, true)) if q < limit)
    }
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn is_roman_numeral(w: &str) -> bool {
    !w.is_empty() && w.chars().all(|c| matches!(c, 'I' | 'V' | 'X' | 'L' | 'C'))
}

/// English words that begin a sentence often and a name rarely; they decide
/// whether an initial or an abbreviation that may end a sentence does.
fn is_sentence_opener(next: &Next) -> bool {
    const OPENERS: &str = "\
        The An He She It They We You His Her Its Their Our This That These Those There Here \
        But And Or So Yet However Meanwhile In On At For From After Before When While If As \
        According Despite Although Though Since Then Now Today Yesterday What Why How Who \
        Where Some Many Most Several Both Officials Mr Mrs Ms Did Do Does Is Are Was Were Can \
        Will Would Should Could Has Have Had Let Please Yes";
    has_word(OPENERS, next.word)
}

/// Titles before a name: never the last word of a sentence.
const LATIN_TITLES: &str = "\
    Mr Mrs Ms Dr Prof Gen Gov Sen Rep Col Lt Capt Sgt Maj Adm Rev Hon Messrs Mme Mlle Brig \
    Cmdr Pres Supt Insp Det vs cf viz approx";

/// Abbreviations that precede a number (`No. 5`, `Jan. 6`, `p. 12`).
const LATIN_BEFORE_NUMBER: &str = "\
    No Nos no nos Vol Vols vol pp Art art Fig Figs fig Ch Chap ch Sec Sect sec Para para Nr \
    Tel Ext Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec ca";

/// Abbreviations that often do end a sentence: only before a sentence opener.
const LATIN_MAY_END: &str = "etc Inc Ltd Co Corp Jr Sr St Mt Ave Bros al Ph";

/// Dotted abbreviations that introduce something and cannot close a sentence.
const LATIN_NEVER_END: &str = "e.g i.e E.g I.e c.f";

#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts inner-loop iterations so a test can check linear growth without a clock.
#[inline(always)]
fn step() {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + 1));
}

#[inline(always)]
fn steps(_n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + _n as u64));
}

#[cfg(test)]
mod tests;
