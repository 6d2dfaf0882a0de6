//! Greedy and beam-search generation over [`MarianModel`] with the semantics
//! of transformers' `generate` (the version pinned in
//! `tests/fixtures/requirements.txt`): the same logits processors in the same
//! order (repetition penalty, no-repeat n-grams, bad words, min length, forced
//! EOS at the length limit, optional renormalisation), the same beam
//! bookkeeping (top-2k candidates, length-normalised finished hypotheses,
//! `early_stopping` true/false/"never" heuristics), so that token ids come
//! out identical. This module owns the search loops, the beam bookkeeping
//! and the per-token scores; the network and the selection over each
//! step's vocabulary rows (which runs where the logits are, a GPU included:
//! [`MarianModel::decode_pick`]) live in [`crate::marian`]. Rows whose result
//! is final are dropped from the batch (and from the model state) at once.

use crate::marian::{
    DecoderState, EarlyStopping, GenerationDefaults, MarianConfig, MarianError, MarianModel,
    PickSpec, RowEdits,
};

type Result<T> = std::result::Result<T, MarianError>;

/// Resolved decoding parameters (transformers' `GenerationConfig` subset).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// 1 = greedy search.
    pub num_beams: usize,
    /// Maximum sequence length including the decoder start token.
    pub max_length: usize,
    /// EOS is forbidden while the sequence (with the start token) is shorter.
    pub min_length: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    pub bad_words_ids: Vec<Vec<u32>>,
    pub no_repeat_ngram_size: usize,
    pub repetition_penalty: f64,
    pub renormalize_logits: bool,
    pub eos_token_id: Vec<u32>,
    pub forced_eos_token_id: Vec<u32>,
    pub decoder_start_token_id: u32,
    /// Also return the last decoder layer's first-head cross-attention.
    pub output_alignment: bool,
    /// Beam search: return the best this many finished hypotheses
    /// (transformers' `num_return_sequences`; at most `num_beams`).
    pub num_return_sequences: usize,
}

impl GenerationConfig {
    /// Resolves a checkpoint's generation defaults the way transformers does:
    /// `max_new_tokens` wins over `max_length` (both count the start token as
    /// one position), an unset `max_length` means 20 new tokens capped by
    /// `max_position_embeddings`.
    pub fn from_defaults(cfg: &MarianConfig, d: &GenerationDefaults) -> Self {
        let max_length = match (d.max_new_tokens, d.max_length) {
            (Some(n), _) => n + 1,
            (None, Some(m)) => m,
            (None, None) => (20 + 1).min(cfg.max_position_embeddings),
        };
        let min_length = match d.min_new_tokens {
            Some(n) => n + 1,
            None => d.min_length.unwrap_or(0),
        };
        // OPUS-MT checkpoints ship `bad_words_ids: [[pad]]`; add the ban when a
        // config lacks it so that a pad token is never generated (the one
        // place where we do not follow transformers to the letter).
        let pad = d.pad_token_id.unwrap_or(cfg.pad_token_id);
        let mut bad_words_ids = d.bad_words_ids.clone().unwrap_or_default();
        if !bad_words_ids.iter().any(|w| w.as_slice() == [pad]) {
            bad_words_ids.push(vec![pad]);
        }
        Self {
            num_beams: d.num_beams.unwrap_or(1).max(1),
            max_length,
            min_length,
            length_penalty: d.length_penalty.unwrap_or(1.0),
            early_stopping: d.early_stopping.unwrap_or_default(),
            bad_words_ids,
            no_repeat_ngram_size: d.no_repeat_ngram_size.unwrap_or(0),
            repetition_penalty: d.repetition_penalty.unwrap_or(1.0),
            renormalize_logits: d.renormalize_logits.unwrap_or(false),
            eos_token_id: d
                .eos_token_id
                .clone()
                .unwrap_or_else(|| cfg.eos_token_id.clone()),
            forced_eos_token_id: d
                .forced_eos_token_id
                .clone()
                .or_else(|| cfg.forced_eos_token_id.clone())
                .unwrap_or_default(),
            decoder_start_token_id: d
                .decoder_start_token_id
                .unwrap_or(cfg.decoder_start_token_id),
            output_alignment: false,
            num_return_sequences: 1,
        }
    }

    /// Limits generation to `n` new tokens (transformers' `max_new_tokens`).
    pub fn with_max_new_tokens(mut self, n: usize) -> Self {
        self.max_length = n + 1;
        self
    }
}

/// One generated translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Generated ids without the decoder start token, ending with EOS unless
    /// the length limit cut the sequence.
    pub ids: Vec<u32>,
    /// Per generated token: the log-probability of the chosen token under the
    /// processed distribution (greedy: `compute_transition_scores(...,
    /// normalize_logits=True)`; beam: the beam-search scores as transformers
    /// records them, i.e. processed log-softmax).
    pub token_logprobs: Vec<f32>,
    /// Beam search: transformers' `sequences_scores` (sum of log-probs over
    /// length^length_penalty). Greedy: the sum of `token_logprobs`.
    pub score: f32,
    /// Per generated token, attention over the (unpadded) source tokens of the
    /// last decoder layer's first head; empty unless asked for.
    pub alignment: Vec<Vec<f32>>,
    /// Beam search with `num_return_sequences` > 1: the next best
    /// hypotheses, best first (transformers' order), without alternatives of
    /// their own.
    pub alternatives: Vec<Hypothesis>,
}

/// The logits processors of transformers, in its order, as per-row edits
/// for [`MarianModel::decode_pick`] (which applies them where the logits
/// are).
struct Processors<'a> {
    cfg: &'a GenerationConfig,
    vocab: usize,
    single_bad: Vec<u32>,
    multi_bad: Vec<&'a [u32]>,
}

impl<'a> Processors<'a> {
    fn new(cfg: &'a GenerationConfig, vocab: usize) -> Result<Self> {
        let mut single_bad = Vec::new();
        let mut multi_bad = Vec::new();
        for w in &cfg.bad_words_ids {
            if w.is_empty() || w.iter().any(|&t| t as usize >= vocab) {
                return Err(MarianError::Input(format!(
                    "bad_words_ids entry {w:?} is empty or outside the vocabulary ({vocab})"
                )));
            }
            // NoBadWordsLogitsProcessor drops a bad word that is exactly an EOS.
            if w.len() == 1 && cfg.eos_token_id.contains(&w[0]) {
                continue;
            }
            if w.len() == 1 {
                single_bad.push(w[0]);
            } else {
                multi_bad.push(w.as_slice());
            }
        }
        if cfg.forced_eos_token_id.iter().any(|&t| t as usize >= vocab)
            || cfg.eos_token_id.iter().any(|&t| t as usize >= vocab)
        {
            return Err(MarianError::Input("EOS id outside the vocabulary".into()));
        }
        Ok(Self {
            cfg,
            vocab,
            single_bad,
            multi_bad,
        })
    }

    /// A step's selection: `k` candidates per row and base, on processed
    /// logits (greedy) or log-probabilities (beam).
    fn spec(&self, k: usize, log_probs: bool, rows: Vec<RowEdits>) -> PickSpec {
        PickSpec {
            k,
            log_probs,
            renormalize: self.cfg.renormalize_logits,
            repetition_penalty: self.cfg.repetition_penalty as f32,
            forced_tokens: self.cfg.forced_eos_token_id.clone(),
            rows,
        }
    }

    /// The edits of a row whose sequence so far (with the start token) is
    /// `seq`: repetition penalty, no-repeat n-grams, bad words, min length,
    /// forced EOS at the length limit.
    fn edits(&self, seq: &[u32], bases: Vec<f32>) -> RowEdits {
        let cfg = self.cfg;
        let cur_len = seq.len();
        let mut penalised = Vec::new();
        if cfg.repetition_penalty != 1.0 {
            let mut seen = std::collections::HashSet::with_capacity(seq.len());
            penalised.extend(
                seq.iter()
                    .copied()
                    .filter(|&t| (t as usize) < self.vocab && seen.insert(t)),
            );
        }
        let mut banned = Vec::new();
        let n = cfg.no_repeat_ngram_size;
        if n > 0 && cur_len >= n {
            let prefix = &seq[cur_len + 1 - n..];
            for i in 0..=cur_len - n {
                let t = seq[i + n - 1];
                if seq[i..i + n - 1] == *prefix && (t as usize) < self.vocab {
                    banned.push(t);
                }
            }
        }
        banned.extend_from_slice(&self.single_bad);
        for w in &self.multi_bad {
            let prefix = &w[..w.len() - 1];
            if prefix.len() <= cur_len && seq.ends_with(prefix) {
                banned.push(w[w.len() - 1]);
            }
        }
        if cur_len < cfg.min_length {
            banned.extend_from_slice(&cfg.eos_token_id);
        }
        RowEdits {
            penalised,
            banned,
            forced: !cfg.forced_eos_token_id.is_empty() && cur_len + 1 == cfg.max_length,
            bases,
        }
    }
}

/// Translates `sources` (token ids ending in EOS) with greedy or beam search
/// as `cfg.num_beams` says. Results are in input order and do not depend on
/// how sources are batched.
pub fn generate(
    model: &MarianModel,
    sources: &[Vec<u32>],
    cfg: &GenerationConfig,
) -> Result<Vec<Hypothesis>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    if rayon::current_thread_index().is_none() {
        // From a thread outside the pool, each of a step's ~80 parallel
        // passes would put this thread to sleep and wake it through the OS;
        // from one of the pool's workers a pass hands off to its siblings.
        return rayon::scope(|_| generate(model, sources, cfg));
    }
    if cfg.max_length < 2 {
        return Err(MarianError::Input(
            "max_length must leave room for one token".into(),
        ));
    }
    if cfg.max_length - 1 > model.config().max_position_embeddings {
        return Err(MarianError::Input(format!(
            "max_length {} exceeds max_position_embeddings {} + 1",
            cfg.max_length,
            model.config().max_position_embeddings
        )));
    }
    let vocab = model.config().target_vocab_size();
    let procs = Processors::new(cfg, vocab)?;
    let enc = model.encode(sources)?;
    let mut state = model.start_decoder(&enc, cfg.max_length)?;
    drop(enc);
    if cfg.num_beams <= 1 {
        greedy(model, &mut state, sources.len(), cfg, &procs)
    } else {
        beam_search(model, &mut state, sources.len(), cfg, &procs)
    }
}

fn greedy(
    model: &MarianModel,
    state: &mut DecoderState,
    n: usize,
    cfg: &GenerationConfig,
    procs: &Processors,
) -> Result<Vec<Hypothesis>> {
    let start = cfg.decoder_start_token_id;
    let mut seqs: Vec<Vec<u32>> = vec![vec![start]; n];
    let mut out: Vec<Hypothesis> = (0..n)
        .map(|_| Hypothesis {
            ids: Vec::new(),
            token_logprobs: Vec::new(),
            score: 0.0,
            alignment: Vec::new(),
            alternatives: Vec::new(),
        })
        .collect();
    // Original index of each row still in the model state.
    let mut live: Vec<usize> = (0..n).collect();
    while !live.is_empty() {
        let tokens: Vec<u32> = live.iter().map(|&i| *seqs[i].last().unwrap()).collect();
        let edits = live
            .iter()
            .map(|&i| procs.edits(&seqs[i], vec![0.0]))
            .collect();
        let spec = procs.spec(1, false, edits);
        let step = model.decode_pick(state, &tokens, cfg.output_alignment, &spec)?;
        let picks: Vec<(usize, f32)> = (0..live.len())
            .map(|r| {
                let p = step.row(r)[0];
                (p.token as usize, p.logprob)
            })
            .collect();
        let align = &step.alignment;
        let mut keep = Vec::with_capacity(live.len());
        for ((r, &i), &(tok, lp)) in live.iter().enumerate().zip(&picks) {
            seqs[i].push(tok as u32);
            let h = &mut out[i];
            h.ids.push(tok as u32);
            h.token_logprobs.push(lp);
            if let Some(a) = align {
                h.alignment.push(a[r].clone());
            }
            let done = cfg.eos_token_id.contains(&(tok as u32)) || seqs[i].len() >= cfg.max_length;
            if !done {
                keep.push(r as u32);
            }
        }
        if keep.len() != live.len() {
            live = keep.iter().map(|&r| live[r as usize]).collect();
            if !live.is_empty() {
                state.select_rows(&keep, false)?;
            }
        }
    }
    for h in &mut out {
        h.score = h.token_logprobs.iter().sum();
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    alignment: Vec<Vec<f32>>,
}

struct BeamItem {
    orig: usize,
    running: Vec<Beam>,
    running_scores: Vec<f32>,
    finished: Vec<Option<Beam>>,
    finished_scores: Vec<f32>,
    is_finished: Vec<bool>,
    improvable: bool,
}

/// A candidate continuation: source beam, token, accumulated score.
#[derive(Clone, Copy)]
struct Cand {
    beam: usize,
    token: u32,
    score: f32,
    logprob: f32,
}

/// Index order of the `k` largest values, ties to the lower index (stable).
fn top_indices(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        scores[b]
            .partial_cmp(&scores[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    idx.truncate(k);
    idx
}

const NEG_BIG: f32 = -1.0e9;

fn beam_search(
    model: &MarianModel,
    state: &mut DecoderState,
    n: usize,
    cfg: &GenerationConfig,
    procs: &Processors,
) -> Result<Vec<Hypothesis>> {
    let nb = cfg.num_beams;
    let k = 2.max(1 + cfg.eos_token_id.len()) * nb;
    let lp = cfg.length_penalty;
    let start = Beam {
        tokens: vec![cfg.decoder_start_token_id],
        logprobs: Vec::new(),
        alignment: Vec::new(),
    };
    let mut items: Vec<BeamItem> = (0..n)
        .map(|orig| BeamItem {
            orig,
            running: vec![start.clone(); nb],
            // transformers starts beams 1.. at -1e9 so the first step expands
            // beam 0 only.
            running_scores: (0..nb)
                .map(|j| if j == 0 { 0.0 } else { NEG_BIG })
                .collect(),
            finished: vec![None; nb],
            finished_scores: vec![NEG_BIG; nb],
            is_finished: vec![false; nb],
            improvable: true,
        })
        .collect();
    let mut results: Vec<Option<Hypothesis>> = vec![None; n];
    // Model rows per live item: 1 before the first step (all beams share the
    // start token), `nb` after.
    let mut rows_per_item = 1usize;
    let mut cur_len = 1usize;
    while !items.is_empty() {
        let mut tokens = Vec::with_capacity(items.len() * rows_per_item);
        for it in &items {
            for j in 0..rows_per_item {
                tokens.push(*it.running[j].tokens.last().unwrap());
            }
        }
        // b–c. processed log-probs and the top k continuations of each
        // beam, where the logits are (before the first step all beams of a
        // sentence share one row: one set of k per beam's base).
        let edits = items
            .iter()
            .flat_map(|it| {
                (0..rows_per_item).map(move |j| {
                    let bases = if rows_per_item == 1 {
                        it.running_scores.clone()
                    } else {
                        vec![it.running_scores[j]]
                    };
                    procs.edits(&it.running[j].tokens, bases)
                })
            })
            .collect();
        let spec = procs.spec(k, true, edits);
        let step = model.decode_pick(state, &tokens, cfg.output_alignment, &spec)?;
        let row_base =
            |p: usize, j: usize| p * rows_per_item + if rows_per_item == 1 { 0 } else { j };
        let all_cands: Vec<Vec<Cand>> = (0..items.len())
            .map(|p| {
                let mut cands: Vec<Cand> = Vec::with_capacity(nb * k);
                for j in 0..nb {
                    let picks = if rows_per_item == 1 {
                        &step.row(p)[j * k..(j + 1) * k]
                    } else {
                        step.row(row_base(p, j))
                    };
                    cands.extend(picks.iter().map(|c| Cand {
                        beam: j,
                        token: c.token,
                        score: c.score,
                        logprob: c.logprob,
                    }));
                }
                // Stable sort keeps (beam, token) order among equal scores, like
                // the flattened index order.
                cands.sort_by(|a, b| {
                    b.score
                        .partial_cmp(&a.score)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                cands.truncate(k);
                cands
            })
            .collect();
        let align = &step.alignment;
        let mut next_rows: Vec<u32> = Vec::with_capacity(items.len() * nb);
        let mut still: Vec<BeamItem> = Vec::with_capacity(items.len());
        for ((p, mut it), cands) in items.into_iter().enumerate().zip(all_cands) {
            let row_of = |j: usize| row_base(p, j);
            // d. which candidates hit a stopping criterion.
            let hits: Vec<bool> = cands
                .iter()
                .map(|c| cfg.eos_token_id.contains(&c.token) || cur_len + 1 >= cfg.max_length)
                .collect();
            let extend = |c: &Cand| -> Beam {
                let src = &it.running[c.beam];
                let mut b = src.clone();
                b.tokens.push(c.token);
                b.logprobs.push(c.logprob);
                if let Some(a) = align {
                    b.alignment.push(a[row_of(c.beam)].clone());
                }
                b
            };
            // e. next running beams: the best non-finished ones.
            let adj: Vec<f32> = cands
                .iter()
                .zip(&hits)
                .map(|(c, &h)| c.score + if h { NEG_BIG } else { 0.0 })
                .collect();
            let order = top_indices(&adj, nb);
            let new_running: Vec<Beam> = order.iter().map(|&i| extend(&cands[i])).collect();
            let new_scores: Vec<f32> = order.iter().map(|&i| adj[i]).collect();
            let origins: Vec<usize> = order.iter().map(|&i| row_of(cands[i].beam)).collect();
            // f. merge newly finished hypotheses among the top nb candidates.
            let denom = ((cur_len) as f64).powf(lp) as f32;
            let all_full =
                it.is_finished.iter().all(|&f| f) && cfg.early_stopping == EarlyStopping::True;
            let mut merged_scores = it.finished_scores.clone();
            for (i, c) in cands.iter().enumerate() {
                let mut s = c.score / denom;
                if all_full {
                    s += NEG_BIG;
                }
                if !it.improvable {
                    s += NEG_BIG;
                }
                let just_finished = hits[i] && i < nb;
                if !just_finished {
                    s += NEG_BIG;
                }
                merged_scores.push(s);
            }
            let order = top_indices(&merged_scores, nb);
            let mut finished = Vec::with_capacity(nb);
            let mut finished_scores = Vec::with_capacity(nb);
            let mut is_finished = Vec::with_capacity(nb);
            for &m in &order {
                finished_scores.push(merged_scores[m]);
                if m < nb {
                    finished.push(it.finished[m].take());
                    is_finished.push(it.is_finished[m]);
                } else {
                    let i = m - nb;
                    let just = hits[i] && i < nb;
                    finished.push(if just { Some(extend(&cands[i])) } else { None });
                    is_finished.push(just);
                }
            }
            it.finished = finished;
            it.finished_scores = finished_scores;
            it.is_finished = is_finished;
            it.running = new_running;
            it.running_scores = new_scores;
            // g. can a running beam still beat the worst finished one?
            let next_len = cur_len + 1;
            let hyp_len = if cfg.early_stopping == EarlyStopping::Never && lp > 0.0 {
                cfg.max_length - 1
            } else {
                next_len - 1
            };
            let best_possible = it.running_scores[0] / (hyp_len as f64).powf(lp) as f32;
            let worst = it
                .finished_scores
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            let any_better = it
                .is_finished
                .iter()
                .any(|&f| best_possible > if f { worst } else { NEG_BIG });
            it.improvable = it.improvable && any_better;
            let done = !it.improvable
                || (cfg.early_stopping == EarlyStopping::True && it.is_finished.iter().all(|&f| f))
                || next_len >= cfg.max_length;
            if done {
                // The finished slots are sorted by score; transformers
                // returns the first `num_return_sequences` of them.
                let mut ranked = (0..cfg.num_return_sequences.clamp(1, nb)).map(|k| {
                    let beam = it.finished[k]
                        .take()
                        .unwrap_or_else(|| it.running[k].clone());
                    Hypothesis {
                        ids: beam.tokens[1..].to_vec(),
                        token_logprobs: beam.logprobs,
                        score: it.finished_scores[k],
                        alignment: beam.alignment,
                        alternatives: Vec::new(),
                    }
                });
                let mut best = ranked.next().expect("at least one");
                best.alternatives = ranked.collect();
                results[it.orig] = Some(best);
            } else {
                next_rows.extend(origins.iter().map(|&r| r as u32));
                still.push(it);
            }
        }
        let same_sources = rows_per_item == nb && still.len() * nb == tokens.len();
        items = still;
        rows_per_item = nb;
        cur_len += 1;
        if !items.is_empty() {
            state.select_rows(&next_rows, same_sources)?;
        }
    }
    Ok(results
        .into_iter()
        .map(|h| h.expect("every item finishes"))
        .collect())
}
