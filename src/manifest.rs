//! What an output folder already holds and how it was made. This module owns
//! the fingerprint of a document's outputs (the input's content hash, the
//! model's identity, every option that changes output bytes, tarjama's
//! version), the record of completion kept for each document in the state
//! folder (`OUT/.tarjama/docs/<key>.json`, written after the outputs, so it
//! exists only for complete ones), the rerun verdict with its reason, the
//! run's lock on the folder (exclusive, or shared by the shards of a job
//! array, which then lock each document), and removing the temp files a
//! killed run left. One small file per document rather than one shared
//! manifest: concurrent shards never write the same file.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::corpus::{STATE_DIR, key_tag};
use crate::output::{Staged, TEMP_PREFIX, is_temp_name};

/// What produced a document's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `blake3:` hash of the input's bytes.
    pub input: String,
    /// The model's identity ([`model_identity`]).
    pub model: String,
    /// Every option that changes output bytes, by its CLI name.
    pub options: BTreeMap<String, String>,
    /// tarjama's version and output revision ([`outputs_version`]).
    pub version: String,
}

/// Bumped whenever the same input, model and options can give different
/// output bytes than before (engine numerics, sentence splitting, QA rules,
/// writers) without a new crate version, so that a rerun redoes what an
/// older build wrote. 2: attention scores summed eight heads at a time
/// (session 8).
pub const OUTPUT_REVISION: u32 = 2;

/// The version recorded in a [`Fingerprint`]: tarjama's, with the output
/// revision.
pub fn outputs_version() -> String {
    format!("{} (outputs r{OUTPUT_REVISION})", env!("CARGO_PKG_VERSION"))
}

/// The record of one document's completed outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    /// The input as it was named.
    pub input: String,
    pub fingerprint: Fingerprint,
    /// Files written per format name, relative to the output folder.
    pub files: BTreeMap<String, Vec<String>>,
    pub sentences: usize,
}

/// `blake3:<hex>` of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

/// The files of a model folder that decide its outputs.
const MODEL_FILES: [&str; 9] = [
    "config.json",
    "generation_config.json",
    "source.spm",
    "target.spm",
    "vocab.json",
    "source.tokenizer.json",
    "target.tokenizer.json",
    "model.safetensors",
    "pytorch_model.bin",
];

/// A model folder's identity: the Hub commit for a snapshot of the Hugging
/// Face cache (`hf:<repo>@<commit>`: snapshots are immutable), else a BLAKE3
/// hash over the names and contents of the files that decide outputs
/// (configuration, tokenizer, weights; about a second per GB).
pub fn model_identity(dir: &Path) -> io::Result<String> {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    // …/models--org--name/snapshots/<40 hex>; the files are symlinks into
    // blobs, so the canonical folder is still the snapshot's.
    let parts: Vec<String> = dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let [.., repo, snapshots, commit] = parts.as_slice()
        && snapshots == "snapshots"
        && commit.len() == 40
        && commit.chars().all(|c| c.is_ascii_hexdigit())
        && let Some(name) = repo.strip_prefix("models--")
    {
        return Ok(format!("hf:{}@{commit}", name.replace("--", "/")));
    }
    let mut hasher = blake3::Hasher::new();
    for name in MODEL_FILES {
        let path = abs.join(name);
        match File::open(&path) {
            Ok(f) => {
                hasher.update(name.as_bytes());
                hasher.update(&[0]);
                hasher.update_reader(f)?;
                hasher.update(&[0]);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(format!("blake3:{}", hasher.finalize().to_hex()))
}

/// Why a document is translated again (or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every requested file exists and was made with this fingerprint.
    UpToDate,
    /// Same fingerprint, but these formats are missing: translate and write
    /// only them.
    Missing(Vec<String>),
    /// Redo everything, for this reason.
    Redo(String),
}

impl Verdict {
    /// The reason as `--explain` prints it.
    pub fn reason(&self) -> String {
        match self {
            Verdict::UpToDate => "up to date".into(),
            Verdict::Missing(f) => format!("missing formats: {}", f.join(", ")),
            Verdict::Redo(why) => why.clone(),
        }
    }
}

/// Compares what is recorded for a document with what this run would make.
pub fn verdict(
    entry: Option<&Entry>,
    want: &Fingerprint,
    formats: &[(String, Vec<String>)],
    root: &Path,
) -> Verdict {
    let Some(entry) = entry else {
        return Verdict::Redo("new".into());
    };
    let had = &entry.fingerprint;
    if had.input != want.input {
        return Verdict::Redo("input changed".into());
    }
    if had.model != want.model {
        return Verdict::Redo("model changed".into());
    }
    if had.options != want.options {
        let keys: std::collections::BTreeSet<&String> =
            had.options.keys().chain(want.options.keys()).collect();
        let none = String::from("-");
        let changes: Vec<String> = keys
            .into_iter()
            .filter_map(|k| {
                let (a, b) = (
                    had.options.get(k).unwrap_or(&none),
                    want.options.get(k).unwrap_or(&none),
                );
                (a != b).then(|| format!("{k} {a}→{b}"))
            })
            .collect();
        return Verdict::Redo(format!("options changed: {}", changes.join(", ")));
    }
    if had.version != want.version {
        return Verdict::Redo(format!(
            "tarjama version changed: {}→{}",
            had.version, want.version
        ));
    }
    let missing: Vec<String> = formats
        .iter()
        .filter(|(name, files)| {
            entry.files.get(name) != Some(files) || !files.iter().all(|f| root.join(f).is_file())
        })
        .map(|(name, _)| name.clone())
        .collect();
    if missing.is_empty() {
        Verdict::UpToDate
    } else {
        Verdict::Missing(missing)
    }
}

/// How a run holds the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// The only run writing here.
    Exclusive,
    /// One of several shards: the folder is shared, documents are locked
    /// one by one.
    Shared,
}

/// An output folder held by this run (the lock lasts as long as the value;
/// the operating system drops it if the process dies).
pub struct OutputDir {
    root: PathBuf,
    mode: LockMode,
    _lock: File,
}

/// A document being written by this process (shared mode).
pub struct DocLock {
    path: PathBuf,
    _file: File,
}

impl Drop for DocLock {
    fn drop(&mut self) {
        // Removed while still locked: a process waiting on the old file
        // finds the document's record when it gets the lock, and skips it.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl OutputDir {
    /// Creates `root` if needed and locks it. Another run holding it
    /// (exclusively, or in the other mode) is an error naming it.
    pub fn open(root: &Path, mode: LockMode) -> io::Result<OutputDir> {
        let state = root.join(STATE_DIR);
        std::fs::create_dir_all(&state)?;
        let path = state.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let got = match mode {
            LockMode::Exclusive => file.try_lock(),
            LockMode::Shared => file.try_lock_shared(),
        };
        match got {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another tarjama run is writing into {} ({}); wait for it, or use \
                         --shard I/N in every run to share the folder",
                        root.display(),
                        holder.trim().trim_end_matches('.')
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        if mode == LockMode::Exclusive {
            file.set_len(0)?;
            write!(file, "process {}", std::process::id())?;
        }
        Ok(OutputDir {
            root: root.to_path_buf(),
            mode,
            _lock: file,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn mode(&self) -> LockMode {
        self.mode
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        entry_path(&self.root, key)
    }

    /// The record of `key`'s outputs, if there is a readable one.
    pub fn entry(&self, key: &str) -> Option<Entry> {
        read_entry(&self.entry_path(key))
    }

    /// In shared mode, locks `key` for this process; `None` when another
    /// process holds it. In exclusive mode the folder lock covers it.
    pub fn lock_document(&self, key: &str) -> io::Result<Option<DocLock>> {
        if self.mode == LockMode::Exclusive {
            return Ok(None);
        }
        let dir = self.root.join(STATE_DIR).join("locks");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.lock", key_tag(key)));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DocLock { path, _file: file })),
            Err(TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "being written by another tarjama process",
            )),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Starts the record of `entry` (committed after the outputs).
    pub fn stage_entry(&self, entry: &Entry) -> io::Result<Staged> {
        let mut staged = Staged::new(&self.entry_path(&entry.key), &key_tag(&entry.key))?;
        serde_json::to_writer_pretty(&mut staged, entry)?;
        staged.write_all(b"\n")?;
        Ok(staged)
    }

    /// Removes temp files a killed run left: in exclusive mode every one
    /// below the folder; in shared mode only `key`'s (call it holding the
    /// document's lock), since other shards may be writing theirs. Returns
    /// how many were removed.
    pub fn remove_stale_temps(&self, key: Option<&str>) -> usize {
        let walk = |dir: &Path, prefix: &str, deep: bool| -> usize {
            let walker = walkdir::WalkDir::new(dir)
                .follow_links(false)
                .max_depth(if deep { usize::MAX } else { 1 });
            walker
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy();
                    is_temp_name(&name) && name.starts_with(prefix)
                })
                .filter(|e| std::fs::remove_file(e.path()).is_ok())
                .count()
        };
        match (self.mode, key) {
            (LockMode::Exclusive, _) => walk(&self.root, TEMP_PREFIX, true),
            (LockMode::Shared, Some(key)) => {
                let prefix = format!("{TEMP_PREFIX}{}-", key_tag(key));
                let out = self.root.join(key);
                let entry = self.entry_path(key);
                [out.parent(), entry.parent()]
                    .into_iter()
                    .flatten()
                    .map(|d| walk(d, &prefix, false))
                    .sum()
            }
            (LockMode::Shared, None) => 0,
        }
    }
}

fn entry_path(root: &Path, key: &str) -> PathBuf {
    root.join(STATE_DIR)
        .join("docs")
        .join(format!("{key}.json"))
}

/// The record of `key` below `root`, read without holding the folder.
pub fn entry_at(root: &Path, key: &str) -> Option<Entry> {
    read_entry(&entry_path(root, key))
}

fn read_entry(path: &Path) -> Option<Entry> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Every document record below `root`'s state folder, sorted by key.
pub fn entries(root: &Path) -> Vec<Entry> {
    let dir = root.join(STATE_DIR).join("docs");
    let mut out: Vec<Entry> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !is_temp_name(&e.file_name().to_string_lossy()))
        .filter_map(|e| read_entry(e.path()))
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Temp files below `root` (left by a killed run, or being written now).
pub fn temps(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && is_temp_name(&e.file_name().to_string_lossy()))
        .map(|e| e.into_path())
        .collect()
}

/// Whether a run holds `root` now (a lock cannot be taken).
pub fn locked(root: &Path) -> bool {
    let Ok(file) = File::open(root.join(STATE_DIR).join("lock")) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(beam: &str) -> Fingerprint {
        Fingerprint {
            input: "blake3:aa".into(),
            model: "hf:x@1".into(),
            options: [("beam".to_string(), beam.to_string())].into(),
            version: "1".into(),
        }
    }

    #[test]
    fn verdicts_name_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.html"), "x").unwrap();
        let formats = vec![("html".to_string(), vec!["a.html".to_string()])];
        let entry = Entry {
            key: "a".into(),
            input: "a.txt".into(),
            fingerprint: fp("4"),
            files: formats.iter().cloned().collect(),
            sentences: 1,
        };
        let v = |want: &Fingerprint, f: &[(String, Vec<String>)]| {
            verdict(Some(&entry), want, f, dir.path())
        };
        assert_eq!(v(&fp("4"), &formats), Verdict::UpToDate);
        assert_eq!(v(&fp("2"), &formats).reason(), "options changed: beam 4→2");
        let mut other = fp("4");
        other.input = "blake3:bb".into();
        assert_eq!(v(&other, &formats).reason(), "input changed");
        let more = vec![
            formats[0].clone(),
            ("tmx".to_string(), vec!["a.tmx".to_string()]),
        ];
        assert_eq!(v(&fp("4"), &more), Verdict::Missing(vec!["tmx".into()]));
        std::fs::remove_file(dir.path().join("a.html")).unwrap();
        assert_eq!(v(&fp("4"), &formats), Verdict::Missing(vec!["html".into()]));
        assert_eq!(
            verdict(None, &fp("4"), &formats, dir.path()).reason(),
            "new"
        );
    }

    #[test]
    fn a_second_exclusive_run_is_refused_and_shards_share() {
        let dir = tempfile::tempdir().unwrap();
        let a = OutputDir::open(dir.path(), LockMode::Exclusive).unwrap();
        let err = OutputDir::open(dir.path(), LockMode::Exclusive)
            .err()
            .unwrap();
        assert!(err.to_string().contains("another tarjama run"), "{err}");
        assert!(OutputDir::open(dir.path(), LockMode::Shared).is_err());
        assert!(locked(dir.path()));
        drop(a);
        assert!(!locked(dir.path()));
        let s1 = OutputDir::open(dir.path(), LockMode::Shared).unwrap();
        let s2 = OutputDir::open(dir.path(), LockMode::Shared).unwrap();
        let held = s1.lock_document("jan/a").unwrap();
        assert!(held.is_some());
        assert!(
            s2.lock_document("jan/a").is_err(),
            "one writer per document"
        );
        drop(held);
        assert!(s2.lock_document("jan/a").unwrap().is_some());
    }
}
