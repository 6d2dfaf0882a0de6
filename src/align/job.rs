//! The `align` job: pairs of documents in (an Arabic text and its existing
//! English translation; two files, or two folders paired by relative path),
//! bead files out in the formats `translate` writes, each document's files
//! written whole or not at all. A document that cannot be read or aligned is
//! reported and the others go on.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::corpus::{self, FileFilter};
use crate::document::{Document, Input, SentenceRef, TextEncoding, read_bytes};
use crate::output::{BeadRecord, Format, FormatWriter, Staged};
use crate::pipeline::{Destination, DocStatus, InputFormat, Reporter};
use crate::qa;
use crate::translate::{BatchOptions, Done, Engine};

use super::{Options, Sentence, gold};

#[derive(Debug, Clone)]
pub struct AlignJob {
    pub formats: Vec<Format>,
    /// `None`: write nothing (only the gold score is asked for).
    pub destination: Option<Destination>,
    pub input_format: InputFormat,
    pub encoding: TextEncoding,
    /// Which files of input folders are documents.
    pub filter: FileFilter,
    pub options: Options,
    pub max_input_bytes: u64,
    /// The title of HTML and Markdown pages; `None`: the source's file name.
    pub title: Option<String>,
}

/// Where the translations of the source sentences come from, if anywhere.
pub enum Translations<'a> {
    None,
    /// A file (a folder, when aligning folders) with one line per source
    /// sentence.
    Files(&'a Path),
    Engine {
        engine: &'a Engine,
        batch: &'a BatchOptions,
    },
}

/// One pair of documents to align.
#[derive(Debug, Clone)]
pub struct DocPair {
    pub key: String,
    pub src: Input,
    pub tgt: Input,
    pub mt: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct AlignSummary {
    pub documents: usize,
    /// Beads by shape (source and target sentence counts).
    pub shapes: BTreeMap<(usize, usize), usize>,
    pub failed: Vec<String>,
    /// Target documents with no source document (folders only).
    pub unpaired: Vec<String>,
    pub qa: qa::Tally,
    /// With a gold alignment: how the (single) document scored.
    pub gold: Option<gold::Scores>,
    /// Standard output was closed by its reader (`| head`): the run stopped.
    pub closed: bool,
}

/// The key of a target or translation file: its corpus key without a
/// trailing `.en` or `.mt` (`article.en.txt` pairs with `article.ar.txt`).
fn target_key(key: &str) -> &str {
    key.strip_suffix(".en")
        .or_else(|| key.strip_suffix(".mt"))
        .unwrap_or(key)
}

/// The pairs two arguments name: two files (either may be `-`), or two
/// folders whose documents are paired by key. Errors are usage errors.
pub fn pairs(
    src: &Path,
    tgt: &Path,
    mt: Option<&Path>,
    filter: &FileFilter,
) -> Result<(Vec<DocPair>, Vec<String>), String> {
    let is_dir = |p: &Path| p.as_os_str() != "-" && p.is_dir();
    let input = |p: &Path| {
        if p.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::File(p.to_path_buf())
        }
    };
    match (is_dir(src), is_dir(tgt)) {
        (false, false) => {
            if src.as_os_str() == "-" && tgt.as_os_str() == "-" {
                return Err("SRC and TGT cannot both be standard input".into());
            }
            if mt.is_some_and(is_dir) {
                return Err("--mt must be a file when SRC and TGT are files".into());
            }
            let key = corpus::plan(&[src.to_path_buf()], filter, None, None, &[])
                .sources()
                .next()
                .and_then(Result::ok)
                .map_or_else(|| "stdin".to_string(), |s| s.key);
            Ok((
                vec![DocPair {
                    key,
                    src: input(src),
                    tgt: input(tgt),
                    mt: mt.map(Path::to_path_buf),
                }],
                Vec::new(),
            ))
        }
        (true, true) => {
            if mt.is_some_and(|m| !is_dir(m)) {
                return Err("--mt must be a folder when SRC and TGT are folders".into());
            }
            let keyed = |dir: &Path| -> BTreeMap<String, PathBuf> {
                corpus::plan(&[dir.to_path_buf()], filter, None, None, &[])
                    .sources()
                    .filter_map(Result::ok)
                    .filter_map(|s| match s.input {
                        Input::File(p) => Some((target_key(&s.key).to_string(), p)),
                        Input::Stdin => None,
                    })
                    .collect()
            };
            let (sources, mut targets) = (keyed(src), keyed(tgt));
            let mts = mt.map(keyed).unwrap_or_default();
            let mut out = Vec::new();
            for (key, path) in sources {
                let tgt = targets
                    .remove(&key)
                    .map_or_else(|| Input::File(tgt.join(format!("{key}.txt"))), Input::File);
                out.push(DocPair {
                    mt: mt.map(|m| {
                        mts.get(&key)
                            .cloned()
                            .unwrap_or_else(|| m.join(format!("{key}.txt")))
                    }),
                    key,
                    src: Input::File(path),
                    tgt,
                });
            }
            Ok((out, targets.into_keys().collect()))
        }
        _ => Err("SRC and TGT must be two files or two folders".into()),
    }
}

/// Aligns every pair and writes its outputs. `gold`, for a single pair, is
/// scored against.
pub fn run(
    pairs: &[DocPair],
    translations: &Translations,
    job: &AlignJob,
    gold: Option<&[gold::Pair]>,
    reporter: &dyn Reporter,
) -> std::io::Result<AlignSummary> {
    let mut summary = AlignSummary::default();
    let mut stdout = match job.destination {
        Some(Destination::Stdout) => Some(FormatWriter::for_beads(
            job.formats[0],
            vec![BufWriter::new(std::io::stdout())],
            true,
        )),
        _ => None,
    };
    reporter.start(pairs.len());
    for pair in pairs {
        let aligned = align_pair(pair, translations, job, reporter);
        let (records, title) = match aligned {
            Ok(r) => r,
            Err(msg) => {
                reporter.warn(&msg);
                summary.failed.push(msg);
                reporter.document(&pair.key, DocStatus::Failed);
                continue;
            }
        };
        if let (Some(g), 1) = (gold, pairs.len()) {
            let test: Vec<gold::Pair> = records
                .iter()
                .map(|r| (r.src.clone(), r.tgt.clone()))
                .collect();
            summary.gold = Some(gold::score(&test, g));
        }
        let written = match (&mut stdout, &job.destination) {
            (Some(w), _) => {
                let r = w
                    .begin(&title)
                    .and_then(|()| records.iter().try_for_each(|r| w.bead(r)))
                    .and_then(|()| w.end())
                    .and_then(|()| w.outs_mut()[0].flush());
                if r.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
                {
                    reporter.finish();
                    summary.closed = true;
                    return Ok(summary);
                }
                r.map_err(|e| format!("writing to standard output: {e}"))
            }
            (None, Some(Destination::Dir(root))) => {
                match overwrites_input(root, pair, &job.formats) {
                    Some(msg) => Err(msg),
                    None => write_files(root, &pair.key, &title, &records, &job.formats)
                        .map_err(|e| format!("{}: cannot write its outputs: {e}", pair.src.name())),
                }
            }
            (None, _) => Ok(()),
        };
        if let Err(msg) = written {
            reporter.warn(&msg);
            summary.failed.push(msg);
            reporter.document(&pair.key, DocStatus::Failed);
            continue;
        }
        summary.documents += 1;
        for r in &records {
            *summary
                .shapes
                .entry((r.src.len(), r.tgt.len()))
                .or_default() += 1;
            if !r.src.is_empty() && !r.tgt.is_empty() {
                summary.qa.add(&r.flags);
            }
        }
        reporter.document(&pair.key, DocStatus::Written);
    }
    reporter.finish();
    Ok(summary)
}

/// An input of `pair` that one of its outputs would replace (`doc.ar` and
/// `doc.en` named directly, written with Moses into their own folder):
/// inputs are never overwritten.
fn overwrites_input(root: &Path, pair: &DocPair, formats: &[Format]) -> Option<String> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let inputs: Vec<PathBuf> = [&pair.src, &pair.tgt]
        .into_iter()
        .filter_map(|i| match i {
            Input::File(p) => canonical(p),
            Input::Stdin => None,
        })
        .chain(pair.mt.as_deref().and_then(canonical))
        .collect();
    formats
        .iter()
        .flat_map(|f| corpus::output_paths(root, &pair.key, f.suffixes()))
        .find(|out| canonical(out).is_some_and(|c| inputs.contains(&c)))
        .map(|out| {
            format!(
                "{}: its output {} would overwrite an input; nothing written",
                pair.src.name(),
                out.display()
            )
        })
}

/// Every format's files for one document, staged and committed together.
fn write_files(
    root: &Path,
    key: &str,
    title: &str,
    records: &[BeadRecord],
    formats: &[Format],
) -> std::io::Result<()> {
    corpus::check_inside(root, key).map_err(std::io::Error::other)?;
    let tag = corpus::key_tag(key);
    let mut staged = Vec::new();
    for &f in formats {
        let outs = corpus::output_paths(root, key, f.suffixes())
            .iter()
            .map(|p| Staged::new(p, &tag))
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut w = FormatWriter::for_beads(f, outs, false);
        w.begin(title)?;
        records.iter().try_for_each(|r| w.bead(r))?;
        w.end()?;
        staged.extend(w.into_inner());
    }
    crate::output::commit(staged)
}

fn read(input: &Input, job: &AlignJob) -> Result<Document, String> {
    let bytes = read_bytes(input, job.max_input_bytes).map_err(|e| e.to_string())?;
    Document::decode_with(input.name(), bytes, job.encoding, job.input_format.parser())
        .map_err(|e| e.to_string())
}

/// One line per source sentence, from `path`.
fn read_mt(path: &Path, expected: usize, job: &AlignJob) -> Result<Vec<String>, String> {
    let doc = read(
        &Input::File(path.to_path_buf()),
        &AlignJob {
            input_format: InputFormat::Lines,
            ..job.clone()
        },
    )?;
    let mut lines: Vec<String> = doc
        .text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) && lines.len() > expected {
        lines.pop();
    }
    if lines.len() != expected {
        return Err(format!(
            "{}: {} lines, but the source has {expected} sentences (--mt needs one line per source sentence)",
            path.display(),
            lines.len()
        ));
    }
    Ok(lines)
}

/// A document's bead records and its page title.
type Aligned = (Vec<BeadRecord>, String);

fn align_pair(
    pair: &DocPair,
    translations: &Translations,
    job: &AlignJob,
    reporter: &dyn Reporter,
) -> Result<Aligned, String> {
    let src_doc = read(&pair.src, job)?;
    let tgt_doc = read(&pair.tgt, job)?;
    let src: Vec<SentenceRef> = src_doc.sentences().collect();
    let tgt: Vec<SentenceRef> = tgt_doc.sentences().collect();
    fn as_sentences<'a>(v: &[SentenceRef<'a>]) -> Vec<Sentence<'a>> {
        v.iter()
            .map(|s| Sentence {
                text: s.text,
                para: s.para,
            })
            .collect()
    }
    let texts: Vec<&str> = src.iter().map(|s| s.text).collect();
    let mt: Option<Vec<String>> = match translations {
        Translations::None => None,
        Translations::Files(_) => {
            let path = pair
                .mt
                .as_deref()
                .expect("a translation file for every pair");
            Some(read_mt(path, src.len(), job)?)
        }
        Translations::Engine { engine, batch } => {
            let progress = |d: Done| reporter.translated(d);
            let (out, _) = engine
                .translate_with(&texts, batch, &progress, &|| false)
                .map_err(|e| format!("{}: translating: {e:#}", pair.src.name()))?;
            Some(out.into_iter().map(|t| t.text).collect())
        }
    };
    let mt_refs: Option<Vec<&str>> = mt.as_ref().map(|m| m.iter().map(String::as_str).collect());
    let beads = super::align(
        &as_sentences(&src),
        &as_sentences(&tgt),
        mt_refs.as_deref(),
        &job.options,
    );
    let join = |side: &[SentenceRef], r: &std::ops::Range<usize>| {
        side[r.clone()]
            .iter()
            .map(|s| s.text)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut para = 0;
    let records = beads
        .iter()
        .enumerate()
        .map(|(n, b)| {
            let (src_text, tgt_text) = (join(&src, &b.src), join(&tgt, &b.tgt));
            if let Some(s) = src.get(b.src.start).filter(|_| !b.src.is_empty()) {
                para = s.para;
            }
            let span = |side: &[SentenceRef], r: &std::ops::Range<usize>| {
                if r.is_empty() {
                    (None, None)
                } else {
                    (Some(side[r.start].start), Some(side[r.end - 1].end))
                }
            };
            let (src_start, src_end) = span(&src, &b.src);
            let (tgt_start, tgt_end) = span(&tgt, &b.tgt);
            BeadRecord {
                doc: src_doc.name.clone(),
                bead: n,
                para,
                src: b.src.clone().collect(),
                tgt: b.tgt.clone().collect(),
                // A sentence without a counterpart is the bead's news; the
                // flags judge pairs.
                flags: if b.src.is_empty() || b.tgt.is_empty() {
                    Vec::new()
                } else {
                    qa::check(&src_text, &tgt_text)
                },
                src_text,
                tgt_text,
                src_start,
                src_end,
                tgt_start,
                tgt_end,
                score: b.score,
            }
        })
        .collect();
    let title = job
        .title
        .clone()
        .unwrap_or_else(|| pair.src.title(&pair.key));
    Ok((records, title))
}
