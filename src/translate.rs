//! The translation engine's batch scheduler: takes many source sentences,
//! translates each distinct one once, and returns results in input order.
//! This module owns deduplication, splitting of over-long sentences at clause
//! boundaries, sorting by token length and cutting batches by a token budget,
//! the thread model (workers running batches concurrently, each on its own
//! rayon pool holding its share of the threads), detokenisation, and the
//! mapping of the alignment head's attention to word alignments. Tokenisation is
//! [`crate::tokenizer`]'s, the network and search are [`crate::marian`]'s and
//! [`crate::decode`]'s.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use candle_core::Device;

use crate::decode::{GenerationConfig, Hypothesis, generate};
use crate::marian::{Backend, MarianModel, Precision};
use crate::tokenizer::MarianTokenizer;

/// How a model is loaded and how it searches.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub device: Device,
    /// Engine and number type ([`Backend::default_for`] f32 on the device by default).
    pub backend: Backend,
    /// Beam size; `None` follows the model's generation config.
    pub beam: Option<usize>,
    /// Limit on generated tokens; `None` follows the model's generation config.
    pub max_new_tokens: Option<usize>,
    /// Sentences with more source tokens (with `</s>`) are split at clause
    /// boundaries; `None` means the model's position limit.
    pub max_source_tokens: Option<usize>,
    /// Record the alignment head's attention and derive word alignments.
    pub word_alignment: bool,
    /// transformers' `length_penalty` (beam scores divided by length^p);
    /// `None` follows the model's generation config.
    pub length_penalty: Option<f64>,
    /// transformers' `repetition_penalty` (1 = none).
    pub repetition_penalty: Option<f64>,
    /// transformers' `no_repeat_ngram_size` (0 = none).
    pub no_repeat_ngram_size: Option<usize>,
    /// Beam search: also keep the next best `n - 1` translations of each
    /// sentence (transformers' `num_return_sequences`; at most the beam).
    pub n_best: usize,
    /// Marian's `--max-length-factor`: at most `F × source tokens +`
    /// [`LENGTH_FACTOR_SLACK`] new tokens per sentence (and never more than
    /// the model's limit), so that a runaway hypothesis stops early; `None`
    /// keeps transformers' single limit.
    pub max_length_factor: Option<f64>,
}

/// New tokens allowed beyond `F ×` source tokens with `max_length_factor`,
/// so that one-word sources can still get a few words.
pub const LENGTH_FACTOR_SLACK: usize = 10;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: Device::Cpu,
            backend: Backend::Native(Precision::F32),
            beam: None,
            max_new_tokens: None,
            max_source_tokens: None,
            word_alignment: false,
            length_penalty: None,
            repetition_penalty: None,
            no_repeat_ngram_size: None,
            max_length_factor: None,
            n_best: 1,
        }
    }
}

/// How work is scheduled. Results do not depend on any of it.
///
/// The thread model is CTranslate2's `inter_threads` × `intra_threads`:
/// `threads` is the total; `workers` batches run at the same time, each on
/// its own rayon pool holding its share of the threads ([`thread_shares`]),
/// so that every matrix product and search pass of a batch runs on its
/// worker's share and all the threads are busy. Workers take the next batch
/// when they finish one (longest batches first).
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Padded source tokens per batch (rows × longest row).
    pub batch_tokens: usize,
    /// Threads in all; `None`: as many as the current rayon pool has.
    pub threads: Option<usize>,
    /// Batches translated at the same time (at most `threads`, and at most
    /// the number of batches).
    pub workers: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            batch_tokens: BatchOptions::CPU_BATCH_TOKENS,
            threads: None,
            workers: 1,
        }
    }
}

impl BatchOptions {
    /// `batch_tokens` on a CPU: a batch's matrix products are already large
    /// there (benches/README.md measures batch sizes), and smaller batches
    /// let the workers share the threads.
    pub const CPU_BATCH_TOKENS: usize = 2048;
    /// `batch_tokens` on a GPU: thousands of rows' worth of work per step
    /// (CTranslate2 and fairseq batch by thousands of tokens on GPUs), as a
    /// decoder step costs about the same for 32 rows as for a few hundred
    /// until the device's matrix units are busy.
    pub const GPU_BATCH_TOKENS: usize = 16384;

    /// The `batch_tokens` default for `device`.
    pub fn default_batch_tokens(device: &candle_core::Device) -> usize {
        if device.is_cpu() {
            Self::CPU_BATCH_TOKENS
        } else {
            Self::GPU_BATCH_TOKENS
        }
    }

    /// The total thread count these options mean here.
    pub fn total_threads(&self) -> usize {
        self.threads
            .unwrap_or_else(rayon::current_num_threads)
            .max(1)
    }
}

/// How `threads` are shared by `workers`: the size of each worker's pool,
/// `threads / workers` each and the remainder one more to the first ones
/// (3 threads, 2 workers: `[2, 1]`). At least one thread and one worker;
/// never more workers than threads.
pub fn thread_shares(threads: usize, workers: usize) -> Vec<usize> {
    let threads = threads.max(1);
    let workers = workers.clamp(1, threads);
    (0..workers)
        .map(|w| threads / workers + usize::from(w < threads % workers))
        .collect()
}

/// `2 workers × 1 thread`, `2 workers × 2+1 threads`: a worker layout as
/// the CLI reports it.
pub fn describe_shares(shares: &[usize]) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            word.to_string()
        } else {
            format!("{word}s")
        }
    };
    let per = if shares.windows(2).all(|w| w[0] == w[1]) {
        shares.first().copied().unwrap_or(0).to_string()
    } else {
        shares
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("+")
    };
    format!(
        "{} {} × {per} {}",
        shares.len(),
        plural(shares.len(), "worker"),
        plural(shares.iter().copied().max().unwrap_or(0), "thread")
    )
}

/// The translation of one source sentence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Translation {
    pub text: String,
    /// Mean log-probability per generated token (length-normalised score).
    pub score: f32,
    /// Encoder input ids (with `</s>`); several runs for a split sentence.
    pub src_ids: Vec<u32>,
    /// Generated ids without the decoder start token, with the final `</s>`.
    pub tgt_ids: Vec<u32>,
    /// Log-probability of each of `tgt_ids`.
    pub tgt_logprobs: Vec<f32>,
    /// `(source word, target word)` pairs, when word alignment was asked for.
    pub alignment: Option<Vec<(usize, usize)>>,
    /// With an n-best list: the next best translations, best first.
    pub alternatives: Vec<Alternative>,
}

/// One of the next best translations of a sentence (`n_best`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alternative {
    pub text: String,
    /// Mean log-probability per generated token, as [`Translation::score`].
    pub score: f32,
    pub tgt_ids: Vec<u32>,
}

/// Statistics of one [`Engine::translate`] call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub sentences: usize,
    pub unique: usize,
    /// Pieces after splitting over-long sentences.
    pub jobs: usize,
    pub batches: usize,
    pub source_tokens: usize,
    /// Source positions in batches, padding included.
    pub padded_source_tokens: usize,
    /// Tokens generated (each distinct sentence once).
    pub target_tokens: usize,
    /// The rayon pool size of each worker that ran (see [`thread_shares`]);
    /// empty when there was nothing to translate.
    pub worker_threads: Vec<usize>,
}

impl Stats {
    /// Adds the statistics of another call (another window of sentences).
    pub fn add(&mut self, other: &Stats) {
        self.sentences += other.sentences;
        self.unique += other.unique;
        self.jobs += other.jobs;
        self.batches += other.batches;
        self.source_tokens += other.source_tokens;
        self.padded_source_tokens += other.padded_source_tokens;
        self.target_tokens += other.target_tokens;
        if !other.worker_threads.is_empty() {
            self.worker_threads = other.worker_threads.clone();
        }
    }
}

/// What one finished batch completed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done {
    /// Source sentences (duplicates included) whose every part is now done.
    pub sentences: usize,
    /// Parts (pieces of split sentences, or whole sentences) in the batch.
    pub parts: usize,
    /// Tokens the batch generated.
    pub target_tokens: usize,
}

/// [`Engine::translate_with`] was stopped before finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// A loaded model with its tokenizer and search settings.
pub struct Engine {
    tokenizer: MarianTokenizer,
    model: MarianModel,
    generation: GenerationConfig,
    max_source_tokens: usize,
    max_length_factor: Option<f64>,
}

impl Engine {
    /// Loads a model folder (config.json, weights, source.spm, target.spm,
    /// vocab.json, optional generation_config.json).
    pub fn load(dir: &Path, opts: &EngineOptions) -> Result<Engine> {
        let tokenizer = MarianTokenizer::from_dir(dir)
            .with_context(|| format!("loading the tokenizer from {}", dir.display()))?;
        let (model, defaults) = MarianModel::from_dir_with(dir, opts.backend, &opts.device)
            .with_context(|| format!("loading the model from {}", dir.display()))?;
        let mut generation = GenerationConfig::from_defaults(model.config(), &defaults);
        if let Some(beam) = opts.beam {
            generation.num_beams = beam.max(1);
        }
        if let Some(n) = opts.max_new_tokens {
            generation = generation.with_max_new_tokens(n);
        }
        generation.output_alignment = opts.word_alignment;
        if let Some(p) = opts.length_penalty {
            generation.length_penalty = p;
        }
        if let Some(p) = opts.repetition_penalty {
            generation.repetition_penalty = p;
        }
        if let Some(n) = opts.no_repeat_ngram_size {
            generation.no_repeat_ngram_size = n;
        }
        if opts.n_best > 1 && opts.n_best > generation.num_beams {
            anyhow::bail!(
                "an n-best list of {} needs a beam of at least {} (the beam is {})",
                opts.n_best,
                opts.n_best,
                generation.num_beams
            );
        }
        generation.num_return_sequences = opts.n_best.max(1);
        let limit = model.config().max_position_embeddings;
        let max_source_tokens = opts.max_source_tokens.unwrap_or(limit).clamp(2, limit);
        Ok(Engine {
            tokenizer,
            model,
            generation,
            max_source_tokens,
            max_length_factor: opts.max_length_factor.filter(|f| *f > 0.0),
        })
    }

    pub fn generation(&self) -> &GenerationConfig {
        &self.generation
    }

    pub fn tokenizer(&self) -> &MarianTokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        self.model.device()
    }

    /// The engine and number type the model runs on.
    pub fn backend(&self) -> Backend {
        self.model.backend()
    }

    /// Translates `sentences`, returning one translation per sentence in the
    /// same order. `progress` is called with the number of source sentences
    /// (duplicates included) that each finished batch completed.
    pub fn translate(
        &self,
        sentences: &[&str],
        opts: &BatchOptions,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<(Vec<Translation>, Stats)> {
        self.translate_with(sentences, opts, &|d: Done| progress(d.sentences), &|| false)
    }

    /// [`Engine::translate`] reporting every finished batch as [`Done`]
    /// (so that progress moves during a sentence split into parts), and
    /// checking `stop` before each batch: once it returns true no batch
    /// starts and the call fails with [`Interrupted`].
    pub fn translate_with(
        &self,
        sentences: &[&str],
        opts: &BatchOptions,
        progress: &(dyn Fn(Done) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<(Vec<Translation>, Stats)> {
        // Distinct sentences, in first-seen order, and how often each occurs.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut unique: Vec<&str> = Vec::new();
        let mut count: Vec<usize> = Vec::new();
        let slot: Vec<usize> = sentences
            .iter()
            .map(|s| {
                *index.entry(s).or_insert_with(|| {
                    unique.push(s);
                    count.push(0);
                    unique.len() - 1
                })
            })
            .collect();
        for &u in &slot {
            count[u] += 1;
        }

        // Each distinct sentence becomes one or more jobs (parts that fit).
        let mut jobs: Vec<(usize, Vec<u32>)> = Vec::new();
        let encoded = self.tokenizer.encode_batch(&unique)?;
        for (u, (s, ids)) in unique.iter().zip(encoded).enumerate() {
            for ids in self.fit(s, ids)? {
                jobs.push((u, ids));
            }
        }
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        // Longest first: the biggest batches start early and the schedule's
        // tail is short. The job index breaks ties so the cut is
        // deterministic.
        order.sort_by_key(|&j| (std::cmp::Reverse(jobs[j].1.len()), j));
        let mut batches = cut_batches(&order, |j| jobs[j].1.len(), opts.batch_tokens);
        if self.max_length_factor.is_some() {
            // One length limit per batch: rows sorted longest first have
            // non-increasing limits, so a batch is cut where its limit
            // changes (results do not depend on how rows are batched).
            batches = batches
                .into_iter()
                .flat_map(|b| {
                    b.chunk_by(|&x, &y| {
                        self.max_length_for(jobs[x].1.len()) == self.max_length_for(jobs[y].1.len())
                    })
                    .map(<[usize]>::to_vec)
                    .collect::<Vec<_>>()
                })
                .collect();
        }

        let mut stats = Stats {
            sentences: sentences.len(),
            unique: unique.len(),
            jobs: jobs.len(),
            batches: batches.len(),
            source_tokens: jobs.iter().map(|j| j.1.len()).sum(),
            padded_source_tokens: batches
                .iter()
                .map(|b| b.len() * b.iter().map(|&j| jobs[j].1.len()).max().unwrap_or(0))
                .sum(),
            target_tokens: 0,
            worker_threads: Vec::new(),
        };

        let parts_left: Vec<AtomicUsize> = {
            let mut n = vec![0usize; unique.len()];
            for (u, _) in &jobs {
                n[*u] += 1;
            }
            n.into_iter().map(AtomicUsize::new).collect()
        };
        let run = |batch: &Vec<usize>| -> Result<Vec<(usize, Hypothesis)>> {
            if stop() {
                return Err(Interrupted.into());
            }
            let sources: Vec<Vec<u32>> = batch.iter().map(|&j| jobs[j].1.clone()).collect();
            let hyps = if self.max_length_factor.is_some() {
                let mut cfg = self.generation.clone();
                cfg.max_length = self.max_length_for(sources[0].len());
                generate(&self.model, &sources, &cfg)?
            } else {
                generate(&self.model, &sources, &self.generation)?
            };
            let done: usize = batch
                .iter()
                .filter(|&&j| parts_left[jobs[j].0].fetch_sub(1, Ordering::Relaxed) == 1)
                .map(|&j| count[jobs[j].0])
                .sum();
            let hyp_tokens = hyps.iter().map(|h| h.ids.len()).sum();
            progress(Done {
                sentences: done,
                parts: batch.len(),
                target_tokens: hyp_tokens,
            });
            Ok(batch.iter().copied().zip(hyps).collect())
        };
        // A worker with no batch to take would hold threads idle: fewer
        // batches than workers share the threads among fewer workers.
        let shares = if batches.is_empty() {
            Vec::new()
        } else {
            thread_shares(opts.total_threads(), opts.workers.min(batches.len()))
        };
        let results = run_workers(&shares, batches.len(), |b| run(&batches[b]))?;
        stats.worker_threads = shares;
        let mut hyp_of_job: Vec<Option<Hypothesis>> = vec![None; jobs.len()];
        for (j, h) in results.into_iter().flatten() {
            hyp_of_job[j] = Some(h);
        }

        // Reassemble the parts of each distinct sentence, in order.
        let mut parts_of: Vec<Vec<usize>> = vec![Vec::new(); unique.len()];
        for (j, (u, _)) in jobs.iter().enumerate() {
            parts_of[*u].push(j);
        }
        // Each hypothesis is dropped as soon as its sentence is assembled, so
        // that a window's results are not held twice.
        let mut translations: Vec<Translation> = parts_of
            .iter()
            .map(|parts| {
                let hyps: Vec<Hypothesis> = parts
                    .iter()
                    .map(|&j| hyp_of_job[j].take().expect("every job ran"))
                    .collect();
                let parts: Vec<(&[u32], &Hypothesis)> = parts
                    .iter()
                    .zip(&hyps)
                    .map(|(&j, h)| (jobs[j].1.as_slice(), h))
                    .collect();
                self.assemble(&parts)
            })
            .collect::<Result<_>>()?;
        drop(jobs);
        stats.target_tokens = translations.iter().map(|t| t.tgt_ids.len()).sum();
        // The last occurrence of a sentence takes its translation, earlier
        // duplicates a copy.
        let mut out: Vec<Option<Translation>> = vec![None; slot.len()];
        for (i, &u) in slot.iter().enumerate().rev() {
            count[u] -= 1;
            out[i] = Some(if count[u] == 0 {
                std::mem::take(&mut translations[u])
            } else {
                translations[u].clone()
            });
        }
        Ok((out.into_iter().map(|t| t.expect("filled")).collect(), stats))
    }

    /// The `max_length` (new tokens + the start token) of a source of
    /// `src_len` tokens under `max_length_factor`.
    fn max_length_for(&self, src_len: usize) -> usize {
        match self.max_length_factor {
            None => self.generation.max_length,
            Some(f) => {
                let new = (f * src_len as f64).floor() as usize + LENGTH_FACTOR_SLACK;
                self.generation.max_length.min(new + 1)
            }
        }
    }

    /// `ids` (the encoding of `text`) as parts that fit the source limit;
    /// only an over-long text is split and its parts encoded again.
    fn fit(&self, text: &str, ids: Vec<u32>) -> Result<Vec<Vec<u32>>> {
        if ids.len() <= self.max_source_tokens {
            return Ok(vec![ids]);
        }
        match split_clause(text) {
            Some((a, b)) => {
                let mut out = self.fit(a, self.tokenizer.encode(a)?)?;
                out.extend(self.fit(b, self.tokenizer.encode(b)?)?);
                Ok(out)
            }
            // One unbreakable word longer than the limit: cut its ids (never
            // silently — the parts are still all translated).
            None => {
                let eos = *ids.last().expect("encode appends </s>");
                Ok(ids[..ids.len() - 1]
                    .chunks(self.max_source_tokens - 1)
                    .map(|c| {
                        let mut v = c.to_vec();
                        v.push(eos);
                        v
                    })
                    .collect())
            }
        }
    }

    fn assemble(&self, parts: &[(&[u32], &Hypothesis)]) -> Result<Translation> {
        let mut texts = Vec::new();
        let mut t = Translation {
            text: String::new(),
            score: 0.0,
            src_ids: Vec::new(),
            tgt_ids: Vec::new(),
            tgt_logprobs: Vec::new(),
            alignment: self.generation.output_alignment.then(Vec::new),
            alternatives: Vec::new(),
        };
        let (mut src_words, mut tgt_words) = (0, 0);
        for (src, hyp) in parts {
            texts.push(self.tokenizer.decode(&hyp.ids, true)?);
            if let Some(al) = t.alignment.as_mut() {
                let (pairs, ns, nt) =
                    word_alignment(&self.tokenizer, src, &hyp.ids, &hyp.alignment);
                al.extend(
                    pairs
                        .into_iter()
                        .map(|(i, j)| (i + src_words, j + tgt_words)),
                );
                src_words += ns;
                tgt_words += nt;
            }
            t.src_ids.extend_from_slice(src);
            t.tgt_ids.extend_from_slice(&hyp.ids);
            t.tgt_logprobs.extend_from_slice(&hyp.token_logprobs);
        }
        t.text = join_parts(&texts);
        // The k-th alternative of a split sentence joins each part's k-th
        // (a part with fewer alternatives gives its best).
        let ranks = parts
            .iter()
            .map(|(_, h)| h.alternatives.len())
            .max()
            .unwrap_or(0);
        for k in 0..ranks {
            let mut alt = Alternative::default();
            let mut texts = Vec::new();
            let mut logprobs: Vec<f32> = Vec::new();
            for (_, hyp) in parts {
                let h = hyp.alternatives.get(k).unwrap_or(hyp);
                texts.push(self.tokenizer.decode(&h.ids, true)?);
                alt.tgt_ids.extend_from_slice(&h.ids);
                logprobs.extend_from_slice(&h.token_logprobs);
            }
            alt.text = join_parts(&texts);
            alt.score = mean(&logprobs);
            t.alternatives.push(alt);
        }
        t.score = mean(&t.tgt_logprobs);
        Ok(t)
    }
}

/// The decoded parts of a split sentence as one text.
fn join_parts(texts: &[String]) -> String {
    texts
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mean of `logprobs` (0 for none): a translation's length-normalised score.
fn mean(logprobs: &[f32]) -> f32 {
    if logprobs.is_empty() {
        0.0
    } else {
        logprobs.iter().sum::<f32>() / logprobs.len() as f32
    }
}

/// Runs `task(0..n)` on `shares.len()` workers, each an OS thread inside
/// its own rayon pool of `shares[w]` threads (named `tarjama-w{w}-{i}`),
/// taking the next task index as it finishes one, and returns the results
/// in task order, whatever ran where. The first failure (in task order)
/// stops the workers from taking new tasks and is returned.
fn run_workers<T: Send>(
    shares: &[usize],
    n: usize,
    task: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let pools: Vec<rayon::ThreadPool> = shares
        .iter()
        .enumerate()
        .map(|(w, &threads)| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |i| format!("tarjama-w{w}-{i}"))
                .build()
        })
        .collect::<Result<_, _>>()
        .context("starting the worker thread pools")?;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<T>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let work = || {
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let result = task(i);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            *slots[i].lock().expect("not poisoned") = Some(result);
        }
    };
    let work = &work;
    std::thread::scope(|scope| {
        let (first, rest) = pools.split_first().expect("at least one worker");
        for pool in rest {
            scope.spawn(move || pool.install(work));
        }
        // The calling thread drives the first worker's pool.
        first.install(work);
    });
    // Tasks are taken in index order, so every slot before the last taken
    // one is filled, and after a failure the failure comes before the
    // first task never taken.
    slots
        .into_iter()
        .map_while(|slot| slot.into_inner().expect("not poisoned"))
        .collect()
}

/// Groups `order` (sorted longest first) into consecutive batches whose
/// padded size (rows × longest row) stays within `budget`, starting a new
/// batch also where a row is shorter than 4/5 of the batch's longest, so that
/// no row carries more than 20% padding; a row longer than the budget gets a
/// batch of its own.
fn cut_batches(order: &[usize], len: impl Fn(usize) -> usize, budget: usize) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for &j in order {
        let l = len(j).max(1);
        let widest = longest.max(l);
        if !current.is_empty() && (widest * (current.len() + 1) > budget || l * 5 < longest * 4) {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(l);
        current.push(j);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Splits `text` in two near its middle at the strongest clause boundary it
/// has: after `،` `؛` `:` `,` (and their Latin forms), else at white space.
fn split_clause(text: &str) -> Option<(&str, &str)> {
    let mid = text.len() / 2;
    let best = |is_cut: &dyn Fn(char) -> bool| -> Option<usize> {
        text.char_indices()
            .filter(|&(_, c)| is_cut(c))
            .map(|(i, c)| i + c.len_utf8())
            .filter(|&i| {
                i < text.len() && !text[..i].trim().is_empty() && !text[i..].trim().is_empty()
            })
            .min_by_key(|&i| i.abs_diff(mid))
    };
    let cut = best(&|c| matches!(c, '،' | '؛' | ';'))
        .or_else(|| best(&|c| matches!(c, ':' | ',')))
        .or_else(|| best(&char::is_whitespace))?;
    Some((text[..cut].trim_end(), text[cut..].trim_start()))
}

/// Marian-style word alignment from the alignment head: each target piece is
/// aligned to the source piece it attends to most, and pieces are mapped to
/// words (a word starts at a piece beginning with `▁`). Returns the sorted,
/// distinct `(source word, target word)` pairs and the word counts.
fn word_alignment(
    tok: &MarianTokenizer,
    src: &[u32],
    tgt: &[u32],
    attention: &[Vec<f32>],
) -> (Vec<(usize, usize)>, usize, usize) {
    let words = |ids: &[u32], special: &dyn Fn(u32) -> bool| -> (Vec<Option<usize>>, usize) {
        let mut out = Vec::with_capacity(ids.len());
        let mut w: Option<usize> = None;
        for &id in ids {
            if special(id) {
                out.push(None);
                continue;
            }
            let starts = tok.id_to_token(id).is_none_or(|p| p.starts_with('▁'));
            let next = match (w, starts) {
                (None, _) => 0,
                (Some(i), true) => i + 1,
                (Some(i), false) => i,
            };
            w = Some(next);
            out.push(Some(next));
        }
        (out, w.map_or(0, |i| i + 1))
    };
    // Neither `</s>` nor padding is a word of the sentence.
    let special = |id: u32| id == tok.eos_id() || id == tok.pad_id();
    let (src_word, ns) = words(src, &special);
    let (tgt_word, nt) = words(tgt, &special);
    let mut pairs: Vec<(usize, usize)> = attention
        .iter()
        .zip(&tgt_word)
        .filter_map(|(att, tw)| {
            let tw = (*tw)?;
            let (best, _) = att
                .iter()
                .enumerate()
                .filter(|(i, _)| src_word.get(*i).is_some_and(Option::is_some))
                .max_by(|a, b| a.1.total_cmp(b.1))?;
            Some((src_word[best]?, tw))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    (pairs, ns, nt)
}

/// The thread-model test, on the kernels' probe (`marian::kernel_probe`,
/// test builds only).
#[cfg(test)]
mod worker_pools_test {
    use super::*;

    /// The probe's `take` returns `(thread name, rayon pool size)` for every
    /// matrix product since its last call. Translates the same sentences with
    /// 1 thread × 1 worker, 4 threads × 2 workers and 3 threads × 2 workers
    /// and checks that every product ran on a worker's pool, inside a pool
    /// of that worker's share (2 and 2; 2 and 1), never in one of the
    /// total's size, with the same translations each time. Worker pool
    /// threads are named `tarjama-w{w}-{i}`; products on other threads
    /// (other tests running in parallel) are ignored, and no other test
    /// translates through [`Engine::translate`] in this process.
    #[test]
    fn each_worker_runs_its_products_on_its_share_of_the_threads() {
        let take = crate::marian::kernel_probe::take;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let opts = EngineOptions {
            beam: Some(2),
            max_new_tokens: Some(6),
            ..EngineOptions::default()
        };
        let engine = Engine::load(&root.join("tests/fixtures/marian"), &opts).unwrap();
        let text = std::fs::read_to_string(
            root.join("tests/golden/kazakhstan-unrest-report.ar.sentences.txt"),
        )
        .unwrap();
        let sentences: Vec<&str> = text.lines().filter(|l| !l.is_empty()).take(40).collect();
        let worker_of = |name: &Option<String>| -> Option<usize> {
            name.as_deref()?
                .strip_prefix("tarjama-w")?
                .split('-')
                .next()?
                .parse()
                .ok()
        };
        let mut reference: Option<(Vec<Translation>, usize)> = None;
        for (threads, workers, shares) in [(1, 1, vec![1]), (4, 2, vec![2, 2]), (3, 2, vec![2, 1])]
        {
            let batch = BatchOptions {
                batch_tokens: 64,
                threads: Some(threads),
                workers,
            };
            take();
            let (out, stats) = engine.translate(&sentences, &batch, &|_| {}).unwrap();
            let calls: Vec<(usize, usize)> = take()
                .iter()
                .filter_map(|(name, pool)| Some((worker_of(name)?, *pool)))
                .collect();
            assert!(stats.batches >= 8, "{} batches", stats.batches);
            assert_eq!(
                stats.worker_threads, shares,
                "{threads} threads, {workers} workers"
            );
            for (w, share) in shares.iter().enumerate() {
                let mine: Vec<usize> = calls
                    .iter()
                    .filter(|(cw, _)| *cw == w)
                    .map(|(_, pool)| *pool)
                    .collect();
                assert!(!mine.is_empty(), "worker {w} of {shares:?} ran no product");
                assert!(
                    mine.iter().all(|pool| pool == share),
                    "worker {w} of {shares:?}: products ran in pools of {:?} threads",
                    mine.iter().collect::<std::collections::BTreeSet<_>>()
                );
            }
            match &reference {
                None => reference = Some((out, calls.len())),
                Some((first, n)) => {
                    assert_eq!(
                        calls.len(),
                        *n,
                        "every product ran on a worker's pool ({threads} threads)"
                    );
                    // Ids and texts identical; log-probabilities as the
                    // CLI tests compare them (summation order may differ).
                    for (x, y) in out.iter().zip(first) {
                        assert_eq!((&x.text, &x.tgt_ids), (&y.text, &y.tgt_ids));
                        for (p, q) in x.tgt_logprobs.iter().zip(&y.tgt_logprobs) {
                            assert!((p - q).abs() < 1e-4, "{p} vs {q}");
                        }
                    }
                    assert_eq!(out.len(), first.len());
                }
            }
        }
        assert!(reference.unwrap().1 > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_shared_by_the_workers() {
        assert_eq!(thread_shares(4, 2), [2, 2]);
        assert_eq!(thread_shares(3, 2), [2, 1]);
        assert_eq!(thread_shares(16, 3), [6, 5, 5]);
        assert_eq!(thread_shares(2, 5), [1, 1], "no more workers than threads");
        assert_eq!(thread_shares(0, 0), [1]);
        assert_eq!(describe_shares(&[1, 1]), "2 workers × 1 thread");
        assert_eq!(describe_shares(&[2, 1]), "2 workers × 2+1 threads");
        assert_eq!(describe_shares(&[4]), "1 worker × 4 threads");
    }

    #[test]
    fn workers_return_results_in_task_order_and_the_first_failure() {
        let squares = run_workers(&[2, 1], 50, |i| Ok(i * i)).unwrap();
        assert_eq!(squares, (0..50).map(|i| i * i).collect::<Vec<_>>());
        let err = run_workers(&[1, 1], 50, |i| {
            if i == 7 {
                anyhow::bail!("task {i} failed")
            }
            Ok(i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "task 7 failed");
        assert!(run_workers(&[1], 0, Ok).unwrap().is_empty());
    }

    #[test]
    fn batches_respect_the_token_budget_and_keep_order() {
        let lens = [9, 9, 8, 5, 5, 5, 5, 2, 1, 30];
        let mut order: Vec<usize> = (0..lens.len()).collect();
        order.sort_by_key(|&j| (std::cmp::Reverse(lens[j]), j));
        let batches = cut_batches(&order, |j| lens[j], 20);
        let flat: Vec<usize> = batches.iter().flatten().copied().collect();
        assert_eq!(flat, order, "every job once, in sorted order");
        for b in &batches {
            let widest = b.iter().map(|&j| lens[j]).max().unwrap();
            assert!(b.len() == 1 || widest * b.len() <= 20, "{b:?}");
            assert!(b.iter().all(|&j| lens[j] * 5 >= widest * 4), "{b:?}");
        }
        assert_eq!(batches[0], [9], "an over-budget row runs alone");
    }

    #[test]
    fn clause_split_prefers_arabic_comma_then_comma_then_space() {
        assert_eq!(
            split_clause("الأول، الثاني الثالث الرابع، الخامس"),
            Some(("الأول، الثاني الثالث الرابع،", "الخامس"))
        );
        assert_eq!(split_clause("a b, c d"), Some(("a b,", "c d")));
        assert_eq!(split_clause("one two three"), Some(("one", "two three")));
        assert_eq!(split_clause("unbreakable"), None);
    }
}
