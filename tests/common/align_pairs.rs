//! Test pairs for `tarjama align` with gold alignments known by
//! construction. The base is a hand-made English translation of each
//! corpus article, one English sentence per Arabic sentence
//! (tests/fixtures/align/README.md). Each variant edits the English side as
//! translators do — splits a sentence at its commas, merges two, leaves one
//! out, adds one (taken from the other article), swaps two paragraphs — and
//! records which Arabic sentences every English sentence renders; the gold
//! beads follow from that record, never from the aligner.

use tarjama::document::Document;

pub const ARTICLES: [&str; 2] = ["kazakhstan-unrest-opinion", "kazakhstan-unrest-report"];

/// A bead as Arabic and English sentence indices.
pub type Gold = (Vec<usize>, Vec<usize>);

pub struct Pair {
    pub name: String,
    pub arabic: String,
    pub english: String,
    pub gold: Vec<Gold>,
    /// The base English sentence of every Arabic sentence: a perfect MT.
    pub mt: Vec<String>,
}

#[derive(Clone)]
struct Unit {
    text: String,
    src: Vec<usize>,
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Arabic text and the base English, as paragraphs of units.
fn base(article: &str) -> (String, Vec<Vec<Unit>>) {
    let arabic = std::fs::read_to_string(root().join(format!("corpus/{article}.ar.txt"))).unwrap();
    let english =
        std::fs::read_to_string(root().join(format!("tests/fixtures/align/{article}.en.txt")))
            .unwrap();
    let ar = Document::parse("ar", arabic.clone());
    let en = Document::parse("en", english);
    let counts = |d: &Document| {
        d.paragraphs
            .iter()
            .map(|p| p.sentences.len())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&ar),
        counts(&en),
        "{article}: the translation is not sentence by sentence"
    );
    let mut paras: Vec<Vec<Unit>> = vec![Vec::new(); en.paragraphs.len()];
    for (i, s) in en.sentences().enumerate() {
        paras[s.para].push(Unit {
            text: s.text.to_string(),
            src: vec![i],
        });
    }
    (arabic, paras)
}

/// Splits `text` at each `, ` followed by a lower-case word that leaves both
/// sides at least 30 characters long (up to `max` pieces), capitalising the
/// new sentence: one Arabic sentence rendered as several English ones.
fn split(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.to_string();
    while pieces.len() + 1 < max {
        let Some(pos) = rest.match_indices(", ").map(|(p, _)| p).find(|&p| {
            p >= 30
                && rest.len() - p >= 30
                && rest[p + 2..].starts_with(|c: char| c.is_ascii_lowercase())
        }) else {
            break;
        };
        pieces.push(format!("{}.", &rest[..pos]));
        let mut tail = rest[pos + 2..].chars();
        let first = tail.next().unwrap().to_ascii_uppercase();
        rest = format!("{first}{}", tail.as_str());
    }
    pieces.push(rest);
    pieces
}

fn flat(paras: &[Vec<Unit>]) -> Vec<Unit> {
    paras.iter().flatten().cloned().collect()
}

/// Every English sentence's position `(paragraph, index)` in order.
fn positions(paras: &[Vec<Unit>]) -> Vec<(usize, usize)> {
    paras
        .iter()
        .enumerate()
        .flat_map(|(p, units)| (0..units.len()).map(move |k| (p, k)))
        .collect()
}

#[derive(Clone, Copy)]
enum Edit {
    /// Split every `n`-th sentence (from `from`) into up to 4.
    Split { from: usize, n: usize },
    /// Merge every `n`-th sentence with the next one in its paragraph.
    Merge { from: usize, n: usize },
    /// Leave out every `n`-th sentence.
    Omit { from: usize, n: usize },
    /// Insert a sentence of the other article after every `n`-th.
    Insert { from: usize, n: usize },
    /// Swap two neighbouring paragraphs of different lengths, a third of the
    /// way in.
    Swap,
}

fn apply(paras: &mut Vec<Vec<Unit>>, edit: Edit, other: &[Unit]) {
    let every = |from: usize, n: usize| {
        let count = positions(paras).len();
        (from..count).step_by(n).collect::<Vec<_>>()
    };
    match edit {
        Edit::Split { from, n } => {
            for k in every(from, n).into_iter().rev() {
                let (p, i) = positions(paras)[k];
                let unit = paras[p][i].clone();
                let pieces = split(&unit.text, 4);
                paras[p].splice(
                    i..=i,
                    pieces.into_iter().map(|text| Unit {
                        text,
                        src: unit.src.clone(),
                    }),
                );
            }
        }
        Edit::Merge { from, n } => {
            for k in every(from, n).into_iter().rev() {
                let (p, i) = positions(paras)[k];
                if i + 1 >= paras[p].len() || !paras[p][i].text.ends_with('.') {
                    continue;
                }
                let next = paras[p].remove(i + 1);
                let unit = &mut paras[p][i];
                unit.text.pop();
                unit.text.push_str("; ");
                unit.text.push_str(&next.text);
                unit.src.extend(next.src);
            }
        }
        Edit::Omit { from, n } => {
            for k in every(from, n).into_iter().rev() {
                let (p, i) = positions(paras)[k];
                paras[p].remove(i);
            }
            paras.retain(|p| !p.is_empty());
        }
        Edit::Insert { from, n } => {
            // Whole sentences only, after one that has ended: the segmenter
            // must see the insertion as a sentence of its own.
            let pool: Vec<&Unit> = other
                .iter()
                .filter(|u| u.text.ends_with('.') && u.text.starts_with(char::is_uppercase))
                .collect();
            for (m, k) in every(from, n).into_iter().enumerate().rev() {
                let (p, i) = positions(paras)[k];
                if !paras[p][i].text.ends_with(['.', '?', '!', '"', '”']) {
                    continue;
                }
                let text = pool[(7 * m + 3) % pool.len()].text.clone();
                paras[p].insert(i + 1, Unit { text, src: vec![] });
            }
        }
        Edit::Swap => {
            let start = paras.len() / 3;
            let p = (start..paras.len() - 1)
                .find(|&p| paras[p].len() != paras[p + 1].len())
                .expect("two neighbouring paragraphs of different lengths");
            paras.swap(p, p + 1);
        }
    }
}

/// The gold beads of an edited English side: English sentences that render
/// the same Arabic sentences form one bead; of beads that cross (swapped
/// paragraphs) the largest monotone set is kept and the rest are Arabic
/// sentences left out and English sentences added; Arabic sentences no
/// English one renders are left out.
fn gold(units: &[Unit], arabic_count: usize) -> Vec<Gold> {
    let mut beads: Vec<Gold> = Vec::new();
    for (j, u) in units.iter().enumerate() {
        match beads.last_mut() {
            Some((src, tgt)) if !u.src.is_empty() && *src == u.src => tgt.push(j),
            _ => beads.push((u.src.clone(), vec![j])),
        }
    }
    let (matched, inserted): (Vec<Gold>, Vec<Gold>) =
        beads.into_iter().partition(|b| !b.0.is_empty());
    // Heaviest chain of beads increasing on the Arabic side (O(n²), n < 100).
    let weight = |b: &Gold| b.0.len() + b.1.len();
    let mut best: Vec<(usize, Option<usize>)> = Vec::new();
    for (k, b) in matched.iter().enumerate() {
        let prev = (0..k)
            .filter(|&q| matched[q].0.last() < b.0.first())
            .max_by_key(|&q| best[q].0);
        best.push((weight(b) + prev.map_or(0, |q| best[q].0), prev));
    }
    let mut keep = vec![false; matched.len()];
    let mut at = (0..matched.len()).max_by_key(|&k| best[k].0);
    while let Some(k) = at {
        keep[k] = true;
        at = best[k].1;
    }
    let mut out = inserted;
    let mut covered = vec![false; arabic_count];
    for (b, kept) in matched.into_iter().zip(keep) {
        if kept {
            b.0.iter().for_each(|&i| covered[i] = true);
            out.push(b);
        } else {
            out.extend(b.1.iter().map(|&j| (vec![], vec![j])));
        }
    }
    out.extend(
        (0..arabic_count)
            .filter(|&i| !covered[i])
            .map(|i| (vec![i], vec![])),
    );
    out.sort_by_key(|b| (b.0.first().copied(), b.1.first().copied()));
    out
}

fn variants() -> Vec<(&'static str, Vec<Edit>)> {
    use Edit::*;
    vec![
        ("identity", vec![]),
        ("splits", vec![Split { from: 1, n: 4 }]),
        ("merges", vec![Merge { from: 2, n: 5 }]),
        ("omissions", vec![Omit { from: 3, n: 6 }]),
        ("insertions", vec![Insert { from: 4, n: 7 }]),
        ("swap", vec![Swap]),
        (
            "mixed",
            vec![
                Split { from: 2, n: 9 },
                Merge { from: 5, n: 11 },
                Omit { from: 8, n: 13 },
                Insert { from: 10, n: 12 },
                Swap,
            ],
        ),
    ]
}

/// Every variant of both articles.
pub fn pairs() -> Vec<Pair> {
    let mut out = Vec::new();
    for (a, article) in ARTICLES.iter().enumerate() {
        let (arabic, base_paras) = base(article);
        let other = flat(&base(ARTICLES[1 - a]).1);
        let mt: Vec<String> = flat(&base_paras).into_iter().map(|u| u.text).collect();
        for (variant, edits) in variants() {
            let mut paras = base_paras.clone();
            for &e in &edits {
                apply(&mut paras, e, &other);
            }
            let english: String = paras
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|u| u.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                        + "\n"
                })
                .collect();
            let units = flat(&paras);
            // The segmenter must see exactly the sentences the edits made.
            let segmented: Vec<String> = Document::parse("en", english.clone())
                .sentences()
                .map(|s| s.text.to_string())
                .collect();
            let intended: Vec<&str> = units.iter().map(|u| u.text.as_str()).collect();
            assert_eq!(
                segmented, intended,
                "{article}/{variant}: segmentation differs from the edit"
            );
            out.push(Pair {
                name: format!("{article}/{variant}"),
                gold: gold(&units, mt.len()),
                arabic: arabic.clone(),
                english,
                mt: mt.clone(),
            });
        }
    }
    out
}

/// `mt` with every third word left out: a poor translation.
pub fn degrade(mt: &[String]) -> Vec<String> {
    mt.iter()
        .map(|s| {
            s.split(' ')
                .enumerate()
                .filter(|(k, _)| k % 3 != 2)
                .map(|(_, w)| w)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}
