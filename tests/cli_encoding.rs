//! Inputs in Windows-1256 and UTF-16 translate exactly as their UTF-8
//! versions, with offsets into the original bytes; plain text works as a
//! Unix filter. The encoded files are made here with `encoding_rs`'s
//! encoders from the sample corpus (UTF-16 by hand from `str::encode_utf16`,
//! since WHATWG encoders never produce UTF-16).

use std::path::Path;

use serde_json::Value;

mod common;
use common::{ok, run};

const MODEL: &str = "tests/fixtures/marian";

fn records(file: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "translate",
        file.to_str().unwrap(),
        "--model",
        MODEL,
        "--out",
        "-",
        "--format",
        "jsonl",
        "-q",
    ];
    args.extend(extra);
    ok(&run(&args, None, &[]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut units: Vec<u16> = Vec::new();
    if bom {
        units.push(0xfeff);
    }
    units.extend(text.encode_utf16());
    units
        .iter()
        .flat_map(|u| {
            if little {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            }
        })
        .collect()
}

#[test]
fn cp1256_and_utf16_inputs_translate_as_their_utf8_versions_with_original_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/kazakhstan-unrest-opinion.ar.txt"),
    )
    .unwrap();
    let utf8 = dir.path().join("utf8.txt");
    std::fs::write(&utf8, &text).unwrap();
    let want = records(&utf8, &[]);
    assert!(want.len() > 20);

    let (cp, _, lossy) = encoding_rs::WINDOWS_1256.encode(&text);
    assert!(!lossy, "the sample is representable in CP1256");
    let cases: Vec<(&str, Vec<u8>, &[&str], &'static encoding_rs::Encoding)> = vec![
        (
            "cp1256.txt",
            cp.into_owned(),
            &[],
            encoding_rs::WINDOWS_1256,
        ),
        (
            "cp1256-named.txt",
            encoding_rs::WINDOWS_1256.encode(&text).0.into_owned(),
            &["--encoding", "cp1256"],
            encoding_rs::WINDOWS_1256,
        ),
        (
            "le-bom.txt",
            utf16(&text, true, true),
            &[],
            encoding_rs::UTF_16LE,
        ),
        (
            "be-bom.txt",
            utf16(&text, false, true),
            &[],
            encoding_rs::UTF_16BE,
        ),
        (
            "le.txt",
            utf16(&text, true, false),
            &["--encoding", "utf-16le"],
            encoding_rs::UTF_16LE,
        ),
    ];
    for (name, bytes, extra, enc) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let got = records(&path, extra);
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(&want) {
            for k in ["para", "sent", "src", "tgt", "score"] {
                assert_eq!(g[k], w[k], "{name}: {k}");
            }
            // The offsets are the original file's: its bytes there decode
            // to the sentence.
            let (s, e) = (
                g["start"].as_u64().unwrap() as usize,
                g["end"].as_u64().unwrap() as usize,
            );
            let (piece, _) = enc.decode_without_bom_handling(&bytes[s..e]);
            assert_eq!(
                piece,
                g["src"].as_str().unwrap(),
                "{name}: offsets {s}..{e}"
            );
        }
    }
}

#[test]
fn an_encoding_that_cannot_be_told_is_named_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    // French in Latin-1: not UTF-8, no BOM, not an Arabic encoding.
    let latin = dir.path().join("latin1.txt");
    std::fs::write(
        &latin,
        b"Le ministre a d\xe9clar\xe9 que la situation \xe9tait calme.\n",
    )
    .unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "قال الوزير.\n").unwrap();
    let o = run(
        &[
            "translate",
            latin.to_str().unwrap(),
            good.to_str().unwrap(),
            "--model",
            MODEL,
            "--out",
            "-",
            "--format",
            "jsonl",
        ],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("latin1.txt: cannot tell its encoding"),
        "{err}"
    );
    assert!(err.contains("--encoding"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    // Named, it is read.
    let recs = records(&latin, &["--encoding", "latin1"]);
    assert_eq!(
        recs[0]["src"],
        "Le ministre a déclaré que la situation était calme."
    );
    // An unknown name is a usage error.
    let o = run(
        &["translate", "-", "--model", MODEL, "--encoding", "klingon"],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn plain_text_is_a_unix_filter() {
    let text = "جملة أولى. جملة ثانية.\nفقرة ثانية.\n";
    let o = run(
        &["translate", "-", "--model", MODEL, "-q"],
        Some(text.as_bytes()),
        &[],
    );
    let out = ok(&o);
    let lines: Vec<&str> = out.lines().collect();
    // Two sentences, a blank line, one sentence.
    assert_eq!(lines.len(), 4, "{out:?}");
    assert!(!lines[0].is_empty() && !lines[1].is_empty() && !lines[3].is_empty());
    assert_eq!(lines[2], "");
    let tsv = ok(&run(
        &["translate", "-", "--model", MODEL, "--format", "tsv", "-q"],
        Some(text.as_bytes()),
        &[],
    ));
    let tgts: Vec<&str> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(6).unwrap())
        .collect();
    assert_eq!(tgts, [lines[0], lines[1], lines[3]]);
}

#[test]
fn folders_take_txt_in_any_case_and_globs_choose_others() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["a.txt", "B.TXT", "c.md", "draft.md"] {
        std::fs::write(input.join(name), "نص.\n").unwrap();
    }
    let docs = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "translate",
            input.to_str().unwrap(),
            "--model",
            MODEL,
            "--out",
            "-",
            "--format",
            "jsonl",
            "-q",
        ];
        args.extend(extra);
        let mut d: Vec<String> = ok(&run(&args, None, &[]))
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                Path::new(v["doc"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        d.sort();
        d
    };
    assert_eq!(docs(&[]), ["B.TXT", "a.txt"]);
    assert_eq!(docs(&["--glob", "*.md", "--glob", "!draft*"]), ["c.md"]);
}

#[test]
fn segment_reads_the_same_encodings_with_original_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let text = "قال الوزير: انتهى الأمر. وأضاف أن الوضع هادئ.\nفقرة ثانية.\n";
    let (cp, _, _) = encoding_rs::WINDOWS_1256.encode(text);
    let path = dir.path().join("cp.txt");
    std::fs::write(&path, &cp).unwrap();
    let out = ok(&run(
        &["segment", path.to_str().unwrap(), "--format", "jsonl"],
        None,
        &[],
    ));
    let recs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    for r in &recs {
        let (s, e) = (
            r["start"].as_u64().unwrap() as usize,
            r["end"].as_u64().unwrap() as usize,
        );
        let (piece, _) = encoding_rs::WINDOWS_1256.decode_without_bom_handling(&cp[s..e]);
        assert_eq!(piece, r["text"].as_str().unwrap());
    }
    let o = run(
        &["segment", path.to_str().unwrap(), "--encoding", "utf-8"],
        None,
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "named UTF-8, the CP1256 bytes are refused"
    );
}
