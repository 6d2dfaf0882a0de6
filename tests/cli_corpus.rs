//! Corpus-scale runs of `tarjama translate` on the tiny fixture model:
//! streaming windows, resume by fingerprint, crash safety (SIGINT, SIGKILL),
//! input safety, mirrored output trees and job-array shards. The reference
//! for every "same bytes" check is an uninterrupted, unsharded run with the
//! whole corpus in one window (today's batching), made by the same binary;
//! its translations are checked against transformers in cli_translate.rs.
//! No test sleeps or depends on timing: interrupted runs are held by a
//! standard input that the test keeps open.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{ok, run};

const MODEL: &str = "tests/fixtures/marian";

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Sentences of the sample corpus's golden segmentation.
fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/kazakhstan-unrest-report.ar.sentences.txt"),
    )
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// Writes `n` documents `d000.txt`… (2–4 sentences each, some shared
/// between documents) under `dir/sub`, and returns their paths.
fn make_docs(dir: &Path, sub: &str, n: usize) -> Vec<PathBuf> {
    let s = sentences();
    let folder = dir.join(sub);
    std::fs::create_dir_all(&folder).unwrap();
    (0..n)
        .map(|i| {
            let k = 2 + i % 3;
            let text: Vec<&str> = (0..k).map(|j| s[(i * 3 + j) % s.len()].as_str()).collect();
            let p = folder.join(format!("d{i:03}.txt"));
            std::fs::write(&p, text.join(" ") + "\n").unwrap();
            p
        })
        .collect()
}

fn translate(inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["translate"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    if !extra.contains(&"--model") {
        args.extend(["--model", MODEL]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    run(&args, None, &[])
}

/// Every file below `dir` (the state folder left out) with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(dir)
        .into_iter()
        .filter(|p| !p.starts_with(dir.join(".tarjama")))
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn temps(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(".tarjama-") && n.ends_with(".tmp")
        })
        .collect()
}

/// The inode of each output file: a rewritten file is a new inode (temp +
/// rename), an untouched one keeps its own.
#[cfg(unix)]
fn inodes(dir: &Path) -> BTreeMap<PathBuf, u64> {
    use std::os::unix::fs::MetadataExt;
    walk(dir)
        .into_iter()
        .filter(|p| !p.starts_with(dir.join(".tarjama")))
        .map(|p| {
            let ino = std::fs::metadata(&p).unwrap().ino();
            (p, ino)
        })
        .collect()
}

fn counts(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("document(s) translated"))
        .unwrap_or_else(|| panic!("no summary in\n{stderr}"));
    let num = |word: &str| -> usize {
        let before = &line[..line.find(word).unwrap()];
        before
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|s| !s.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (num("document(s) translated"), num("up to date"))
}

#[test]
fn outputs_are_identical_for_any_window_threads_workers_and_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    make_docs(dir.path(), "in", 12);
    let input = dir.path().join("in");
    let reference = dir.path().join("ref");
    ok(&translate(
        &[&input],
        &reference,
        &[
            "--window",
            "1000000",
            "--emit-ids",
            "--word-alignment",
            "-q",
        ],
    ));
    let want = tree(&reference);
    assert_eq!(want.len(), 12 * 7);
    for (i, extra) in [
        &["--window", "1"][..],
        &["--window", "5", "--threads", "2", "--workers", "2"],
        &["--window", "7", "--batch-tokens", "64", "--threads", "1"],
        &[
            "--window",
            "3",
            "--batch-tokens",
            "100000",
            "--workers",
            "1",
        ],
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("o{i}"));
        let mut args = extra.to_vec();
        args.extend(["--emit-ids", "--word-alignment", "-q"]);
        ok(&translate(&[&input], &out, &args));
        assert!(tree(&out) == want, "{extra:?} changed output bytes");
    }
}

#[test]
fn rerun_skips_by_fingerprint_and_every_output_option_redoes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.txt");
    std::fs::write(&input, "جملة أولى. جملة ثانية.\n").unwrap();
    let out = dir.path().join("out");
    let base = ["--format", "jsonl,tmx"];
    ok(&translate(&[&input], &out, &base));
    let first = inodes(&out);
    assert_eq!(first.len(), 2);

    let again = translate(&[&input], &out, &base);
    ok(&again);
    assert_eq!(counts(&err(&again)), (0, 1));
    assert!(err(&again).contains("model not loaded"), "{}", err(&again));
    assert_eq!(inodes(&out), first, "nothing rewritten");

    // Every option that changes output bytes redoes the document, and says
    // why.
    // The same model with one byte of its configuration changed.
    let copy = dir.path().join("model");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(MODEL)).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let config = std::fs::read_to_string(copy.join("config.json")).unwrap();
    std::fs::write(copy.join("config.json"), config + " ").unwrap();
    let other = copy.to_str().unwrap();
    for (opts, why) in [
        (&["--beam", "2"][..], "options changed: beam model→2"),
        (&["--max-new-tokens", "5"], "max-new-tokens model→5"),
        (&["--max-source-tokens", "6"], "max-source-tokens model→6"),
        (&["--dtype", "int8"], "dtype f32→int8"),
        (&["--engine", "candle"], "engine native→candle"),
        (&["--word-alignment"], "word-alignment false→true"),
        (&["--emit-ids"], "emit-ids false→true"),
        (&["--input-format", "lines"], "input-format text→lines"),
        (&["--model", other], "model changed"),
        (&["--encoding", "utf-8"], "encoding auto→utf-8"),
        (&["--title", "T"], "title file name→T"),
        (&["--length-penalty", "0.5"], "length-penalty model→0.5"),
        (
            &["--repetition-penalty", "1.2"],
            "repetition-penalty model→1.2",
        ),
        (
            &["--no-repeat-ngram-size", "3"],
            "no-repeat-ngram-size model→3",
        ),
        (&["--n-best", "2"], "n-best 1→2"),
        (&["--max-length-factor", "3"], "max-length-factor off→3"),
        (&["--force"], "--force"),
    ] {
        let mut args = base.to_vec();
        args.extend(opts);
        args.push("--explain");
        // The option's run redoes; the plain run after it redoes again.
        let o = translate(&[&input], &out, &args);
        ok(&o);
        assert_eq!(counts(&err(&o)), (1, 0), "{opts:?}\n{}", err(&o));
        assert!(
            err(&o).contains(why),
            "{opts:?}: want {why:?} in\n{}",
            err(&o)
        );
        let back = translate(&[&input], &out, &[&base[..], &["--explain"]].concat());
        ok(&back);
        if opts != ["--force"] {
            assert_eq!(counts(&err(&back)), (1, 0), "back from {opts:?}");
        }
    }
    let ids = std::fs::read_to_string(out.join("a.jsonl")).unwrap();
    assert!(!ids.contains("tgt_ids"), "the last run had no --emit-ids");

    // Outputs recorded by a build of an older output revision are redone.
    let record = out.join(".tarjama/docs/a.json");
    let mut rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let now = rec["fingerprint"]["version"].as_str().unwrap().to_string();
    assert!(now.contains("(outputs r"), "{now}");
    rec["fingerprint"]["version"] = env!("CARGO_PKG_VERSION").into();
    std::fs::write(&record, rec.to_string()).unwrap();
    let o = translate(&[&input], &out, &[&base[..], &["--explain"]].concat());
    assert_eq!(counts(&err(&o)), (1, 0), "{}", err(&o));
    let why = format!(
        "tarjama version changed: {}→{now}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(err(&o).contains(&why), "want {why:?} in\n{}", err(&o));

    // A new format writes only that format; the others are kept as they are.
    let before = inodes(&out);
    let more = translate(&[&input], &out, &["--format", "jsonl,tmx,md", "--explain"]);
    ok(&more);
    assert!(err(&more).contains("missing formats: md"), "{}", err(&more));
    let after = inodes(&out);
    assert_eq!(after.len(), 3);
    for (p, ino) in &before {
        assert_eq!(after[p], *ino, "{} rewritten", p.display());
    }
    // A deleted output is written again; an edited input redoes, even with
    // an older modification time.
    std::fs::remove_file(out.join("a.tmx")).unwrap();
    let o = translate(&[&input], &out, &base);
    assert_eq!(counts(&err(&o)), (1, 0));
    assert!(out.join("a.tmx").is_file());
    let old = std::fs::metadata(&input).unwrap().modified().unwrap();
    std::fs::write(&input, "جملة جديدة.\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&input)
        .unwrap()
        .set_modified(old - std::time::Duration::from_secs(3600))
        .unwrap();
    let o = translate(&[&input], &out, &[&base[..], &["--explain"]].concat());
    assert!(err(&o).contains("a: input changed"), "{}", err(&o));
    let recs = std::fs::read_to_string(out.join("a.jsonl")).unwrap();
    assert!(recs.contains("جملة جديدة.") && !recs.contains("جملة أولى"));
}

/// A run over `docs` and then `-`, holding standard input open; returns
/// the child once it reported `n` documents written.
fn held_run(docs: &[PathBuf], out: &Path, n: usize) -> std::process::Child {
    let mut args: Vec<String> = vec!["translate".into()];
    args.extend(docs.iter().map(|p| p.display().to_string()));
    args.push("-".into());
    for a in ["--model", MODEL, "--out", out.to_str().unwrap()] {
        args.push(a.into());
    }
    for a in ["--window", "1", "-v"] {
        args.push(a.into());
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut written = 0;
    while written < n {
        let line = lines.next().expect("the run ended early").unwrap();
        if line.starts_with("tarjama: wrote ") {
            written += 1;
        }
    }
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn signal(child: &std::process::Child, sig: &str) {
    let s = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(s.success());
}

#[test]
fn sigint_and_sigterm_finish_written_documents_exit_130_143_and_the_rerun_does_the_rest() {
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let docs = make_docs(dir.path(), "in", 5);
        let out = dir.path().join("out");
        let reference = dir.path().join("ref");
        ok(&translate(&[&dir.path().join("in")], &reference, &["-q"]));

        let mut child = held_run(&docs[..3], &out, 3);
        signal(&child, sig);
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig}");
        assert!(temps(&out).is_empty(), "{:?}", temps(&out));
        let got = tree(&out);
        assert_eq!(got.len(), 3 * 7, "three documents, no stdin outputs");
        for (p, bytes) in &got {
            assert_eq!(&reference_bytes(&reference, p), bytes, "{}", p.display());
        }
        let rerun = translate(&[&dir.path().join("in")], &out, &[]);
        ok(&rerun);
        assert_eq!(counts(&err(&rerun)), (2, 3));
        assert_eq!(tree(&out), tree(&reference));
    }
}

fn reference_bytes(reference: &Path, rel: &Path) -> Vec<u8> {
    std::fs::read(reference.join(rel)).unwrap()
}

#[test]
fn sigkill_loses_only_the_documents_in_flight_and_stale_temps_go() {
    let dir = tempfile::tempdir().unwrap();
    let docs = make_docs(dir.path(), "in", 4);
    let out = dir.path().join("out");
    let reference = dir.path().join("ref");
    ok(&translate(&[&dir.path().join("in")], &reference, &["-q"]));

    let mut child = held_run(&docs[..2], &out, 2);
    signal(&child, "-KILL");
    assert_eq!(child.wait().unwrap().code(), None, "killed");
    // What a kill in the middle of writing leaves: a temp beside the
    // outputs and one beside the records.
    std::fs::write(out.join(".tarjama-0badf00d-XyZ123.tmp"), "half").unwrap();
    std::fs::write(out.join(".tarjama/docs/.tarjama-0badf00d-abc.tmp"), "{").unwrap();
    assert_eq!(temps(&out).len(), 2);
    let got = tree(&out);
    assert_eq!(
        got.keys()
            .filter(|p| !p.to_string_lossy().contains(".tarjama-"))
            .count(),
        2 * 7
    );
    let rerun = translate(&[&dir.path().join("in")], &out, &[]);
    ok(&rerun);
    assert_eq!(counts(&err(&rerun)), (2, 2), "{}", err(&rerun));
    assert!(
        err(&rerun).contains("removed 2 temp file(s)"),
        "{}",
        err(&rerun)
    );
    assert!(temps(&out).is_empty());
    assert_eq!(tree(&out), tree(&reference));
}

#[test]
fn a_second_run_into_the_same_folder_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let docs = make_docs(dir.path(), "in", 2);
    let out = dir.path().join("out");
    let mut first = held_run(&docs[..1], &out, 1);
    let second = translate(&[&docs[1]], &out, &[]);
    assert_eq!(second.status.code(), Some(2), "{}", err(&second));
    assert!(
        err(&second).contains("another tarjama run is writing into"),
        "{}",
        err(&second)
    );
    assert!(!out.join("d001.html").exists());
    drop(first.stdin.take());
    assert!(first.wait().unwrap().success());
    ok(&translate(&[&docs[1]], &out, &[]));
}

#[test]
fn an_output_that_would_replace_an_input_is_refused_before_the_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.ar");
    std::fs::write(&input, "نص.\n").unwrap();
    let o = translate(&[&input], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("would replace the input {}", input.display())),
        "{}",
        err(&o)
    );
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "نص.\n");
    // Through a symbolic link too.
    #[cfg(unix)]
    {
        let link_dir = dir.path().join("via");
        std::os::unix::fs::symlink(dir.path(), &link_dir).unwrap();
        let o = translate(&[&input], &link_dir, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    }
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "نص.\n");
    assert!(!dir.path().join("x.html").exists());

    // --out naming a file is an error before anything runs.
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let o = translate(&[&input], &file, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("exists and is not a folder"),
        "{}",
        err(&o)
    );
}

#[test]
fn special_and_oversized_inputs_are_refused_and_the_rest_translated() {
    let dir = tempfile::tempdir().unwrap();
    let docs = make_docs(dir.path(), "in", 2);
    let out = dir.path().join("out");
    let size = std::fs::metadata(&docs[1]).unwrap().len();
    let o = translate(
        &[&docs[0], Path::new("/dev/zero"), &docs[1]],
        &out,
        &["--max-input-bytes", &(size - 1).to_string()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains("/dev/zero: not a regular file"), "{e}");
    assert!(e.contains("d001.txt: larger than"), "{e}");
    assert!(out.join("d000.html").is_file());
    assert!(!out.join("d001.html").exists());
}

#[test]
fn output_trees_mirror_inputs_and_stay_stable_when_files_are_added() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    for month in ["jan", "feb"] {
        std::fs::create_dir_all(corpus.join(month)).unwrap();
        std::fs::write(
            corpus.join(month).join("article.txt"),
            format!("{month}: جملة.\n"),
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    ok(&translate(&[&corpus], &out, &["--format", "jsonl"]));
    let before = inodes(&out);
    std::fs::create_dir_all(corpus.join("dec")).unwrap();
    std::fs::write(corpus.join("dec/article.txt"), "dec: جملة.\n").unwrap();
    let o = translate(&[&corpus], &out, &["--format", "jsonl"]);
    assert_eq!(counts(&err(&o)), (1, 2));
    for month in ["jan", "feb", "dec"] {
        let recs = std::fs::read_to_string(out.join(month).join("article.jsonl")).unwrap();
        assert!(recs.contains(&format!("{month}: ")), "{month}");
    }
    for (p, ino) in &before {
        assert_eq!(inodes(&out)[p], *ino);
    }

    // Two arguments with the same relative path: each gets a suffix from
    // its own path, whatever the argument order.
    let a = corpus.join("jan/article.txt");
    let b = corpus.join("feb/article.txt");
    let flat = dir.path().join("flat");
    ok(&translate(&[&a, &b], &flat, &["--format", "jsonl"]));
    let names: Vec<PathBuf> = tree(&flat).into_keys().collect();
    assert_eq!(names.len(), 2);
    assert!(
        names
            .iter()
            .all(|n| n.to_string_lossy().starts_with("article~")),
        "{names:?}"
    );
    let o = translate(&[&b, &a], &flat, &["--format", "jsonl"]);
    assert_eq!(counts(&err(&o)), (0, 2), "{}", err(&o));

    // A symlink in the input tree that points outside it still writes
    // inside --out.
    #[cfg(unix)]
    {
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("o.txt"), "نص.\n").unwrap();
        std::os::unix::fs::symlink(&outside, corpus.join("link")).unwrap();
        let o = translate(&[&corpus], &out, &["--format", "jsonl"]);
        ok(&o);
        assert!(out.join("link/o.jsonl").is_file());
        assert!(!outside.join("o.jsonl").exists());
        // A symlinked folder inside --out is never written through.
        std::fs::remove_dir_all(out.join("link")).unwrap();
        std::fs::remove_file(out.join(".tarjama/docs/link/o.json")).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
        let o = translate(&[&corpus], &out, &["--format", "jsonl"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(err(&o).contains("is a symbolic link"), "{}", err(&o));
        assert!(!outside.join("o.jsonl").exists());
    }
}

#[test]
fn three_shards_cover_the_corpus_once_and_equal_one_full_run() {
    let dir = tempfile::tempdir().unwrap();
    make_docs(dir.path(), "in", 30);
    let input = dir.path().join("in");
    let full = dir.path().join("full");
    ok(&translate(&[&input], &full, &["-q"]));
    let out = dir.path().join("out");
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_tarjama"))
                .args([
                    "translate",
                    input.to_str().unwrap(),
                    "--model",
                    MODEL,
                    "--out",
                    out.to_str().unwrap(),
                    "--shard",
                    &format!("{i}/3"),
                    "--threads",
                    "1",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut done = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", err(&o));
        let (translated, skipped) = counts(&err(&o));
        assert_eq!(skipped, 0);
        assert!(translated > 0, "every shard has a share of 30");
        done += translated;
    }
    assert_eq!(done, 30, "no document done twice");
    assert!(tree(&out) == tree(&full));
    // The union is a complete run: nothing left to do.
    let o = translate(&[&input], &out, &[]);
    assert_eq!(counts(&err(&o)), (0, 30));
    // And the listings agree.
    let status = ok(&run(&["status", out.to_str().unwrap()], None, &[]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("done\t")).count(),
        30
    );
}

#[test]
fn dry_run_and_status_list_done_stale_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let docs = make_docs(dir.path(), "in", 3);
    let out = dir.path().join("out");
    ok(&translate(
        &[&docs[0], &docs[1]],
        &out,
        &["--format", "jsonl"],
    ));
    std::fs::write(&docs[1], "نص جديد.\n").unwrap();
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["translate".into()];
        a.extend(docs.iter().map(|d| d.display().to_string()));
        for s in [
            "--model",
            MODEL,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "jsonl",
        ] {
            a.push(s.into());
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let a = args(&["--dry-run"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = run(&a, None, &[]);
    assert!(
        err(&o).contains("dry run: 2 to translate, 1 up to date, 0 failed"),
        "{}",
        err(&o)
    );
    let dry = ok(&o);
    assert_eq!(
        dry,
        "skip\td000\tup to date\ntranslate\td001\tinput changed\ntranslate\td002\tnew\n"
    );
    let status = ok(&run(&["status", out.to_str().unwrap()], None, &[]));
    assert_eq!(
        status,
        format!(
            "done\td000\tjsonl\nstale\td001\tinput {} changed\n",
            docs[1].display()
        )
    );
}

#[test]
fn standard_output_streams_several_documents_or_refuses_before_translating() {
    let dir = tempfile::tempdir().unwrap();
    make_docs(dir.path(), "in", 3);
    let input = dir.path().join("in");
    let i = input.to_str().unwrap();
    for format in ["html", "tmx"] {
        let o = run(
            &[
                "translate",
                i,
                "--model",
                MODEL,
                "--out",
                "-",
                "--format",
                format,
            ],
            None,
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{format}");
        assert!(o.stdout.is_empty());
        assert!(err(&o).contains("3 documents"), "{}", err(&o));
    }
    let tsv = ok(&run(
        &[
            "translate",
            i,
            "--model",
            MODEL,
            "--out",
            "-",
            "--format",
            "tsv",
            "-q",
        ],
        None,
        &[],
    ));
    let rows: Vec<&str> = tsv.lines().collect();
    assert_eq!(rows[0], "doc\tpara\tsent\tstart\tend\tar\ten\tscore\tflags");
    assert_eq!(rows.iter().filter(|r| r.starts_with("doc\t")).count(), 1);
    let docs: std::collections::BTreeSet<&str> = rows[1..]
        .iter()
        .map(|r| r.split('\t').next().unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    let jsonl = ok(&run(
        &[
            "translate",
            i,
            "--model",
            MODEL,
            "--out",
            "-",
            "--format",
            "jsonl",
            "-q",
        ],
        None,
        &[],
    ));
    assert_eq!(jsonl.lines().count(), rows.len() - 1);

    // A reader that stops early ends the run quietly, whatever the format.
    for format in ["jsonl", "txt"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .args([
                "translate",
                i,
                "--model",
                MODEL,
                "--out",
                "-",
                "--format",
                format,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{format}: {}", err(&o));
        assert!(!err(&o).contains("Broken pipe"), "{}", err(&o));
    }
    let _ = std::io::stdout().flush();
}
