//! `tarjama align` end to end: accuracy on test pairs with gold known by
//! construction (tests/common/align_pairs.rs, from a hand translation of
//! the corpus), every output format read back with an independent parser,
//! folders, bad input, and the model and `--mt` routes.

mod common;

use common::align_pairs::{self, Gold, Pair};
use common::{ok, run};
use std::path::Path;

const MODEL: &str = "tests/fixtures/marian";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// vecalign's gold format, written here independently of the parser.
fn gold_text(gold: &[Gold]) -> String {
    let list = |v: &[usize]| {
        v.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    gold.iter()
        .map(|(s, t)| format!("[{}]:[{}]\n", list(s), list(t)))
        .collect()
}

/// The F1 `--gold` prints for one pair with extra arguments.
fn f1(dir: &Path, p: &Pair, extra: &[&str]) -> f64 {
    let tag = p.name.replace('/', "-");
    let src = write(dir, &format!("{tag}.ar.txt"), &p.arabic);
    let tgt = write(dir, &format!("{tag}.en.txt"), &p.english);
    let gold = write(dir, &format!("{tag}.gold"), &gold_text(&p.gold));
    let mut args = vec!["align", &src, &tgt, "--gold", &gold, "-q"];
    args.extend_from_slice(extra);
    let out = ok(&run(&args, None, &[]));
    // "precision P recall R f1 F (…)"
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[0], "precision", "{out}");
    let value = |k: &str| -> f64 {
        let i = words.iter().position(|w| *w == k).unwrap();
        words[i + 1].parse().unwrap()
    };
    let (p_, r, f) = (value("precision"), value("recall"), value("f1"));
    assert!(
        (f - 2.0 * p_ * r / (p_ + r).max(1e-12)).abs() < 1e-3,
        "{out}"
    );
    f
}

#[test]
fn strict_f1_on_the_test_pairs_with_and_without_a_translation() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = align_pairs::pairs();
    let mut means = [0.0; 3];
    for p in &pairs {
        let tag = p.name.replace('/', "-");
        let mt = write(dir.path(), &format!("{tag}.mt"), &(p.mt.join("\n") + "\n"));
        let poor = align_pairs::degrade(&p.mt);
        let poor = write(
            dir.path(),
            &format!("{tag}.poor"),
            &(poor.join("\n") + "\n"),
        );
        let scores = [
            f1(dir.path(), p, &[]),
            f1(dir.path(), p, &["--mt", &mt]),
            f1(dir.path(), p, &["--mt", &poor]),
        ];
        eprintln!(
            "{:<40} {:.3} {:.3} {:.3}",
            p.name, scores[0], scores[1], scores[2]
        );
        for (m, s) in means.iter_mut().zip(scores) {
            *m += s / pairs.len() as f64;
        }
        // Every pair, whatever the edits, stays well aligned.
        assert!(scores.iter().all(|&s| s >= 0.85), "{}: {scores:?}", p.name);
        if p.name.ends_with("identity") {
            assert_eq!(scores, [1.0; 3], "{}", p.name);
        }
    }
    eprintln!(
        "mean: length+anchors {:.3}, mt {:.3}, degraded mt {:.3}",
        means[0], means[1], means[2]
    );
    // The goals: ≥ 0.85 with length and anchors alone, ≥ 0.95 with a
    // good translation.
    assert!(means[0] >= 0.85, "{means:?}");
    assert!(means[1] >= 0.95, "{means:?}");
    assert!(means[2] >= 0.90, "{means:?}");
}

#[derive(serde::Deserialize)]
struct Bead {
    src: Vec<usize>,
    tgt: Vec<usize>,
    src_text: String,
    tgt_text: String,
    src_start: Option<usize>,
    src_end: Option<usize>,
    tgt_start: Option<usize>,
    tgt_end: Option<usize>,
    score: f32,
    flags: Vec<String>,
}

#[test]
fn every_format_holds_the_same_beads() {
    let dir = tempfile::tempdir().unwrap();
    // The "mixed" variant has every kind of bead.
    let p = align_pairs::pairs()
        .into_iter()
        .find(|p| p.name.ends_with("report/mixed"))
        .unwrap();
    let src = write(dir.path(), "in/report.ar.txt", &p.arabic);
    let tgt = write(dir.path(), "in/report.en.txt", &p.english);
    let out = dir.path().join("out");
    ok(&run(
        &["align", &src, &tgt, "--out", out.to_str().unwrap(), "-q"],
        None,
        &[],
    ));
    let read = |ext: &str| std::fs::read_to_string(out.join(format!("report.{ext}"))).unwrap();

    let beads: Vec<Bead> = read("jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Both sides are partitions of the sentences, in order.
    let ar_sentences = tarjama::document::Document::parse("ar", p.arabic.clone())
        .sentences()
        .count();
    let en_sentences = tarjama::document::Document::parse("en", p.english.clone())
        .sentences()
        .count();
    let flat =
        |f: &dyn Fn(&Bead) -> &Vec<usize>| beads.iter().flat_map(f).copied().collect::<Vec<_>>();
    assert_eq!(flat(&|b| &b.src), (0..ar_sentences).collect::<Vec<_>>());
    assert_eq!(flat(&|b| &b.tgt), (0..en_sentences).collect::<Vec<_>>());
    assert!(beads.iter().any(|b| b.src.is_empty()) && beads.iter().any(|b| b.tgt.is_empty()));
    assert!(beads.iter().any(|b| b.src.len() == 1 && b.tgt.len() > 1));
    assert!(beads.iter().any(|b| b.src.len() > 1 && b.tgt.len() == 1));
    for b in &beads {
        // Byte offsets point into the original files: the group's text runs
        // from its first sentence's start to its last one's end.
        for (ids, text, start, end, original) in [
            (&b.src, &b.src_text, b.src_start, b.src_end, &p.arabic),
            (&b.tgt, &b.tgt_text, b.tgt_start, b.tgt_end, &p.english),
        ] {
            match (start, end) {
                (Some(s), Some(e)) => {
                    let span = &original[s..e];
                    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
                    assert_eq!(words(span), words(text), "bead {:?}:{:?}", b.src, b.tgt);
                }
                _ => assert!(ids.is_empty() && text.is_empty()),
            }
        }
        assert!((0.0..=1.0).contains(&b.score));
        if b.src.is_empty() || b.tgt.is_empty() {
            assert!(b.flags.is_empty());
        }
    }

    // TSV: the csv crate reads every row back, texts exactly.
    let tsv_text = read("tsv");
    let mut tsv = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_reader(tsv_text.as_bytes());
    let header: Vec<String> = tsv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "src",
            "tgt",
            "src_start",
            "src_end",
            "tgt_start",
            "tgt_end",
            "ar",
            "en",
            "score",
            "flags"
        ]
    );
    let rows: Vec<csv::StringRecord> = tsv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), beads.len());
    for (row, b) in rows.iter().zip(&beads) {
        let ids = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        assert_eq!(&row[0], ids(&b.src));
        assert_eq!(&row[1], ids(&b.tgt));
        assert_eq!(&row[6], b.src_text);
        assert_eq!(&row[7], b.tgt_text);
    }

    // HTML: one row per bead, English left, Arabic right.
    let html = scraper::Html::parse_document(&read("html"));
    let tr = scraper::Selector::parse("tbody tr").unwrap();
    let td = scraper::Selector::parse("td").unwrap();
    let cells: Vec<Vec<String>> = html
        .select(&tr)
        .map(|r| r.select(&td).map(|c| c.text().collect()).collect())
        .collect();
    assert_eq!(cells.len(), beads.len());
    for (c, b) in cells.iter().zip(&beads) {
        assert_eq!((&c[0], &c[1]), (&b.tgt_text, &b.src_text));
    }

    // TMX: one <tu> per bead, a <tuv> per non-empty side.
    let tmx = read("tmx");
    let mut reader = quick_xml::Reader::from_str(&tmx);
    let (mut tus, mut tuvs) = (0, 0);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) => {
                tus += (e.name().as_ref() == "tu") as usize;
                tuvs += (e.name().as_ref() == "tuv") as usize;
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(tus, beads.len());
    let sides: usize = beads
        .iter()
        .map(|b| (!b.src.is_empty()) as usize + (!b.tgt.is_empty()) as usize)
        .sum();
    assert_eq!(tuvs, sides);

    // Moses: line-aligned, one line per bead on each side.
    let (ar, en) = (read("ar"), read("en"));
    assert_eq!(ar.lines().count(), beads.len());
    assert_eq!(
        en.lines().collect::<Vec<_>>(),
        beads
            .iter()
            .map(|b| b.tgt_text.as_str())
            .collect::<Vec<_>>()
    );
    // Markdown: a header, a rule and one row per bead.
    assert_eq!(
        read("md").lines().filter(|l| l.starts_with("| ")).count(),
        beads.len() + 2
    );
}

#[test]
fn folders_pair_by_relative_path_and_failures_do_not_stop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pairs = align_pairs::pairs();
    let one = &pairs[0];
    write(d, "ar/a.ar.txt", &one.arabic);
    write(d, "en/a.en.txt", &one.english);
    write(d, "ar/sub/b.txt", &one.arabic);
    write(d, "en/sub/b.txt", &one.english);
    // No translation for c; a translation with no source; a bad file.
    write(d, "ar/c.ar.txt", &one.arabic);
    write(d, "en/orphan.en.txt", &one.english);
    // Not UTF-8 (read as UTF-8 only, below).
    std::fs::write(d.join("ar/bad.ar.txt"), b"caf\xc3 not text").unwrap();
    write(d, "en/bad.en.txt", "Whatever.");
    let out = d.join("out");
    let o = run(
        &[
            "align",
            d.join("ar").to_str().unwrap(),
            d.join("en").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "jsonl,tsv",
            "--encoding",
            "utf-8",
        ],
        None,
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("c.txt"), "{stderr}");
    assert!(stderr.contains("bad.ar.txt"), "{stderr}");
    assert!(stderr.contains("orphan"), "{stderr}");
    assert!(stderr.contains("aligned 2 of 4 documents"), "{stderr}");
    for f in ["a.jsonl", "a.tsv", "sub/b.jsonl", "sub/b.tsv"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(!out.join("c.jsonl").exists() && !out.join("bad.jsonl").exists());
    // Nothing half written: no temp files anywhere.
    let leftovers: Vec<_> = walkdir::WalkDir::new(&out)
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.contains(".tarjama-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn usage_errors_and_bad_translations_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = &align_pairs::pairs()[0];
    let src = write(dir.path(), "a.ar.txt", &p.arabic);
    let tgt = write(dir.path(), "a.en.txt", &p.english);
    let short = write(dir.path(), "short.mt", "only one line\n");
    let o = run(
        &[
            "align", &src, &tgt, "--mt", &short, "--out", "-", "--format", "jsonl",
        ],
        None,
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("short.mt: 1 lines, but the source has"),
        "{stderr}"
    );
    for (args, message) in [
        (vec!["--format", "txt"], "txt format"),
        (vec!["--out", "-"], "exactly one --format"),
        (vec!["--max-group", "0"], "at least 1"),
    ] {
        let mut all = vec!["align", src.as_str(), tgt.as_str()];
        all.extend(args);
        let o = run(&all, None, &[]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains(message));
    }
    let o = run(&["align", dir.path().to_str().unwrap(), &tgt], None, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("two files or two folders"));
}

#[test]
fn inputs_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let p = &align_pairs::pairs()[0];
    // Moses writes NAME.ar and NAME.en: the very names of these inputs.
    let src = write(dir.path(), "doc.ar", &p.arabic);
    let tgt = write(dir.path(), "doc.en", &p.english);
    let o = run(
        &[
            "align",
            &src,
            &tgt,
            "--out",
            dir.path().to_str().unwrap(),
            "--format",
            "moses,jsonl",
        ],
        None,
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("would overwrite an input"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&src).unwrap(), p.arabic);
    assert_eq!(std::fs::read_to_string(&tgt).unwrap(), p.english);
    assert!(!dir.path().join("doc.jsonl").exists());
}

#[test]
fn source_from_stdin_and_a_model_translation() {
    let dir = tempfile::tempdir().unwrap();
    let p = &align_pairs::pairs()[0];
    let tgt = write(dir.path(), "a.en.txt", &p.english);
    let gold = write(dir.path(), "a.gold", &gold_text(&p.gold));
    // The fixture model has random weights: its translations are noise, so
    // this checks the route (load, translate, align, score), not accuracy
    // beyond what length and anchors give.
    let o = run(
        &["align", "-", &tgt, "--model", MODEL, "--gold", &gold, "-q"],
        Some(p.arabic.as_bytes()),
        &[],
    );
    let out = ok(&o);
    assert!(out.starts_with("precision "), "{out}");
    let jsonl = ok(&run(
        &["align", "-", &tgt, "--out", "-", "--format", "jsonl", "-q"],
        Some(p.arabic.as_bytes()),
        &[],
    ));
    assert_eq!(jsonl.lines().count(), p.gold.len());
}
