//! Sentence alignment of a document with a translation that already exists
//! (the job of hunalign, Bleualign and vecalign): this module owns deciding
//! which groups of consecutive source sentences correspond to which groups
//! of consecutive target sentences — beads of 1-1, 1-n, n-1 (up to
//! `max_group` sentences), 2-2, 2-3, 3-2, and 1-0 / 0-1 for sentences
//! without a counterpart — and scoring such an alignment against a gold one.
//!
//! The method is a dynamic program over beads (Gale and Church), whose cost
//! adds: a prior on the bead's shape; a length model whose ratio and
//! variance are estimated from the pair itself (a first alignment, then its
//! 1-1 beads); anchors that need no model — numbers with Arabic-Indic and
//! Latin digits and both decimal conventions normalised, Latin-script names,
//! acronyms and URLs looked for on the other side, month names in both
//! languages, English number words, punctuation shape — and, when a
//! translation of each source sentence is given (a model's, or any other),
//! the character n-gram F-score (chrF-style, orders 1–6) of the source
//! group's translation against the target group, normalised by what
//! unrelated pairs of the same documents score (as vecalign normalises its
//! cosine). Groups that span a paragraph break pay extra. Documents whose
//! full grid is large are aligned coarse to fine (vecalign's recursion): on
//! blocks of two sentences first, then in a band around that path, so time
//! and memory grow about linearly with length.

mod features;
pub mod gold;
pub mod job;
mod search;

use std::ops::Range;

use features::Feat;
use search::{Level, Model};

/// The largest group on either side of a 1-n or n-1 bead by default:
/// literary translations render one long Arabic sentence as up to five to
/// eight English ones.
pub const DEFAULT_MAX_GROUP: usize = 8;

/// One sentence to align: its text and the paragraph it is in.
#[derive(Debug, Clone, Copy)]
pub struct Sentence<'a> {
    pub text: &'a str,
    pub para: usize,
}

/// Consecutive source sentences `src` aligned with consecutive target
/// sentences `tgt` (indices in reading order; one side empty for a sentence
/// without a counterpart).
#[derive(Debug, Clone, PartialEq)]
pub struct Bead {
    pub src: Range<usize>,
    pub tgt: Range<usize>,
    /// With a translation: the n-gram F-score (0–1) of the source group's
    /// translation against the target group. Without: the probability (0–1)
    /// of a length difference at least this large under the length model.
    /// 0 for 1-0 and 0-1 beads.
    pub score: f32,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The largest group on either side of a 1-n or n-1 bead (at least 1).
    pub max_group: usize,
    /// Whether paragraph breaks mean something (false for one-sentence-per-
    /// line input, where every line is a paragraph).
    pub paragraphs: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_group: DEFAULT_MAX_GROUP,
            paragraphs: true,
        }
    }
}

/// Aligns `src` with `tgt`. `mt`, when given, holds a translation of each
/// source sentence (same order and count as `src`) into the target's
/// language.
///
/// # Panics
/// If `mt` does not have one entry per source sentence.
pub fn align(src: &[Sentence], tgt: &[Sentence], mt: Option<&[&str]>, opts: &Options) -> Vec<Bead> {
    if let Some(mt) = mt {
        assert_eq!(mt.len(), src.len(), "one translation per source sentence");
    }
    let src_latin = features::mostly_latin(src.iter().map(|s| s.text));
    let tgt_latin = features::mostly_latin(tgt.iter().map(|s| s.text));
    let src_feats: Vec<Feat> = src
        .iter()
        .enumerate()
        .map(|(i, s)| Feat::new(s.text, s.para as u32, src_latin, mt.map(|m| m[i])))
        .collect();
    let tgt_feats: Vec<Feat> = tgt
        .iter()
        .map(|s| {
            Feat::new(
                s.text,
                s.para as u32,
                tgt_latin,
                mt.is_some().then_some(s.text),
            )
        })
        .collect();
    let level = Level {
        src: &src_feats,
        tgt: &tgt_feats,
        paragraphs: opts.paragraphs,
    };
    let shapes = search::shapes(opts.max_group.max(1));
    let total = |f: &[Feat]| f.iter().map(|f| f.len).sum::<f32>();
    let (ls, lt) = (total(&src_feats), total(&tgt_feats));
    let mut model = Model {
        ratio: if ls > 0.0 && lt > 0.0 { lt / ls } else { 1.0 },
        // Gale and Church's value for characters; re-estimated below.
        variance: 6.8,
    };
    let mut path = search::search(&level, model, &shapes);
    if let Some(refit) = refit(&level, &path) {
        model = refit;
        path = search::search(&level, model, &shapes);
    }
    path.windows(2)
        .map(|w| {
            let (src, tgt) = (w[0].0..w[1].0, w[0].1..w[1].1);
            let score = level.score(model, &src, &tgt);
            Bead { src, tgt, score }
        })
        .collect()
}

/// The length model of this pair, from the 1-1 beads of a first alignment:
/// their character ratio, and the variance from the median of δ² (robust to
/// the misaligned few; the median of a χ²₁ variable is 0.455).
fn refit(level: &Level, path: &[(usize, usize)]) -> Option<Model> {
    let pairs: Vec<(f32, f32)> = path
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 == 1 && w[1].1 - w[0].1 == 1)
        .map(|w| (level.src[w[0].0].len, level.tgt[w[0].1].len))
        .filter(|&(s, t)| s > 0.0 && t > 0.0)
        .collect();
    if pairs.len() < 10 {
        return None;
    }
    let ratio = pairs.iter().map(|p| p.1).sum::<f32>() / pairs.iter().map(|p| p.0).sum::<f32>();
    let mut z2: Vec<f32> = pairs
        .iter()
        .map(|&(s, t)| {
            let mean = (s * ratio + t) / 2.0;
            (t - s * ratio).powi(2) / mean
        })
        .collect();
    z2.sort_by(f32::total_cmp);
    let variance = (z2[z2.len() / 2] / 0.455).clamp(1.0, 100.0);
    Some(Model { ratio, variance })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(texts: &[&'static str]) -> Vec<Sentence<'static>> {
        texts
            .iter()
            .map(|&text| Sentence { text, para: 0 })
            .collect()
    }

    fn shape(beads: &[Bead]) -> Vec<(usize, usize)> {
        beads.iter().map(|b| (b.src.len(), b.tgt.len())).collect()
    }

    #[test]
    fn empty_sides_are_all_deletions() {
        let src = sentences(&["جملة أولى.", "جملة ثانية."]);
        let beads = align(&src, &[], None, &Options::default());
        assert_eq!(shape(&beads), [(1, 0), (1, 0)]);
        assert!(align(&[], &[], None, &Options::default()).is_empty());
    }

    #[test]
    fn numbers_pull_a_split_translation_together() {
        let src = sentences(&[
            "قتل 225 شخصا في أعمال العنف التي شهدتها البلاد في يناير 2022.",
            "وقالت الحكومة إن 4 آلاف شخص اعتقلوا.",
        ]);
        let tgt = sentences(&[
            "225 people were killed in the violence.",
            "The country saw it in January 2022.",
            "The government said 4 thousand people were arrested.",
        ]);
        let beads = align(&src, &tgt, None, &Options::default());
        assert_eq!(shape(&beads), [(1, 2), (1, 1)]);
    }
}
