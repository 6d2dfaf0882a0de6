//! The document-to-files job behind `tarjama translate`, streaming: the
//! run's documents ([`crate::corpus`]) are read one at a time, those whose
//! outputs are up to date ([`crate::manifest`]) are skipped without loading
//! the model, and the sentences of the others flow through a bounded window
//! (`window` sentences, whole documents admitted in input order, the last
//! one possibly in parts) into [`Engine::translate_with`], which dedupes,
//! sorts and batches within the window. A document's files are written as
//! soon as its last sentence is translated (temps, then renames, then its
//! record), so memory holds the model, the window and one document, and an
//! interrupted run loses at most the documents in flight. This module owns
//! that loop, its stop rule and the run summary (QA flags tallied); it knows
//! nothing of the model's internals.

use std::collections::BTreeMap;
use std::io::{BufWriter, Stdout, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::corpus::{self, Shard, Source, check_inside};
use crate::document::{Document, TextEncoding, read_bytes};
use crate::manifest::{
    Entry, Fingerprint, LockMode, OutputDir, Verdict, content_hash, model_identity, verdict,
};
use crate::marian::Backend;
use crate::output::{Format, FormatWriter, Record, Staged, commit};
use crate::translate::{BatchOptions, Done, Engine, EngineOptions, Interrupted, Stats};

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

    /// The document parser of this format.
    pub fn parser(self) -> fn(String, String) -> Document {
        match self {
            InputFormat::Text => Document::parse,
            InputFormat::Lines => Document::parse_lines,
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
    /// One set of files per document below this folder, mirroring the input
    /// tree.
    Dir(PathBuf),
    /// Everything to standard output, in one format.
    Stdout,
}

/// The model a run uses, loaded only when a document needs translating.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub dir: PathBuf,
    pub engine: EngineOptions,
}

#[derive(Debug, Clone)]
pub struct JobOptions {
    pub formats: Vec<Format>,
    pub destination: Destination,
    pub input_format: InputFormat,
    /// How input bytes are decoded.
    pub encoding: TextEncoding,
    /// Which files of input folders are documents.
    pub filter: corpus::FileFilter,
    /// The title of HTML and Markdown pages; `None`: the input's file name.
    pub title: Option<String>,
    pub emit_ids: bool,
    /// Redo documents whose outputs are up to date.
    pub force: bool,
    pub batch: BatchOptions,
    /// Sentences translated together (dedupe and length sorting happen
    /// within this many); at least 1.
    pub window: usize,
    /// This process's share of a job array; the output folder is then
    /// shared and documents are locked one by one.
    pub shard: Option<Shard>,
    /// Larger inputs are refused.
    pub max_input_bytes: u64,
    /// Report what would be done ([`Reporter::planned`]); write nothing,
    /// load no model.
    pub dry_run: bool,
    /// Report why each document is (or is not) translated.
    pub explain: bool,
}

/// The default `window`: large enough that batches are cut from a mix of
/// lengths as in a whole-corpus run (benches/NOTES.md, "Window").
pub const DEFAULT_WINDOW: usize = 2048;

/// The default `max_input_bytes` (256 MiB).
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 256 << 20;

/// What happened to each input.
#[derive(Debug, Default)]
pub struct Summary {
    /// Documents translated and written.
    pub documents: usize,
    pub skipped_up_to_date: usize,
    /// Documents another process (shard) was writing.
    pub busy: usize,
    pub failed: Vec<String>,
    pub stats: Stats,
    pub seconds: f64,
    /// A stop request ended the run early.
    pub interrupted: bool,
    /// Temp files of killed runs that were removed.
    pub stale_temps_removed: usize,
    /// What ran the network, if a model was loaded.
    pub backend: Option<Backend>,
    /// `--dry-run`: documents that would be translated.
    pub planned: usize,
    /// The QA flags of the pairs translated (documents skipped as up to
    /// date are not read back).
    pub qa: crate::qa::Tally,
}

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The request itself is wrong (exit status 2); nothing was done.
    #[error("{0}")]
    Usage(String),
    /// Standard output was closed by its reader.
    #[error("standard output closed")]
    Closed,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What became of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocStatus {
    Written,
    UpToDate,
    Busy,
    Failed,
}

/// Something to tell the user; the CLI decides how (bar, lines, nothing).
pub trait Reporter: Sync {
    fn warn(&self, message: &str);
    /// `--explain` lines and notes.
    fn info(&self, message: &str);
    /// The run covers `documents` documents.
    fn start(&self, documents: usize);
    /// A batch finished.
    fn translated(&self, done: Done);
    /// A document is finished with.
    fn document(&self, key: &str, status: DocStatus);
    /// `--dry-run`: what would happen to `key`.
    fn planned(&self, key: &str, verdict: &Verdict);
    fn finish(&self);
}

/// A document admitted into the window.
struct Pending {
    doc: Document,
    key: String,
    /// Of HTML and Markdown pages: `--title`, else the input's file name
    /// (never the path as typed: pages are made to be published).
    title: String,
    sentences: usize,
    /// Sentences already handed to the engine.
    next: usize,
    /// Formats to write (all requested, or the missing ones).
    write: Vec<Format>,
    files: Option<Vec<FormatWriter<Staged>>>,
    /// The record to commit after the files (folder destination).
    entry: Option<Entry>,
    _lock: Option<crate::manifest::DocLock>,
}

/// The run's state across windows.
struct Run<'a> {
    opts: &'a JobOptions,
    reporter: &'a dyn Reporter,
    stop: &'a (dyn Fn() -> bool + Sync),
    out: Option<OutputDir>,
    stdout: Option<FormatWriter<BufWriter<Stdout>>>,
    summary: Summary,
    queued: usize,
    pending: std::collections::VecDeque<Pending>,
}

fn suffixes(formats: &[Format]) -> Vec<&'static str> {
    formats.iter().flat_map(|f| f.suffixes()).copied().collect()
}

/// The output files of `key` per format, relative to the output folder.
fn relative_files(key: &str, formats: &[Format]) -> Vec<(String, Vec<String>)> {
    formats
        .iter()
        .map(|f| {
            let files = f.suffixes().iter().map(|s| format!("{key}.{s}")).collect();
            (f.name().to_string(), files)
        })
        .collect()
}

/// The options of a run that change output bytes, by their CLI names.
pub fn output_options(engine: &EngineOptions, opts: &JobOptions) -> BTreeMap<String, String> {
    let or_model = |v: Option<usize>| v.map_or("model".to_string(), |v| v.to_string());
    [
        ("beam", or_model(engine.beam)),
        ("max-new-tokens", or_model(engine.max_new_tokens)),
        ("max-source-tokens", or_model(engine.max_source_tokens)),
        ("engine", engine.backend.engine_name().to_string()),
        ("dtype", engine.backend.dtype_name().to_string()),
        (
            "device",
            if engine.device.is_cpu() {
                "cpu"
            } else {
                "cuda"
            }
            .to_string(),
        ),
        ("word-alignment", engine.word_alignment.to_string()),
        (
            "length-penalty",
            engine
                .length_penalty
                .map_or("model".into(), |p| p.to_string()),
        ),
        (
            "repetition-penalty",
            engine
                .repetition_penalty
                .map_or("model".into(), |p| p.to_string()),
        ),
        (
            "no-repeat-ngram-size",
            or_model(engine.no_repeat_ngram_size),
        ),
        ("n-best", engine.n_best.max(1).to_string()),
        (
            "max-length-factor",
            engine
                .max_length_factor
                .map_or("off".into(), |f| f.to_string()),
        ),
        ("emit-ids", opts.emit_ids.to_string()),
        ("input-format", opts.input_format.to_string()),
        ("encoding", opts.encoding.to_string()),
        (
            "title",
            opts.title.clone().unwrap_or_else(|| "file name".into()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Translates the documents `args` name and writes their outputs, calling
/// `stop` between batches: once it returns true, no new batch starts, the
/// documents already complete are written, and the summary says
/// `interrupted`.
pub fn run(
    model: &ModelSource,
    args: &[PathBuf],
    opts: &JobOptions,
    reporter: &dyn Reporter,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let out_dir = match &opts.destination {
        Destination::Dir(d) => Some(d.as_path()),
        Destination::Stdout => None,
    };
    if let Some(d) = out_dir
        && d.exists()
        && !d.is_dir()
    {
        return Err(RunError::Usage(format!(
            "--out {} exists and is not a folder",
            d.display()
        )));
    }
    let plan = corpus::plan(
        args,
        &opts.filter,
        opts.shard,
        out_dir,
        &suffixes(&opts.formats),
    );
    if let Some(c) = plan.conflicts.first() {
        return Err(RunError::Usage(format!(
            "the output {} would replace the input {}; choose another --out",
            c.output.display(),
            c.input.display()
        )));
    }
    if out_dir.is_none()
        && plan.documents > 1
        && let Some(f) = opts
            .formats
            .iter()
            .find(|f| matches!(f, Format::Html | Format::Tmx))
    {
        return Err(RunError::Usage(format!(
            "{} to standard output holds one document, and the inputs are {} documents; \
             use jsonl, tsv or md, or --out DIR",
            f.name(),
            plan.documents
        )));
    }
    let mode = if opts.shard.is_some() {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let open = |d: &std::path::Path| {
        OutputDir::open(d, mode).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => RunError::Usage(e.to_string()),
            _ => {
                RunError::Failed(anyhow::Error::new(e).context(format!("opening {}", d.display())))
            }
        })
    };
    // A folder that does not exist yet holds nothing to resume: it is
    // created once the model has loaded, so that a model that fails leaves
    // no trace.
    let out = match out_dir {
        Some(d) if !opts.dry_run && (d.exists() || mode == LockMode::Shared) => Some(open(d)?),
        _ => None,
    };
    // Only the resume rule needs the model's identity (a hash of its files).
    let want = match out_dir {
        Some(_) => Some(Fingerprint {
            input: String::new(),
            model: model_identity(&model.dir)
                .with_context(|| format!("reading the model in {}", model.dir.display()))?,
            options: output_options(&model.engine, opts),
            version: crate::manifest::outputs_version(),
        }),
        None => None,
    };
    let mut run = Run {
        opts,
        reporter,
        stop,
        stdout: out_dir.is_none().then(|| {
            let format = opts.formats[0];
            // Moses (two files) never goes to standard output.
            let outs = vec![BufWriter::new(std::io::stdout())];
            FormatWriter::new(format, outs, true)
        }),
        out,
        summary: Summary::default(),
        queued: 0,
        pending: Default::default(),
    };
    if let Some(out) = &run.out
        && out.mode() == LockMode::Exclusive
    {
        run.summary.stale_temps_removed = out.remove_stale_temps(None);
    }
    reporter.start(plan.documents);
    let mut engine: Option<Engine> = None;
    let window = opts.window.max(1);
    for source in plan.sources() {
        if stop() {
            run.summary.interrupted = true;
            break;
        }
        let source = match source {
            Ok(s) => s,
            Err(e) => {
                run.fail("", &e.to_string());
                continue;
            }
        };
        let Some(pending) = run.admit(source, want.as_ref())? else {
            continue;
        };
        // Reading may have blocked (standard input) while a stop came.
        if stop() {
            run.summary.interrupted = true;
            break;
        }
        if engine.is_none() {
            let e = Engine::load(&model.dir, &model.engine)?;
            run.summary.backend = Some(e.backend());
            engine = Some(e);
            if let (Some(d), None) = (out_dir, &run.out) {
                run.out = Some(open(d)?);
            }
        }
        run.queued += pending.sentences;
        run.pending.push_back(pending);
        while run.queued >= window && !run.summary.interrupted {
            run.round(engine.as_ref().expect("loaded"), window)?;
        }
        run.write_finished()?;
    }
    while !run.pending.is_empty() && !run.summary.interrupted {
        if stop() {
            run.summary.interrupted = true;
            break;
        }
        match &engine {
            Some(e) if run.queued > 0 => run.round(e, window)?,
            _ => {}
        }
        run.write_finished()?;
    }
    if let Some(w) = run.stdout.as_mut() {
        for o in w.outs_mut() {
            o.flush()
                .map_err(|e| run_io(e, "writing to standard output"))?;
        }
    }
    reporter.finish();
    let mut summary = run.summary;
    summary.seconds = started.elapsed().as_secs_f64();
    if summary.documents == 0
        && summary.failed.is_empty()
        && summary.skipped_up_to_date == 0
        && summary.busy == 0
        && !opts.dry_run
    {
        reporter.warn("no input documents (a directory contributes its *.txt files)");
    }
    Ok(summary)
}

fn run_io(e: std::io::Error, what: &str) -> RunError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        RunError::Closed
    } else {
        RunError::Failed(anyhow::Error::new(e).context(what.to_string()))
    }
}

impl Run<'_> {
    fn fail(&mut self, key: &str, message: &str) {
        self.reporter.warn(&format!("skipping {message}"));
        self.summary.failed.push(message.to_string());
        self.reporter.document(key, DocStatus::Failed);
    }

    /// Reads `source` and decides what to do with it: `None` when it is
    /// skipped (up to date, being written by another shard, unreadable, or
    /// a dry run), else the document to translate.
    fn admit(
        &mut self,
        source: Source,
        want: Option<&Fingerprint>,
    ) -> Result<Option<Pending>, RunError> {
        let opts = self.opts;
        let key = source.key;
        let bytes = match read_bytes(&source.input, opts.max_input_bytes) {
            Ok(b) => b,
            Err(e) => {
                self.fail(&key, &e.to_string());
                return Ok(None);
            }
        };
        let name = source.input.name();
        let mut write = opts.formats.clone();
        let (mut entry, mut lock) = (None, None);
        if let (Destination::Dir(root), Some(want)) = (&opts.destination, want) {
            if let Err(e) = check_inside(root, &key) {
                self.fail(&key, &format!("{name}: {e}"));
                return Ok(None);
            }
            if let Some(out) = &self.out {
                match out.lock_document(&key) {
                    Ok(l) => lock = l,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if opts.explain {
                            self.reporter.info(&format!("{key}: {e}"));
                        }
                        self.summary.busy += 1;
                        self.reporter.document(&key, DocStatus::Busy);
                        return Ok(None);
                    }
                    Err(e) => {
                        self.fail(&key, &format!("{name}: cannot lock: {e}"));
                        return Ok(None);
                    }
                }
                if lock.is_some() {
                    self.summary.stale_temps_removed += out.remove_stale_temps(Some(&key));
                }
            }
            let fingerprint = Fingerprint {
                input: content_hash(&bytes),
                ..want.clone()
            };
            let files = relative_files(&key, &opts.formats);
            let recorded = match &self.out {
                Some(out) => out.entry(&key),
                // A dry run reads the records without locking.
                None => crate::manifest::entry_at(root, &key),
            };
            let v = if opts.force {
                Verdict::Redo("--force".into())
            } else {
                verdict(recorded.as_ref(), &fingerprint, &files, root)
            };
            if opts.explain {
                self.reporter.info(&format!("{key}: {}", v.reason()));
            }
            if opts.dry_run {
                self.reporter.planned(&key, &v);
                match v {
                    Verdict::UpToDate => self.summary.skipped_up_to_date += 1,
                    _ => self.summary.planned += 1,
                }
                return Ok(None);
            }
            let mut all_files: BTreeMap<String, Vec<String>> = BTreeMap::new();
            match &v {
                Verdict::UpToDate => {
                    self.summary.skipped_up_to_date += 1;
                    self.reporter.document(&key, DocStatus::UpToDate);
                    return Ok(None);
                }
                Verdict::Missing(missing) => {
                    write.retain(|f| missing.iter().any(|m| m == f.name()));
                    all_files = recorded.map(|e| e.files).unwrap_or_default();
                }
                Verdict::Redo(_) => {}
            }
            all_files.extend(relative_files(&key, &write));
            entry = Some(Entry {
                key: key.clone(),
                input: name.clone(),
                fingerprint,
                files: all_files,
                sentences: 0,
            });
        }
        let doc =
            match Document::decode_with(name, bytes, opts.encoding, opts.input_format.parser()) {
                Ok(d) => d,
                Err(e) => {
                    self.fail(&key, &e.to_string());
                    return Ok(None);
                }
            };
        let sentences = doc.sentences().count();
        if let Some(e) = entry.as_mut() {
            e.sentences = sentences;
        }
        let title = opts
            .title
            .clone()
            .unwrap_or_else(|| source.input.title(&key));
        Ok(Some(Pending {
            doc,
            key,
            title,
            sentences,
            next: 0,
            write,
            files: None,
            entry,
            _lock: lock,
        }))
    }

    /// Translates the next `window` sentences of the admitted documents (in
    /// order) and writes their records.
    fn round(&mut self, engine: &Engine, window: usize) -> Result<(), RunError> {
        // (document index, first sentence, count)
        let mut parts: Vec<(usize, usize, usize)> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for (i, p) in self.pending.iter().enumerate() {
            if texts.len() >= window {
                break;
            }
            let n = (p.sentences - p.next).min(window - texts.len());
            if n == 0 {
                continue;
            }
            texts.extend(p.doc.sentences().skip(p.next).take(n).map(|s| s.text));
            parts.push((i, p.next, n));
        }
        let reporter = self.reporter;
        let result = engine.translate_with(
            &texts,
            &self.opts.batch,
            &|d| reporter.translated(d),
            self.stop,
        );
        let (translations, stats) = match result {
            Ok(r) => r,
            Err(e) if e.is::<Interrupted>() => {
                self.summary.interrupted = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.summary.stats.add(&stats);
        release_freed_memory();
        let mut next = translations.into_iter();
        for (i, first, n) in parts {
            let records: Vec<Record> = {
                let p = &self.pending[i];
                p.doc
                    .sentences()
                    .skip(first)
                    .take(n)
                    .zip(next.by_ref())
                    .map(|(s, t)| record(&p.doc, s, t, self.opts.emit_ids))
                    .collect()
            };
            for r in &records {
                self.summary.qa.add(&r.flags);
            }
            self.pending[i].next += n;
            self.queued -= n;
            self.write_records(i, &records)?;
        }
        Ok(())
    }

    /// Writes `records` of pending document `i`, opening its outputs first.
    fn write_records(&mut self, i: usize, records: &[Record]) -> Result<(), RunError> {
        let p = &mut self.pending[i];
        if let Some(w) = self.stdout.as_mut() {
            // Rounds take sentences in document order, so a document's
            // records follow the whole of the one before it; only JSONL, TSV
            // and Markdown (no tail) go to standard output with several.
            return write_all(w, &p.title, records, p.next == records.len())
                .map_err(|e| run_io(e, "writing to standard output"));
        }
        let Destination::Dir(root) = &self.opts.destination else {
            unreachable!("a folder when not standard output")
        };
        if p.files.is_none() {
            let tag = corpus::key_tag(&p.key);
            let opened: std::io::Result<Vec<FormatWriter<Staged>>> = p
                .write
                .iter()
                .map(|&f| {
                    let outs = corpus::output_paths(root, &p.key, f.suffixes())
                        .iter()
                        .map(|path| Staged::new(path, &tag))
                        .collect::<std::io::Result<Vec<_>>>()?;
                    let mut w = FormatWriter::new(f, outs, false);
                    w.begin(&p.title)?;
                    Ok(w)
                })
                .collect();
            match opened {
                Ok(w) => p.files = Some(w),
                Err(e) => {
                    let msg = format!("{}: cannot write its outputs: {e}", p.doc.name);
                    p.write.clear();
                    p.files = Some(Vec::new());
                    p.entry = None;
                    self.summary.failed.push(msg.clone());
                    self.reporter.warn(&msg);
                    return Ok(());
                }
            }
        }
        let files = p.files.as_mut().expect("opened");
        let written = files
            .iter_mut()
            .try_for_each(|w| records.iter().try_for_each(|r| w.record(r)));
        if let Err(e) = written {
            let msg = format!("{}: cannot write its outputs: {e}", p.doc.name);
            files.clear();
            p.entry = None;
            self.summary.failed.push(msg.clone());
            self.reporter.warn(&msg);
        }
        Ok(())
    }

    /// Finishes the documents at the front whose every sentence is written.
    fn write_finished(&mut self) -> Result<(), RunError> {
        while self.pending.front().is_some_and(|p| p.next == p.sentences) {
            if self.pending[0].files.is_none() && self.stdout.is_none() {
                // A document without sentences still gets its (empty) files.
                self.write_records(0, &[])?;
            }
            let p = self.pending.pop_front().expect("checked");
            if let Some(w) = self.stdout.as_mut() {
                if p.sentences == 0 {
                    write_all(w, &p.title, &[], true)
                        .map_err(|e| run_io(e, "writing to standard output"))?;
                }
                w.end()
                    .map_err(|e| run_io(e, "writing to standard output"))?;
                self.summary.documents += 1;
                self.reporter.document(&p.key, DocStatus::Written);
                continue;
            }
            let Some(entry) = p.entry else {
                // Its failure is already reported; temps go with the writers.
                self.reporter.document(&p.key, DocStatus::Failed);
                continue;
            };
            let out = self.out.as_ref().expect("a folder destination is open");
            let committed = (|| -> std::io::Result<()> {
                let mut staged = Vec::new();
                for mut w in p.files.unwrap_or_default() {
                    w.end()?;
                    staged.extend(w.into_inner());
                }
                staged.push(out.stage_entry(&entry)?);
                commit(staged)
            })();
            match committed {
                Ok(()) => {
                    self.summary.documents += 1;
                    self.reporter.document(&p.key, DocStatus::Written);
                }
                Err(e) => {
                    let msg = format!("{}: cannot write its outputs: {e}", p.doc.name);
                    self.summary.failed.push(msg.clone());
                    self.reporter.warn(&msg);
                    self.reporter.document(&p.key, DocStatus::Failed);
                }
            }
        }
        Ok(())
    }
}

/// Hands the heap's free pages back to the system after a window: glibc
/// keeps them otherwise, and over thousands of windows of short-lived batch
/// buffers (each worker thread allocating in its own arena) a run's RSS
/// crept up by a third while its live heap stayed flat (heaptrack; the
/// "Window" section of benches/NOTES.md). Elsewhere a no-op.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes no pointers and may be called
        // at any time from any thread.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Writes a document's `records` to the stream; `begin` starts it.
fn write_all(
    w: &mut FormatWriter<BufWriter<Stdout>>,
    title: &str,
    records: &[Record],
    begin: bool,
) -> std::io::Result<()> {
    if begin {
        w.begin(title)?;
    }
    records.iter().try_for_each(|r| w.record(r))
}

/// The alignment record of sentence `s` of `doc` and its translation `t`,
/// as every output format (and the CLI's JSONL) holds it, with its QA flags;
/// ids and log-probabilities only with `emit_ids`.
pub fn record(
    doc: &Document,
    s: crate::document::SentenceRef<'_>,
    t: crate::translate::Translation,
    emit_ids: bool,
) -> Record {
    Record {
        doc: doc.name.clone(),
        para: s.para,
        sent: s.sent,
        start: s.start,
        end: s.end,
        src: s.text.to_string(),
        flags: crate::qa::check(s.text, &t.text),
        tgt: t.text,
        score: t.score,
        src_ids: emit_ids.then_some(t.src_ids),
        tgt_ids: emit_ids.then_some(t.tgt_ids),
        tgt_logprobs: emit_ids.then_some(t.tgt_logprobs),
        alternatives: (!t.alternatives.is_empty()).then(|| {
            t.alternatives
                .into_iter()
                .map(|a| crate::output::Alternative {
                    tgt: a.text,
                    score: a.score,
                    tgt_ids: emit_ids.then_some(a.tgt_ids),
                })
                .collect()
        }),
        alignment: t.alignment.map(|pairs| {
            pairs
                .iter()
                .map(|(i, j)| format!("{i}-{j}"))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    }
}
