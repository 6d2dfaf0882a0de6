//! The `tarjama` command line: a thin layer that parses arguments, calls the
//! library and maps failures to exit codes (0 success, 1 some input failed,
//! 2 usage error).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tarjama::document::{Document, collect_inputs};

#[derive(Parser)]
#[command(
    name = "tarjama",
    version,
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
    /// List the models in the Hugging Face cache (HF_HUB_CACHE, else $HF_HOME/hub).
    Models,
}

#[derive(clap::Args)]
struct SegmentArgs {
    /// Files, directories (their *.txt files, recursively, sorted) or `-` for standard input.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    inputs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SegmentFormat::Lines)]
    format: SegmentFormat,
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
    for input in collect_inputs(&args.inputs) {
        let doc = match input.and_then(|i| Document::read(&i)) {
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
