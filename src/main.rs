//! The `tarjama` command line: a thin layer that parses arguments, calls the
//! library and maps failures to exit codes (0 success, 1 some input failed,
//! 2 usage error).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tarjama::corpus::FileFilter;
use tarjama::document::{Document, TextEncoding};
use tarjama::manifest::Verdict;
use tarjama::marian::{Backend, ISA_VAR, Isa, Precision};
use tarjama::output::Format;
use tarjama::pipeline::{
    Destination, DocStatus, InputFormat, JobOptions, ModelSource, Reporter, RunError,
};
use tarjama::translate::{BatchOptions, EngineOptions, describe_shares, thread_shares};
use tarjama::translate::{Done, Engine};

#[derive(Parser)]
#[command(
    name = "tarjama",
    version = env!("TARJAMA_VERSION"),
    about = "Batch-translate Arabic documents into English with a local Marian (OPUS-MT) model, \
             keeping every sentence aligned with its translation.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split documents into paragraphs and sentences (with byte offsets).
    Segment(SegmentArgs),
    /// Translate documents and write bilingual files (HTML, TMX, TSV, JSONL, Markdown, Moses).
    Translate(Box<TranslateArgs>),
    /// Align documents with existing English translations (sentence beads 1-1, 1-n, n-1, 1-0,
    /// 0-1) and write bilingual files.
    Align(Box<AlignArgs>),
    /// List the models in the Hugging Face cache (HF_HUB_CACHE, else $HF_HOME/hub).
    Models,
    /// Fetch the files a model needs into the Hugging Face cache and print its folder.
    Download(DownloadArgs),
    /// Measure generation throughput on a fixed workload of random source ids.
    Bench(BenchArgs),
    /// Show the CPU features found, the kernels each precision runs on, the thread defaults, and
    /// CUDA: compiled in or not, and the GPU found.
    Info(InfoArgs),
    /// List the documents of an output folder: done, incomplete (files missing) or stale
    /// (input changed or gone).
    Status(StatusArgs),
}

#[derive(clap::Args)]
struct AlignArgs {
    /// The Arabic document: a file, `-` for standard input, or a folder (its documents are paired
    /// with TGT's by relative path: `a.ar.txt` with `a.en.txt` or `a.txt`)
    #[arg(value_name = "SRC")]
    src: PathBuf,
    /// Its English translation: a file, `-`, or a folder
    #[arg(value_name = "TGT")]
    tgt: PathBuf,
    /// An existing translation of SRC, one line per SRC sentence (in segmentation order; a
    /// folder when aligning folders), compared with TGT
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    mt: Option<PathBuf>,
    /// Translate SRC with this model and compare the translation with TGT (a local folder or a
    /// Hub id)
    #[arg(long, value_name = "ID|DIR")]
    model: Option<String>,
    /// Use the Hugging Face cache only, never the network
    #[arg(long)]
    offline: bool,
    /// The largest group of sentences on either side of a 1-n or n-1 bead
    #[arg(long, value_name = "N", default_value_t = tarjama::align::DEFAULT_MAX_GROUP as u64,
          value_parser = at_least(1))]
    max_group: u64,
    /// Output folder (mirrors SRC's tree), or `-` for standard output (one --format) [default:
    /// aligned, or nothing with --gold]
    #[arg(long, value_name = "DIR|-")]
    out: Option<PathBuf>,
    /// Output formats, comma-separated: html, tmx, tsv, jsonl, md, moses [default: all six]
    #[arg(long, value_parser = format_parser(), value_delimiter = ',')]
    format: Vec<Format>,
    /// Score the alignment against a gold one (JSONL beads with `src`/`tgt` index arrays, or
    /// vecalign's `[0, 1]:[0]` lines) and print strict precision, recall and F1 on stdout
    #[arg(long, value_name = "FILE")]
    gold: Option<PathBuf>,
    /// Title of HTML and Markdown pages [default: SRC's file name]
    #[arg(long)]
    title: Option<String>,
    #[command(flatten)]
    reading: ReadingArgs,
    #[arg(long, value_parser = input_format_parser(), default_value_t = InputFormat::Text)]
    input_format: InputFormat,
    /// Larger inputs are refused
    #[arg(long, value_name = "BYTES", default_value_t = tarjama::pipeline::DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
    /// Threads for the model (default: the machine's cores)
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    threads: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// No progress and no summary
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct InfoArgs {
    /// Print one JSON object instead.
    #[arg(long)]
    json: bool,
    /// Also run the token-selection kernel (the GPU search's) on every device this build
    /// opens and compare it with the host implementation; exit 1 on a difference.
    #[arg(long)]
    self_test: bool,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// A local model folder or a Hugging Face model id [default: --random opus-mt-ar-en]
    #[arg(long, value_name = "ID|DIR", conflicts_with = "random")]
    model: Option<String>,
    /// Build a random-weight model of this published architecture (no download).
    #[arg(long, value_enum, value_name = "NAME")]
    random: Option<RandomArchArg>,
    /// Number of random source sentences (10 to 60 tokens each).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = at_least(1))]
    sentences: u64,
    /// Read the sources from a JSON list of token id lists instead (each ending in EOS).
    #[arg(long, value_name = "FILE", conflicts_with = "sentences")]
    sources: Option<PathBuf>,
    /// Sentences per batch (batches are cut in input order).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = at_least(1))]
    batch_size: u64,
    /// Beam size (1 = greedy).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least(1))]
    beam: u64,
    /// Exactly this many new tokens per sentence (EOS disabled).
    #[arg(long, value_name = "N", default_value_t = 40, value_parser = at_least(1))]
    fixed_new_tokens: u64,
    /// Threads to use [default: all cores]
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    threads: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Seed of the random sources and random weights.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run once per combination of these values (the cartesian product), each in its own process;
    /// KEY is batch, threads, beam or dtype, and a swept key replaces its option. Repeat the
    /// option or list several: --sweep batch=1,8,32 threads=1,2
    #[arg(
        long,
        value_name = "KEY=V1,V2,...",
        num_args = 1..,
        requires = "sweep_out",
        conflicts_with = "json"
    )]
    sweep: Vec<tarjama::bench::sweep::Axis>,
    /// Where --sweep writes its results: PREFIX.csv, PREFIX.json and the chart PREFIX.svg.
    #[arg(long, value_name = "PREFIX", requires = "sweep")]
    sweep_out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum RandomArchArg {
    #[value(name = "opus-mt-ar-en")]
    OpusMtArEn,
    #[value(name = "opus-mt-tc-big-ar-en")]
    OpusMtTcBigArEn,
}

#[derive(clap::Args)]
struct SegmentArgs {
    /// Files, directories (their *.txt files, recursively, sorted) or `-` for standard input.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    reading: ReadingArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SegmentFormat::Lines)]
    format: SegmentFormat,
}

#[derive(clap::Args)]
struct TranslateArgs {
    /// Files, directories (their *.txt files, recursively, sorted) or `-` for standard input.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// A local model folder or a Hugging Face model id.
    #[arg(long, value_name = "ID|DIR", default_value = tarjama::hub::DEFAULT_MODEL)]
    model: String,
    /// Branch, tag or commit of a Hugging Face model.
    #[arg(long)]
    revision: Option<String>,
    /// Use the Hugging Face cache only, never the network (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    /// Output folder, or `-` for standard output (one --format) [default: outputs, or - when
    /// the only input is -]
    #[arg(long, value_name = "DIR|-")]
    out: Option<PathBuf>,
    /// Output formats, comma separated [default: all but txt; txt to standard output]
    #[arg(long, value_parser = format_parser(), value_delimiter = ',')]
    format: Vec<Format>,
    /// Title of the HTML and Markdown pages [default: the input's file name]
    #[arg(long)]
    title: Option<String>,
    #[command(flatten)]
    reading: ReadingArgs,
    /// Beam size (1 = greedy) [default: the model's generation config]
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    beam: Option<u64>,
    /// Maximum number of generated tokens per sentence [default: the model's]
    #[arg(long, value_name = "N")]
    max_new_tokens: Option<usize>,
    /// Beam scores are divided by length^P: above 1 favours longer translations, below 1
    /// shorter ones (transformers' length_penalty) [default: the model's, 1.0 if unset]
    #[arg(long, value_name = "P")]
    length_penalty: Option<f64>,
    /// Penalise tokens already in the source or the translation so far: above 1 discourages
    /// repetition (transformers' repetition_penalty; 1 = none) [default: the model's]
    #[arg(long, value_name = "P", value_parser = positive)]
    repetition_penalty: Option<f64>,
    /// Never repeat an n-gram of this size within a translation (0 = no limit)
    /// [default: the model's]
    #[arg(long, value_name = "N")]
    no_repeat_ngram_size: Option<usize>,
    /// Keep the N best translations of each sentence (beam search, N at most the beam):
    /// JSONL records get the next best as "alternatives" with their scores.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least(1))]
    n_best: u64,
    /// At most F × source tokens + 10 new tokens per sentence (Marian's --max-length-factor;
    /// 3 is a good value), so that a runaway translation stops early [default: off, the
    /// model's single limit, as transformers]
    #[arg(long, value_name = "F", value_parser = positive)]
    max_length_factor: Option<f64>,
    /// Longer sentences are split at clause boundaries [default: the model's position limit]
    #[arg(long, value_name = "N", value_parser = at_least(2))]
    max_source_tokens: Option<u64>,
    /// Padded source tokens per batch [default: 2048 on the CPU, 16384 on a GPU]
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    batch_tokens: Option<u64>,
    /// Threads to use in all [default: all cores]
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    threads: Option<u64>,
    /// Batches translated at the same time, each on its own share of the threads (at most
    /// --threads) [default: 2, or 1 with one thread]
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    workers: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// How inputs are split into sentences.
    #[arg(long, value_parser = input_format_parser(), default_value_t = InputFormat::Text)]
    input_format: InputFormat,
    /// Add src_ids, tgt_ids and tgt_logprobs to JSONL records.
    #[arg(long)]
    emit_ids: bool,
    /// Add Marian-style word alignment (i-j pairs) from the alignment head.
    #[arg(long)]
    word_alignment: bool,
    /// Redo documents whose outputs are already up to date.
    #[arg(long)]
    force: bool,
    /// Sentences translated together: documents are admitted whole, in input order, and
    /// duplicates and lengths are sorted out within the window; memory holds the model,
    /// the window and one document.
    #[arg(long, value_name = "N", default_value_t = tarjama::pipeline::DEFAULT_WINDOW as u64,
          value_parser = at_least(1))]
    window: u64,
    /// Take only shard I of N (I counted from 0): the documents whose relative path hashes
    /// to I. N processes (a job array) cover the inputs and share one --out folder.
    #[arg(long, value_name = "I/N")]
    shard: Option<tarjama::corpus::Shard>,
    /// Refuse inputs larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = tarjama::pipeline::DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
    /// List on stdout what would be translated and why, without loading the model or
    /// writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Say on stderr why each document is translated again or skipped.
    #[arg(long)]
    explain: bool,
    /// One line on stderr for every document written.
    #[arg(long, short)]
    verbose: bool,
    /// No progress and no summary on stderr (errors are still reported).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct DownloadArgs {
    /// A Hugging Face model id.
    #[arg(value_name = "ID", default_value = tarjama::hub::DEFAULT_MODEL)]
    model: String,
    /// Branch, tag or commit.
    #[arg(long)]
    revision: Option<String>,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// An output folder of `tarjama translate`.
    #[arg(value_name = "OUT_DIR")]
    out: PathBuf,
}

/// How inputs are found and decoded (shared by `translate` and `segment`).
#[derive(clap::Args)]
struct ReadingArgs {
    /// Encoding of the inputs: auto (UTF-8, UTF-16 by its byte-order mark, else a detected
    /// Windows-1256 / ISO-8859-6), or a name: utf-8, windows-1256 (cp1256), utf-16le,
    /// utf-16be, iso-8859-6, … Offsets in records stay byte offsets into the original file.
    #[arg(long, value_name = "NAME", default_value = "auto",
          value_parser = |s: &str| s.parse::<TextEncoding>())]
    encoding: TextEncoding,
    /// Which files of an input folder are documents (repeatable; matched against the file
    /// name and the path below the folder, case ignored; !PATTERN excludes) [default: *.txt]
    #[arg(long, value_name = "PATTERN")]
    glob: Vec<String>,
}

impl ReadingArgs {
    fn filter(&self) -> Result<FileFilter, String> {
        FileFilter::new(&self.glob)
    }
}

/// Where and how the network runs (shared by `translate` and `bench`).
#[derive(clap::Args)]
struct RuntimeArgs {
    /// Device to run the model on.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Number type of the weights and activations: int8 (weights quantised
    /// per channel, activations per row) and bf16 run on the native CPU
    /// engine; f16 only on candle.
    #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
    dtype: DTypeArg,
    /// Network implementation [default: native on the CPU, candle on CUDA].
    #[arg(long, value_enum)]
    engine: Option<EngineArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
enum DTypeArg {
    F32,
    F16,
    Bf16,
    Int8,
}

/// A whole number of at least `min`, with an error that says so (clap's
/// range parser says "0 is not in 1..=18446744073709551615").
fn at_least(min: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let n: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number"))?;
        if n < min {
            return Err(format!("must be at least {min}"));
        }
        Ok(n)
    }
}

/// A number above 0 (a repetition penalty of 0 or less has no meaning).
fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

/// `--format`'s values: the library's [`Format`] names.
fn format_parser() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(Format::ALL.map(|f| PossibleValue::new(f.name())))
        .map(|s| s.parse::<Format>().expect("one of the listed names"))
}

/// `--input-format`'s values: the library's [`InputFormat`] names and descriptions.
fn input_format_parser() -> impl TypedValueParser<Value = InputFormat> {
    PossibleValuesParser::new(
        InputFormat::ALL.map(|f| PossibleValue::new(f.name()).help(f.description())),
    )
    .map(|s| s.parse::<InputFormat>().expect("one of the listed names"))
}

/// The default number of concurrent batches for `threads` threads: two,
/// each on half the threads, measured at least as fast as one batch on all
/// of them on a 2-core machine; on many cores more workers are predicted to
/// do better on a large corpus, unmeasured (benches/NOTES.md, "Thread model").
fn default_workers(threads: usize) -> usize {
    threads.min(2)
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum EngineArg {
    /// Packed-weight kernels for this CPU (AVX-512 where available).
    Native,
    /// candle tensors (any device).
    Candle,
}

#[derive(Clone, Copy, ValueEnum)]
enum SegmentFormat {
    /// One sentence per line, a blank line between paragraphs and between documents.
    Lines,
    /// One JSON object per sentence: doc, para, sent, start, end (byte offsets), text.
    Jsonl,
}

#[derive(serde::Serialize)]
struct SentenceRecord<'a> {
    doc: &'a str,
    para: usize,
    sent: usize,
    start: usize,
    end: usize,
    text: &'a str,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Segment(args) => segment(&args),
        Command::Models => models(),
        Command::Download(args) => download(&args),
        Command::Translate(args) => translate(&args),
        Command::Align(args) => align(&args),
        Command::Bench(args) => bench(&args),
        Command::Info(args) => info(&args),
        Command::Status(args) => status(&args),
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`tarjama segment … | head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarjama: {e}");
            ExitCode::from(1)
        }
    }
}

fn segment(args: &SegmentArgs) -> io::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    let mut first_doc = true;
    let filter = match args.reading.filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tarjama: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let read = |i: tarjama::document::Input| {
        let bytes = tarjama::document::read_bytes(&i, u64::MAX)?;
        Document::decode_with(i.name(), bytes, args.reading.encoding, Document::parse)
    };
    for input in tarjama::corpus::inputs(&args.inputs, &filter) {
        let doc = match input.and_then(read) {
            Ok(doc) => doc,
            Err(e) => {
                out.flush()?;
                eprintln!("tarjama: skipping {e}");
                failed += 1;
                continue;
            }
        };
        match args.format {
            SegmentFormat::Lines => {
                if doc.paragraphs.is_empty() {
                    continue;
                }
                if !first_doc {
                    writeln!(out)?;
                }
                first_doc = false;
                for (i, s) in doc.sentences().enumerate() {
                    if i > 0 && s.sent == 0 {
                        writeln!(out)?;
                    }
                    writeln!(out, "{}", s.text)?;
                }
            }
            SegmentFormat::Jsonl => {
                for s in doc.sentences() {
                    let rec = SentenceRecord {
                        doc: &doc.name,
                        para: s.para,
                        sent: s.sent,
                        start: s.start,
                        end: s.end,
                        text: s.text,
                    };
                    serde_json::to_writer(&mut out, &rec)?;
                    writeln!(out)?;
                }
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        eprintln!("tarjama: {failed} input(s) failed");
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// `tarjama download ID`: what `translate --model ID` would fetch (required
/// files, weights, generation config), into the cache; the folder on stdout.
fn download(args: &DownloadArgs) -> io::Result<ExitCode> {
    if std::path::Path::new(&args.model).is_dir() {
        eprintln!(
            "tarjama: {} is a local folder; download takes a Hugging Face model id",
            args.model
        );
        return Ok(ExitCode::from(2));
    }
    match resolve_model(&args.model, args.revision.as_deref(), false) {
        Ok(dir) => {
            writeln!(io::stdout(), "{}", dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

fn models() -> io::Result<ExitCode> {
    let list = match tarjama::hub::cached_models() {
        Ok(list) => list,
        Err(e) => {
            eprintln!("tarjama: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let cache = tarjama::hub::cache_dir();
    let mut out = io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no models cached in {}", cache.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "# cache: {}", cache.display())?;
    writeln!(out, "MODEL\tREVISIONS\tSIZE_MB\tUSABLE")?;
    for m in list {
        writeln!(
            out,
            "{}\t{}\t{:.1}\t{}",
            m.repo_id,
            m.revisions.join(","),
            m.size_on_disk as f64 / 1e6,
            if m.complete { "yes" } else { "incomplete" }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress on stderr: a bar over documents on a terminal (its message
/// counts sentences and parts of split sentences, so it moves inside a long
/// document), a line every few seconds otherwise, nothing when quiet.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    verbose: bool,
    documents: AtomicUsize,
    total: AtomicUsize,
    sentences: AtomicUsize,
    parts: AtomicUsize,
    tokens: AtomicUsize,
    last_line: std::sync::Mutex<std::time::Instant>,
    started: std::time::Instant,
}

impl Progress {
    fn new(quiet: bool, verbose: bool) -> Progress {
        use std::io::IsTerminal;
        let tty = io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} documents  {msg}  ETA {eta}",
                )
                .expect("valid template"),
            );
            bar
        });
        Progress {
            bar,
            plain: !quiet && !tty,
            verbose,
            documents: 0.into(),
            total: 0.into(),
            sentences: 0.into(),
            parts: 0.into(),
            tokens: 0.into(),
            last_line: std::sync::Mutex::new(std::time::Instant::now()),
            started: std::time::Instant::now(),
        }
    }

    fn line(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("tarjama: {message}")),
            None => eprintln!("tarjama: {message}"),
        }
    }

    /// Where the run stands, in words.
    fn state(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{} sentences ({} parts), {:.1} target tokens/s",
            self.sentences.load(Ordering::Relaxed),
            self.parts.load(Ordering::Relaxed),
            self.tokens.load(Ordering::Relaxed) as f64 / secs
        )
    }

    fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.state());
        } else if self.plain {
            let mut last = self.last_line.lock().expect("not poisoned");
            if last.elapsed().as_secs_f64() >= 5.0 {
                *last = std::time::Instant::now();
                eprintln!(
                    "tarjama: {}/{} documents, {}",
                    self.documents.load(Ordering::Relaxed),
                    self.total.load(Ordering::Relaxed),
                    self.state()
                );
            }
        }
    }
}

impl Reporter for Progress {
    fn warn(&self, message: &str) {
        self.line(message);
    }
    fn info(&self, message: &str) {
        self.line(message);
    }
    fn start(&self, documents: usize) {
        self.total.store(documents, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(documents as u64);
            bar.reset_eta();
        }
    }
    fn translated(&self, done: Done) {
        self.sentences.fetch_add(done.sentences, Ordering::Relaxed);
        self.parts.fetch_add(done.parts, Ordering::Relaxed);
        self.tokens.fetch_add(done.target_tokens, Ordering::Relaxed);
        self.tick();
    }
    fn document(&self, key: &str, status: DocStatus) {
        self.documents.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if self.verbose && status == DocStatus::Written {
            self.line(&format!("wrote {key}"));
        }
        self.tick();
    }
    fn planned(&self, key: &str, verdict: &Verdict) {
        let action = match verdict {
            Verdict::UpToDate => "skip",
            _ => "translate",
        };
        println!("{action}\t{key}\t{}", verdict.reason());
    }
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The exit status a stop signal asks for (130 SIGINT, 143 SIGTERM), 0 while
/// none came. A second signal ends the process at once.
fn stop_on_signals() -> io::Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let code = Arc::new(AtomicUsize::new(0));
    let again = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (signal, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register_conditional_shutdown(signal, status, again.clone())?;
        signal_hook::flag::register(signal, again.clone())?;
        signal_hook::flag::register_usize(signal, code.clone(), status as usize)?;
    }
    Ok(code)
}

fn translate(args: &TranslateArgs) -> io::Result<ExitCode> {
    let usage = |msg: &str| {
        eprintln!("tarjama: {msg}");
        Ok(ExitCode::from(2))
    };
    // A filter when reading standard input only: `… | tarjama translate -`.
    let out = args.out.clone().unwrap_or_else(|| {
        if args.inputs.iter().all(|i| i.as_os_str() == "-") {
            PathBuf::from("-")
        } else {
            PathBuf::from("outputs")
        }
    });
    let to_stdout = out.as_os_str() == "-";
    let mut formats: Vec<Format> = Vec::new();
    for f in &args.format {
        if !formats.contains(f) {
            formats.push(*f);
        }
    }
    let filter = match args.reading.filter() {
        Ok(f) => f,
        Err(e) => return usage(&e),
    };
    if to_stdout {
        if formats.is_empty() {
            formats.push(Format::Txt);
        }
        if formats.len() != 1 {
            return usage("--out - needs exactly one --format");
        }
        if formats[0] == Format::Moses {
            return usage("the moses format writes two files; it cannot go to standard output");
        }
        if args.dry_run || args.shard.is_some() {
            return usage("--dry-run and --shard need an output folder (--out DIR)");
        }
    } else if formats.is_empty() {
        formats = Format::FILES.to_vec();
    }
    if let Some(beam) = args.beam
        && args.n_best > beam
    {
        return usage(&format!(
            "--n-best {} needs a beam of at least {} (--beam {beam})",
            args.n_best, args.n_best
        ));
    }
    if out.exists() && !out.is_dir() && !to_stdout {
        return usage(&format!(
            "--out {} exists and is not a folder",
            out.display()
        ));
    }
    if let Err(code) = check_isa() {
        return Ok(code);
    }
    let threads = set_threads(args.threads);
    let workers = args
        .workers
        .map_or(default_workers(threads), |w| w as usize);
    let signal = stop_on_signals()?;

    let reporter = Progress::new(args.quiet, args.verbose);
    let (device, backend) = match args.runtime.resolve() {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let dir = match resolve_model(&args.model, args.revision.as_deref(), args.offline) {
        Ok(dir) => dir,
        Err(code) => return Ok(code),
    };
    let model = ModelSource {
        dir,
        engine: EngineOptions {
            device,
            backend,
            beam: args.beam.map(|b| b as usize),
            max_new_tokens: args.max_new_tokens,
            max_source_tokens: args.max_source_tokens.map(|n| n as usize),
            word_alignment: args.word_alignment,
            length_penalty: args.length_penalty,
            repetition_penalty: args.repetition_penalty,
            no_repeat_ngram_size: args.no_repeat_ngram_size,
            max_length_factor: args.max_length_factor,
            n_best: args.n_best as usize,
        },
    };
    let job = JobOptions {
        formats,
        destination: if to_stdout {
            Destination::Stdout
        } else {
            Destination::Dir(out.clone())
        },
        input_format: args.input_format,
        encoding: args.reading.encoding,
        filter,
        title: args.title.clone(),
        emit_ids: args.emit_ids,
        force: args.force,
        batch: BatchOptions {
            batch_tokens: args.batch_tokens.map_or_else(
                || BatchOptions::default_batch_tokens(&model.engine.device),
                |n| n as usize,
            ),
            threads: Some(threads),
            workers,
        },
        window: args.window as usize,
        shard: args.shard,
        max_input_bytes: args.max_input_bytes,
        dry_run: args.dry_run,
        explain: args.explain,
    };
    let stop = || signal.load(Ordering::Relaxed) != 0;
    let summary = match tarjama::pipeline::run(&model, &args.inputs, &job, &reporter, &stop) {
        Ok(s) => s,
        Err(RunError::Usage(msg)) => return usage(&msg),
        Err(RunError::Closed) => return Ok(ExitCode::SUCCESS),
        Err(RunError::Failed(e)) => {
            reporter.finish();
            eprintln!("tarjama: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.dry_run {
        if !args.quiet {
            eprintln!(
                "tarjama: dry run: {} to translate, {} up to date, {} failed; nothing written",
                summary.planned,
                summary.skipped_up_to_date,
                summary.failed.len()
            );
        }
        return Ok(if summary.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    if !args.quiet {
        let st = &summary.stats;
        // The layout that ran; the planned one when nothing needed translating.
        let shares = if st.worker_threads.is_empty() {
            thread_shares(threads, workers)
        } else {
            st.worker_threads.clone()
        };
        if summary.stale_temps_removed > 0 {
            eprintln!(
                "tarjama: removed {} temp file(s) left by an interrupted run",
                summary.stale_temps_removed
            );
        }
        let busy = if summary.busy > 0 {
            format!(", {} being written by another shard", summary.busy)
        } else {
            String::new()
        };
        let engine = summary.backend.map_or_else(
            || "model not loaded".to_string(),
            |b| engine_label(b, &model.engine.device),
        );
        eprintln!(
            "tarjama: {}{} document(s) translated, {} up to date{busy}, {} failed; {} sentences ({} unique), \
             {} source / {} target tokens in {:.1} s ({:.1} target tokens/s); {} batches, {:.1}% padding; \
             {}, {}",
            if summary.interrupted {
                "interrupted: "
            } else {
                ""
            },
            summary.documents,
            summary.skipped_up_to_date,
            summary.failed.len(),
            st.sentences,
            st.unique,
            st.source_tokens,
            st.target_tokens,
            summary.seconds,
            st.target_tokens as f64 / summary.seconds.max(1e-9),
            st.batches,
            100.0 * (st.padded_source_tokens - st.source_tokens) as f64
                / st.padded_source_tokens.max(1) as f64,
            engine,
            describe_shares(&shares)
        );
        if summary.qa.pairs > 0 {
            eprintln!("tarjama: QA: {}", summary.qa);
        }
    }
    let code = signal.load(Ordering::Relaxed);
    Ok(if summary.interrupted && code != 0 {
        ExitCode::from(code as u8)
    } else if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tarjama status OUT_DIR`: one line per recorded document.
fn align(args: &AlignArgs) -> io::Result<ExitCode> {
    use tarjama::align::job::{self, AlignJob, Translations};
    let usage = |msg: &str| {
        eprintln!("tarjama: {msg}");
        Ok(ExitCode::from(2))
    };
    let filter = match args.reading.filter() {
        Ok(f) => f,
        Err(e) => return usage(&e),
    };
    let (pairs, unpaired) = match job::pairs(&args.src, &args.tgt, args.mt.as_deref(), &filter) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let gold = match &args.gold {
        None => None,
        Some(_) if pairs.len() != 1 => {
            return usage("--gold scores one pair of files, not folders");
        }
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| tarjama::align::gold::parse(&t))
        {
            Ok(g) => Some(g),
            Err(e) => return usage(&format!("--gold {}: {e}", path.display())),
        },
    };
    let mut formats: Vec<Format> = Vec::new();
    for f in &args.format {
        if *f == Format::Txt {
            return usage("the txt format holds the English only; align writes pairs");
        }
        if !formats.contains(f) {
            formats.push(*f);
        }
    }
    let out = args
        .out
        .clone()
        .or_else(|| args.gold.is_none().then(|| PathBuf::from("aligned")));
    let destination = match &out {
        Some(o) if o.as_os_str() == "-" => {
            if formats.len() != 1 || formats[0] == Format::Moses {
                return usage("--out - needs exactly one --format (not moses)");
            }
            Some(Destination::Stdout)
        }
        Some(o) if o.exists() && !o.is_dir() => {
            return usage(&format!("--out {} exists and is not a folder", o.display()));
        }
        Some(o) => {
            if formats.is_empty() {
                formats = Format::FILES.to_vec();
            }
            Some(Destination::Dir(o.clone()))
        }
        None => None,
    };
    let engine = match &args.model {
        None => None,
        Some(model) => {
            if let Err(code) = check_isa() {
                return Ok(code);
            }
            let (device, backend) = match args.runtime.resolve() {
                Ok(r) => r,
                Err(code) => return Ok(code),
            };
            let dir = match resolve_model(model, None, args.offline) {
                Ok(dir) => dir,
                Err(code) => return Ok(code),
            };
            let loaded = Engine::load(
                &dir,
                &EngineOptions {
                    device,
                    backend,
                    ..EngineOptions::default()
                },
            );
            match loaded {
                Ok(e) => Some(e),
                Err(e) => {
                    eprintln!("tarjama: {e:#}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    let threads = set_threads(args.threads);
    let batch = BatchOptions {
        threads: Some(threads),
        batch_tokens: engine.as_ref().map_or(BatchOptions::CPU_BATCH_TOKENS, |e| {
            BatchOptions::default_batch_tokens(e.device())
        }),
        ..BatchOptions::default()
    };
    let translations = match (&engine, &args.mt) {
        (Some(engine), _) => Translations::Engine {
            engine,
            batch: &batch,
        },
        (None, Some(mt)) => Translations::Files(mt),
        (None, None) => Translations::None,
    };
    let job = AlignJob {
        formats,
        destination,
        input_format: args.input_format,
        encoding: args.reading.encoding,
        filter,
        options: tarjama::align::Options {
            max_group: args.max_group as usize,
            paragraphs: args.input_format == InputFormat::Text,
        },
        max_input_bytes: args.max_input_bytes,
        title: args.title.clone(),
    };
    let reporter = Progress::new(args.quiet, false);
    for key in &unpaired {
        reporter.warn(&format!(
            "{key}: a translation with no source document; skipped"
        ));
    }
    let summary = job::run(&pairs, &translations, &job, gold.as_deref(), &reporter)?;
    if summary.closed {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = summary.gold {
        println!(
            "precision {:.4} recall {:.4} f1 {:.4} ({} of {} beads correct; {} gold beads)",
            s.precision, s.recall, s.f1, s.correct, s.test, s.gold
        );
    }
    if !args.quiet {
        let count = |f: &dyn Fn(usize, usize) -> bool| -> usize {
            summary
                .shapes
                .iter()
                .filter(|((a, b), _)| f(*a, *b))
                .map(|(_, n)| n)
                .sum()
        };
        eprintln!(
            "tarjama: aligned {} of {} documents: {} beads (1-1 {}, 1-n {}, n-1 {}, n-m {}, 1-0 {}, 0-1 {})",
            summary.documents,
            pairs.len(),
            count(&|_, _| true),
            count(&|a, b| a == 1 && b == 1),
            count(&|a, b| a == 1 && b > 1),
            count(&|a, b| a > 1 && b == 1),
            count(&|a, b| a > 1 && b > 1),
            count(&|_, b| b == 0),
            count(&|a, _| a == 0),
        );
        if summary.qa.pairs > 0 {
            eprintln!("tarjama: QA: {}", summary.qa);
        }
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn status(args: &StatusArgs) -> io::Result<ExitCode> {
    use tarjama::manifest;
    if !args.out.join(tarjama::corpus::STATE_DIR).is_dir() {
        eprintln!(
            "tarjama: {} holds no tarjama outputs (no {} folder)",
            args.out.display(),
            tarjama::corpus::STATE_DIR
        );
        return Ok(ExitCode::from(1));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let (mut done, mut incomplete, mut stale) = (0, 0, 0);
    for e in manifest::entries(&args.out) {
        let missing: Vec<&String> = e
            .files
            .values()
            .flatten()
            .filter(|f| !args.out.join(f).is_file())
            .collect();
        let input = std::fs::read(&e.input)
            .ok()
            .map(|b| manifest::content_hash(&b));
        let (state, why) = if input.is_none() {
            stale += 1;
            ("stale", format!("input {} is gone", e.input))
        } else if input.as_ref() != Some(&e.fingerprint.input) {
            stale += 1;
            ("stale", format!("input {} changed", e.input))
        } else if !missing.is_empty() {
            incomplete += 1;
            let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            ("incomplete", format!("missing {}", names.join(", ")))
        } else {
            done += 1;
            let formats: Vec<&str> = e.files.keys().map(String::as_str).collect();
            ("done", formats.join(","))
        };
        writeln!(out, "{state}\t{}\t{why}", e.key)?;
    }
    out.flush()?;
    let temps = manifest::temps(&args.out).len();
    eprintln!(
        "tarjama: {done} done, {incomplete} incomplete, {stale} stale; {temps} temp file(s); {}",
        if manifest::locked(&args.out) {
            "a run is writing now"
        } else {
            "no run is writing now"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `native f32 on avx512`, `candle f16 on cuda`: what runs the network.
fn engine_label(backend: Backend, device: &candle_core::Device) -> String {
    let on = match backend.kernel_name() {
        Some(kernel) => kernel,
        None if device.is_cpu() => "cpu",
        None => "cuda",
    };
    format!("{} {} on {on}", backend.engine_name(), backend.dtype_name())
}

/// The kernels' tier, or exit status 2 after an error that names
/// `TARJAMA_CPU_ISA` (an unknown tier, or one this CPU lacks); checked
/// before any work or output.
fn check_isa() -> Result<Isa, ExitCode> {
    tarjama::marian::selected_isa().map_err(|e| {
        eprintln!("tarjama: {e}");
        ExitCode::from(2)
    })
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sets the thread count (all cores by default) before any thread exists.
fn set_threads(threads: Option<u64>) -> usize {
    let threads = threads.map_or_else(default_threads, |t| t as usize);
    // candle sizes its matmul parallelism from RAYON_NUM_THREADS; the global
    // pool must agree with it.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    threads
}

impl RuntimeArgs {
    /// The candle device and the backend `--engine` and `--dtype` name on it,
    /// or the exit status after reporting why they are unavailable (1: no
    /// such device here; 2: a combination that does not exist).
    fn resolve(&self) -> Result<(candle_core::Device, tarjama::marian::Backend), ExitCode> {
        use candle_core::DType;
        let device = match self.device {
            DeviceArg::Cpu => candle_core::Device::Cpu,
            DeviceArg::Cuda if !cfg!(feature = "cuda") => {
                eprintln!(
                    "tarjama: cannot use --device cuda: this build has no CUDA (build with --features cuda)"
                );
                return Err(ExitCode::from(1));
            }
            DeviceArg::Cuda => candle_core::Device::new_cuda(0).map_err(|e| {
                let e = tarjama::gpu::error_text(&e);
                eprintln!("tarjama: cannot use --device cuda: {e}");
                ExitCode::from(1)
            })?,
        };
        let engine = self.engine.unwrap_or(if device.is_cpu() {
            EngineArg::Native
        } else {
            EngineArg::Candle
        });
        let backend = match (engine, self.dtype) {
            (EngineArg::Native, _) if !device.is_cpu() => None,
            (EngineArg::Native, DTypeArg::F32) => Some(Backend::Native(Precision::F32)),
            (EngineArg::Native, DTypeArg::Bf16) => Some(Backend::Native(Precision::Bf16)),
            (EngineArg::Native, DTypeArg::Int8) => Some(Backend::Native(Precision::Int8)),
            (EngineArg::Native, DTypeArg::F16) => {
                // No f16 kernels: f16 means candle, as the help says.
                Some(Backend::Candle(DType::F16))
            }
            (EngineArg::Candle, DTypeArg::F32) => Some(Backend::Candle(DType::F32)),
            (EngineArg::Candle, DTypeArg::F16) => Some(Backend::Candle(DType::F16)),
            (EngineArg::Candle, DTypeArg::Bf16) => Some(Backend::Candle(DType::BF16)),
            (EngineArg::Candle, DTypeArg::Int8) => None,
        };
        match backend {
            Some(b) => {
                if let Some(c) = b.caveat() {
                    eprintln!("tarjama: note: {c}");
                }
                Ok((device, b))
            }
            None => {
                let dtype = self.dtype.to_possible_value().expect("no skipped variants");
                // Name the part of the request that has no such engine.
                let what = if engine == EngineArg::Native {
                    "the native engine runs on the CPU only (use --engine candle on CUDA)".into()
                } else {
                    format!(
                        "candle has no {} engine; {} runs on the native CPU engine (--engine native)",
                        dtype.get_name(),
                        dtype.get_name()
                    )
                };
                eprintln!("tarjama: {what}");
                Err(ExitCode::from(2))
            }
        }
    }
}

/// `--model ID|DIR` as [`tarjama::hub::resolve`] finds it, or exit 1 after
/// saying why.
fn resolve_model(model: &str, revision: Option<&str>, offline: bool) -> Result<PathBuf, ExitCode> {
    let spec = tarjama::hub::ModelSpec {
        model: model.to_owned(),
        revision: revision.map(str::to_owned),
        offline,
    };
    tarjama::hub::resolve(&spec).map_err(|e| {
        eprintln!("tarjama: {e}");
        ExitCode::from(1)
    })
}

fn bench(args: &BenchArgs) -> io::Result<ExitCode> {
    use tarjama::bench::{self, BenchOptions, RandomArch};
    if let Err(code) = check_isa() {
        return Ok(code);
    }
    if !args.sweep.is_empty() {
        return bench_sweep(args);
    }
    set_threads(args.threads);
    let (device, backend) = match args.runtime.resolve() {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("tarjama: {e:#}");
        Ok(ExitCode::from(1))
    };
    let (model, defaults, label) = match &args.model {
        Some(m) => {
            let dir = match resolve_model(m, None, false) {
                Ok(d) => d,
                Err(code) => return Ok(code),
            };
            // Only the network: the sources are ids, no tokenizer needed.
            match tarjama::marian::MarianModel::from_dir_with(&dir, backend, &device) {
                Ok((model, defaults)) => (model, defaults, dir.display().to_string()),
                Err(e) => return fail(&e),
            }
        }
        None => {
            let arch = match args.random.unwrap_or(RandomArchArg::OpusMtArEn) {
                RandomArchArg::OpusMtArEn => RandomArch::OpusMtArEn,
                RandomArchArg::OpusMtTcBigArEn => RandomArch::OpusMtTcBigArEn,
            };
            match tarjama::marian::MarianModel::random_with(
                arch.config(),
                args.seed,
                backend,
                &device,
            ) {
                Ok(model) => (
                    model,
                    Default::default(),
                    format!("random {} (seed {})", arch.name(), args.seed),
                ),
                Err(e) => return fail(&e),
            }
        }
    };
    let sources = match &args.sources {
        Some(path) => match bench::read_sources(path) {
            Ok(s) => s,
            Err(e) => return fail(&format!("{e:#}")),
        },
        None => bench::workload(args.sentences as usize, args.seed, model.config()),
    };
    let opts = BenchOptions {
        batch_size: args.batch_size as usize,
        beam: args.beam as usize,
        new_tokens: args.fixed_new_tokens as usize,
        model_label: label,
        seed: args.seed,
    };
    let report = match bench::run(&model, &defaults, &sources, &opts) {
        Ok(r) => r,
        Err(e) => return fail(&format!("{e:#}")),
    };
    println!("{report}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("serializable");
        if let Err(e) = std::fs::write(path, text + "\n") {
            return fail(&format!("{}: {e}", path.display()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tarjama bench --sweep`: this process only starts the children
/// (`tarjama::bench::sweep` says why one per combination).
fn bench_sweep(args: &BenchArgs) -> io::Result<ExitCode> {
    use tarjama::bench::sweep::{self, Key, SweepError, SweepSpec};
    if let Err(e) = sweep::check_axes(&args.sweep) {
        eprintln!("tarjama: --sweep: {e}");
        return Ok(ExitCode::from(2));
    }
    let swept = |k: Key| args.sweep.iter().any(|a| a.key == k);
    // The options as parsed, for the children, less the swept ones.
    let mut base: Vec<std::ffi::OsString> = vec!["bench".into()];
    let mut opt = |k: &str, v: std::ffi::OsString| base.extend([k.into(), v]);
    match (&args.model, args.random) {
        (Some(m), _) => opt("--model", m.into()),
        (None, Some(r)) => opt("--random", value_name(r).into()),
        (None, None) => {}
    }
    match &args.sources {
        Some(p) => opt("--sources", p.into()),
        None => opt("--sentences", args.sentences.to_string().into()),
    }
    opt(
        "--fixed-new-tokens",
        args.fixed_new_tokens.to_string().into(),
    );
    opt("--seed", args.seed.to_string().into());
    opt("--device", value_name(args.runtime.device).into());
    if let Some(e) = args.runtime.engine {
        opt("--engine", value_name(e).into());
    }
    if !swept(Key::Batch) {
        opt("--batch-size", args.batch_size.to_string().into());
    }
    if !swept(Key::Beam) {
        opt("--beam", args.beam.to_string().into());
    }
    if !swept(Key::Dtype) {
        opt("--dtype", value_name(args.runtime.dtype).into());
    }
    if let (false, Some(t)) = (swept(Key::Threads), args.threads) {
        opt("--threads", t.to_string().into());
    }
    let spec = SweepSpec {
        exe: std::env::current_exe()?,
        base_args: base,
        axes: args.sweep.clone(),
        version: env!("TARJAMA_VERSION").to_string(),
        command: shell_words(std::env::args()),
        prefix: args.sweep_out.clone().expect("clap requires --sweep-out"),
    };
    let result = sweep::run(&spec, &mut |line| eprintln!("{line}"));
    let sweep = match result {
        Ok(s) => s,
        // The child has said why; 2 stays a usage error.
        Err(SweepError::Child { code, combination }) => {
            eprintln!("tarjama: --sweep: the run with {combination} failed");
            return Ok(ExitCode::from(if code == 2 { 2 } else { 1 }));
        }
        Err(e) => {
            eprintln!("tarjama: --sweep: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{sweep}")?;
    let files: Vec<String> = ["csv", "json", "svg"]
        .map(|e| sweep::output_path(&spec.prefix, e).display().to_string())
        .into();
    writeln!(out, "wrote {}", files.join(", "))?;
    Ok(ExitCode::SUCCESS)
}

/// A value's name on the command line.
fn value_name(v: impl ValueEnum) -> String {
    let v = v.to_possible_value().expect("no skipped variants");
    v.get_name().to_string()
}

/// The command line as a shell would take it back (single quotes where needed).
fn shell_words(args: impl Iterator<Item = String>) -> String {
    args.map(|a| {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+".contains(c));
        if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    })
    .collect::<Vec<_>>()
    .join(" ")
}

#[derive(serde::Serialize)]
struct InfoReport {
    version: &'static str,
    /// The CPU features the kernels look for, and those this CPU has.
    cpu_features_checked: Vec<&'static str>,
    cpu_features: Vec<&'static str>,
    /// The tiers this CPU runs, best first.
    cpu_isa_supported: Vec<&'static str>,
    /// The tier the kernels use, and whether TARJAMA_CPU_ISA chose it.
    cpu_isa: &'static str,
    cpu_isa_forced: bool,
    /// The kernel each native precision runs on.
    kernels: std::collections::BTreeMap<&'static str, &'static str>,
    threads: usize,
    workers: usize,
    worker_threads: Vec<usize>,
    engine: &'static str,
    dtype: &'static str,
    cuda: tarjama::gpu::CudaStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    self_test: Option<Vec<SelfTest>>,
}

/// `info --self-test` on one device.
#[derive(serde::Serialize)]
struct SelfTest {
    device: &'static str,
    check: Option<tarjama::marian::KernelCheck>,
    /// Why the check could not run.
    error: Option<String>,
}

impl SelfTest {
    fn passed(&self) -> bool {
        self.check.as_ref().is_some_and(|c| c.passed())
    }
}

/// The token-selection op on the CPU, and on GPU 0 when this build has CUDA
/// and the GPU opens (`cuda` in `info` says why it does not).
fn self_tests() -> Vec<SelfTest> {
    let mut devices = vec![("cpu", Ok(candle_core::Device::Cpu))];
    if cfg!(feature = "cuda") {
        devices.push(("cuda", candle_core::Device::new_cuda(0)));
    }
    devices
        .into_iter()
        .filter_map(|(name, dev)| {
            let dev = dev.ok()?;
            let (check, error) = match tarjama::marian::check_pick_kernel(&dev) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(tarjama::gpu::error_text(&e))),
            };
            Some(SelfTest {
                device: name,
                check,
                error,
            })
        })
        .collect()
}

const PRECISIONS: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Int8];

fn info(args: &InfoArgs) -> io::Result<ExitCode> {
    let isa = match check_isa() {
        Ok(isa) => isa,
        Err(code) => return Ok(code),
    };
    let threads = default_threads();
    let workers = default_workers(threads);
    // What `--device cpu` resolves to without --engine/--dtype: candle off
    // x86-64, so this is not a constant.
    let default_engine = Backend::default_for(candle_core::DType::F32, &candle_core::Device::Cpu);
    let report = InfoReport {
        version: env!("CARGO_PKG_VERSION"),
        cpu_features_checked: tarjama::marian::CPU_FEATURES.to_vec(),
        cpu_features: tarjama::marian::found_features(),
        cpu_isa_supported: Isa::ALL
            .into_iter()
            .filter(|i| i.supported())
            .map(Isa::name)
            .collect(),
        cpu_isa: isa.name(),
        cpu_isa_forced: std::env::var(ISA_VAR).is_ok_and(|v| !v.trim().is_empty()),
        kernels: PRECISIONS
            .into_iter()
            .map(|p| (p.name(), isa.kernel(p).name()))
            .collect(),
        threads,
        workers,
        worker_threads: thread_shares(threads, workers),
        engine: default_engine.engine_name(),
        dtype: default_engine.dtype_name(),
        cuda: tarjama::gpu::status(),
        self_test: args.self_test.then(self_tests),
    };
    let status = if report.self_test.iter().flatten().all(SelfTest::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(status);
    }
    let r = &report;
    writeln!(out, "tarjama {}", r.version)?;
    let features: Vec<String> = r
        .cpu_features_checked
        .iter()
        .map(|f| {
            let mark = if r.cpu_features.contains(f) { '+' } else { '-' };
            format!("{mark}{f}")
        })
        .collect();
    writeln!(out, "cpu features  {}", features.join(" "))?;
    let tiers: Vec<String> = Isa::ALL
        .iter()
        .map(|i| {
            let yes = if i.supported() { "yes" } else { "no" };
            format!("{} {yes}", i.name())
        })
        .collect();
    writeln!(out, "cpu tiers     {}", tiers.join(", "))?;
    let how = if r.cpu_isa_forced {
        format!("forced by {ISA_VAR}")
    } else {
        format!("the best this CPU runs; {ISA_VAR} unset")
    };
    writeln!(out, "selected      {} ({how})", r.cpu_isa)?;
    let kernels: Vec<String> = PRECISIONS
        .iter()
        .map(|p| format!("{} on {}", p.name(), r.kernels[p.name()]))
        .collect();
    writeln!(out, "kernels       {}", kernels.join(", "))?;
    writeln!(
        out,
        "threads       {} (all cores); translate runs {} by default",
        r.threads,
        describe_shares(&r.worker_threads)
    )?;
    writeln!(
        out,
        "engine        {} {} on the CPU by default; candle on CUDA",
        r.engine, r.dtype
    )?;
    writeln!(out, "cuda          {}", r.cuda)?;
    for t in r.self_test.iter().flatten() {
        let what = match (&t.check, &t.error) {
            (Some(c), _) if c.passed() => format!(
                "{} cases, {} picks equal to the host's (largest score difference {:.1e})",
                c.cases, c.picks, c.max_score_diff
            ),
            (Some(c), _) => format!(
                "{} of {} picks differ from the host's: {}",
                c.mismatch_count,
                c.picks,
                c.mismatches.join("; ")
            ),
            (None, e) => format!("could not run: {}", e.as_deref().unwrap_or("?")),
        };
        writeln!(out, "self-test     token selection on {}: {what}", t.device)?;
    }
    Ok(status)
}
