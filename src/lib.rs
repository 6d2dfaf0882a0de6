//! tarjama: batch translation of Arabic documents into English with a local
//! Marian (OPUS-MT) model on candle, keeping every sentence aligned with its
//! translation.
//!
//! The pipeline is one module per stage ([`mod@bench`] measures the engine,
//! and [`bench::sweep`] runs it over a grid of settings):
//! - [`document`]: reading input text and splitting it into paragraphs and
//!   sentences with byte offsets into the original;
//! - [`segment`]: the Arabic-aware sentence boundary rules;
//! - [`tokenizer`]: the Marian SentencePiece tokenizer (text to ids and back);
//! - [`marian`]: the Marian (OPUS-MT) network, batched: a native CPU engine
//!   on packed weights (kernels per instruction set, chosen at run time) and
//!   candle for other devices;
//! - [`decode`]: greedy and beam search over it with transformers' semantics;
//! - [`translate`]: the batch scheduler: dedupe, split long sentences, batch
//!   by length, run, reassemble in input order, word alignment;
//! - [`gpu`]: what the `cuda` build finds (for `info` and `bench`);
//! - [`hub`]: finding a model: a local folder or the Hugging Face cache and Hub;
//! - [`output`]: alignment records and the bilingual files written from them;
//! - [`qa`]: quality flags on each sentence pair (numbers, names, length,
//!   loops, untranslated text);
//! - [`pipeline`]: documents in, bilingual files out (the `translate` job);
//! - [`align`]: aligning a document with a translation that already exists
//!   (beads, gold scoring; [`align::job`] is the `align` job);
//! - [`corpus`] and [`manifest`]: which documents a run covers, and what an
//!   output folder holds (resume, locks).

pub mod align;
pub mod bench;
pub mod corpus;
pub mod decode;
pub mod document;
pub mod gpu;
pub mod hub;
pub mod manifest;
pub mod marian;
pub mod output;
pub mod pipeline;
pub mod qa;
mod rng;
pub mod segment;
pub mod tokenizer;
pub mod translate;
