//! Gold alignments and how well an alignment matches one: strict
//! precision, recall and F1 over beads (a bead counts only when its source
//! and target sentences are exactly a gold bead's), as vecalign's scorer
//! reports them.

use std::collections::HashSet;

/// One bead as sentence indices: source and target.
pub type Pair = (Vec<usize>, Vec<usize>);

/// Reads a gold alignment, one bead per line, in either of two forms:
/// tarjama's JSONL (objects with `src` and `tgt` arrays, other fields
/// ignored) or vecalign's `[0, 1]:[0]`. Blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Pair>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bead = if line.starts_with('{') {
            #[derive(serde::Deserialize)]
            struct Json {
                src: Vec<usize>,
                tgt: Vec<usize>,
            }
            serde_json::from_str::<Json>(line)
                .map(|j| (j.src, j.tgt))
                .map_err(|e| e.to_string())
        } else {
            line.split_once("]:[")
                .ok_or_else(|| "expected `[i, …]:[j, …]` or a JSON object".to_string())
                .and_then(|(s, t)| {
                    Ok((
                        indices(s.trim_start_matches('['))?,
                        indices(t.trim_end_matches(']'))?,
                    ))
                })
        };
        out.push(bead.map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

fn indices(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("{s:?} is not a sentence index"))
        })
        .collect()
}

/// Strict precision, recall and F1 of `test` against `gold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Beads of `test` that are beads of `gold`.
    pub correct: usize,
    pub test: usize,
    pub gold: usize,
}

pub fn score(test: &[Pair], gold: &[Pair]) -> Scores {
    let gold_set: HashSet<&Pair> = gold.iter().collect();
    let test_set: HashSet<&Pair> = test.iter().collect();
    let correct = test_set.iter().filter(|b| gold_set.contains(*b)).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(correct, test_set.len());
    let recall = ratio(correct, gold_set.len());
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Scores {
        precision,
        recall,
        f1,
        correct,
        test: test_set.len(),
        gold: gold_set.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_gold_forms_parse_to_the_same_beads() {
        let vecalign = "[0]:[0]\n[1, 2]:[1]\n\n[3]:[]\n[]:[2]\n";
        let jsonl = r#"{"src":[0],"tgt":[0],"score":1}
{"src":[1,2],"tgt":[1]}
{"src":[3],"tgt":[]}
{"src":[],"tgt":[2]}"#;
        let a = parse(vecalign).unwrap();
        assert_eq!(a, parse(jsonl).unwrap());
        assert_eq!(a[1], (vec![1, 2], vec![1]));
        assert_eq!(a[3], (vec![], vec![2]));
        assert!(parse("[0]-[1]").unwrap_err().starts_with("line 1:"));
        assert!(parse("[x]:[1]").is_err());
    }

    #[test]
    fn strict_scores_count_exact_beads_only() {
        let gold = parse("[0]:[0]\n[1]:[1, 2]\n[2]:[3]\n[3]:[]").unwrap();
        let test = parse("[0]:[0]\n[1]:[1]\n[]:[2]\n[2]:[3]\n[3]:[]").unwrap();
        let s = score(&test, &gold);
        assert_eq!((s.correct, s.test, s.gold), (3, 5, 4));
        assert!((s.precision - 0.6).abs() < 1e-12);
        assert!((s.recall - 0.75).abs() < 1e-12);
        assert!((s.f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert_eq!(score(&gold, &gold).f1, 1.0);
        assert_eq!(score(&[], &gold).f1, 0.0);
    }
}
