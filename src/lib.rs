//! tarjama: batch translation of Arabic documents into English with a local
//! Marian (OPUS-MT) model on candle, keeping every sentence aligned with its
//! translation.
//!
//! The pipeline is one module per stage:
//! - [`document`]: reading input text and splitting it into paragraphs and
//!   sentences with byte offsets into the original;
//! - [`segment`]: the Arabic-aware sentence boundary rules;
//! - [`marian`]: the Marian (OPUS-MT) network on candle, batched and padded;
//! - [`decode`]: greedy and beam search over it with transformers' semantics.

pub mod decode;
pub mod document;
pub mod marian;
pub mod segment;
