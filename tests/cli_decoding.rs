//! `translate`'s decoding options against transformers' `generate` with the
//! same settings, on the tiny fixture model (tests/fixtures/
//! decoding_expected.json, made by tests/fixtures/gen_decoding.py).

use serde_json::Value;

mod common;
use common::run;

#[test]
fn decoding_options_match_transformers_generate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fx: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/decoding_expected.json")).unwrap(),
    )
    .unwrap();
    let sentences: Vec<&str> = fx["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let input = sentences.join("\n") + "\n";
    let mut differs_from_default = 0;
    let default = run(
        &[
            "translate",
            "-",
            "--model",
            "tests/fixtures/marian",
            "--input-format",
            "lines",
            "--format",
            "jsonl",
            "--emit-ids",
            "-q",
        ],
        Some(input.as_bytes()),
        &[],
    );
    let default: Vec<Value> = String::from_utf8(default.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for setting in fx["settings"].as_array().unwrap() {
        let name = setting["name"].as_str().unwrap();
        let mut args = vec![
            "translate",
            "-",
            "--model",
            "tests/fixtures/marian",
            "--input-format",
            "lines",
            "--format",
            "jsonl",
            "--emit-ids",
            "-q",
        ];
        args.extend(
            setting["cli"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        );
        let o = run(&args, Some(input.as_bytes()), &[]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got: Vec<Value> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want = setting["results"].as_array().unwrap();
        let before = differs_from_default;
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g["tgt_ids"], w["ids"], "{name}: sentence {i}");
            assert_eq!(g["tgt"], w["text"], "{name}: sentence {i}");
            match w.get("alternatives") {
                None => assert!(g.get("alternatives").is_none(), "{name}"),
                Some(alts) => {
                    let got = g["alternatives"].as_array().unwrap();
                    assert_eq!(got.len(), alts.as_array().unwrap().len(), "{name}: {i}");
                    for (a, b) in got.iter().zip(alts.as_array().unwrap()) {
                        assert_eq!(a["tgt_ids"], b["ids"], "{name}: sentence {i}");
                        assert_eq!(a["tgt"], b["text"], "{name}: sentence {i}");
                        assert!(a["score"].as_f64().unwrap() < 0.0);
                    }
                    if got.iter().any(|a| a["tgt_ids"] != g["tgt_ids"]) {
                        differs_from_default += 1;
                    }
                    continue;
                }
            }
            if g["tgt_ids"] != default[i]["tgt_ids"] {
                differs_from_default += 1;
            }
        }
        assert!(
            differs_from_default - before >= 3,
            "{name} changes almost nothing"
        );
    }
    // Every setting must change something, or the test would not notice an
    // option that is ignored.
    assert!(differs_from_default > 10, "{differs_from_default}");
}
