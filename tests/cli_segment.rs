//! End-to-end tests of `tarjama segment`: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

fn tarjama(args: &[&str], stdin: Option<&[u8]>) -> Output {
    common::run(args, stdin, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn corpus_files() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    v
}

#[test]
fn segment_corpus_prints_the_golden_segmentation_of_both_articles() {
    let o = tarjama(&["segment", "corpus/"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Documents in sorted order, a blank line between them.
    let expected = [
        golden("kazakhstan-unrest-opinion.ar.sentences.txt"),
        golden("kazakhstan-unrest-report.ar.sentences.txt"),
    ]
    .map(|g| g.trim_end_matches('\n').to_string())
    .join("\n\n")
        + "\n";
    let got = stdout(&o);
    if got != expected {
        let (i, (g, e)) = got
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (g, e))| g != e)
            .unwrap_or((0, ("<length differs>", "")));
        panic!("line {}: got {g:?}, expected {e:?}", i + 1);
    }
}

#[derive(serde::Deserialize)]
struct Rec {
    doc: String,
    para: usize,
    sent: usize,
    start: usize,
    end: usize,
    text: String,
}

#[test]
fn jsonl_offsets_point_into_the_original_file() {
    for file in corpus_files() {
        let path = file.to_str().unwrap();
        let o = tarjama(&["segment", "--format", "jsonl", path], None);
        assert!(o.status.success());
        let original = std::fs::read(&file).unwrap();
        let recs: Vec<Rec> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(recs.len() > 20);
        let mut last = (0, 0, 0usize);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.doc, path);
            assert_eq!(&original[r.start..r.end], r.text.as_bytes());
            if i > 0 {
                let next_para = (last.0 + 1, 0);
                let next_sent = (last.0, last.1 + 1);
                assert!((r.para, r.sent) == next_para || (r.para, r.sent) == next_sent);
                assert!(r.start >= last.2);
            }
            last = (r.para, r.sent, r.end);
        }
    }
}

#[test]
fn stdin_is_read_with_dash_and_named_dash() {
    let o = tarjama(
        &["segment", "--format", "jsonl", "-"],
        Some("\u{feff}قال الوزير.\r\nثم غادر.".as_bytes()),
    );
    assert!(o.status.success());
    let recs: Vec<Rec> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].doc, "-");
    assert_eq!(recs[0].text, "قال الوزير.");
    assert_eq!(recs[0].start, 3, "offsets count the BOM's bytes");
    assert_eq!((recs[1].para, recs[1].sent), (1, 0));
    assert_eq!(recs[1].text, "ثم غادر.");
}

#[test]
fn bad_inputs_are_reported_and_skipped_and_the_rest_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let good1 = dir.path().join("a.txt");
    let bad = dir.path().join("b.txt");
    let good2 = dir.path().join("c.txt");
    std::fs::write(&good1, "الأول.").unwrap();
    let mut bytes = "نص ".as_bytes().to_vec();
    bytes.extend_from_slice(&[0xC7, 0xE1]); // Windows-1256, not UTF-8
    std::fs::write(&bad, &bytes).unwrap();
    std::fs::write(&good2, "الثاني.").unwrap();
    let missing = dir.path().join("missing.txt");
    let o = tarjama(
        &[
            "segment",
            dir.path().to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "الأول.\n\nالثاني.\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert!(err.contains("offset 5"), "{err}"); // "نص " is 5 bytes
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
}

#[test]
fn empty_file_yields_nothing_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.txt");
    std::fs::write(&f, "").unwrap();
    let o = tarjama(&["segment", f.to_str().unwrap()], None);
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
}

#[test]
fn lines_format_separates_paragraphs_with_one_blank_line() {
    let o = tarjama(
        &["segment", "-"],
        Some("عنوان بلا نقطة\r\rجاء الوزير. ثم ذهب؟\n\u{a0}\nالمراجع:\n".as_bytes()),
    );
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        "عنوان بلا نقطة\n\nجاء الوزير.\nثم ذهب؟\n\nالمراجع:\n"
    );
}

#[test]
fn usage_errors_exit_2_and_help_and_version_work() {
    assert_eq!(tarjama(&[], None).status.code(), Some(2));
    assert_eq!(tarjama(&["segment"], None).status.code(), Some(2));
    assert_eq!(
        tarjama(&["segment", "--format", "xml", "-"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(tarjama(&["frobnicate"], None).status.code(), Some(2));
    let help = tarjama(&["--help"], None);
    assert!(help.status.success());
    assert!(stdout(&help).contains("segment"));
    let version = tarjama(&["--version"], None);
    // `tarjama 0.1.0`, and `(git <12 hex digits>)` when built from a checkout.
    let line = stdout(&version).trim().to_string();
    let rest = line
        .strip_prefix(&format!("tarjama {}", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let commit = rest
        .strip_prefix(" (git ")
        .and_then(|r| r.strip_suffix(')'));
    assert!(
        rest.is_empty()
            || commit.is_some_and(|c| c.len() == 12 && c.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
}
