//! The Marian (OPUS-MT) tokenizer: text to model ids and back, identical to
//! Hugging Face transformers' `MarianTokenizer` (the SentencePiece-based one,
//! transformers 5.x). It owns everything between a string and the ids the
//! Marian model sees: the source/target SentencePiece unigram models (read
//! from the `.spm` protobufs with `sentencepiece-model`), the shared
//! `vocab.json` that maps pieces to model ids (Marian ids are *not* the
//! SentencePiece ids; a piece missing from it is `<unk>`), the `>>xx<<`
//! target-language prefix, `</s>`, optional truncation, and decoding back to
//! text with the reference's rules for special tokens and whitespace. The
//! SentencePiece normalization (charsmap lookup) and unigram search are done
//! here rather than with the `tokenizers` crate's `Precompiled` / `Unigram`,
//! because those differ from SentencePiece on combining marks and on score
//! near-ties (see `SpmNormalizer` and `Segmenter`); `tokenizers` is used
//! for the `tokenizer.json` format. It does not know the model's config: the
//! pipeline takes pad / eos ids for generation from `config.json`, but this
//! vocab is the source of truth for pieces.
//!
//! A model folder holds either
//! - `source.spm`, `target.spm` and `vocab.json` (what OPUS-MT ships), or
//! - `source.tokenizer.json`, `target.tokenizer.json` and `vocab.json`: the
//!   two SentencePiece models already converted to the `tokenizers` JSON
//!   format, as [`MarianTokenizer::save_tokenizer_json`] or transformers'
//!   `SpmConverter` write them (the Unigram vocab in SentencePiece id order,
//!   control pieces such as `<s>` as special added tokens, the charsmap in a
//!   `Precompiled` normalizer; SentencePiece's whitespace flags are inferred
//!   from the `Replace` steps and the `Metaspace` pre-tokenizer).
//!
//! If both are present, the `.spm` files win.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use rayon::prelude::*;
use sentencepiece_model::{ModelProto, SentencePieceModel, Type as PieceType};
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Replace, Sequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer};

/// File names of a Marian model folder.
pub const SOURCE_SPM: &str = "source.spm";
pub const TARGET_SPM: &str = "target.spm";
pub const VOCAB_JSON: &str = "vocab.json";
pub const SOURCE_TOKENIZER_JSON: &str = "source.tokenizer.json";
pub const TARGET_TOKENIZER_JSON: &str = "target.tokenizer.json";

const EOS: &str = "</s>";
const UNK: &str = "<unk>";
const PAD: &str = "<pad>";
const SPACE: char = '▁';

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid SentencePiece model: {reason}", path.display())]
    InvalidSpm { path: PathBuf, reason: String },
    #[error("{} is not a valid tokenizers JSON file: {reason}", path.display())]
    InvalidTokenizerJson { path: PathBuf, reason: String },
    #[error("{} is not a valid Marian vocab.json: {reason}", path.display())]
    InvalidVocab { path: PathBuf, reason: String },
    #[error(
        "{} has no `{token}` entry; a Marian vocab.json needs `</s>`, `<unk>` and `<pad>`",
        path.display()
    )]
    MissingSpecialToken { path: PathBuf, token: &'static str },
    #[error("{} is not supported: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error(
        "{} has neither {SOURCE_SPM}/{TARGET_SPM} nor {SOURCE_TOKENIZER_JSON}/{TARGET_TOKENIZER_JSON}",
        dir.display()
    )]
    NoModelFiles { dir: PathBuf },
    #[error("token id {id} is neither in vocab.json nor in the source SentencePiece model")]
    IdOutOfRange { id: u32 },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

pub type Result<T, E = TokenizerError> = std::result::Result<T, E>;

/// How SentencePiece treats a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceKind {
    Normal,
    /// Emitted whole, never normalized (none in OPUS-MT models).
    UserDefined,
    /// Decoded like a normal piece, never produced by encoding.
    Unused,
    Control,
    Unknown,
}

/// The `NormalizerSpec` flags that matter here.
#[derive(Debug, Clone, Copy)]
struct SpmFlags {
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl Default for SpmFlags {
    fn default() -> Self {
        Self {
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        }
    }
}

/// One SentencePiece model, as the encoder and the decoder need it.
#[derive(Clone)]
struct SpmModel {
    normalizer: SpmNormalizer,
    segmenter: Segmenter,
    /// Every piece of the model, for `DecodePieces`; absent pieces decode as
    /// SentencePiece's unknown pieces do (copied verbatim).
    kinds: HashMap<String, PieceKind>,
    unk_piece: String,
    unk_surface: String,
    /// Every piece in SentencePiece id order, for the `tokenizers` JSON
    /// export and for decoding ids missing from vocab.json.
    all_pieces: Vec<(String, f64, PieceKind)>,
    unk_id: usize,
}

const DEFAULT_UNK_SURFACE: &str = " \u{2047} ";

impl SpmModel {
    fn from_spm_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| TokenizerError::InvalidSpm {
            path: path.to_owned(),
            reason,
        };
        let model = SentencePieceModel::from_slice(&bytes)
            .map_err(|e| invalid(format!("protobuf decoding failed ({e})")))?;
        let proto: &ModelProto = &model;
        if proto.pieces.is_empty() {
            return Err(invalid("the model has no pieces".into()));
        }
        let unsupported = |reason: &str| TokenizerError::Unsupported {
            path: path.to_owned(),
            reason: reason.into(),
        };
        let trainer = proto.trainer_spec.clone().unwrap_or_default();
        if trainer.model_type() != sentencepiece_model::ModelType::Unigram {
            return Err(unsupported(
                "only unigram SentencePiece models are supported (Marian uses unigram)",
            ));
        }
        if trainer.byte_fallback() {
            return Err(unsupported("byte-fallback SentencePiece models"));
        }
        if trainer.treat_whitespace_as_suffix() {
            return Err(unsupported("treat_whitespace_as_suffix models"));
        }
        if proto
            .denormalizer_spec
            .as_ref()
            .is_some_and(|d| !d.precompiled_charsmap().is_empty())
        {
            return Err(unsupported("SentencePiece models with a denormalizer"));
        }
        let norm = proto.normalizer_spec.clone().unwrap_or_default();
        let flags = SpmFlags {
            add_dummy_prefix: norm.add_dummy_prefix(),
            remove_extra_whitespaces: norm.remove_extra_whitespaces(),
            escape_whitespaces: norm.escape_whitespaces(),
        };

        let mut all_pieces = Vec::with_capacity(proto.pieces.len());
        let mut unk_id = None;
        for (id, p) in proto.pieces.iter().enumerate() {
            let piece = p.piece().to_owned();
            if piece.is_empty() {
                return Err(invalid(format!("piece {id} is empty")));
            }
            let kind = match p.r#type() {
                PieceType::Normal => PieceKind::Normal,
                PieceType::Unused => PieceKind::Unused,
                PieceType::UserDefined => PieceKind::UserDefined,
                PieceType::Control => PieceKind::Control,
                PieceType::Unknown => {
                    if unk_id.replace(id).is_some() {
                        return Err(invalid("more than one unknown piece".into()));
                    }
                    PieceKind::Unknown
                }
                PieceType::Byte => return Err(unsupported("byte pieces")),
            };
            all_pieces.push((piece, f64::from(p.score()), kind));
        }
        let unk_id = unk_id.ok_or_else(|| invalid("the model has no unknown piece".into()))?;
        let unk_surface = if trainer.unk_surface.is_some() {
            trainer.unk_surface().to_owned()
        } else {
            DEFAULT_UNK_SURFACE.to_owned()
        };
        Self::assemble(
            all_pieces,
            unk_id,
            norm.precompiled_charsmap(),
            flags,
            unk_surface,
        )
        .map_err(invalid)
    }

    /// Reads what [`SpmModel::to_tokenizer_json`] (or transformers'
    /// `SpmConverter`) writes: a Unigram model in SentencePiece id order,
    /// control pieces as special added tokens, user-defined ones as plain
    /// added tokens. The charsmap comes from the `Precompiled` normalizer;
    /// the SentencePiece flags are inferred from the other steps.
    fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| TokenizerError::InvalidTokenizerJson {
            path: path.to_owned(),
            reason,
        };
        // Parsing with `tokenizers` first validates the whole file.
        let _: Tokenizer = text.parse().map_err(|e| invalid(format!("{e}")))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("{e}")))?;
        let model = &json["model"];
        if model["type"] != "Unigram" {
            return Err(invalid("the model is not a Unigram model".into()));
        }
        let unk_id = model["unk_id"]
            .as_u64()
            .ok_or_else(|| invalid("the Unigram model has no unk_id".into()))?
            as usize;
        let added = |special: bool| -> HashSet<&str> {
            json["added_tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["special"] == special)
                .filter_map(|t| t["content"].as_str())
                .collect()
        };
        let (control, user_defined) = (added(true), added(false));
        let vocab = model["vocab"]
            .as_array()
            .ok_or_else(|| invalid("the Unigram model has no vocab".into()))?;
        let mut all_pieces = Vec::with_capacity(vocab.len());
        for (id, entry) in vocab.iter().enumerate() {
            let (Some(piece), Some(score)) = (entry[0].as_str(), entry[1].as_f64()) else {
                return Err(invalid(format!("vocab entry {id} is not [piece, score]")));
            };
            let kind = if id == unk_id {
                PieceKind::Unknown
            } else if control.contains(piece) {
                PieceKind::Control
            } else if user_defined.contains(piece) {
                PieceKind::UserDefined
            } else {
                PieceKind::Normal
            };
            all_pieces.push((piece.to_owned(), score, kind));
        }
        if unk_id >= all_pieces.len() {
            return Err(invalid(format!("unk_id {unk_id} is outside the vocab")));
        }

        let steps: Vec<&serde_json::Value> = match json["normalizer"]["type"].as_str() {
            Some("Sequence") => json["normalizer"]["normalizers"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            Some(_) => vec![&json["normalizer"]],
            None => vec![],
        };
        let mut charsmap = Vec::new();
        let mut flags = SpmFlags {
            add_dummy_prefix: false,
            remove_extra_whitespaces: false,
            escape_whitespaces: false,
        };
        for step in steps {
            match step["type"].as_str() {
                Some("Precompiled") => {
                    let b64 = step["precompiled_charsmap"].as_str().unwrap_or_default();
                    charsmap = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| invalid(format!("bad precompiled_charsmap ({e})")))?;
                }
                Some("Replace") if step["pattern"]["Regex"] == " {2,}" => {
                    flags.remove_extra_whitespaces = true;
                }
                Some("Replace") if step["pattern"]["String"] == " " => {
                    flags.escape_whitespaces = true;
                }
                _ => {}
            }
        }
        let pre = &json["pre_tokenizer"];
        flags.add_dummy_prefix = pre["type"] == "Metaspace"
            || pre["pretokenizers"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["type"] == "Metaspace"));
        Self::assemble(
            all_pieces,
            unk_id,
            &charsmap,
            flags,
            DEFAULT_UNK_SURFACE.to_owned(),
        )
        .map_err(invalid)
    }

    fn assemble(
        all_pieces: Vec<(String, f64, PieceKind)>,
        unk_id: usize,
        charsmap: &[u8],
        flags: SpmFlags,
        unk_surface: String,
    ) -> Result<Self, String> {
        let user_defined = all_pieces
            .iter()
            .filter(|(_, _, k)| *k == PieceKind::UserDefined)
            .map(|(p, _, _)| p.clone())
            .collect();
        let normalizer = SpmNormalizer::new(charsmap, flags, user_defined)?;
        let segmenter = Segmenter::new(&all_pieces)?;
        let kinds = all_pieces.iter().map(|(p, _, k)| (p.clone(), *k)).collect();
        Ok(Self {
            normalizer,
            segmenter,
            kinds,
            unk_piece: all_pieces[unk_id].0.clone(),
            unk_surface,
            all_pieces,
            unk_id,
        })
    }

    /// SentencePiece `encode(text, out_type=str)`.
    fn pieces(&self, text: &str, out: &mut Vec<String>) {
        let normalized = self.normalizer.normalize(text);
        self.segmenter.segment(&normalized, out);
    }

    /// SentencePiece `decode_pieces`.
    fn decode_pieces(&self, pieces: &[&str], out: &mut String) {
        let strip_leading_space = self.normalizer.flags.add_dummy_prefix
            || self.normalizer.flags.remove_extra_whitespaces;
        let mut text = String::new();
        for piece in pieces {
            let kind = self
                .kinds
                .get(*piece)
                .copied()
                .unwrap_or(PieceKind::Unknown);
            match kind {
                PieceKind::Control => {}
                PieceKind::Unknown if *piece == self.unk_piece => text.push_str(&self.unk_surface),
                // A piece the model does not know is copied, `▁` and all.
                PieceKind::Unknown => text.push_str(piece),
                PieceKind::Normal | PieceKind::UserDefined | PieceKind::Unused => {
                    let mut piece = *piece;
                    // With remove_extra_whitespaces, every piece keeps losing
                    // its leading `▁` until some text has been produced.
                    if strip_leading_space && text.is_empty() {
                        piece = piece.strip_prefix(SPACE).unwrap_or(piece);
                    }
                    text.extend(piece.chars().map(|c| if c == SPACE { ' ' } else { c }));
                }
            }
        }
        out.push_str(&text);
    }

    /// The model as a `tokenizers` JSON file, in the layout transformers'
    /// `SpmConverter` produces.
    fn to_tokenizer_json(&self) -> Result<String, String> {
        let vocab: Vec<(String, f64)> = self
            .all_pieces
            .iter()
            .map(|(p, s, _)| (p.clone(), *s))
            .collect();
        let unigram = Unigram::from(vocab, Some(self.unk_id), false).map_err(|e| e.to_string())?;
        let mut tokenizer = Tokenizer::new(unigram);
        let flags = self.normalizer.flags;
        tokenizer
            .with_normalizer(Some(
                tokenizers_normalizer(&self.normalizer.charsmap, flags)
                    .map_err(|e| e.to_string())?,
            ))
            .map_err(|e| e.to_string())?;
        if flags.add_dummy_prefix {
            tokenizer.with_pre_tokenizer(Some(Metaspace::new(SPACE, PrependScheme::Always, false)));
        }
        let added: Vec<AddedToken> = self
            .all_pieces
            .iter()
            .filter(|(_, _, k)| matches!(k, PieceKind::Control | PieceKind::UserDefined))
            .map(|(p, _, k)| {
                AddedToken::from(p.clone(), *k == PieceKind::Control).normalized(false)
            })
            .collect();
        tokenizer
            .add_special_tokens(added)
            .map_err(|e| e.to_string())?;
        tokenizer.to_string(true).map_err(|e| e.to_string())
    }
}

/// SentencePiece's `Normalizer::Normalize`: longest-match rewriting with the
/// model's precompiled charsmap (a Darts double-array trie plus the
/// replacement strings), whitespace clean-up and `▁` escaping. The
/// `tokenizers` crate's `Precompiled` normalizer looks rules up per grapheme
/// and takes the shortest match, which differs from SentencePiece on
/// combining marks (e.g. `g` + U+0301 is NFKC-composed by SentencePiece, not
/// by `Precompiled`), so the lookup is done here as SentencePiece does it.
#[derive(Clone)]
struct SpmNormalizer {
    charsmap: Vec<u8>,
    /// Double-array units.
    trie: Vec<u32>,
    /// NUL-separated replacement strings the trie values point into.
    replacements: Vec<u8>,
    flags: SpmFlags,
    /// User-defined pieces are copied verbatim, longest first.
    user_defined: Vec<String>,
}

impl SpmNormalizer {
    fn new(
        charsmap: &[u8],
        flags: SpmFlags,
        mut user_defined: Vec<String>,
    ) -> Result<Self, String> {
        let (trie, replacements) = if charsmap.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let broken = || "the precompiled charsmap is broken".to_string();
            let size_bytes: [u8; 4] = charsmap.get(..4).ok_or_else(broken)?.try_into().unwrap();
            let trie_size = u32::from_le_bytes(size_bytes) as usize;
            if !trie_size.is_multiple_of(4) || 4 + trie_size >= charsmap.len() {
                return Err(broken());
            }
            let trie = charsmap[4..4 + trie_size]
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (trie, charsmap[4 + trie_size..].to_vec())
        };
        user_defined.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Ok(Self {
            charsmap: charsmap.to_vec(),
            trie,
            replacements,
            flags,
            user_defined,
        })
    }

    /// Darts `commonPrefixSearch`, keeping the longest match:
    /// `(replacement, matched length)`.
    fn longest_rule(&self, input: &[u8]) -> Option<(&str, usize)> {
        let unit = |pos: usize| self.trie.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let mut pos = offset(unit(0)?);
        let mut best = None;
        for (i, &byte) in input.iter().enumerate() {
            pos ^= byte as usize;
            let u = unit(pos)?;
            if u & ((1 << 31) | 0xff) != u32::from(byte) {
                break;
            }
            pos ^= offset(u);
            if (u >> 8) & 1 == 1 {
                let value = (unit(pos)? & ((1 << 31) - 1)) as usize;
                best = Some((value, i + 1));
            }
        }
        let (value, len) = best?;
        let tail = self.replacements.get(value..)?;
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Some((std::str::from_utf8(&tail[..end]).ok()?, len))
    }

    /// `NormalizePrefix`: the normalized form of the start of `input` and how
    /// many bytes of it were consumed.
    fn prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        if let Some(p) = self
            .user_defined
            .iter()
            .find(|p| input.starts_with(p.as_str()))
        {
            return (p, p.len());
        }
        if let Some(rule) = self.longest_rule(input.as_bytes()) {
            return rule;
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    fn normalize(&self, mut input: &str) -> String {
        let flags = self.flags;
        if flags.remove_extra_whitespaces {
            while !input.is_empty() {
                let (norm, len) = self.prefix(input);
                if norm != " " {
                    break;
                }
                input = &input[len..];
            }
        }
        let mut out = String::with_capacity(input.len() * 3);
        if input.is_empty() {
            return out;
        }
        let space = if flags.escape_whitespaces { "▁" } else { " " };
        if flags.add_dummy_prefix {
            out.push_str(space);
        }
        let mut is_prev_space = flags.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut norm, len) = self.prefix(input);
            while is_prev_space && norm.starts_with(' ') {
                norm = &norm[1..];
            }
            if !norm.is_empty() {
                for c in norm.chars() {
                    if c == ' ' {
                        out.push_str(space);
                    } else {
                        out.push(c);
                    }
                }
                is_prev_space = norm.ends_with(' ');
            }
            input = &input[len..];
            if !flags.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        if flags.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        out
    }
}

/// SentencePiece's unigram segmentation (`Model::EncodeOptimized`): the
/// best-scoring split of normalized text into pieces, unknown characters
/// scored `min_score - 10` and runs of them fused into one piece. The
/// `tokenizers` crate's `Unigram` sums scores in `f64`, SentencePiece in
/// `f32`; on near-ties (e.g. `0`+`00` vs `00`+`0`) they pick different
/// splits, so the search is done here with SentencePiece's arithmetic.
#[derive(Clone)]
struct Segmenter {
    /// Pieces SentencePiece can emit from text: normal and user-defined ones
    /// (control, unknown and unused pieces never match text).
    matcher: AhoCorasick,
    scores: Vec<PieceScore>,
    unk_score: f32,
}

#[derive(Clone, Copy)]
enum PieceScore {
    Normal(f32),
    /// SentencePiece's bonus for user-defined pieces is computed in `double`.
    UserDefined(f64),
}

#[derive(Clone, Copy)]
struct BestPath {
    score: f32,
    start: usize,
    unknown: bool,
}

impl Segmenter {
    fn new(pieces: &[(String, f64, PieceKind)]) -> Result<Self, String> {
        let normal = pieces.iter().filter(|(_, _, k)| *k == PieceKind::Normal);
        // As SentencePiece: extremes over normal pieces only, and the max
        // starts at FLT_MIN (the smallest positive float), not at -inf.
        let min_score = normal
            .clone()
            .map(|(_, s, _)| *s as f32)
            .fold(f32::MAX, f32::min);
        let max_score = normal
            .map(|(_, s, _)| *s as f32)
            .fold(f32::MIN_POSITIVE, f32::max);
        let mut patterns = Vec::new();
        let mut scores = Vec::new();
        for (piece, score, kind) in pieces {
            let score = match kind {
                PieceKind::Normal => PieceScore::Normal(*score as f32),
                PieceKind::UserDefined => {
                    PieceScore::UserDefined(f64::from(piece.len() as f32 * max_score) - 0.1)
                }
                _ => continue,
            };
            patterns.push(piece.as_str());
            scores.push(score);
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| format!("cannot index the pieces: {e}"))?;
        Ok(Self {
            matcher,
            scores,
            unk_score: min_score - 10.0,
        })
    }

    fn segment(&self, text: &str, out: &mut Vec<String>) {
        if text.is_empty() {
            return;
        }
        let mut matches: Vec<(usize, usize, usize)> = self
            .matcher
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect();
        // SentencePiece walks start positions left to right and, at each,
        // its trie's prefixes shortest first; ties keep the first path found.
        matches.sort_unstable();
        let unset = BestPath {
            score: 0.0,
            start: usize::MAX,
            unknown: false,
        };
        let mut best = vec![unset; text.len() + 1];
        let mut next = matches.iter().peekable();
        for (start, c) in text.char_indices() {
            let till_here = best[start].score;
            let char_len = c.len_utf8();
            let mut has_single_char = false;
            while let Some(&(_, end, piece)) = next.next_if(|m| m.0 == start) {
                let candidate = match self.scores[piece] {
                    PieceScore::Normal(s) => f64::from(s + till_here),
                    PieceScore::UserDefined(s) => s + f64::from(till_here),
                };
                let node = &mut best[end];
                if node.start == usize::MAX || candidate > f64::from(node.score) {
                    *node = BestPath {
                        score: candidate as f32,
                        start,
                        unknown: false,
                    };
                }
                has_single_char |= end - start == char_len;
            }
            if !has_single_char {
                let candidate = self.unk_score + till_here;
                let node = &mut best[start + char_len];
                if node.start == usize::MAX || candidate > node.score {
                    *node = BestPath {
                        score: candidate,
                        start,
                        unknown: true,
                    };
                }
            }
        }
        let mut path = Vec::new();
        let mut end = text.len();
        while end > 0 {
            let node = best[end];
            path.push((node.start, end, node.unknown));
            end = node.start;
        }
        let first = out.len();
        let mut prev_unknown = false;
        for &(start, end, unknown) in path.iter().rev() {
            let piece = &text[start..end];
            if unknown && prev_unknown {
                // SentencePiece merges runs of unknown pieces into one.
                out.last_mut().expect("previous piece").push_str(piece);
            } else {
                out.push(piece.to_owned());
            }
            prev_unknown = unknown;
        }
        debug_assert!(out.len() > first);
    }
}

/// SentencePiece's normalizer as a `tokenizers` normalizer sequence, as
/// transformers' `SpmConverter` writes it (used for the JSON export only).
fn tokenizers_normalizer(
    charsmap: &[u8],
    flags: SpmFlags,
) -> tokenizers::Result<NormalizerWrapper> {
    let regex = tokenizers::normalizers::replace::ReplacePattern::Regex;
    let mut steps: Vec<NormalizerWrapper> = Vec::new();
    if !charsmap.is_empty() {
        steps.push(Precompiled::from(charsmap)?.into());
    }
    if flags.remove_extra_whitespaces {
        steps.push(Replace::new(regex(r"\A +| +\z".into()), "")?.into());
        steps.push(Replace::new(regex(" {2,}".into()), " ")?.into());
    }
    if flags.escape_whitespaces {
        steps.push(Replace::new(" ", SPACE.to_string())?.into());
    }
    if flags.add_dummy_prefix {
        steps.push(Replace::new(regex(r"\A▁".into()), "▁▁")?.into());
    }
    Ok(Sequence::new(steps).into())
}

/// Python's `str.isspace`, for the reference's final `strip()`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Marian's tokenizer: source-side encoding, target-side decoding.
#[derive(Clone)]
pub struct MarianTokenizer {
    source: SpmModel,
    target: SpmModel,
    vocab: HashMap<String, u32>,
    id_to_token: HashMap<u32, String>,
    eos_id: u32,
    unk_id: u32,
    pad_id: u32,
    max_length: Option<usize>,
}

impl std::fmt::Debug for MarianTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarianTokenizer")
            .field("vocab_size", &self.vocab.len())
            .field("eos_id", &self.eos_id)
            .field("unk_id", &self.unk_id)
            .field("pad_id", &self.pad_id)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

impl MarianTokenizer {
    /// Loads a model folder: `source.spm`, `target.spm`, `vocab.json`, or
    /// `source.tokenizer.json`, `target.tokenizer.json`, `vocab.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let vocab = dir.join(VOCAB_JSON);
        let (src_spm, tgt_spm) = (dir.join(SOURCE_SPM), dir.join(TARGET_SPM));
        if src_spm.exists() || tgt_spm.exists() {
            return Self::from_files(src_spm, tgt_spm, vocab);
        }
        let (src_json, tgt_json) = (
            dir.join(SOURCE_TOKENIZER_JSON),
            dir.join(TARGET_TOKENIZER_JSON),
        );
        if src_json.exists() || tgt_json.exists() {
            return Self::from_tokenizer_json_files(src_json, tgt_json, vocab);
        }
        Err(TokenizerError::NoModelFiles {
            dir: dir.to_owned(),
        })
    }

    /// Loads the two SentencePiece models and the shared vocab.
    pub fn from_files(
        source_spm: impl AsRef<Path>,
        target_spm: impl AsRef<Path>,
        vocab_json: impl AsRef<Path>,
    ) -> Result<Self> {
        let source = SpmModel::from_spm_file(source_spm.as_ref())?;
        let target = SpmModel::from_spm_file(target_spm.as_ref())?;
        Self::new(source, target, vocab_json.as_ref())
    }

    /// Loads the two models from `tokenizers` JSON files (see the module doc).
    pub fn from_tokenizer_json_files(
        source_json: impl AsRef<Path>,
        target_json: impl AsRef<Path>,
        vocab_json: impl AsRef<Path>,
    ) -> Result<Self> {
        let source = SpmModel::from_tokenizer_json(source_json.as_ref())?;
        let target = SpmModel::from_tokenizer_json(target_json.as_ref())?;
        Self::new(source, target, vocab_json.as_ref())
    }

    fn new(source: SpmModel, target: SpmModel, vocab_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(vocab_path).map_err(|source| TokenizerError::Io {
            path: vocab_path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| TokenizerError::InvalidVocab {
            path: vocab_path.to_owned(),
            reason,
        };
        let vocab: HashMap<String, u32> = serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "expected a JSON object mapping pieces to ids ({e})"
            ))
        })?;
        let mut id_to_token = HashMap::with_capacity(vocab.len());
        for (token, &id) in &vocab {
            if let Some(other) = id_to_token.insert(id, token.clone()) {
                return Err(invalid(format!(
                    "id {id} is used by both {other:?} and {token:?}"
                )));
            }
        }
        let special = |token: &'static str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| TokenizerError::MissingSpecialToken {
                    path: vocab_path.to_owned(),
                    token,
                })
        };
        Ok(Self {
            eos_id: special(EOS)?,
            unk_id: special(UNK)?,
            pad_id: special(PAD)?,
            source,
            target,
            vocab,
            id_to_token,
            max_length: None,
        })
    }

    /// Truncates every encoding to at most `max_length` ids, `</s>`
    /// included (the reference's `truncation=True, max_length=...`); `None`
    /// keeps everything. A `max_length` of 0 is treated as 1.
    pub fn with_truncation(mut self, max_length: Option<usize>) -> Self {
        self.max_length = max_length;
        self
    }

    pub fn max_length(&self) -> Option<usize> {
        self.max_length
    }

    /// Encodes one source sentence: `tokenizer(text)["input_ids"]`. (Cannot
    /// fail today; the `Result` leaves room for inputs a future model rejects.)
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with(&self.source, text)
    }

    /// Encodes one target sentence with the target SentencePiece model:
    /// `tokenizer(text_target=text)["input_ids"]`.
    pub fn encode_target(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with(&self.target, text)
    }

    /// Encodes many source sentences in parallel.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts.par_iter().map(|t| self.encode(t)).collect()
    }

    fn encode_with(&self, spm: &SpmModel, text: &str) -> Result<Vec<u32>> {
        let mut pieces = Vec::new();
        let mut ids = Vec::new();
        for segment in split_special(text) {
            match segment {
                Segment::Special(token) => ids.push(self.vocab[token]),
                Segment::Text(mut text) => {
                    // The reference looks for a language code at the start of
                    // every chunk between special tokens, and takes anything
                    // up to the first `<<`, known code or not.
                    if text.starts_with(">>")
                        && let Some(end) = text.find("<<")
                    {
                        ids.push(self.token_to_id_or_unk(&text[..end + 2]));
                        text = &text[end + 2..];
                    }
                    pieces.clear();
                    spm.pieces(text, &mut pieces);
                    ids.extend(pieces.iter().map(|p| self.token_to_id_or_unk(p)));
                }
            }
        }
        if let Some(max) = self.max_length {
            ids.truncate(max.max(1) - 1);
        }
        ids.push(self.eos_id);
        Ok(ids)
    }

    fn token_to_id_or_unk(&self, piece: &str) -> u32 {
        self.vocab.get(piece).copied().unwrap_or(self.unk_id)
    }

    /// Decodes ids to text as `tokenizer.decode(ids, skip_special_tokens=...)`
    /// does. `<unk>`, `<pad>` and `</s>` are kept verbatim unless skipped.
    /// Ids missing from vocab.json fall back to the source model's pieces,
    /// like the reference; ids in neither are an error.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let mut out = String::new();
        let mut run: Vec<&str> = Vec::new();
        // The reference decodes with the source model whenever the vocab is
        // shared (transformers 5: `use_source_tokenizer` defaults to true).
        let spm = &self.source;
        for &id in ids {
            let special = id == self.eos_id || id == self.unk_id || id == self.pad_id;
            if special && skip_special_tokens {
                continue;
            }
            let token = match self.id_to_token.get(&id) {
                Some(t) => t.as_str(),
                None => spm
                    .all_pieces
                    .get(id as usize)
                    .map(|(p, _, _)| p.as_str())
                    .ok_or(TokenizerError::IdOutOfRange { id })?,
            };
            if token == EOS || token == UNK || token == PAD {
                spm.decode_pieces(&run, &mut out);
                run.clear();
                out.push_str(token);
                out.push(' ');
            } else {
                run.push(token);
            }
        }
        spm.decode_pieces(&run, &mut out);
        let out = out.replace(SPACE, " ");
        Ok(out.trim_matches(is_py_space).to_owned())
    }

    /// Decodes many id sequences in parallel.
    pub fn decode_batch(&self, ids: &[Vec<u32>], skip_special_tokens: bool) -> Result<Vec<String>> {
        ids.par_iter()
            .map(|ids| self.decode(ids, skip_special_tokens))
            .collect()
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.id_to_token.get(&id).map(String::as_str)
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Number of entries in vocab.json.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// `>>xx<<` target-language codes present in the vocab, sorted.
    pub fn language_codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = self
            .vocab
            .keys()
            .filter(|k| k.len() > 4 && k.starts_with(">>") && k.ends_with("<<"))
            .map(String::as_str)
            .collect();
        codes.sort_unstable();
        codes
    }

    /// Writes `source.tokenizer.json` and `target.tokenizer.json` into `dir`
    /// (plus nothing else: copy `vocab.json` next to them to make a folder
    /// [`MarianTokenizer::from_dir`] accepts).
    pub fn save_tokenizer_json(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        for (name, spm) in [
            (SOURCE_TOKENIZER_JSON, &self.source),
            (TARGET_TOKENIZER_JSON, &self.target),
        ] {
            let path = dir.join(name);
            let json = spm
                .to_tokenizer_json()
                .map_err(|reason| TokenizerError::Write {
                    path: path.clone(),
                    reason,
                })?;
            std::fs::write(&path, json).map_err(|e| TokenizerError::Write {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

enum Segment<'a> {
    Text(&'a str),
    Special(&'static str),
}

/// Splits on the reference's special tokens (`</s>`, `<unk>`, `<pad>`), which
/// it cuts out of the input before SentencePiece sees it; empty chunks are
/// dropped, and chunks keep their surrounding spaces.
fn split_special(text: &str) -> impl Iterator<Item = Segment<'_>> {
    let mut rest = text;
    let mut pending: Option<&'static str> = None;
    std::iter::from_fn(move || {
        loop {
            if let Some(special) = pending.take() {
                return Some(Segment::Special(special));
            }
            if rest.is_empty() {
                return None;
            }
            let found = rest.match_indices('<').find_map(|(i, _)| {
                [EOS, UNK, PAD]
                    .into_iter()
                    .find(|s| rest[i..].starts_with(s))
                    .map(|s| (i, s))
            });
            let (chunk, next) = match found {
                Some((i, special)) => {
                    pending = Some(special);
                    (&rest[..i], &rest[i + special.len()..])
                }
                None => (rest, ""),
            };
            rest = next;
            if !chunk.is_empty() {
                return Some(Segment::Text(chunk));
            }
        }
    })
}
