//! End-to-end test of `tarjama bench` on a random full-size model: the JSON
//! report's keys and the exact token count. No timing assertions: the
//! numbers depend on the machine.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// `tarjama ARGS` with `env` set.
fn tarjama<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `out`, after checking that it exited 0 (its stderr otherwise).
fn succeeded(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The JSON report at `path`.
fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn bench_random_model_writes_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let args = "bench --random opus-mt-ar-en --sentences 4 --batch-size 2 --fixed-new-tokens 3";
    let out = succeeded(tarjama(
        args.split(' ').map(OsStr::new).chain([
            OsStr::new("--threads"),
            OsStr::new("2"),
            OsStr::new("--json"),
            json.as_os_str(),
        ]),
        &[],
    ));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("target tokens/s"), "{stdout}");
    let report = report(&json);
    for key in [
        "tokens_per_second",
        "sentences_per_second",
        "peak_rss_mb",
        "dtype",
        "beam",
        "batch_size",
        "split",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    assert_eq!(report["target_tokens"], 4 * 3);
    assert_eq!(report["sentences"], 4);
    assert_eq!(report["dtype"], "f32");
    assert_eq!(report["beam"], 1);
    assert_eq!(report["batch_size"], 2);
    assert!(report["peak_rss_mb"].as_f64().unwrap() > 0.0);
    // On the CPU there is no GPU to describe.
    assert_eq!(report["device"], "cpu");
    assert!(report["gpu"].is_null() && report["gpu_memory_used_mb"].is_null());
    assert!(!stdout.contains("\ngpu "), "{stdout}");
    // The kernels are reported: the native f32 kernel and the tier.
    assert_eq!(report["engine"], "native");
    let isa = report["isa"].as_str().unwrap();
    assert!(
        ["avx512", "avx2", "portable"].contains(&isa),
        "f32 kernel {isa}"
    );
    assert!(report["cpu_isa"].is_string(), "{report}");
    assert!(report["cpu_features"].is_array(), "{report}");
    assert!(
        stdout.contains(&format!("kernels    {isa} (tier ")),
        "{stdout}"
    );
}

#[test]
fn bench_reports_a_forced_tier_and_the_int8_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let args = "bench --random opus-mt-ar-en --sentences 2 --fixed-new-tokens 2 --threads 2";
    succeeded(tarjama(
        args.split(' ').map(OsStr::new).chain([
            OsStr::new("--dtype"),
            OsStr::new("int8"),
            OsStr::new("--json"),
            json.as_os_str(),
        ]),
        &[("TARJAMA_CPU_ISA", "portable")],
    ));
    let report = report(&json);
    assert_eq!(report["isa"], "portable");
    assert_eq!(report["cpu_isa"], "portable");
    assert_eq!(report["dtype"], "int8");
}

#[test]
fn bench_reads_sources_and_runs_beam_search() {
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("sources.json");
    std::fs::write(&sources, "[[5, 6, 7, 0], [8, 0], [9, 10, 0]]").unwrap();
    let json = dir.path().join("report.json");
    let args = "--batch-size 2 --beam 2 --fixed-new-tokens 2 --threads 2 --json";
    let head = ["bench", "--random", "opus-mt-ar-en", "--sources"].map(OsStr::new);
    succeeded(tarjama(
        head.into_iter()
            .chain([sources.as_os_str()])
            .chain(args.split(' ').map(OsStr::new))
            .chain([json.as_os_str()]),
        &[],
    ));
    let report = report(&json);
    assert_eq!(report["target_tokens"], 3 * 2);
    assert_eq!(report["source_tokens"], 9);
    assert_eq!(report["beam"], 2);
}

#[test]
fn bf16_without_bf16_kernels_says_so() {
    // On kernels without bf16 arithmetic (the AVX2 tier), --dtype bf16 runs
    // at f32 speed: the user is told, not left to find out.
    let avx2 = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.contains(" avx2 ") && c.contains(" fma "))
        .unwrap_or(false);
    if !avx2 {
        return;
    }
    let args =
        "bench --model tests/fixtures/marian --dtype bf16 --sentences 2 --fixed-new-tokens 2";
    let out = succeeded(tarjama(args.split(' '), &[("TARJAMA_CPU_ISA", "avx2")]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no bf16 arithmetic"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bf16 widened to f32"), "{stdout}");
}

/// `tarjama bench --sweep … --sweep-out DIR/s` on the tiny fixture model;
/// the exit status is checked, the output files are returned.
fn sweep(dir: &Path, args: &[&str]) -> (String, String, String) {
    let prefix = dir.join("s");
    let head = "bench --model tests/fixtures/marian --sentences 4 --fixed-new-tokens 2";
    succeeded(tarjama(
        head.split(' ')
            .chain(args.iter().copied())
            .map(OsStr::new)
            .chain([OsStr::new("--sweep-out"), prefix.as_os_str()]),
        &[],
    ));
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("s.{ext}"))).unwrap();
    (read("csv"), read("json"), read("svg"))
}

/// The CSV's rows as column name → value maps, after checking the header.
fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    for col in [
        "batch_size",
        "threads",
        "beam",
        "dtype",
        "tokens_per_second",
        "sentences_per_second",
        "decoder_s",
        "projection_s",
        "peak_rss_mb",
    ] {
        assert!(header.iter().any(|h| h == col), "no {col} in {header:?}");
    }
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The SVG parsed as XML: the coloured polylines (series lines and their
/// legend samples; plotters draws axes and ticks as black polylines) and
/// all text.
fn svg_lines_and_text(svg: &str) -> (Vec<String>, String) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut strokes, mut text) = (Vec::new(), String::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "polyline" => {
                let stroke = e.try_get_attribute("stroke").unwrap().unwrap();
                let stroke = stroke.value.into_owned();
                if stroke != "#000000" {
                    strokes.push(stroke);
                }
            }
            Event::Text(t) => {
                text.push_str(&t.xml10_content());
                text.push('\n');
            }
            _ => {}
        }
    }
    (strokes, text)
}

#[test]
fn bench_sweep_runs_every_combination_with_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    // Values listed after one --sweep; --beam is not swept and applies to all.
    let (csv, json, svg) = sweep(
        dir.path(),
        &["--beam", "2", "--sweep", "batch=1,2", "threads=1,2"],
    );

    let rows = csv_rows(&csv);
    let combos: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["batch_size"].as_str(), r["threads"].as_str()))
        .collect();
    assert_eq!(combos, [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]);
    for r in &rows {
        assert_eq!((r["beam"].as_str(), r["dtype"].as_str()), ("2", "f32"));
        assert_eq!(r["target_tokens"], "8");
        assert!(r["tokens_per_second"].parse::<f64>().unwrap() > 0.0);
        assert!(r["peak_rss_mb"].parse::<f64>().unwrap() > 0.0);
    }

    let sweep: serde_json::Value = serde_json::from_str(&json).unwrap();
    let jrows = sweep["rows"].as_array().unwrap();
    assert_eq!(jrows.len(), rows.len());
    for (j, c) in jrows.iter().zip(&rows) {
        assert_eq!(j["batch_size"].to_string(), c["batch_size"]);
        // Each child had its own pool of the asked size, candle too.
        assert_eq!(j["rayon_threads"].to_string(), c["threads"]);
        assert_eq!(j["threads"], j["rayon_threads"]);
        assert_eq!(j["beam"], 2);
        let tps = j["tokens_per_second"].as_f64().unwrap();
        assert!((tps - c["tokens_per_second"].parse::<f64>().unwrap()).abs() < 0.01);
    }
    assert!(sweep["tarjama_version"].as_str().unwrap().starts_with("0."));
    assert!(sweep["date"].as_str().unwrap().ends_with('Z'));
    assert!(
        sweep["command"]
            .as_str()
            .unwrap()
            .contains("--sweep batch=1,2")
    );
    assert!(sweep["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(sweep["machine"]["cpu_isa"].is_string());
    assert_eq!(sweep["axes"][1]["key"], "threads");

    // Batch on the x axis: one line per thread count, and its legend sample.
    let (strokes, text) = svg_lines_and_text(&svg);
    assert_eq!(strokes.len(), 2 * 2, "{strokes:?}");
    assert_eq!(strokes[0], strokes[2]);
    assert_ne!(strokes[0], strokes[1]);
    for label in [
        "batch size (sentences, log scale)",
        "target tokens/s",
        "1 thread, beam 2, f32",
        "2 threads, beam 2, f32",
        "tarjama bench sweep",
    ] {
        assert!(text.contains(label), "no {label:?} in {text}");
    }
}

#[test]
fn bench_sweep_repeats_the_option_and_sweeps_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, json, svg) = sweep(
        dir.path(),
        &["--sweep", "beam=1,2", "--sweep", "dtype=f32,int8"],
    );
    let rows = csv_rows(&csv);
    let combos: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["beam"].as_str(),
                r["dtype"].as_str(),
                r["batch_size"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        combos,
        [
            ("1", "f32", "32"),
            ("1", "int8", "32"),
            ("2", "f32", "32"),
            ("2", "int8", "32")
        ]
    );
    let sweep: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(sweep["rows"].as_array().unwrap().len(), 4);
    assert_eq!(sweep["rows"][1]["dtype"], "int8");
    // One batch size: four one-point series, still one line each.
    let (strokes, text) = svg_lines_and_text(&svg);
    assert_eq!(strokes.len(), 2 * 4, "{strokes:?}");
    assert!(text.contains(", beam 2, int8"), "{text}");
}

#[test]
fn bench_sweep_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("s");
    for (sweep, says) in [
        (&["width=1,2"][..], "unknown key \"width\""),
        (&["batch="][..], "batch has no values"),
        (&["beam=1,,2"][..], "an empty value"),
        (&["threads=1,two"][..], "\"two\" is not a whole number"),
        (&["dtype=f64"][..], "not one of f32, f16, bf16, int8"),
        (&["batch=1", "batch=2"][..], "batch is swept twice"),
    ] {
        let head = ["bench", "--model", "tests/fixtures/marian", "--sweep"];
        let out = tarjama(
            head.iter()
                .chain(sweep)
                .map(OsStr::new)
                .chain([OsStr::new("--sweep-out"), prefix.as_os_str()]),
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sweep:?}: {stderr}");
        assert!(stderr.contains(says), "{sweep:?}: {stderr}");
    }
    // --sweep needs --sweep-out.
    let out = tarjama(["bench", "--sweep", "batch=1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sweep-out"));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
