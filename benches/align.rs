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
    doc.sentences().map(|s| Sentence { text: s.text, para: s.para }).collect()
}

fn f1_table() {
    println!("{:<40} {:>8} {:>8} {:>8}", "pair", "anchors", "mt", "mt-poor");
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
            let test: Vec<gold::Pair> = beads.iter().map(|b| (b.src.clone().collect(), b.tgt.clone().collect())).collect();
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
        println!("{:<40} {:>8.3} {:>8.3} {:>8.3}", p.name, row[0], row[1], row[2]);
    }
    let n = pairs.len() as f64;
    println!("{:<40} {:>8.3} {:>8.3} {:>8.3}", "mean", sums[0] / n, sums[1] / n, sums[2] / n);
}

fn main() {
    f1_table();
}
