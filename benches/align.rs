//! `tarjama align` accuracy and speed: strict F1 on the test pairs
//! (tests/common/align_pairs.rs: hand translation of the corpus with known
//! edits) with length and anchors alone, with a perfect MT and with a
//! degraded one; then the time to align documents of 10,000 sentences per
//! side. `cargo bench --bench align`.

#[path = "../tests/common/align_pairs.rs"]
mod align_pairs;

use std::time::Instant;

use tarjama::align::{self, Options, Sentence, gold};
use tarjama::document::Document;

fn sentences(doc: &Document) -> Vec<Sentence<'_>> {
    doc.sentences()
        .map(|s| Sentence {
            text: s.text,
            para: s.para,
        })
        .collect()
}

fn f1_table() {
    println!(
        "{:<40} {:>8} {:>8} {:>8}",
        "pair", "anchors", "mt", "mt-poor"
    );
    let mut sums = [0.0; 3];
    let pairs = align_pairs::pairs();
    for p in &pairs {
        let ar = Document::parse("ar", p.arabic.clone());
        let en = Document::parse("en", p.english.clone());
        let (src, tgt) = (sentences(&ar), sentences(&en));
        let poor = align_pairs::degrade(&p.mt);
        let mut row = Vec::new();
        for (k, mt) in [None, Some(&p.mt), Some(&poor)].into_iter().enumerate() {
            let mt: Option<Vec<&str>> = mt.map(|m| m.iter().map(String::as_str).collect());
            let beads = align::align(&src, &tgt, mt.as_deref(), &Options::default());
            let test: Vec<gold::Pair> = beads
                .iter()
                .map(|b| (b.src.clone().collect(), b.tgt.clone().collect()))
                .collect();
            let f1 = gold::score(&test, &p.gold).f1;
            if std::env::var("ALIGN_DEBUG").is_ok_and(|v| p.name.contains(&v)) {
                for b in test.iter().filter(|b| !p.gold.contains(b)) {
                    eprintln!("{} mode {k}: wrong {:?}", p.name, b);
                }
                for b in p.gold.iter().filter(|b| !test.contains(b)) {
                    eprintln!("{} mode {k}: missed {:?}", p.name, b);
                }
            }
            sums[k] += f1;
            row.push(f1);
        }
        println!(
            "{:<40} {:>8.3} {:>8.3} {:>8.3}",
            p.name, row[0], row[1], row[2]
        );
    }
    let n = pairs.len() as f64;
    println!(
        "{:<40} {:>8.3} {:>8.3} {:>8.3}",
        "mean",
        sums[0] / n,
        sums[1] / n,
        sums[2] / n
    );
}

/// Every test pair, one after another, until each side has 10,000
/// sentences: a long document with every kind of edit, and its gold.
fn long_pair() -> (Vec<String>, Vec<String>, Vec<String>, Vec<gold::Pair>) {
    let pairs = align_pairs::pairs();
    let (mut src, mut tgt, mut mt, mut gold) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    'fill: loop {
        for p in &pairs {
            if src.len() >= 10_000 && tgt.len() >= 10_000 {
                break 'fill;
            }
            let (i0, j0) = (src.len(), tgt.len());
            src.extend(
                Document::parse("ar", p.arabic.clone())
                    .sentences()
                    .map(|s| s.text.to_string()),
            );
            tgt.extend(
                Document::parse("en", p.english.clone())
                    .sentences()
                    .map(|s| s.text.to_string()),
            );
            mt.extend(p.mt.iter().cloned());
            gold.extend(p.gold.iter().map(|(a, b)| {
                (
                    a.iter().map(|i| i + i0).collect(),
                    b.iter().map(|j| j + j0).collect(),
                )
            }));
        }
    }
    (src, tgt, mt, gold)
}

fn long_documents() {
    let (src, tgt, mt, gold_beads) = long_pair();
    // One paragraph per test document would hand the aligner the answer;
    // every sentence its own paragraph gives it none.
    fn side(v: &[String]) -> Vec<Sentence<'_>> {
        v.iter().map(|t| Sentence { text: t, para: 0 }).collect()
    }
    let (s, t) = (side(&src), side(&tgt));
    let opts = Options {
        paragraphs: false,
        ..Options::default()
    };
    println!(
        "\n{} × {} sentences (the test pairs end to end, no paragraphs):",
        src.len(),
        tgt.len()
    );
    let poor = align_pairs::degrade(&mt);
    for (name, m) in [
        ("anchors", None),
        ("mt", Some(&mt)),
        ("mt-poor", Some(&poor)),
    ] {
        let m: Option<Vec<&str>> = m.map(|m| m.iter().map(String::as_str).collect());
        let start = Instant::now();
        let beads = align::align(&s, &t, m.as_deref(), &opts);
        let secs = start.elapsed().as_secs_f64();
        let test: Vec<gold::Pair> = beads
            .iter()
            .map(|b| (b.src.clone().collect(), b.tgt.clone().collect()))
            .collect();
        println!(
            "{name:<8} {secs:>6.2} s   strict F1 {:.3}   peak RSS {} MB",
            gold::score(&test, &gold_beads).f1,
            peak_rss_mb()
        );
    }
}

/// VmHWM: this process's peak resident memory so far (Linux; 0 elsewhere).
fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() {
    f1_table();
    println!("peak RSS after the test pairs: {} MB", peak_rss_mb());
    long_documents();
}
