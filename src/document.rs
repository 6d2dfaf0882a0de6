//! The document model: a document's original text, split into paragraphs
//! (lines that hold more than white space) and sentences, every one of them a
//! byte range into the original text. This module owns reading input bytes
//! (UTF-8 validation with the offset of the first bad byte, BOM, CRLF and lone
//! CR line endings) and the guarantee that the original bytes can be rebuilt
//! from the sentences and the gaps between them; where sentences end inside a
//! line is [`crate::segment`]'s business.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// A document split into paragraphs and sentences.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where the document came from, as the user named it (`-` for stdin).
    pub name: String,
    /// The original text, byte for byte (a leading BOM included: offsets are
    /// file offsets, the BOM is simply never part of a sentence).
    pub text: String,
    pub paragraphs: Vec<Paragraph>,
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
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
}

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
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Io { name, source } => write!(f, "{name}: {source}"),
            InputError::InvalidUtf8 { name, offset } => write!(
                f,
                "{name}: not valid UTF-8 (first invalid byte at offset {offset}); \
                 convert it to UTF-8 first (e.g. `iconv -f CP1256 -t UTF-8`)"
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
            | InputError::NotAFile { .. } => None,
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
        let name = name.into();
        match String::from_utf8(bytes) {
            Ok(text) => Ok(split(name, text)),
            Err(e) => Err(InputError::InvalidUtf8 {
                offset: e.utf8_error().valid_up_to(),
                name,
            }),
        }
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

    /// Every sentence in reading order, with its paragraph and sentence index.
    pub fn sentences(&self) -> impl Iterator<Item = SentenceRef<'_>> {
        self.paragraphs
            .iter()
            .enumerate()
            .flat_map(move |(p, para)| {
                para.sentences
                    .iter()
                    .enumerate()
                    .map(move |(s, r)| SentenceRef {
                        para: p,
                        sent: s,
                        start: r.start,
                        end: r.end,
                        text: &self.text[r.clone()],
                    })
            })
    }

    /// The text between consecutive sentences (and before the first / after
    /// the last): `gaps()[0] + s0 + gaps()[1] + s1 + … + gaps()[n]` is the
    /// original text.
    pub fn gaps(&self) -> Vec<&str> {
        let mut gaps = Vec::new();
        let mut pos = 0;
        for s in self.sentences() {
            gaps.push(&self.text[pos..s.start]);
            pos = s.end;
        }
        gaps.push(&self.text[pos..]);
        gaps
    }
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
