//! Model resolution: turns what the user passed to `--model` into a local
//! folder holding an OPUS-MT model's files. This module owns the difference
//! between a local folder and a Hugging Face Hub id, fetching with `hf-hub`
//! into the standard Hugging Face cache (honouring `HF_HOME`,
//! `HF_HUB_CACHE`, `HF_ENDPOINT` and `HF_HUB_OFFLINE`), and listing what the
//! cache holds. What the files mean is the tokenizer's and the model's
//! business.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

/// The model tarjama uses when none is named.
pub const DEFAULT_MODEL: &str = "Helsinki-NLP/opus-mt-ar-en";

/// Files of an OPUS-MT repository that a translation needs.
const REQUIRED: &[&str] = &["config.json", "source.spm", "target.spm", "vocab.json"];
/// Weight files, tried in the loader's order; the first the repository has
/// is used. opus-mt-ar-en's main branch has only the PyTorch pickle.
use crate::marian::WEIGHT_FILES as WEIGHTS;
const OPTIONAL: &[&str] = &["generation_config.json"];

/// What `--model` named, and how it may be fetched.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// A local folder or a Hub id such as `Helsinki-NLP/opus-mt-ar-en`.
    pub model: String,
    /// A branch, tag or commit on the Hub (default `main`).
    pub revision: Option<String>,
    /// Use the cache only, never the network (also set by `HF_HUB_OFFLINE=1`).
    pub offline: bool,
}

/// Why a model could not be found.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "model folder {path} does not exist (give --model an existing folder, or a Hugging Face id such as {DEFAULT_MODEL})"
    )]
    NoSuchFolder { path: PathBuf },
    #[error("cannot reach the Hugging Face Hub: {0}")]
    Client(ApiError),
    #[error("{}", unavailable_message(.repo_id, .revision, .cache_dir, .tried, .offline, .reason))]
    Unavailable {
        repo_id: String,
        revision: String,
        cache_dir: PathBuf,
        tried: Vec<String>,
        offline: bool,
        reason: String,
    },
}

fn unavailable_message(
    repo_id: &str,
    revision: &str,
    cache_dir: &Path,
    tried: &[String],
    offline: &bool,
    reason: &str,
) -> String {
    let how = if *offline {
        "offline mode (--offline or HF_HUB_OFFLINE=1): looked in the cache only"
    } else {
        "looked in the cache, then tried the Hugging Face Hub"
    };
    format!(
        "model {repo_id} (revision {revision}) is not available: {reason}\n  \
         {how}, for: {}\n  \
         cache: {}\n  \
         to translate without network, fetch it on a machine with network with \
         `tarjama download {repo_id}` (the files tarjama needs, into the Hugging Face cache; \
         copy the cache over) or `hf download {repo_id} {} --local-dir models/{}` \
         (copy the folder over and pass `--model models/{}`)",
        tried.join(", "),
        cache_dir.display(),
        HF_DOWNLOAD_FILES.join(" "),
        repo_name(repo_id),
        repo_name(repo_id),
    )
}

/// The files of an OPUS-MT repository tarjama reads, for `hf download`
/// (which otherwise fetches every file, TensorFlow and Rust weights too).
pub const HF_DOWNLOAD_FILES: [&str; 6] = [
    "config.json",
    "generation_config.json",
    "source.spm",
    "target.spm",
    "vocab.json",
    "pytorch_model.bin",
];

fn repo_name(repo_id: &str) -> &str {
    repo_id.rsplit('/').next().unwrap_or(repo_id)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `HF_HUB_OFFLINE` as huggingface_hub reads it.
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// The cache folder models are fetched into, resolved as huggingface_hub
/// does: `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`,
/// `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    env_path("HF_HUB_CACHE")
        .or_else(|| env_path("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| env_path("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env_path("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")))
        .or_else(|| env_path("HOME").map(|h| h.join(".cache/huggingface/hub")))
        .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"))
}

fn looks_like_hub_id(s: &str) -> bool {
    let parts: Vec<_> = s.split('/').collect();
    !s.starts_with(['.', '/', '~'])
        && !s.contains('\\')
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

fn is_not_found(e: &ApiError) -> bool {
    matches!(e, ApiError::RequestError(r) if matches!(**r, ureq::Error::Status(404, _)))
}

/// A folder holding the model's files: the folder itself for a local model,
/// the cache's snapshot folder for a Hub model (fetching what is missing;
/// what is cached is never fetched again).
pub fn resolve(spec: &ModelSpec) -> Result<PathBuf, HubError> {
    let path = Path::new(&spec.model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !looks_like_hub_id(&spec.model) {
        return Err(HubError::NoSuchFolder {
            path: path.to_path_buf(),
        });
    }
    let offline = spec.offline || offline_from_env();
    let cache_path = cache_dir();
    let cache = Cache::new(cache_path.clone());
    let revision = spec.revision.clone().unwrap_or_else(|| "main".into());
    let repo = Repo::with_revision(spec.model.clone(), RepoType::Model, revision.clone());
    let cached = cache.repo(repo.clone());
    let api = if offline {
        None
    } else {
        let mut builder = ApiBuilder::from_cache(cache.clone())
            .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        if let Some(endpoint) = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()) {
            builder = builder.with_endpoint(endpoint);
        }
        Some(builder.build().map_err(HubError::Client)?.repo(repo))
    };
    let mut tried = Vec::new();
    let unavailable = |tried: &[String], reason: String| HubError::Unavailable {
        repo_id: spec.model.clone(),
        revision: revision.clone(),
        cache_dir: cache_path.clone(),
        tried: tried.to_vec(),
        offline,
        reason,
    };
    // Ok(None): the repository has no such file (or, offline, the cache).
    let fetch = |file: &str| -> Result<Option<PathBuf>, String> {
        if let Some(p) = cached.get(file) {
            return Ok(Some(p));
        }
        match &api {
            None => Ok(None),
            Some(api) => match api.download(file) {
                Ok(p) => Ok(Some(p)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(format!("fetching {file} failed: {e}")),
            },
        }
    };
    let missing = |file: &str| {
        if offline {
            format!("{file} is not in the cache")
        } else {
            format!("the repository has no {file}")
        }
    };
    let mut snapshot = None;
    for file in REQUIRED {
        tried.push(file.to_string());
        let p = fetch(file)
            .map_err(|e| unavailable(&tried, e))?
            .ok_or_else(|| unavailable(&tried, missing(file)))?;
        snapshot.get_or_insert_with(|| p.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    let mut have_weights = false;
    for file in WEIGHTS {
        tried.push(file.to_string());
        if fetch(file).map_err(|e| unavailable(&tried, e))?.is_some() {
            have_weights = true;
            break;
        }
    }
    if !have_weights {
        return Err(unavailable(
            &tried,
            format!("neither {} was found", WEIGHTS.join(" nor ")),
        ));
    }
    for file in OPTIONAL {
        // Optional upstream; a network failure here must not stop a run
        // whose required files are all present.
        let _ = fetch(file);
    }
    Ok(snapshot.expect("REQUIRED is not empty"))
}

/// A model repository found in the cache.
#[derive(Debug, Clone)]
pub struct CachedModel {
    pub repo_id: String,
    /// Refs (e.g. `main`) and the snapshots they point to.
    pub revisions: Vec<String>,
    pub size_on_disk: u64,
    /// Whether some snapshot holds every file a translation needs.
    pub complete: bool,
    pub path: PathBuf,
}

/// Model repositories in the Hugging Face cache (`models--owner--name`
/// folders), sorted by id. A missing cache folder is an empty list.
pub fn cached_models() -> std::io::Result<Vec<CachedModel>> {
    let dir = cache_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut models = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("models--") else {
            continue;
        };
        let path = entry.path();
        let mut revisions: Vec<String> = walkdir::WalkDir::new(path.join("refs"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                let r = e.path().strip_prefix(path.join("refs")).ok()?;
                Some(r.to_string_lossy().into_owned())
            })
            .collect();
        revisions.sort();
        let snapshots: Vec<PathBuf> = std::fs::read_dir(path.join("snapshots"))
            .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        let complete = snapshots.iter().any(|s| {
            REQUIRED.iter().all(|f| s.join(f).exists())
                && WEIGHTS.iter().any(|f| s.join(f).exists())
        });
        let size_on_disk = walkdir::WalkDir::new(path.join("blobs"))
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        models.push(CachedModel {
            repo_id: id.replace("--", "/"),
            revisions,
            size_on_disk,
            complete,
            path,
        });
    }
    models.sort_by(|a, b| a.repo_id.cmp(&b.repo_id));
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths_are_told_apart() {
        for id in ["Helsinki-NLP/opus-mt-ar-en", "gpt2", "org/model.v2_x"] {
            assert!(looks_like_hub_id(id), "{id}");
        }
        for p in ["./models/x", "/abs/x", "a/b/c", "~/m", "a//b", "a b/c"] {
            assert!(!looks_like_hub_id(p), "{p}");
        }
    }
}
