//! End-to-end test of `tarjama bench` on a random full-size model: the JSON
//! report's keys and the exact token count. No timing assertions: the
//! numbers depend on the machine.

use std::process::Command;

#[test]
fn bench_random_model_writes_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args([
            "bench",
            "--random",
            "opus-mt-ar-en",
            "--sentences",
            "4",
            "--batch-size",
            "2",
            "--fixed-new-tokens",
            "3",
            "--threads",
            "2",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("target tokens/s"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
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
    let out = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(["bench", "--random", "opus-mt-ar-en", "--sentences", "2"])
        .args([
            "--fixed-new-tokens",
            "2",
            "--threads",
            "2",
            "--dtype",
            "int8",
        ])
        .arg("--json")
        .arg(&json)
        .env("TARJAMA_CPU_ISA", "portable")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
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
    let out = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(["bench", "--random", "opus-mt-ar-en", "--sources"])
        .arg(&sources)
        .args([
            "--batch-size",
            "2",
            "--beam",
            "2",
            "--fixed-new-tokens",
            "2",
        ])
        .args(["--threads", "2", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
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
    let run = |isa: &str| {
        Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .env("TARJAMA_CPU_ISA", isa)
            .args([
                "bench",
                "--model",
                "tests/fixtures/marian",
                "--dtype",
                "bf16",
            ])
            .args(["--sentences", "2", "--fixed-new-tokens", "2"])
            .output()
            .unwrap()
    };
    let out = run("avx2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no bf16 arithmetic"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bf16 widened to f32"), "{stdout}");
}
