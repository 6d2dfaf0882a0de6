//! Model resolution: turns what the user passed to `--model` into a local
//! folder holding an OPUS-MT model's files. This module owns the difference
//! between a local folder and a Hugging Face Hub id, fetching with `hf-hub`
//! into the standard Hugging Face cache (honouring `HF_HOME`,
//! `HF_HUB_CACHE`, `HF_ENDPOINT` and `HF_HUB_OFFLINE`), and listing what the
//! cache holds. What the files mean is the tokenizer's and the model's
//! business.

use std::path::{Path, PathBuf};

use hf_hub::{HFClient, HFError};

/// The model tarjama uses when none is named.
pub const DEFAULT_MODEL: &str = "Helsinki-NLP/opus-mt-ar-en";

/// Files of an OPUS-MT repository that a translation needs.
const REQUIRED: &[&str] = &["config.json", "source.spm", "target.spm", "vocab.json"];
/// Tried in order; the first the repository has is used. opus-mt-ar-en's main
/// branch has only the PyTorch pickle.
const WEIGHTS: &[&str] = &["model.safetensors", "pytorch_model.bin"];
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
    #[error("cannot use the Hugging Face cache: {0}")]
    Client(HFError),
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
        "tried the Hugging Face Hub, then the cache"
    };
    format!(
        "model {repo_id} (revision {revision}) is not available: {reason}\n  \
         {how}, for: {}\n  \
         cache: {}\n  \
         to translate without network, copy the model's folder (config.json, weights, source.spm, \
         target.spm, vocab.json) to this machine, e.g. from `huggingface-cli download {repo_id} \
         --local-dir models/{}` on a machine with network, and pass `--model models/{}`",
        tried.join(", "),
        cache_dir.display(),
        repo_name(repo_id),
        repo_name(repo_id),
    )
}

fn repo_name(repo_id: &str) -> &str {
    repo_id.rsplit('/').next().unwrap_or(repo_id)
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

fn client() -> Result<HFClient, HubError> {
    // Connection errors count as transient in hf-hub; a machine without
    // network should hear so in well under a second, not after five tries.
    HFClient::builder()
        .retry_max_attempts(2)
        .build()
        .map_err(HubError::Client)
}

/// The cache folder models are fetched into.
pub fn cache_dir() -> Result<PathBuf, HubError> {
    Ok(client()?.cache_dir().to_path_buf())
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

/// A folder holding the model's files: the folder itself for a local model,
/// the cache's snapshot folder for a Hub model (fetching what is missing).
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
    let client = client()?;
    let cache = client.cache_dir().to_path_buf();
    let sync = hf_hub::HFClientSync::from_inner(client).map_err(HubError::Client)?;
    let (owner, name) = match spec.model.split_once('/') {
        Some((o, n)) => (o.to_string(), n.to_string()),
        None => (String::new(), spec.model.clone()),
    };
    let repo = sync.model(owner, name);
    let revision = spec.revision.clone().unwrap_or_else(|| "main".into());
    let mut tried = Vec::new();
    let unavailable = |tried: &[String], reason: String| HubError::Unavailable {
        repo_id: spec.model.clone(),
        revision: revision.clone(),
        cache_dir: cache.clone(),
        tried: tried.to_vec(),
        offline,
        reason,
    };
    let fetch = |file: &str| {
        repo.download_file()
            .filename(file)
            .revision(revision.clone())
            .local_files_only(offline)
            .send()
    };
    let mut snapshot = None;
    for file in REQUIRED {
        tried.push(file.to_string());
        let p = fetch(file).map_err(|e| unavailable(&tried, describe(file, &e)))?;
        snapshot.get_or_insert_with(|| p.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    let mut weights = None;
    for file in WEIGHTS {
        tried.push(file.to_string());
        match fetch(file) {
            Ok(p) => {
                weights = Some(p);
                break;
            }
            Err(HFError::EntryNotFound { .. } | HFError::LocalEntryNotFound { .. }) => continue,
            Err(e) => return Err(unavailable(&tried, describe(file, &e))),
        }
    }
    if weights.is_none() {
        return Err(unavailable(
            &tried,
            format!("neither {} was found", WEIGHTS.join(" nor ")),
        ));
    }
    for file in OPTIONAL {
        // Optional: absent upstream or uncached offline is fine.
        let _ = fetch(file);
    }
    Ok(snapshot.expect("REQUIRED is not empty"))
}

fn describe(file: &str, e: &HFError) -> String {
    match e {
        HFError::LocalEntryNotFound { .. } => format!("{file} is not in the cache"),
        HFError::EntryNotFound { .. } => format!("the repository has no {file}"),
        HFError::RepoNotFound { .. } => "no such repository on the Hub".to_string(),
        other => format!("fetching {file} failed: {other}"),
    }
}

/// A model repository found in the cache.
#[derive(Debug, Clone)]
pub struct CachedModel {
    pub repo_id: String,
    /// Refs (e.g. `main`) or, where none, short commit hashes.
    pub revisions: Vec<String>,
    pub size_on_disk: u64,
    /// Whether some revision holds every file a translation needs.
    pub complete: bool,
    pub path: PathBuf,
}

/// Model repositories in the Hugging Face cache, sorted by id.
pub fn cached_models() -> Result<Vec<CachedModel>, HubError> {
    let sync = hf_hub::HFClientSync::from_inner(client()?).map_err(HubError::Client)?;
    let info = sync.scan_cache().send().map_err(HubError::Client)?;
    let mut models: Vec<_> = info
        .repos
        .into_iter()
        .filter(|r| r.repo_type == "model")
        .map(|r| CachedModel {
            revisions: r
                .revisions
                .iter()
                .flat_map(|rev| {
                    if rev.refs.is_empty() {
                        vec![rev.commit_hash.chars().take(12).collect()]
                    } else {
                        rev.refs.clone()
                    }
                })
                .collect(),
            complete: r.revisions.iter().any(|rev| {
                let has = |f: &str| rev.files.iter().any(|x| x.file_name == f);
                REQUIRED.iter().all(|f| has(f)) && WEIGHTS.iter().any(|f| has(f))
            }),
            repo_id: r.repo_id,
            size_on_disk: r.size_on_disk,
            path: r.repo_path,
        })
        .collect();
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
