//! Which documents a run covers and where their outputs go. This module owns
//! the naming of documents (a key: the path relative to the input folder
//! that named it, without `.txt` and an `.ar` tag, e.g. `jan/article`),
//! the stable disambiguation of inputs that would share a key, job-array
//! shards (a stable hash of the key), and the safety checks made before any
//! model loads: no output may land on an input, and mirrored output paths
//! stay inside the output folder. Enumeration is lazy and done twice (a
//! planning pass that keeps 16 bytes per document, then the run's pass),
//! so a corpus of millions of files is never held as a list of paths.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::document::{Input, InputError};

/// The state folder tarjama keeps inside an output folder; never an input.
pub const STATE_DIR: &str = ".tarjama";

/// One document of the run: where it is read from and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub input: Input,
    /// `/`-separated relative output path without extension (`jan/article`);
    /// every component is a plain name.
    pub key: String,
}

/// `--shard I/N`: the documents whose key hashes to `I` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with `I` counted from 0 and `I < N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a shard I/N (I counted from 0, I < N)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether `key` belongs to this shard: the first 8 bytes of its BLAKE3
    /// hash (little-endian) modulo `count`, so a document's shard depends on
    /// its key alone and adding files never moves the others.
    pub fn contains(&self, key: &str) -> bool {
        key_hash(key) % self.count == self.index
    }
}

/// A stable 64-bit hash of a key (the first 8 bytes of its BLAKE3 hash).
pub fn key_hash(key: &str) -> u64 {
    let h = blake3::hash(key.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// 8 hex digits naming `key` in file names (temp files, locks).
pub fn key_tag(key: &str) -> String {
    format!("{:08x}", key_hash(key) >> 32)
}

/// The stem output files are named after: the file name without `.txt` and
/// without an `.ar` language tag (`article.ar.txt` gives `article`).
fn stem(name: &str) -> &str {
    let strip = |name: &str, suffix: &str| -> Option<usize> {
        let cut = name.len().checked_sub(suffix.len())?;
        (cut > 0 && name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(suffix))
            .then_some(cut)
    };
    let name = &name[..strip(name, ".txt").unwrap_or(name.len())];
    &name[..strip(name, ".ar").unwrap_or(name.len())]
}

/// Which files of an input folder are documents: `*.txt` by default, or
/// the `--glob` patterns (matched against the file name and against the
/// path relative to the folder, ASCII case ignored; `!PATTERN` excludes).
/// Files named directly are always taken.
#[derive(Debug, Clone)]
pub struct FileFilter {
    include: globset::GlobSet,
    exclude: globset::GlobSet,
}

impl Default for FileFilter {
    fn default() -> Self {
        FileFilter::new(&[]).expect("the default pattern is valid")
    }
}

impl FileFilter {
    pub fn new(patterns: &[String]) -> Result<FileFilter, String> {
        let build = |pats: Vec<&str>| -> Result<globset::GlobSet, String> {
            let mut set = globset::GlobSetBuilder::new();
            for p in pats {
                let glob = globset::GlobBuilder::new(p)
                    .case_insensitive(true)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("--glob {p:?}: {e}"))?;
                set.add(glob);
            }
            set.build().map_err(|e| e.to_string())
        };
        let (excl, incl): (Vec<&str>, Vec<&str>) = patterns
            .iter()
            .map(String::as_str)
            .partition(|p| p.starts_with('!'));
        let incl = if incl.is_empty() { vec!["*.txt"] } else { incl };
        Ok(FileFilter {
            include: build(incl)?,
            exclude: build(excl.iter().map(|p| &p[1..]).collect())?,
        })
    }

    fn matches(&self, rel: &Path) -> bool {
        let name = Path::new(rel.file_name().unwrap_or_default());
        let any = |set: &globset::GlobSet| set.is_match(name) || set.is_match(rel);
        any(&self.include) && !any(&self.exclude)
    }
}

/// An output would replace an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// What the planning pass found.
#[derive(Debug)]
pub struct Plan {
    args: Vec<PathBuf>,
    filter: FileFilter,
    shard: Option<Shard>,
    /// Key hashes shared by inputs that are different files.
    colliding: HashSet<u64>,
    /// Canonical-path hashes of files named more than once.
    repeated: HashSet<u64>,
    /// Documents in the run (the shard's share), errors not counted.
    pub documents: usize,
    /// Outputs that would replace an input.
    pub conflicts: Vec<Conflict>,
}

/// Where one walked file came from.
struct Found {
    path: PathBuf,
    /// Its path relative to the argument that named it (the file name for
    /// a file argument).
    rel: PathBuf,
}

/// Every file the arguments name, in order: `-`, files as given, and the
/// `*.txt` files of folders recursively in sorted order (symlinks followed,
/// the state folder skipped). Errors do not stop the walk.
fn walk<'a>(
    args: &'a [PathBuf],
    filter: &'a FileFilter,
) -> impl Iterator<Item = Result<Option<Found>, InputError>> + 'a {
    args.iter()
        .flat_map(move |arg| -> Box<dyn Iterator<Item = _>> {
            if arg.as_os_str() == "-" {
                return Box::new(std::iter::once(Ok(None)));
            }
            if arg.is_dir() {
                let walker = walkdir::WalkDir::new(arg)
                    .follow_links(true)
                    .sort_by_file_name()
                    .into_iter()
                    .filter_entry(|e| e.depth() == 0 || e.file_name() != STATE_DIR);
                return Box::new(walker.filter_map(move |entry| match entry {
                    Ok(e)
                        if e.file_type().is_file()
                            && filter.matches(e.path().strip_prefix(arg).unwrap_or(e.path())) =>
                    {
                        let rel = e.path().strip_prefix(arg).unwrap_or(e.path()).to_path_buf();
                        Some(Ok(Some(Found {
                            path: e.into_path(),
                            rel,
                        })))
                    }
                    Ok(_) => None,
                    Err(err) => Some(Err(InputError::Io {
                        name: err.path().unwrap_or(arg).display().to_string(),
                        source: err.into(),
                    })),
                }));
            }
            if arg.exists() || arg.symlink_metadata().is_ok() {
                let rel = PathBuf::from(arg.file_name().unwrap_or(arg.as_os_str()));
                return Box::new(std::iter::once(Ok(Some(Found {
                    path: arg.clone(),
                    rel,
                }))));
            }
            Box::new(std::iter::once(Err(InputError::Io {
                name: arg.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            })))
        })
}

/// Every input the arguments name, lazily and in order (no planning: for
/// readers such as `segment` that write no files).
pub fn inputs<'a>(
    args: &'a [PathBuf],
    filter: &'a FileFilter,
) -> impl Iterator<Item = Result<Input, InputError>> + 'a {
    walk(args, filter).map(|found| {
        found.map(|f| match f {
            None => Input::Stdin,
            Some(f) => Input::File(f.path),
        })
    })
}

/// The key of a file at `rel` below its argument: plain components only
/// (a walked path has no others; anything else is dropped, so a key never
/// climbs out of the output folder), the last one reduced to its stem.
fn key_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    match parts.last_mut() {
        Some(last) => *last = stem(last).to_string(),
        None => parts.push("document".into()),
    }
    parts.join("/")
}

fn path_hash(p: &Path) -> u64 {
    key_hash(&p.to_string_lossy())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The planning pass over `args` for a run writing `suffixes` into `out`
/// (`None`: standard output): counts the documents, finds keys shared by
/// different files and files named twice, and outputs that would land on
/// an explicitly named input file (walked inputs are `*.txt`, a name no
/// output has; a symlink in the output tree is replaced, never written
/// through).
pub fn plan(
    args: &[PathBuf],
    filter: &FileFilter,
    shard: Option<Shard>,
    out: Option<&Path>,
    suffixes: &[&str],
) -> Plan {
    // Explicitly named files, by their canonical folder and file name.
    let named: Vec<(PathBuf, OsString, PathBuf)> = args
        .iter()
        .filter(|a| a.as_os_str() != "-" && !a.is_dir() && a.exists())
        .filter_map(|a| {
            let c = canonical(a);
            Some((
                c.parent()?.to_path_buf(),
                c.file_name()?.to_owned(),
                a.clone(),
            ))
        })
        .collect();
    let mut first: HashMap<u64, u64> = HashMap::new();
    let mut plan = Plan {
        args: args.to_vec(),
        filter: filter.clone(),
        shard,
        colliding: HashSet::new(),
        repeated: HashSet::new(),
        documents: 0,
        conflicts: Vec::new(),
    };
    let mut seen_stdin = false;
    for found in walk(args, filter).flatten() {
        let (key, path_id) = match &found {
            None if seen_stdin => continue,
            None => {
                seen_stdin = true;
                ("stdin".to_string(), 0)
            }
            Some(f) => (key_of(&f.rel), path_hash(&canonical(&f.path))),
        };
        match first.insert(key_hash(&key), path_id) {
            Some(prev) if prev == path_id => {
                plan.repeated.insert(path_id);
                continue;
            }
            Some(_) => {
                plan.colliding.insert(key_hash(&key));
            }
            None => {}
        }
    }
    // Second look, now that collisions are known: the final keys.
    let (mut documents, mut conflicts) = (0, Vec::new());
    for source in plan.sources().flatten() {
        documents += 1;
        if let (Some(out), Input::File(_)) = (out, &source.input) {
            let stem_path = out.join(&source.key);
            let (Some(dir), Some(base)) = (stem_path.parent(), stem_path.file_name()) else {
                continue;
            };
            for (folder, name, input) in &named {
                let hits = suffixes.iter().any(|s| {
                    let mut n = base.to_owned();
                    n.push(format!(".{s}"));
                    &n == name
                });
                if hits && &canonical(dir) == folder {
                    conflicts.push(Conflict {
                        input: input.clone(),
                        output: dir.join(name),
                    });
                }
            }
        }
    }
    plan.documents = documents;
    plan.conflicts = conflicts;
    plan
}

impl Plan {
    /// The run's documents, lazily, in argument order: a key shared by
    /// different files gets `~` and 8 hex digits of a hash of the file's
    /// canonical path (`article~1a2b3c4d`), the same on every run whatever
    /// the order of the arguments; a file named twice is taken once; other
    /// shards' documents are left out.
    pub fn sources(&self) -> impl Iterator<Item = Result<Source, InputError>> + '_ {
        let mut taken: HashSet<u64> = HashSet::new();
        let mut seen_stdin = false;
        walk(&self.args, &self.filter).filter_map(move |found| {
            let found = match found {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            let source = match found {
                None if seen_stdin => return None,
                None => {
                    seen_stdin = true;
                    Source {
                        input: Input::Stdin,
                        key: "stdin".into(),
                    }
                }
                Some(f) => {
                    let mut key = key_of(&f.rel);
                    if !self.repeated.is_empty() || !self.colliding.is_empty() {
                        let id = path_hash(&canonical(&f.path));
                        if self.repeated.contains(&id) && !taken.insert(id) {
                            return None;
                        }
                        if self.colliding.contains(&key_hash(&key)) {
                            key = format!("{key}~{:08x}", id >> 32);
                        }
                    }
                    Source {
                        input: Input::File(f.path),
                        key,
                    }
                }
            };
            match self.shard {
                Some(shard) if !shard.contains(&source.key) => None,
                _ => Some(Ok(source)),
            }
        })
    }
}

/// The output files of the document `key` for `suffixes`, in `out`.
pub fn output_paths(out: &Path, key: &str, suffixes: &[&str]) -> Vec<PathBuf> {
    suffixes
        .iter()
        .map(|s| out.join(format!("{key}.{s}")))
        .collect()
}

/// Checks that writing below `out` at `key` goes through no symlinked
/// folder (which would put outputs outside `out`); the folders need not
/// exist yet.
pub fn check_inside(out: &Path, key: &str) -> Result<(), String> {
    let mut dir = out.to_path_buf();
    let parts: Vec<&str> = key.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(format!("output name {key:?} is not a plain relative path"));
        }
        dir.push(part);
        match dir.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symbolic link; outputs are never written through one",
                    dir.display()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_keys() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let keys: Vec<String> = (0..300).map(|i| format!("d/{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for k in &keys {
            assert_eq!(shards.iter().filter(|s| s.contains(k)).count(), 1, "{k}");
        }
        for s in &shards {
            let n = keys.iter().filter(|k| s.contains(k)).count();
            assert!((70..130).contains(&n), "shard {s} has {n} of 300");
        }
    }

    #[test]
    fn keys_are_relative_plain_paths_without_txt_and_ar() {
        assert_eq!(key_of(Path::new("jan/article.ar.txt")), "jan/article");
        assert_eq!(key_of(Path::new("a.txt")), "a");
        assert_eq!(key_of(Path::new(".ar.txt")), ".ar");
        assert_eq!(key_of(Path::new("../x/./b.txt")), "x/b");
        assert_eq!(key_of(Path::new("/abs/c.txt")), "abs/c");
        assert_eq!(key_of(Path::new("NEWS.AR.TXT")), "NEWS");
        assert_eq!(key_of(Path::new(".txt")), ".txt");
    }

    #[test]
    fn folders_take_txt_in_any_case_or_the_globs() {
        let default = FileFilter::default();
        for (p, want) in [
            ("a.txt", true),
            ("b/A.TXT", true),
            ("c.md", false),
            ("txt", false),
        ] {
            assert_eq!(default.matches(Path::new(p)), want, "{p}");
        }
        let globs = FileFilter::new(&["*.md".into(), "news/**".into(), "!*draft*".into()]).unwrap();
        assert!(globs.matches(Path::new("x/y.MD")));
        assert!(globs.matches(Path::new("news/2024/a.html")));
        assert!(!globs.matches(Path::new("a.txt")));
        assert!(!globs.matches(Path::new("x/draft-1.md")));
        assert!(FileFilter::new(&["a[".into()]).is_err());
    }

    #[test]
    fn symlinked_output_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("real")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path(), out.join("link")).unwrap();
        assert!(check_inside(&out, "real/a").is_ok());
        assert!(check_inside(&out, "new/deeper/a").is_ok());
        #[cfg(unix)]
        assert!(
            check_inside(&out, "link/a")
                .unwrap_err()
                .contains("symbolic link")
        );
        assert!(check_inside(&out, "../a").is_err());
    }
}
