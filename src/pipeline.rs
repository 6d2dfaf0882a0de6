//! The document-to-files job behind `tarjama translate`: reads the inputs
//! (skipping and reporting bad ones), pools their sentences into one
//! [`Engine::translate`] call, turns the results into alignment records and
//! writes each document's bilingual files. This module owns output naming,
//! the resume rule (outputs complete and newer than input and model are
//! kept) and the run summary; it knows nothing of the model's internals.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Result;

use crate::document::{Document, Input, InputError, collect_inputs};
use crate::output::{Format, Record, paths, write_atomic};
use crate::translate::{BatchOptions, Engine, Stats};

/// How inputs are split into sentences; parsed from and shown as its
/// [`InputFormat::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Running text: paragraphs are lines, sentences are found by the segmenter.
    #[default]
    Text,
    /// One sentence per non-empty line, no segmentation.
    Lines,
}

impl InputFormat {
    pub const ALL: [InputFormat; 2] = [InputFormat::Text, InputFormat::Lines];

    /// `text` or `lines`.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Text => "text",
            InputFormat::Lines => "lines",
        }
    }

    /// One line for help texts.
    pub fn description(self) -> &'static str {
        match self {
            InputFormat::Text => {
                "Running text: paragraphs are lines, sentences are found by the segmenter"
            }
            InputFormat::Lines => "One sentence per non-empty line, no segmentation",
        }
    }
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for InputFormat {
    type Err = String;

    /// `text` or `lines` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InputFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown input format {s:?} (text or lines)"))
    }
}

/// Where outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One set of files per document in this folder.
    Dir(PathBuf),
    /// Everything to standard output, in one format.
    Stdout,
}

#[derive(Debug, Clone)]
pub struct JobOptions {
    pub formats: Vec<Format>,
    pub destination: Destination,
    pub input_format: InputFormat,
    pub emit_ids: bool,
    pub force: bool,
    pub batch: BatchOptions,
    /// Newest modification time of the model's files (outputs older than it
    /// are redone).
    pub model_mtime: Option<SystemTime>,
}

/// What happened to each input.
#[derive(Debug, Default)]
pub struct Summary {
    pub documents: usize,
    pub skipped_up_to_date: usize,
    pub failed: Vec<String>,
    pub stats: Stats,
    pub seconds: f64,
}

/// Something to tell the user; the CLI decides how (bar, lines, nothing).
pub trait Reporter: Sync {
    fn warn(&self, message: &str);
    fn start(&self, sentences: usize);
    fn advance(&self, sentences: usize);
    fn finish(&self);
}

/// The stem output files of `input` are named after: the file name without
/// `.txt` and without an `.ar` language tag (`article.ar.txt` gives
/// `article.html`, `article.ar` / `article.en`); `stdin` for `-`.
fn stem(input: &Input) -> String {
    match input {
        Input::Stdin => "stdin".to_string(),
        Input::File(p) => {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "document".into());
            let name = name.strip_suffix(".txt").unwrap_or(&name);
            let name = name
                .strip_suffix(".ar")
                .filter(|s| !s.is_empty())
                .unwrap_or(name);
            name.to_string()
        }
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Outputs are reusable when every file exists and is newer than both the
/// input and the model.
fn up_to_date(files: &[PathBuf], input: &Path, model: Option<SystemTime>) -> bool {
    let Some(src) = mtime(input) else {
        return false;
    };
    files
        .iter()
        .all(|f| mtime(f).is_some_and(|t| t >= src && model.is_none_or(|m| t >= m)))
}

/// Translates `inputs` and writes their outputs.
pub fn run(
    engine: &Engine,
    inputs: &[PathBuf],
    opts: &JobOptions,
    reporter: &dyn Reporter,
) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let split: fn(String, String) -> Document = match opts.input_format {
        InputFormat::Text => Document::parse,
        InputFormat::Lines => Document::parse_lines,
    };

    // Read every input; a bad one is reported and skipped.
    let mut used_stems = HashSet::new();
    let mut docs: Vec<(Document, Vec<PathBuf>)> = Vec::new();
    for input in collect_inputs(inputs) {
        let input = match input {
            Ok(i) => i,
            Err(e) => {
                report_failure(&mut summary, reporter, &e);
                continue;
            }
        };
        let mut name = stem(&input);
        // Two inputs with the same file name must not overwrite each other.
        let base = name.clone();
        let mut n = 1;
        while !used_stems.insert(name.clone()) {
            n += 1;
            name = format!("{base}-{n}");
        }
        let files: Vec<PathBuf> = match &opts.destination {
            Destination::Dir(dir) => opts
                .formats
                .iter()
                .flat_map(|&f| paths(dir, &name, f))
                .collect(),
            Destination::Stdout => Vec::new(),
        };
        if let (Input::File(p), Destination::Dir(_)) = (&input, &opts.destination)
            && !opts.force
            && up_to_date(&files, p, opts.model_mtime)
        {
            summary.skipped_up_to_date += 1;
            continue;
        }
        match Document::read_with(&input, split) {
            Ok(doc) => docs.push((doc, files)),
            Err(e) => report_failure(&mut summary, reporter, &e),
        }
    }

    if docs.is_empty() && summary.failed.is_empty() && summary.skipped_up_to_date == 0 {
        reporter.warn("no input documents (a directory contributes its *.txt files)");
    }
    let sentences: Vec<&str> = docs
        .iter()
        .flat_map(|(d, _)| d.sentences().map(|s| s.text))
        .collect();
    reporter.start(sentences.len());
    let (translations, stats) =
        engine.translate(&sentences, &opts.batch, &|n| reporter.advance(n))?;
    reporter.finish();
    summary.stats = stats;

    let mut next = translations.into_iter();
    let mut stdout = std::io::stdout().lock();
    for (doc, files) in &docs {
        let records: Vec<Record> = doc
            .sentences()
            .map(|s| {
                let t = next.next().expect("one translation per sentence");
                Record {
                    doc: doc.name.clone(),
                    para: s.para,
                    sent: s.sent,
                    start: s.start,
                    end: s.end,
                    src: s.text.to_string(),
                    tgt: t.text,
                    score: t.score,
                    src_ids: opts.emit_ids.then_some(t.src_ids),
                    tgt_ids: opts.emit_ids.then_some(t.tgt_ids),
                    tgt_logprobs: opts.emit_ids.then_some(t.tgt_logprobs),
                    alignment: t.alignment.map(|pairs| {
                        pairs
                            .iter()
                            .map(|(i, j)| format!("{i}-{j}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }),
                }
            })
            .collect();
        let title = doc.name.as_str();
        match &opts.destination {
            Destination::Stdout => {
                for f in &opts.formats {
                    for content in f.render(title, &records) {
                        stdout.write_all(content.as_bytes())?;
                    }
                }
            }
            Destination::Dir(_) => {
                let contents: Vec<String> = opts
                    .formats
                    .iter()
                    .flat_map(|&f| f.render(title, &records))
                    .collect();
                for (path, content) in files.iter().zip(contents) {
                    if let Err(e) = write_atomic(path, content.as_bytes()) {
                        let msg = format!("{}: cannot write {}: {e}", doc.name, path.display());
                        reporter.warn(&msg);
                        summary.failed.push(msg);
                    }
                }
            }
        }
        summary.documents += 1;
    }
    stdout.flush()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn report_failure(summary: &mut Summary, reporter: &dyn Reporter, e: &InputError) {
    let msg = format!("skipping {e}");
    reporter.warn(&msg);
    summary.failed.push(e.to_string());
}

/// Newest modification time among the files of a model folder (following
/// the cache's symlinks), for the resume rule.
pub fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| mtime(&e.ok()?.path()))
        .max()
}
