//! End-to-end tests of `tarjama translate` on the tiny fixture model
//! (tests/fixtures/marian), against transformers' own outputs for the same
//! sentences (tests/fixtures/pipeline_expected.json, see gen_pipeline.py).

use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use serde_json::Value;

const MODEL: &str = "tests/fixtures/marian";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

mod common;
use common::{ok, run, translate_into};

fn jsonl(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected() -> Vec<Value> {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/pipeline_expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["sentences"].as_array().unwrap().clone()
}

/// The golden sentences, one per line, as a temp input file.
fn sentences_file(dir: &Path) -> PathBuf {
    let lines: Vec<String> = expected()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    let p = dir.join("sentences.txt");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn greedy_and_beam_translations_equal_transformers_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = sentences_file(dir.path());
    let input = input.to_str().unwrap();
    let exp = expected();
    let common = [
        "translate",
        input,
        "--model",
        MODEL,
        "--input-format",
        "lines",
        "--out",
        "-",
        "--format",
        "jsonl",
        "--emit-ids",
        "-q",
    ];
    let greedy = jsonl(&ok(&run(
        &[&common[..], &["--beam", "1"]].concat(),
        None,
        &[],
    )));
    let beam = jsonl(&ok(&run(&common, None, &[])));
    assert_eq!(greedy.len(), exp.len());
    assert_eq!(beam.len(), exp.len());
    let mut compared = 0;
    for ((g, b), e) in greedy.iter().zip(&beam).zip(&exp) {
        assert_eq!(g["src"], e["text"]);
        if e.get("too_long").is_some() {
            // Split at clause boundaries and translated in parts: every
            // source token is still translated.
            let eos = |v: &Vec<u64>| v.iter().filter(|&&i| i != 0).count();
            assert!(eos(&ids(&g["src_ids"])) >= eos(&ids(&e["src_ids"])));
            assert!(!g["tgt"].as_str().unwrap().is_empty());
            continue;
        }
        let what = e["text"].as_str().unwrap();
        assert_eq!(ids(&g["src_ids"]), ids(&e["src_ids"]), "src ids of {what}");
        assert_eq!(
            ids(&g["tgt_ids"]),
            ids(&e["greedy"]["ids"]),
            "greedy ids of {what}"
        );
        assert_eq!(g["tgt"], e["greedy"]["text"], "greedy text of {what}");
        let ours = g["tgt_logprobs"].as_array().unwrap();
        let theirs = e["greedy"]["logprobs"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(theirs) {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() < 1e-4, "logprob {a} vs {b} in {what}");
        }
        assert_eq!(
            ids(&b["tgt_ids"]),
            ids(&e["beam"]["ids"]),
            "beam ids of {what}"
        );
        assert_eq!(b["tgt"], e["beam"]["text"], "beam text of {what}");
        compared += 1;
    }
    assert!(compared >= 90, "only {compared} sentences compared");
}

/// (ar, en) pairs from a TMX file, in document order.
fn tmx_pairs(xml: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut pairs, mut tuv, mut in_seg, mut text) = (Vec::new(), Vec::new(), false, String::new());
    loop {
        match reader.read_event().expect("well-formed TMX") {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == "seg" => {
                in_seg = true;
                text.clear();
            }
            Event::Text(t) if in_seg => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_seg => text.push_str(
                quick_xml::escape::resolve_predefined_entity(&r.xml10_content()).unwrap(),
            ),
            Event::End(e) if e.name().as_ref() == "seg" => {
                in_seg = false;
                tuv.push(text.clone());
            }
            Event::End(e) if e.name().as_ref() == "tu" => {
                assert_eq!(tuv.len(), 2);
                pairs.push((tuv[0].clone(), tuv[1].clone()));
                tuv.clear();
            }
            _ => {}
        }
    }
    pairs
}

#[test]
fn every_format_is_written_for_both_articles_and_pairs_every_sentence() {
    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap();
    let o = run(
        &["translate", "corpus/", "--model", MODEL, "--out", out_s],
        None,
        &[],
    );
    ok(&o);
    // (pairs, flagged pairs) over both articles.
    let mut tally = (0, 0);
    for stem in ["kazakhstan-unrest-opinion", "kazakhstan-unrest-report"] {
        let read = |ext: &str| {
            std::fs::read_to_string(out.path().join(format!("{stem}.{ext}")))
                .unwrap_or_else(|e| panic!("{stem}.{ext}: {e}"))
        };
        let corpus = format!("corpus/{stem}.ar.txt");
        let segs = jsonl(&ok(&run(
            &["segment", "--format", "jsonl", &corpus],
            None,
            &[],
        )));
        let recs = jsonl(&read("jsonl"));
        assert_eq!(recs.len(), segs.len());
        for (r, s) in recs.iter().zip(&segs) {
            for k in ["doc", "para", "sent", "start", "end"] {
                assert_eq!(r[k], s[k], "{k}");
            }
            assert_eq!(r["src"], s["text"]);
            assert!(r["score"].as_f64().unwrap() <= 0.0);
            // The QA flags of exactly this pair (the fixture model's
            // gibberish gets plenty).
            let want: Vec<&str> =
                tarjama::qa::check(r["src"].as_str().unwrap(), r["tgt"].as_str().unwrap())
                    .iter()
                    .map(|f| f.name())
                    .collect();
            assert_eq!(r["flags"], serde_json::json!(want));
            tally.0 += 1;
            tally.1 += usize::from(!want.is_empty());
        }
        let flags: Vec<String> = recs
            .iter()
            .map(|r| {
                let names: Vec<&str> = r["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap())
                    .collect();
                names.join(",")
            })
            .collect();
        let pairs: Vec<(String, String)> = recs
            .iter()
            .map(|r| {
                (
                    r["src"].as_str().unwrap().to_string(),
                    r["tgt"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(tmx_pairs(&read("tmx")), pairs, "TMX");

        let html = scraper::Html::parse_document(&read("html"));
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        let rows: Vec<(String, String)> = html
            .select(&sel("tbody.para > tr"))
            .map(|tr| {
                let cell = |c: &str| {
                    tr.select(&sel(c))
                        .next()
                        .unwrap()
                        .text()
                        .collect::<String>()
                };
                (cell("td.ar"), cell("td.en"))
            })
            .collect();
        assert_eq!(rows, pairs, "HTML rows");
        let marked: Vec<String> = html
            .select(&sel("tbody.para > tr"))
            .map(|tr| {
                assert_eq!(
                    tr.value().attr("class").is_some(),
                    tr.value().attr("title").is_some()
                );
                tr.select(&sel("td.en"))
                    .next()
                    .unwrap()
                    .value()
                    .attr("data-qa")
                    .unwrap_or("")
                    .replace(", ", ",")
            })
            .collect();
        assert_eq!(marked, flags, "HTML flags");
        assert_eq!(
            html.select(&sel("tr.qa")).count(),
            flags.iter().filter(|f| !f.is_empty()).count()
        );
        let paras = recs.iter().filter(|r| r["sent"] == 0).count();
        assert_eq!(html.select(&sel("tbody.para")).count(), paras);

        let ar: Vec<_> = read("ar").lines().map(String::from).collect();
        let en: Vec<_> = read("en").lines().map(String::from).collect();
        assert_eq!(ar, pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>());
        assert_eq!(en.len(), pairs.len());
        let tsv = read("tsv");
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .from_reader(tsv.as_bytes());
        assert_eq!(reader.headers().unwrap().iter().next_back(), Some("flags"));
        let column: Vec<String> = reader
            .records()
            .map(|r| r.unwrap().iter().next_back().unwrap().to_string())
            .collect();
        assert_eq!(column, flags, "TSV flags column");
        assert_eq!(
            read("md").lines().filter(|l| l.starts_with("| ")).count(),
            pairs.len() + 2, // header and rule rows
        );
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(tally.1 > 0);
    assert!(
        stderr.contains(&format!(
            "tarjama: QA: {} of {} pairs flagged (",
            tally.1, tally.0
        )),
        "{stderr}"
    );
}

#[test]
fn quiet_leaves_out_the_summary_and_its_qa_line() {
    let args = [
        "translate",
        "-",
        "--model",
        MODEL,
        "--out",
        "-",
        "--format",
        "jsonl",
    ];
    let input = "قتل 164 شخصا وفق KNB.\n".as_bytes();
    let loud = run(&args, Some(input), &[]);
    let recs = jsonl(&ok(&loud));
    let flagged = usize::from(!recs[0]["flags"].as_array().unwrap().is_empty());
    let stderr = String::from_utf8_lossy(&loud.stderr);
    assert!(
        stderr.contains(&format!("tarjama: QA: {flagged} of 1 pairs flagged")),
        "{stderr}"
    );
    let quiet = run(&[&args[..], &["-q"]].concat(), Some(input), &[]);
    assert_eq!(jsonl(&ok(&quiet)), recs);
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

#[test]
fn output_is_identical_for_any_thread_count_and_batch_size() {
    let base = [
        "translate",
        "corpus/",
        "--model",
        MODEL,
        "--out",
        "-",
        "--format",
        "jsonl",
        "--emit-ids",
        "-q",
    ];
    let a = ok(&run(
        &[&base[..], &["--threads", "1", "--batch-tokens", "64"]].concat(),
        None,
        &[],
    ));
    let b = ok(&run(
        &[&base[..], &["--threads", "2", "--batch-tokens", "100000"]].concat(),
        None,
        &[],
    ));
    let c = ok(&run(
        &[
            &base[..],
            &["--threads", "2", "--batch-tokens", "700", "--beam", "4"],
        ]
        .concat(),
        None,
        &[],
    ));
    assert!(a.lines().count() > 90);
    same_translations(&a, &b);
    same_translations(&a, &c);
}

/// Ids, texts and positions must be identical; log-probabilities may differ
/// in the last float digits, because batch shape and thread count change the
/// order of floating-point sums (as in every batched engine).
fn same_translations(a: &str, b: &str) {
    let (a, b) = (jsonl(a), jsonl(b));
    assert_eq!(a.len(), b.len());
    let floats = |v: &Value| -> Vec<f64> {
        std::iter::once(v["score"].as_f64().unwrap())
            .chain(
                v["tgt_logprobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap()),
            )
            .collect()
    };
    for (x, y) in a.iter().zip(&b) {
        for k in [
            "doc", "para", "sent", "start", "end", "src", "tgt", "src_ids", "tgt_ids",
        ] {
            assert_eq!(x[k], y[k], "{k} of {}", x["src"]);
        }
        for (p, q) in floats(x).iter().zip(floats(y)) {
            assert!((p - q).abs() < 1e-4, "{p} vs {q} in {}", x["src"]);
        }
    }
}

#[test]
fn duplicate_sentences_are_translated_once_and_stdin_stdout_work() {
    let text = "قال الوزير إن الوضع هادئ.\nقال الوزير إن الوضع هادئ.\nانتهى الاجتماع. قال الوزير إن الوضع هادئ.\n";
    let o = run(
        &[
            "translate",
            "-",
            "--model",
            MODEL,
            "--out",
            "-",
            "--format",
            "jsonl",
        ],
        Some(text.as_bytes()),
        &[],
    );
    let recs = jsonl(&ok(&o));
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r["doc"] == "-"));
    assert_eq!(recs[0]["tgt"], recs[1]["tgt"]);
    assert_eq!(recs[0]["tgt"], recs[3]["tgt"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("4 sentences (2 unique)"), "{err}");
}

#[test]
fn a_bad_file_among_good_ones_is_reported_skipped_and_fails_the_run_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "الأول.").unwrap();
    std::fs::write(dir.path().join("b.txt"), [0xC7, 0xE1, 0x20, 0xE3]).unwrap();
    std::fs::write(dir.path().join("c.txt"), "الثالث.").unwrap();
    let out = dir.path().join("out");
    let o = run(
        &[
            "translate",
            dir.path().to_str().unwrap(),
            "--model",
            MODEL,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "jsonl",
            // CP1256 bytes: `auto` would read them (cli_encoding.rs).
            "--encoding",
            "utf-8",
        ],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("b.txt") && err.contains("offset 0"), "{err}");
    assert!(out.join("a.jsonl").exists());
    assert!(out.join("c.jsonl").exists());
    assert!(!out.join("b.jsonl").exists());
}

#[test]
fn without_network_or_cache_the_default_model_fails_fast_with_guidance() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let out = dir.path().join("out");
    let o = run(
        &["translate", "corpus/", "--out", out.to_str().unwrap()],
        None,
        &[
            ("HF_HUB_CACHE", cache.to_str().unwrap()),
            // A closed local port: no request leaves the machine.
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
            ("HF_HUB_OFFLINE", "0"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "Helsinki-NLP/opus-mt-ar-en",
        cache.to_str().unwrap(),
        "--model",
        "config.json",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }
    assert!(!out.exists(), "no output before the model loads");

    let offline = run(
        &[
            "translate",
            "corpus/",
            "--offline",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        &[("HF_HUB_CACHE", cache.to_str().unwrap())],
    );
    assert_eq!(offline.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&offline.stderr).contains("not in the cache"));
}

#[test]
fn a_cached_hub_model_is_used_offline_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let repo = cache.join("models--Helsinki-NLP--opus-mt-ar-en");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for f in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "source.spm",
        "target.spm",
        "vocab.json",
    ] {
        std::fs::copy(root().join(MODEL).join(f), snap.join(f)).unwrap();
    }
    let env = [("HF_HUB_CACHE", cache.to_str().unwrap())];
    let o = run(
        &[
            "translate",
            "-",
            "--offline",
            "--out",
            "-",
            "--format",
            "jsonl",
        ],
        Some("مرحبا بكم.".as_bytes()),
        &env,
    );
    assert_eq!(jsonl(&ok(&o)).len(), 1);
    let list = ok(&run(&["models"], None, &env));
    assert!(
        list.contains("Helsinki-NLP/opus-mt-ar-en\tmain\t"),
        "{list}"
    );
    assert!(list.contains("\tyes"), "{list}");

    // `download` finds everything it needs in the cache (the unreachable
    // endpoint is only asked for optional files) and prints the snapshot.
    let env = [
        ("HF_HUB_CACHE", cache.to_str().unwrap()),
        ("HF_ENDPOINT", "http://127.0.0.1:9"),
    ];
    let o = run(&["download", "Helsinki-NLP/opus-mt-ar-en"], None, &env);
    assert_eq!(ok(&o).trim(), snap.to_str().unwrap());
    // Outputs made with it record the Hub commit as the model's identity.
    let out = dir.path().join("out");
    let o = run(
        &[
            "translate",
            "-",
            "--offline",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
        Some("مرحبا بكم.".as_bytes()),
        &env,
    );
    ok(&o);
    let record = std::fs::read_to_string(out.join(".tarjama/docs/stdin.json")).unwrap();
    assert!(
        record.contains(&format!(
            "\"model\": \"hf:Helsinki-NLP/opus-mt-ar-en@{commit}\""
        )),
        "{record}"
    );
    // A model the cache lacks, with no network: exit 1 and the two ways to get it.
    let o = run(&["download", "Helsinki-NLP/opus-mt-ar-fr"], None, &env);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tarjama download Helsinki-NLP/opus-mt-ar-fr"),
        "{err}"
    );
    assert!(
        err.contains("hf download Helsinki-NLP/opus-mt-ar-fr config.json"),
        "{err}"
    );
}

#[test]
fn a_model_that_fails_to_load_stops_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "source.spm", "target.spm", "vocab.json"] {
        std::fs::copy(root().join(MODEL).join(f), model.join(f)).unwrap();
    }
    std::fs::write(model.join("model.safetensors"), b"not safetensors").unwrap();
    let out = dir.path().join("out");
    let o = translate_into("corpus/", &model, &out);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("model.safetensors"));
    assert!(!out.exists());
}

#[test]
fn word_alignment_pairs_stay_within_both_sentences() {
    let o = run(
        &[
            "translate",
            "corpus/kazakhstan-unrest-report.ar.txt",
            "--model",
            MODEL,
            "--out",
            "-",
            "--format",
            "jsonl",
            "--word-alignment",
            "--beam",
            "1",
        ],
        None,
        &[],
    );
    let recs = jsonl(&ok(&o));
    let mut pairs = 0;
    for r in &recs {
        let al = r["alignment"].as_str().expect("alignment present");
        let src_words = r["src"].as_str().unwrap().split_whitespace().count();
        let tgt_words = r["tgt"].as_str().unwrap().split_whitespace().count();
        for p in al.split_whitespace() {
            let (i, j) = p.split_once('-').unwrap();
            let (i, j): (usize, usize) = (i.parse().unwrap(), j.parse().unwrap());
            assert!(i < src_words.max(1), "{p} in {al} for {}", r["src"]);
            assert!(j < tgt_words.max(1), "{p} in {al} for {}", r["tgt"]);
            pairs += 1;
        }
    }
    assert!(pairs > recs.len());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["translate"][..],
        &["translate", "-", "--out", "-", "--format", "jsonl,tsv"][..],
        &["translate", "-", "--out", "-", "--format", "moses"][..],
        &["translate", "-", "--engine", "candle", "--dtype", "int8"][..],
        &["translate", "-", "--glob", "a["][..],
        &["translate", "-", "--beam", "2", "--n-best", "3"][..],
        &["translate", "-", "--beam", "0"][..],
        &["translate", "-", "--format", "pdf"][..],
    ] {
        assert_eq!(run(args, None, &[]).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_folder_without_txt_files_is_reported_not_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.md"), "ليس نصا").unwrap();
    let o = run(
        &[
            "translate",
            dir.path().to_str().unwrap(),
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
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no input documents"));
}

#[test]
fn forced_portable_kernels_translate_the_same_and_the_summary_names_them() {
    let base = [
        "translate",
        "corpus/kazakhstan-unrest-report.ar.txt",
        "--model",
        MODEL,
        "--out",
        "-",
        "--format",
        "jsonl",
        "--emit-ids",
        "--threads",
        "2",
    ];
    let best = run(&base, None, &[("TARJAMA_CPU_ISA", "")]);
    let portable = run(&base, None, &[("TARJAMA_CPU_ISA", "portable")]);
    same_translations(&ok(&best), &ok(&portable));
    let summary = String::from_utf8_lossy(&portable.stderr);
    assert!(
        summary.contains("; native f32 on portable, 2 workers × 1 thread"),
        "{summary}"
    );

    let one = run(
        &[&base[..], &["--workers", "1", "--dtype", "int8"]].concat(),
        None,
        &[("TARJAMA_CPU_ISA", "portable")],
    );
    ok(&one);
    let summary = String::from_utf8_lossy(&one.stderr);
    assert!(
        summary.contains("; native int8 on portable, 1 worker × 2 threads"),
        "{summary}"
    );
}
