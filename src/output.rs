//! Bilingual output files. This module owns the alignment record (a source
//! sentence located in its document, paired with its translation and its
//! [`crate::qa`] flags) and its renderings — HTML side by side, TMX 1.4b,
//! TSV, JSONL, Markdown and a Moses line-aligned pair — and writing them
//! atomically (temp file + rename), so a reader never sees half a file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use quick_xml::escape::escape;
use serde::Serialize;

use crate::qa::Flag;

/// One source sentence and its translation, located in its document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub doc: String,
    pub para: usize,
    pub sent: usize,
    /// Byte range of `src` in the original document.
    pub start: usize,
    pub end: usize,
    pub src: String,
    pub tgt: String,
    /// Length-normalised log-probability of the translation.
    pub score: f32,
    /// What [`crate::qa::check`] found wrong with the pair; always written
    /// (`[]` when nothing), so that readers can rely on the key.
    pub flags: Vec<Flag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ids: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgt_ids: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgt_logprobs: Option<Vec<f32>>,
    /// Word alignment as Marian writes it: `i-j` pairs of source and target
    /// word positions, space separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment: Option<String>,
    /// With `--n-best N`: the next best translations, best first (JSONL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<Alternative>>,
}

/// One of the next best translations in a [`Record`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    pub tgt: String,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgt_ids: Option<Vec<u32>>,
}

/// One bead of `tarjama align`: consecutive source sentences aligned with
/// consecutive target sentences of an existing translation (either side may
/// be empty), with the QA flags of the pair. Sentence indices are 0-based in
/// reading order; byte ranges run from the start of the group's first
/// sentence to the end of its last, in each original file (`null` for an
/// empty side).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeadRecord {
    #[serde(skip)]
    pub doc: String,
    /// The bead's number in its document, from 0.
    #[serde(skip)]
    pub bead: usize,
    /// The paragraph it belongs to (HTML groups rows by it).
    #[serde(skip)]
    pub para: usize,
    pub src: Vec<usize>,
    pub tgt: Vec<usize>,
    pub src_text: String,
    pub tgt_text: String,
    pub src_start: Option<usize>,
    pub src_end: Option<usize>,
    pub tgt_start: Option<usize>,
    pub tgt_end: Option<usize>,
    /// See [`crate::align::Bead::score`].
    pub score: f32,
    pub flags: Vec<Flag>,
}

/// What [`FormatWriter`] shows of a [`Record`] or a [`BeadRecord`].
struct Row<'a> {
    para: usize,
    /// The HTML row's id.
    id: String,
    /// The TMX `tuid`.
    tuid: String,
    /// Markdown's first cell.
    label: String,
    /// TSV's columns before the texts, tab-separated.
    tsv_lead: String,
    doc: &'a str,
    src: &'a str,
    tgt: &'a str,
    score: f32,
    flags: &'a [Flag],
}

/// An output format; parsed from and shown as its [`Format::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Html,
    Tmx,
    Tsv,
    Jsonl,
    Md,
    Moses,
    /// The English only, one sentence per line, a blank line between
    /// paragraphs (and between documents in one stream).
    Txt,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Html,
        Format::Tmx,
        Format::Tsv,
        Format::Jsonl,
        Format::Md,
        Format::Moses,
        Format::Txt,
    ];

    /// What a folder gets when no format is named: the bilingual ones.
    pub const FILES: [Format; 6] = [
        Format::Html,
        Format::Tmx,
        Format::Tsv,
        Format::Jsonl,
        Format::Md,
        Format::Moses,
    ];

    /// The format's name on the command line: `html`, `tmx`, `tsv`,
    /// `jsonl`, `md`, `moses`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Tmx => "tmx",
            Format::Tsv => "tsv",
            Format::Jsonl => "jsonl",
            Format::Md => "md",
            Format::Moses => "moses",
            Format::Txt => "txt",
        }
    }

    /// File name suffixes this format writes (Moses writes a pair).
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            Format::Html => &["html"],
            Format::Tmx => &["tmx"],
            Format::Tsv => &["tsv"],
            Format::Jsonl => &["jsonl"],
            Format::Md => &["md"],
            Format::Moses => &["ar", "en"],
            Format::Txt => &["en.txt"],
        }
    }

    /// The contents of each of [`Format::suffixes`]' files for one document.
    pub fn render(self, title: &str, records: &[Record]) -> Vec<String> {
        let outs = vec![Vec::new(); self.suffixes().len()];
        let mut w = FormatWriter::new(self, outs, false);
        let written = w
            .begin(title)
            .and_then(|()| records.iter().try_for_each(|r| w.record(r)))
            .and_then(|()| w.end());
        written.expect("writing to memory");
        w.into_inner()
            .into_iter()
            .map(|b| String::from_utf8(b).expect("renderers write UTF-8"))
            .collect()
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// One of the [`Format::name`]s (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?} (one of {})", names.join(", "))
            })
    }
}

/// The files `format` writes for a document whose outputs are named `stem`
/// in `dir`.
pub fn paths(dir: &Path, stem: &str, format: Format) -> Vec<PathBuf> {
    format
        .suffixes()
        .iter()
        .map(|s| dir.join(format!("{stem}.{s}")))
        .collect()
}

/// The prefix and suffix of every temp file tarjama writes
/// (`.tarjama-XXXXXX.tmp`), so that a later run can find and remove the ones
/// a killed run left behind.
pub const TEMP_PREFIX: &str = ".tarjama-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` is one of tarjama's temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// A file being written: a temp file in its final folder (same file system,
/// so the rename is atomic) that becomes `path` on [`commit`]. Dropped
/// without a commit, the temp file is removed.
pub struct Staged {
    path: PathBuf,
    tmp: io::BufWriter<tempfile::NamedTempFile>,
}

impl Staged {
    /// Starts writing `path`, creating its folder. `tag` goes into the temp
    /// file's name (`.tarjama-<tag>-XXXXXX.tmp`) so that the temps of one
    /// document can be found.
    pub fn new(path: &Path, tag: &str) -> io::Result<Staged> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut builder = tempfile::Builder::new();
        let prefix = format!("{TEMP_PREFIX}{tag}-");
        builder.prefix(&prefix).suffix(TEMP_SUFFIX);
        // Outputs are for reading and sharing, not the temp file's private 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        Ok(Staged {
            path: path.to_path_buf(),
            tmp: io::BufWriter::with_capacity(1 << 16, builder.tempfile_in(dir)?),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and syncs the temp file: after this only the rename is left.
    fn finish(self) -> io::Result<(tempfile::NamedTempFile, PathBuf)> {
        let tmp = self.tmp.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        Ok((tmp, self.path))
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Makes every staged file appear under its name: all are written out and
/// synced first, then renamed in order, so that an error (a full disk)
/// leaves none of them changed, and a crash at most a prefix of them renamed
/// (the caller renames its record of completion last).
pub fn commit(files: Vec<Staged>) -> io::Result<()> {
    let finished: Vec<_> = files
        .into_iter()
        .map(Staged::finish)
        .collect::<io::Result<_>>()?;
    for (tmp, path) in finished {
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    Ok(())
}

/// Writes `contents` to `path` through a temp file in the same folder and a
/// rename, so the file is either complete or absent.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = Staged::new(path, "file")?;
    file.write_all(contents)?;
    commit(vec![file])
}

/// Writes one format's file(s) for a document record by record, so that a
/// document's outputs never have to be held in memory: [`FormatWriter::begin`]
/// writes the head, [`FormatWriter::record`] one sentence pair,
/// [`FormatWriter::end`] the tail. `outs` holds one writer per
/// [`Format::suffixes`]. With `doc_column`, TSV starts every row with the
/// record's document (several documents in one stream); other formats
/// ignore it.
pub struct FormatWriter<W: Write> {
    format: Format,
    outs: Vec<W>,
    doc_column: bool,
    /// HTML: the paragraph whose `<tbody>` is open; txt: the last one written.
    para: Option<usize>,
    header_written: bool,
    /// Txt: something was written (a next document starts after a blank line).
    wrote: bool,
    /// Rows are [`BeadRecord`]s (TSV and Markdown headers differ).
    beads: bool,
}

impl<W: Write> FormatWriter<W> {
    pub fn new(format: Format, outs: Vec<W>, doc_column: bool) -> Self {
        assert_eq!(outs.len(), format.suffixes().len(), "one writer per file");
        FormatWriter {
            format,
            outs,
            doc_column,
            para: None,
            header_written: false,
            wrote: false,
            beads: false,
        }
    }

    /// A writer of [`FormatWriter::bead`] rows.
    pub fn for_beads(format: Format, outs: Vec<W>, doc_column: bool) -> Self {
        FormatWriter {
            beads: true,
            ..FormatWriter::new(format, outs, doc_column)
        }
    }

    /// The head of a document titled `title`.
    pub fn begin(&mut self, title: &str) -> io::Result<()> {
        let out = &mut self.outs[0];
        match self.format {
            Format::Html => {
                let title = escape(title);
                // English (the page's language) on the left, Arabic on the
                // right, in DOM order too; the checkbox mirrors the table
                // (CSS `direction`), each cell keeping its own `dir`.
                write!(
                    out,
                    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
                     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
                     <meta name=\"color-scheme\" content=\"light dark\">\n\
                     <meta name=\"generator\" content=\"tarjama {}\">\n<title>{title}</title>\n\
                     <style>\n{HTML_STYLE}</style>\n</head>\n<body>\n<h1 dir=\"auto\">{title}</h1>\n\
                     <input type=\"checkbox\" id=\"swap\" class=\"swap\">\
                     <label for=\"swap\" class=\"swap\">Arabic on the left</label>\n<table>\n\
                     <colgroup><col style=\"width:50%\"><col style=\"width:50%\"></colgroup>\n\
                     <thead><tr><th dir=\"ltr\" lang=\"en\">English</th>\
                     <th dir=\"rtl\" lang=\"ar\">العربية</th></tr></thead>\n",
                    env!("CARGO_PKG_VERSION")
                )?;
                self.para = None;
            }
            Format::Tmx => write!(
                out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tmx SYSTEM \"tmx14.dtd\">\n\
                 <tmx version=\"1.4\">\n  <header creationtool=\"tarjama\" creationtoolversion=\"{}\" \
                 datatype=\"plaintext\" segtype=\"sentence\" adminlang=\"en\" srclang=\"ar\" \
                 o-tmf=\"tarjama\"/>\n  <body>",
                env!("CARGO_PKG_VERSION")
            )?,
            Format::Tsv if !self.header_written => {
                let doc = if self.doc_column { "doc\t" } else { "" };
                // `flags` last, so that the older columns keep their places.
                let lead = if self.beads {
                    "src\ttgt\tsrc_start\tsrc_end\ttgt_start\ttgt_end"
                } else {
                    "para\tsent\tstart\tend"
                };
                writeln!(out, "{doc}{lead}\tar\ten\tscore\tflags")?;
            }
            Format::Md => write!(
                out,
                "# {}\n\n| {} | Arabic | English | QA |\n| --- | --- | --- | --- |\n",
                md_cell(title),
                if self.beads { "Sentences" } else { "¶" }
            )?,
            Format::Txt => {
                if self.wrote {
                    out.write_all(b"\n")?;
                }
                self.para = None;
            }
            Format::Tsv | Format::Jsonl | Format::Moses => {}
        }
        self.header_written = true;
        Ok(())
    }

    /// One sentence pair.
    pub fn record(&mut self, r: &Record) -> io::Result<()> {
        let (p, s) = (r.para + 1, r.sent + 1);
        let row = Row {
            para: r.para,
            id: format!("s{p}-{s}"),
            tuid: format!("{p}.{s}"),
            label: format!("{p}.{s}"),
            tsv_lead: format!("{}\t{}\t{}\t{}", r.para, r.sent, r.start, r.end),
            doc: &r.doc,
            src: &r.src,
            tgt: &r.tgt,
            score: r.score,
            flags: &r.flags,
        };
        self.row(&row, r)
    }

    /// One alignment bead (`tarjama align`): its groups of sentences as one
    /// row, numbered in reading order.
    pub fn bead(&mut self, b: &BeadRecord) -> io::Result<()> {
        let ids = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let pos = |v: Option<usize>| v.map_or(String::new(), |v| v.to_string());
        let n = b.bead + 1;
        let row = Row {
            para: b.para,
            id: format!("b{n}"),
            tuid: n.to_string(),
            label: format!("{}:{}", ids(&b.src), ids(&b.tgt)),
            tsv_lead: format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                ids(&b.src),
                ids(&b.tgt),
                pos(b.src_start),
                pos(b.src_end),
                pos(b.tgt_start),
                pos(b.tgt_end)
            ),
            doc: &b.doc,
            src: &b.src_text,
            tgt: &b.tgt_text,
            score: b.score,
            flags: &b.flags,
        };
        self.row(&row, b)
    }

    /// A sentence pair or a bead, as every format shows it; `json` is its
    /// JSONL object.
    fn row(&mut self, r: &Row, json: &impl Serialize) -> io::Result<()> {
        let out = &mut self.outs[0];
        match self.format {
            Format::Html => {
                if self.para != Some(r.para) {
                    if self.para.is_some() {
                        out.write_all(b"</tbody>\n")?;
                    }
                    writeln!(out, "<tbody class=\"para\" id=\"p{}\">", r.para + 1)?;
                    self.para = Some(r.para);
                }
                // A flagged row gets a class, a tooltip and the flags as a
                // data attribute that the style sheet shows after the English
                // (generated content: the cell's text stays the translation).
                let (class, qa) = if r.flags.is_empty() {
                    (String::new(), String::new())
                } else {
                    let names = flag_names(r.flags, ", ");
                    (
                        format!(" class=\"qa\" title=\"QA: {names}\""),
                        format!(" data-qa=\"{names}\""),
                    )
                };
                writeln!(
                    out,
                    "<tr id=\"{}\"{class}><td class=\"en\" dir=\"ltr\" lang=\"en\"{qa}>{}</td>\
                     <td class=\"ar\" dir=\"rtl\" lang=\"ar\">{}</td></tr>",
                    r.id,
                    escape(r.tgt),
                    escape(r.src),
                )?;
            }
            Format::Tmx => {
                write!(out, "\n    <tu tuid=\"{}\">", r.tuid)?;
                if !r.flags.is_empty() {
                    // TMX 1.4 leaves `x-` prop types to tools.
                    write!(
                        out,
                        "\n      <prop type=\"x-tarjama-flags\">{}</prop>",
                        flag_names(r.flags, ",")
                    )?;
                }
                // A bead with one side empty has one variant: TMX allows it,
                // and a memory keeps what has no counterpart visible.
                for (lang, text) in [("ar", r.src), ("en", r.tgt)] {
                    if text.is_empty() && self.beads {
                        continue;
                    }
                    write!(
                        out,
                        "\n      <tuv xml:lang=\"{lang}\">\n        <seg>{}</seg>\n      </tuv>",
                        escape(xml_chars(text).as_ref())
                    )?;
                }
                out.write_all(b"\n    </tu>")?;
            }
            Format::Tsv => {
                if self.doc_column {
                    write!(out, "{}\t", tsv_field(r.doc))?;
                }
                writeln!(
                    out,
                    "{}\t{}\t{}\t{:.4}\t{}",
                    r.tsv_lead,
                    tsv_field(r.src),
                    tsv_field(r.tgt),
                    r.score,
                    flag_names(r.flags, ",")
                )?;
            }
            Format::Jsonl => {
                serde_json::to_writer(&mut *out, json)?;
                out.write_all(b"\n")?;
            }
            Format::Md => writeln!(
                out,
                "| {} | {} | {} | {} |",
                r.label,
                md_cell(r.src),
                md_cell(r.tgt),
                flag_names(r.flags, ", ")
            )?,
            Format::Txt => {
                if self.para.is_some_and(|p| p != r.para) {
                    out.write_all(b"\n")?;
                }
                self.para = Some(r.para);
                self.wrote = true;
                writeln!(out, "{}", r.tgt.replace(['\n', '\r'], " "))?;
            }
            Format::Moses => {
                // One line per segment is the whole point of the format.
                for (out, s) in self.outs.iter_mut().zip([r.src, r.tgt]) {
                    writeln!(out, "{}", s.replace(['\n', '\r'], " "))?;
                }
            }
        }
        Ok(())
    }

    /// The tail of the document.
    pub fn end(&mut self) -> io::Result<()> {
        let out = &mut self.outs[0];
        match self.format {
            Format::Html => {
                if self.para.take().is_some() {
                    out.write_all(b"</tbody>\n")?;
                }
                out.write_all(b"</table>\n</body>\n</html>\n")?;
            }
            Format::Tmx => out.write_all(b"\n  </body>\n</tmx>\n")?,
            Format::Tsv | Format::Jsonl | Format::Md | Format::Moses | Format::Txt => {}
        }
        Ok(())
    }

    /// The writers, e.g. to flush or commit them.
    pub fn into_inner(self) -> Vec<W> {
        self.outs
    }

    pub fn outs_mut(&mut self) -> &mut [W] {
        &mut self.outs
    }
}

/// The names of `flags` joined by `sep` (names are plain ASCII words, safe
/// in every format unescaped).
fn flag_names(flags: &[Flag], sep: &str) -> String {
    flags.iter().map(|f| f.name()).collect::<Vec<_>>().join(sep)
}

/// A TSV field as RFC 4180 quotes it (with a tab for the comma): a field
/// holding a tab, a line break or a `"` is wrapped in `"`, its `"` doubled;
/// any other is written as is. `pandas.read_csv(path, sep="\t")`, Python's
/// `csv` module and the `csv` crate read every field back exactly.
fn tsv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\t', '\n', '\r', '"']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Text for a Markdown table cell or heading, escaped so that a CommonMark
/// (GFM) renderer shows it exactly and makes nothing of it: `&`, `<`, `>` as
/// entities (no raw HTML, no autolinks), a backslash before each character
/// that means something inline (emphasis, code, links and images, strike-
/// through, math, the cell separator, a heading's closing `#`s, attribute
/// braces), line breaks as spaces. Block syntax (`-`, `+`, `1.`, `>` at the
/// start of a line) means nothing inside a cell or a heading, so `.`, `-`,
/// `+`, `(`, `)` and `!` stay as they are.
fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '{' | '}' | '$' | '^' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The page's style sheet: light and dark colours, a narrow-screen layout
/// (the two columns stay side by side and wrap), print (light, no toggle),
/// the side swap (`#swap:checked` mirrors the table), and the QA flags of a
/// flagged row as a small label after its English.
const HTML_STYLE: &str = "\
:root{color-scheme:light dark;--fg:#222;--bg:#fff;--muted:#666;--rule:#ccc;--head:#888;--hl:#fff3bf;--hl-cell:#ffe066;--qa:#9a3412;--qa-bg:#ffedd5}
@media (prefers-color-scheme:dark){:root{--fg:#e3e3e3;--bg:#16181c;--muted:#9aa0a6;--rule:#3b4048;--head:#6b7179;--hl:#33301c;--hl-cell:#574a12;--qa:#fdba74;--qa-bg:#431407}}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:75rem;padding:0 1rem;color:var(--fg);background:var(--bg)}
h1{font-size:1.2rem;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin-top:.6rem}
td{vertical-align:top;padding:.3rem .6rem;line-height:1.6;overflow-wrap:anywhere}
td.ar{font-family:'Noto Naskh Arabic','Amiri','Geeza Pro',serif;font-size:1.15rem}
tbody.para{border-top:1px solid var(--rule)}
tbody.para tr:first-child td{padding-top:.8rem}
tr:hover td{background:var(--hl)}
tr:hover td:hover{background:var(--hl-cell)}
th{text-align:start;font-weight:600;border-bottom:2px solid var(--head);padding:.3rem .6rem}
input.swap{margin:0 .4rem 0 0;vertical-align:middle}
label.swap{font-size:.9rem;color:var(--muted);cursor:pointer;vertical-align:middle}
#swap:checked~table{direction:rtl}
tr.qa td.en::after{content:attr(data-qa);display:inline-block;margin-inline-start:.5em;padding:0 .4em;border-radius:.25em;font-size:.75rem;line-height:1.5;white-space:nowrap;color:var(--qa);background:var(--qa-bg)}
@media (max-width:40rem){body{margin:1rem auto;padding:0 .5rem}td,th{padding:.25rem .35rem}td{line-height:1.5}td.ar{font-size:1.05rem}}
@media print{:root{--fg:#000;--bg:#fff;--rule:#bbb;--head:#777;--qa:#000;--qa-bg:#fff}body{margin:0;max-width:none}.swap{display:none}tr{break-inside:avoid}tr:hover td,tr:hover td:hover{background:none}}
";

/// XML 1.0 forbids most C0 controls even when escaped; a stray one in a
/// document must not make the whole memory unreadable.
fn xml_chars(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c < ' ' && !matches!(c, '\t' | '\n' | '\r') || matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    if s.chars().any(bad) {
        s.chars()
            .map(|c| if bad(c) { '\u{fffd}' } else { c })
            .collect()
    } else {
        s.into()
    }
}
