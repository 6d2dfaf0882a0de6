//! The document model: a document's original text, split into paragraphs
//! (lines that hold more than white space) and sentences, every one of them a
//! byte range into the original text. This module owns reading input bytes
//! and decoding them (UTF-8 validated strictly with the offset of the first
//! bad byte, UTF-16 by its byte-order mark, legacy Arabic encodings such as
//! Windows-1256 detected by `chardetng` and decoded by `encoding_rs`; BOM,
//! CRLF and lone CR line endings), sentence offsets in the original file's
//! bytes whatever its encoding, and the guarantee that the decoded text can
//! be rebuilt from the sentences and the gaps between them; where sentences
//! end inside a line is [`crate::segment`]'s business.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// A document split into paragraphs and sentences.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where the document came from, as the user named it (`-` for stdin).
    pub name: String,
    /// The text, decoded: for UTF-8 input the original byte for byte (a
    /// leading BOM included; the BOM is simply never part of a sentence).
    pub text: String,
    pub paragraphs: Vec<Paragraph>,
    /// For input in another encoding: each sentence's byte range in the
    /// original file, in reading order (for UTF-8 they are the ranges into
    /// `text`).
    source_ranges: Option<Vec<Range<usize>>>,
    /// The encoding the input was decoded from.
    pub encoding: &'static Encoding,
}

/// One non-empty line of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    /// The line without its line break.
    pub range: Range<usize>,
    pub sentences: Vec<Range<usize>>,
}

/// A sentence located in its document, as produced by [`Document::sentences`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentenceRef<'a> {
    pub para: usize,
    pub sent: usize,
    /// Byte range in the original file (in its own encoding).
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
}

/// How input bytes are decoded: `auto` (the default) or one encoding by any
/// of its WHATWG labels (`utf-8`, `windows-1256`/`cp1256`, `utf-16le`,
/// `utf-16be`, `iso-8859-6`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextEncoding {
    /// A UTF-8 or UTF-16 byte-order mark; else UTF-8 if the bytes are valid
    /// UTF-8; else the legacy Arabic encoding (Windows-1256 or ISO-8859-6)
    /// `chardetng` detects.
    #[default]
    Auto,
    Fixed(&'static Encoding),
}

impl std::str::FromStr for TextEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(TextEncoding::Auto);
        }
        // `cp1256` is what Windows users call it; WHATWG knows it as
        // `windows-1256` (and `x-cp1256`).
        let label = if s.eq_ignore_ascii_case("cp1256") {
            "windows-1256"
        } else {
            s
        };
        let e = Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            format!(
                "unknown encoding {s:?} (auto, utf-8, windows-1256, utf-16le, utf-16be, \
                 iso-8859-6, or another WHATWG label)"
            )
        })?;
        if !exact_offsets(e) {
            return Err(format!(
                "encoding {s:?} is not supported: UTF-8, UTF-16 or a single-byte encoding \
                 (windows-1256, iso-8859-6, …)"
            ));
        }
        Ok(TextEncoding::Fixed(e))
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextEncoding::Auto => f.write_str("auto"),
            TextEncoding::Fixed(e) => f.write_str(&e.name().to_ascii_lowercase()),
        }
    }
}

/// Encodings whose byte offsets can be told from the decoded text: one code
/// unit per character width (UTF-8, UTF-16) or one byte per character. The
/// multi-byte legacy ones (Big5, GB18030, Shift_JIS, ISO-2022-JP) do not
/// round-trip, so re-encoding a character does not say how many bytes it
/// was read from (found by the document fuzz target).
fn exact_offsets(e: &'static Encoding) -> bool {
    e == UTF_8 || e == UTF_16LE || e == UTF_16BE || e.is_single_byte()
}

/// The legacy encodings `auto` accepts from the detector: Arabic text
/// guessed as anything else would be decoded into nonsense without a word.
const ARABIC_LEGACY: [&str; 2] = ["windows-1256", "ISO-8859-6"];

/// Why an input could not be read as a document.
#[derive(Debug)]
pub enum InputError {
    Io {
        name: String,
        source: std::io::Error,
    },
    InvalidUtf8 {
        name: String,
        offset: usize,
    },
    /// More bytes than the limit the run allows.
    TooLarge {
        name: String,
        limit: u64,
    },
    /// A FIFO, device or socket: it may never end.
    NotAFile {
        name: String,
    },
    /// Not valid in the encoding asked for (or found by its byte-order mark).
    Malformed {
        name: String,
        encoding: &'static str,
    },
    /// `auto` could not tell the encoding.
    UnknownEncoding {
        name: String,
        tried: String,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Io { name, source } => write!(f, "{name}: {source}"),
            InputError::InvalidUtf8 { name, offset } => write!(
                f,
                "{name}: not valid UTF-8 (first invalid byte at offset {offset}); name its \
                 encoding with --encoding (e.g. --encoding windows-1256), or leave --encoding \
                 auto to detect it"
            ),
            InputError::Malformed { name, encoding } => write!(
                f,
                "{name}: not valid {encoding}; name the right one with --encoding"
            ),
            InputError::UnknownEncoding { name, tried } => write!(
                f,
                "{name}: cannot tell its encoding ({tried}); name it with --encoding"
            ),
            InputError::TooLarge { name, limit } => write!(
                f,
                "{name}: larger than {limit} bytes (--max-input-bytes); split it or raise the limit"
            ),
            InputError::NotAFile { name } => write!(
                f,
                "{name}: not a regular file (a FIFO or device); pipe it to `-` instead"
            ),
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InputError::Io { source, .. } => Some(source),
            InputError::InvalidUtf8 { .. }
            | InputError::TooLarge { .. }
            | InputError::NotAFile { .. }
            | InputError::Malformed { .. }
            | InputError::UnknownEncoding { .. } => None,
        }
    }
}

const BOM: &str = "\u{feff}";

impl Document {
    /// Splits `text` into paragraphs and sentences.
    pub fn parse(name: impl Into<String>, text: String) -> Document {
        Document::split(name.into(), text, crate::segment::sentence_ranges)
    }

    /// Takes every line that holds more than white space as one sentence of
    /// its own paragraph (input that is already one sentence per line).
    pub fn parse_lines(name: impl Into<String>, text: String) -> Document {
        Document::split(name.into(), text, |line| {
            let start = line.len() - line.trim_start().len();
            std::iter::once(start..start + line.trim().len()).collect()
        })
    }

    /// Paragraphs are the non-empty lines after an optional BOM; `sentences`
    /// gives the sentence ranges within one such line.
    fn split(name: String, text: String, sentences: fn(&str) -> Vec<Range<usize>>) -> Document {
        let body_start = if text.starts_with(BOM) { BOM.len() } else { 0 };
        let paragraphs = lines(&text, body_start)
            .filter(|line| !text[line.clone()].trim().is_empty())
            .map(|line| Paragraph {
                sentences: sentences(&text[line.clone()])
                    .into_iter()
                    .map(|r| line.start + r.start..line.start + r.end)
                    .collect(),
                range: line,
            })
            .collect();
        Document {
            name,
            text,
            paragraphs,
            source_ranges: None,
            encoding: UTF_8,
        }
    }

    /// Decodes `bytes` (strictly: a bad byte is an error, never replaced)
    /// and parses them.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<Document, InputError> {
        Document::from_bytes_with(name, bytes, Document::parse)
    }

    /// [`Document::from_bytes`] with another splitter, e.g.
    /// [`Document::parse_lines`].
    pub fn from_bytes_with(
        name: impl Into<String>,
        bytes: Vec<u8>,
        split: fn(String, String) -> Document,
    ) -> Result<Document, InputError> {
        Document::decode_with(name, bytes, TextEncoding::Fixed(UTF_8), split)
    }

    /// Decodes `bytes` as `encoding` says (strictly: a byte that is not
    /// valid is an error, never replaced) and parses them with `split`.
    /// Sentence offsets stay offsets into `bytes`.
    pub fn decode_with(
        name: impl Into<String>,
        bytes: Vec<u8>,
        encoding: TextEncoding,
        split: fn(String, String) -> Document,
    ) -> Result<Document, InputError> {
        let name = name.into();
        let (enc, skip) = match encoding {
            TextEncoding::Fixed(e) => (e, bom_len(&bytes, e)),
            TextEncoding::Auto => detect(&name, &bytes)?,
        };
        if !exact_offsets(enc) {
            return Err(InputError::Malformed {
                name,
                encoding: enc.name(),
            });
        }
        if enc == UTF_8 {
            // The BOM stays in the text: offsets are file offsets as they are.
            return match String::from_utf8(bytes) {
                Ok(text) => Ok(split(name, text)),
                Err(e) => Err(InputError::InvalidUtf8 {
                    offset: e.utf8_error().valid_up_to(),
                    name,
                }),
            };
        }
        let text = enc
            .decode_without_bom_handling_and_without_replacement(&bytes[skip..])
            .ok_or_else(|| InputError::Malformed {
                name: name.clone(),
                encoding: enc.name(),
            })?
            .into_owned();
        let mut doc = split(name, text);
        doc.source_ranges = Some(source_ranges(&doc, enc, skip));
        doc.encoding = enc;
        Ok(doc)
    }

    /// Reads and parses one input: a file path, or `-` for standard input.
    pub fn read(input: &Input) -> Result<Document, InputError> {
        Document::read_with(input, Document::parse)
    }

    /// [`Document::read`] with another splitter.
    pub fn read_with(
        input: &Input,
        split: fn(String, String) -> Document,
    ) -> Result<Document, InputError> {
        let bytes = read_bytes(input, u64::MAX)?;
        Document::from_bytes_with(input.name(), bytes, split)
    }

    /// Every sentence in reading order, with its paragraph and sentence
    /// index and its byte range in the original file.
    pub fn sentences(&self) -> impl Iterator<Item = SentenceRef<'_>> {
        self.ranges().enumerate().map(move |(i, (p, s, r))| {
            let original = match &self.source_ranges {
                Some(map) => map[i].clone(),
                None => r.clone(),
            };
            SentenceRef {
                para: p,
                sent: s,
                start: original.start,
                end: original.end,
                text: &self.text[r],
            }
        })
    }

    /// (paragraph, sentence, range in `text`) of every sentence in order.
    fn ranges(&self) -> impl Iterator<Item = (usize, usize, Range<usize>)> + '_ {
        self.paragraphs.iter().enumerate().flat_map(|(p, para)| {
            para.sentences
                .iter()
                .enumerate()
                .map(move |(s, r)| (p, s, r.clone()))
        })
    }

    /// The text between consecutive sentences (and before the first / after
    /// the last): `gaps()[0] + s0 + gaps()[1] + s1 + … + gaps()[n]` is the
    /// original text.
    pub fn gaps(&self) -> Vec<&str> {
        let mut gaps = Vec::new();
        let mut pos = 0;
        for (_, _, r) in self.ranges() {
            gaps.push(&self.text[pos..r.start]);
            pos = r.end;
        }
        gaps.push(&self.text[pos..]);
        gaps
    }
}

/// The length of `encoding`'s byte-order mark at the start of `bytes` (0
/// if there is none).
fn bom_len(bytes: &[u8], encoding: &'static Encoding) -> usize {
    match Encoding::for_bom(bytes) {
        // A UTF-8 BOM stays in the text (see `Document::text`).
        Some((e, n)) if e == encoding && e != UTF_8 => n,
        _ => 0,
    }
}

/// `--encoding auto`: the encoding of `bytes` and the length of its BOM.
fn detect(name: &str, bytes: &[u8]) -> Result<(&'static Encoding, usize), InputError> {
    if let Some((e, n)) = Encoding::for_bom(bytes) {
        return Ok((e, if e == UTF_8 { 0 } else { n }));
    }
    let bad_utf8 = match std::str::from_utf8(bytes) {
        Ok(_) => return Ok((UTF_8, 0)),
        Err(e) => e.valid_up_to(),
    };
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let guess = detector.guess(None, chardetng::Utf8Detection::Deny);
    if ARABIC_LEGACY.contains(&guess.name())
        && guess
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_some()
    {
        return Ok((guess, 0));
    }
    Err(InputError::UnknownEncoding {
        name: name.to_string(),
        tried: format!(
            "not UTF-8 (invalid byte at offset {bad_utf8}), no UTF-16 byte-order mark, and the \
             detector's guess {} is not an Arabic encoding",
            guess.name()
        ),
    })
}

/// The bytes `c` takes in `encoding`.
fn encoded_len(c: char, encoding: &'static Encoding) -> usize {
    if encoding == UTF_16LE || encoding == UTF_16BE {
        c.len_utf16() * 2
    } else {
        debug_assert!(encoding.is_single_byte(), "exact_offsets");
        1
    }
}

/// Each sentence's byte range in the original bytes (decoded from
/// `encoding` after `skip` bytes of BOM), in one pass over the text.
fn source_ranges(doc: &Document, encoding: &'static Encoding, skip: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut orig = skip;
    let mut chars = doc.text.char_indices().peekable();
    let mut advance = |to: usize| -> usize {
        while let Some(&(i, c)) = chars.peek() {
            if i >= to {
                break;
            }
            orig += encoded_len(c, encoding);
            chars.next();
        }
        orig
    };
    for (_, _, r) in doc.ranges() {
        let start = advance(r.start);
        let end = advance(r.end);
        out.push(start..end);
    }
    out
}

/// Byte ranges of the lines of `text` from `start`, without their line
/// breaks. A break is LF, CRLF, lone CR, or one of Unicode's mandatory breaks
/// (VT, FF, NEL, LS, PS), so files from any platform split the same way.
fn lines(text: &str, start: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut pos = start;
    let mut done = start >= text.len();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let rest = &text[pos..];
        let Some((i, c)) = rest.char_indices().find(|&(_, c)| {
            matches!(
                c,
                '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
            )
        }) else {
            done = true;
            return Some(pos..text.len());
        };
        let line = pos..pos + i;
        let mut next = pos + i + c.len_utf8();
        if c == '\r' && text[next..].starts_with('\n') {
            next += 1;
        }
        pos = next;
        done = pos >= text.len();
        Some(line)
    })
}

/// The bytes of `input`, at most `limit` of them: a longer input is an
/// error, found before reading it where the size is known; a FIFO or device
/// named as a file is refused (standard input is read up to the limit).
pub fn read_bytes(input: &Input, limit: u64) -> Result<Vec<u8>, InputError> {
    use std::io::Read;
    let name = input.name();
    let io = |source| InputError::Io {
        name: name.clone(),
        source,
    };
    let mut buf = Vec::new();
    match input {
        Input::Stdin => {
            std::io::stdin()
                .lock()
                .take(limit.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(io)?;
        }
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(io)?;
            let meta = file.metadata().map_err(io)?;
            if !meta.is_file() {
                return Err(InputError::NotAFile { name });
            }
            if meta.len() > limit {
                return Err(InputError::TooLarge { name, limit });
            }
            // The file may grow while it is read.
            file.take(limit.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(io)?;
        }
    }
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge { name, limit });
    }
    Ok(buf)
}

/// One thing the user asked to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// The name used in messages and in output records.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// The default title of a document's HTML and Markdown pages: the file
    /// name (never the path as typed: pages are made to be published),
    /// `fallback` for a path without one, `stdin` for standard input.
    pub fn title(&self, fallback: &str) -> String {
        match self {
            Input::File(p) => p.file_name().map_or_else(
                || fallback.to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            Input::Stdin => "stdin".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebuild(doc: &Document) -> String {
        let gaps = doc.gaps();
        let mut out = String::from(gaps[0]);
        for (s, gap) in doc.sentences().zip(&gaps[1..]) {
            out.push_str(s.text);
            out.push_str(gap);
        }
        out
    }

    fn para_texts(doc: &Document) -> Vec<&str> {
        doc.paragraphs
            .iter()
            .map(|p| &doc.text[p.range.clone()])
            .collect()
    }

    #[test]
    fn line_endings_of_every_platform_split_paragraphs() {
        for text in [
            "أ.\nب.\n",
            "أ.\r\nب.\r\n",
            "أ.\rب.\r",
            "أ.\u{2029}ب.",
            "أ.\r\n\r\nب.",
        ] {
            let doc = Document::parse("t", text.to_string());
            assert_eq!(para_texts(&doc), ["أ.", "ب."], "{text:?}");
            assert_eq!(rebuild(&doc), text);
        }
    }

    #[test]
    fn lines_of_unicode_spaces_are_empty() {
        let text = "عنوان\n\u{a0}\n \t\u{2003}\u{3000}\n\u{202f}\nنص.";
        let doc = Document::parse("t", text.to_string());
        assert_eq!(para_texts(&doc), ["عنوان", "نص."]);
        assert_eq!(rebuild(&doc), text);
    }

    #[test]
    fn bom_is_never_part_of_a_sentence_but_offsets_stay_file_offsets() {
        let text = "\u{feff}مرحبا.";
        let doc = Document::parse("t", text.to_string());
        let s: Vec<_> = doc.sentences().collect();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "مرحبا.");
        assert_eq!(s[0].start, 3);
        assert_eq!(rebuild(&doc), text);
        // A BOM alone is an empty document.
        assert_eq!(Document::parse("t", BOM.to_string()).sentences().count(), 0);
    }

    #[test]
    fn empty_input_has_no_sentences() {
        for text in ["", "\n", "\r\n\r\n", " \u{a0} "] {
            let doc = Document::parse("t", text.to_string());
            assert_eq!(doc.sentences().count(), 0, "{text:?}");
            assert_eq!(rebuild(&doc), text);
        }
    }

    #[test]
    fn invalid_utf8_reports_offset_of_first_bad_byte() {
        let mut bytes = "سلام".as_bytes().to_vec();
        bytes.push(0xE3); // CP1256 for 'ش'
        bytes.extend_from_slice(b" more");
        let err = Document::from_bytes("a.txt", bytes).unwrap_err();
        match &err {
            InputError::InvalidUtf8 { name, offset } => {
                assert_eq!(name, "a.txt");
                assert_eq!(*offset, 8);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("a.txt"));
        assert!(err.to_string().contains("offset 8"));
    }

    #[test]
    fn lines_mode_takes_each_non_empty_line_as_a_sentence() {
        let text = "\u{feff}  جملة أولى. وثانية.\r\n\u{a0}\nالثالثة ";
        let doc = Document::parse_lines("t", text.to_string());
        let s: Vec<_> = doc.sentences().map(|s| (s.para, s.sent, s.text)).collect();
        assert_eq!(s, [(0, 0, "جملة أولى. وثانية."), (1, 0, "الثالثة")]);
        assert_eq!(rebuild(&doc), text);
    }

    #[test]
    fn sentence_indices_restart_in_each_paragraph() {
        let doc = Document::parse("t", "جاء الوزير. ثم ذهب.\nانتهى.".to_string());
        let ids: Vec<_> = doc.sentences().map(|s| (s.para, s.sent, s.text)).collect();
        assert_eq!(
            ids,
            [(0, 0, "جاء الوزير."), (0, 1, "ثم ذهب."), (1, 0, "انتهى.")]
        );
    }
}
