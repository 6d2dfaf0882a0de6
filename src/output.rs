//! Bilingual output files. This module owns the alignment record (a source
//! sentence located in its document, paired with its translation) and its
//! renderings — HTML side by side, TMX 1.4b, TSV, JSONL, Markdown and a Moses
//! line-aligned pair — and writing them atomically (temp file + rename), so
//! a reader never sees half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use quick_xml::escape::escape;
use serde::Serialize;

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
}

impl Format {
    pub const ALL: [Format; 6] = [
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
        }
    }

    /// The contents of each of [`Format::suffixes`]' files for one document.
    pub fn render(self, title: &str, records: &[Record]) -> Vec<String> {
        match self {
            Format::Html => vec![html(title, records)],
            Format::Tmx => vec![tmx(records)],
            Format::Tsv => vec![tsv(records)],
            Format::Jsonl => vec![jsonl(records)],
            Format::Md => vec![markdown(title, records)],
            Format::Moses => vec![
                lines(records.iter().map(|r| r.src.as_str())),
                lines(records.iter().map(|r| r.tgt.as_str())),
            ],
        }
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

/// Writes `contents` to `path` through a temp file in the same folder and a
/// rename, so the file is either complete or absent.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tarjama-").suffix(".tmp");
    // Outputs are for reading and sharing, not the temp file's private 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn lines<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for s in items {
        // One line per segment is the whole point of the format.
        out.push_str(&s.replace(['\n', '\r'], " "));
        out.push('\n');
    }
    out
}

fn jsonl(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).expect("records serialise"));
        out.push('\n');
    }
    out
}

/// Backslash escapes keep one record per line and one field per tab.
fn tsv_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn tsv(records: &[Record]) -> String {
    let mut out = String::from("para\tsent\tstart\tend\tar\ten\tscore\n");
    for r in records {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{:.4}",
            r.para,
            r.sent,
            r.start,
            r.end,
            tsv_field(&r.src),
            tsv_field(&r.tgt),
            r.score
        );
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn markdown(title: &str, records: &[Record]) -> String {
    let mut out = format!(
        "# {}\n\n| ¶ | Arabic | English |\n| --- | --- | --- |\n",
        md_cell(title)
    );
    for r in records {
        let _ = writeln!(
            out,
            "| {}.{} | {} | {} |",
            r.para + 1,
            r.sent + 1,
            md_cell(&r.src),
            md_cell(&r.tgt)
        );
    }
    out
}

const HTML_STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:75rem;padding:0 1rem;color:#222}
h1{font-size:1.2rem;font-weight:600}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td{vertical-align:top;padding:.3rem .6rem;line-height:1.6;overflow-wrap:anywhere}
td.ar{font-family:'Noto Naskh Arabic','Amiri','Geeza Pro',serif;font-size:1.15rem}
tbody.para{border-top:1px solid #ccc}
tbody.para tr:first-child td{padding-top:.8rem}
tr:hover td{background:#fff3bf}
tr:hover td.ar{background:#ffe066}
th{text-align:start;font-weight:600;border-bottom:2px solid #888;padding:.3rem .6rem}
@media print{body{margin:0;max-width:none}tr{break-inside:avoid}tr:hover td{background:none}}
";

fn html(title: &str, records: &[Record]) -> String {
    let title = escape(title);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"tarjama {}\">\n<title>{title}</title>\n\
         <style>\n{HTML_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<table>\n\
         <colgroup><col style=\"width:50%\"><col style=\"width:50%\"></colgroup>\n\
         <thead><tr><th dir=\"rtl\" lang=\"ar\">العربية</th><th lang=\"en\">English</th></tr></thead>\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut para = None;
    for r in records {
        if para != Some(r.para) {
            if para.is_some() {
                out.push_str("</tbody>\n");
            }
            let _ = writeln!(out, "<tbody class=\"para\" id=\"p{}\">", r.para + 1);
            para = Some(r.para);
        }
        let _ = writeln!(
            out,
            "<tr id=\"s{p}-{s}\"><td class=\"ar\" dir=\"rtl\" lang=\"ar\">{}</td>\
             <td class=\"en\" lang=\"en\">{}</td></tr>",
            escape(&r.src),
            escape(&r.tgt),
            p = r.para + 1,
            s = r.sent + 1,
        );
    }
    if para.is_some() {
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

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

fn tmx(records: &[Record]) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let write = |w: &mut Writer<Vec<u8>>, e: Event| w.write_event(e).expect("in-memory write");
    write(
        &mut w,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    );
    write(
        &mut w,
        Event::DocType(BytesText::from_escaped("tmx SYSTEM \"tmx14.dtd\"")),
    );
    write(
        &mut w,
        Event::Start(BytesStart::new("tmx").with_attributes([("version", "1.4")])),
    );
    write(
        &mut w,
        Event::Empty(BytesStart::new("header").with_attributes([
            ("creationtool", "tarjama"),
            ("creationtoolversion", env!("CARGO_PKG_VERSION")),
            ("datatype", "plaintext"),
            ("segtype", "sentence"),
            ("adminlang", "en"),
            ("srclang", "ar"),
            ("o-tmf", "tarjama"),
        ])),
    );
    write(&mut w, Event::Start(BytesStart::new("body")));
    for r in records {
        let id = format!("{}.{}", r.para + 1, r.sent + 1);
        write(
            &mut w,
            Event::Start(BytesStart::new("tu").with_attributes([("tuid", id.as_str())])),
        );
        for (lang, text) in [("ar", &r.src), ("en", &r.tgt)] {
            write(
                &mut w,
                Event::Start(BytesStart::new("tuv").with_attributes([("xml:lang", lang)])),
            );
            write(&mut w, Event::Start(BytesStart::new("seg")));
            write(&mut w, Event::Text(BytesText::new(&xml_chars(text))));
            write(&mut w, Event::End(BytesEnd::new("seg")));
            write(&mut w, Event::End(BytesEnd::new("tuv")));
        }
        write(&mut w, Event::End(BytesEnd::new("tu")));
    }
    write(&mut w, Event::End(BytesEnd::new("body")));
    write(&mut w, Event::End(BytesEnd::new("tmx")));
    let mut s = String::from_utf8(w.into_inner()).expect("quick-xml writes UTF-8");
    s.push('\n');
    s
}
