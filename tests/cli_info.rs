//! `tarjama info` and the forced kernel tier (`TARJAMA_CPU_ISA`) as the
//! commands see it: what `info` reports, and that an invalid tier is a clear
//! usage error (exit 2) for `info`, `translate` and `bench` before any work.

mod common;
use common::run;
use serde_json::Value;

const TIERS: [&str; 4] = ["avx512", "avx2-vnni", "avx2", "portable"];

fn info_json(env: &[(&str, &str)]) -> Value {
    let out = run(&["info", "--json"], None, env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn info_lists_features_tiers_kernels_and_threads() {
    let out = run(&["info"], None, &[("TARJAMA_CPU_ISA", "")]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("tarjama {}", env!("CARGO_PKG_VERSION"))));
    for tier in TIERS {
        assert!(text.contains(tier), "{tier} missing:\n{text}");
    }
    for line in [
        "cpu features",
        "cpu tiers",
        "selected",
        "kernels",
        "threads",
        "engine",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(text.contains("avx512f") && text.contains("fma"), "{text}");
    assert!(
        text.contains("f32 on ") && text.contains("int8 on "),
        "{text}"
    );

    let j = info_json(&[("TARJAMA_CPU_ISA", "")]);
    let checked = strings(&j["cpu_features_checked"]);
    let found = strings(&j["cpu_features"]);
    assert!(found.iter().all(|f| checked.contains(f)), "{j}");
    let supported = strings(&j["cpu_isa_supported"]);
    assert_eq!(supported.last().map(String::as_str), Some("portable"));
    // The tier chosen without the variable is the best supported one.
    assert_eq!(j["cpu_isa"], supported[0].as_str());
    assert_eq!(j["cpu_isa_forced"], false);
    for p in ["f32", "bf16", "int8"] {
        assert!(j["kernels"][p].is_string(), "{p}: {j}");
    }
    let threads = j["threads"].as_u64().unwrap();
    let shares: Vec<u64> = j["worker_threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(shares.iter().sum::<u64>(), threads);
    assert_eq!(shares.len() as u64, j["workers"].as_u64().unwrap());
    assert_eq!(j["engine"], "native");
}

#[test]
fn a_forced_tier_is_reported_and_sets_every_kernel() {
    let j = info_json(&[("TARJAMA_CPU_ISA", "portable")]);
    assert_eq!(j["cpu_isa"], "portable");
    assert_eq!(j["cpu_isa_forced"], true);
    for p in ["f32", "bf16", "int8"] {
        assert_eq!(j["kernels"][p], "portable", "{j}");
    }
    let out = run(&["info"], None, &[("TARJAMA_CPU_ISA", "portable")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("portable (forced by TARJAMA_CPU_ISA)"),
        "{text}"
    );
}

/// Exit 2, one message naming the variable, nothing on standard output.
fn assert_isa_error(out: &std::process::Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains("TARJAMA_CPU_ISA"), "{what}: {err}");
    assert!(out.stdout.is_empty(), "{what} wrote output");
}

#[test]
fn an_unknown_tier_is_a_usage_error_for_info_translate_and_bench() {
    let env = [("TARJAMA_CPU_ISA", "bogus")];
    let out = run(&["info"], None, &env);
    assert_isa_error(&out, "info");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"bogus\" is not a tier"), "{err}");
    for tier in TIERS {
        assert!(err.contains(tier), "the error lists {tier}: {err}");
    }
    assert_isa_error(&run(&["info", "--json"], None, &env), "info --json");

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let translate = run(
        &[
            "translate",
            "-",
            "--model",
            "tests/fixtures/marian",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        Some("جملة أولى.\n".as_bytes()),
        &env,
    );
    assert_isa_error(&translate, "translate");
    assert!(!out_dir.exists(), "translate wrote files");
    let translate_stdout = run(
        &[
            "translate",
            "-",
            "--model",
            "tests/fixtures/marian",
            "--out",
            "-",
            "--format",
            "jsonl",
        ],
        Some("جملة أولى.\n".as_bytes()),
        &env,
    );
    assert_isa_error(&translate_stdout, "translate --out -");

    let json = dir.path().join("bench.json");
    let bench = run(
        &[
            "bench",
            "--random",
            "opus-mt-ar-en",
            "--sentences",
            "1",
            "--json",
            json.to_str().unwrap(),
        ],
        None,
        &env,
    );
    assert_isa_error(&bench, "bench");
    assert!(!json.exists());
}

#[test]
fn a_tier_this_cpu_lacks_is_a_usage_error() {
    let supported = strings(&info_json(&[("TARJAMA_CPU_ISA", "")])["cpu_isa_supported"]);
    // Nothing to check on a CPU that runs every tier.
    let Some(missing) = TIERS.iter().find(|t| !supported.iter().any(|s| s == *t)) else {
        return;
    };
    let out = run(&["info"], None, &[("TARJAMA_CPU_ISA", missing)]);
    assert_isa_error(&out, "info");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lacks"), "{err}");
}

/// The CUDA line says whether this build has CUDA, and with it what the
/// driver found; never a device that was not opened.
#[test]
fn info_says_whether_cuda_is_compiled_in_and_what_it_found() {
    let j = info_json(&[]);
    let cuda = &j["cuda"];
    assert_eq!(cuda["compiled"], cfg!(feature = "cuda"), "{j}");
    let text = String::from_utf8(run(&["info"], None, &[]).stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("cuda "))
        .unwrap_or_else(|| panic!("no cuda line:\n{text}"));
    if cfg!(feature = "cuda") {
        // Either a GPU with its name, or the driver's reason for none.
        assert_eq!(cuda["device"].is_null(), cuda["error"].is_string(), "{j}");
        match cuda["device"]["name"].as_str() {
            Some(name) => assert!(line.contains(name), "{line}"),
            None => assert!(line.contains("compiled in, no device found ("), "{line}"),
        }
    } else {
        assert!(cuda["device"].is_null() && cuda["error"].is_null(), "{j}");
        assert!(
            line.ends_with("not compiled in (build with --features cuda)"),
            "{line}"
        );
    }
}

/// Without CUDA compiled in, `--device cuda` fails at once and says how to
/// get it.
#[cfg(not(feature = "cuda"))]
#[test]
fn device_cuda_without_the_feature_is_an_error_that_names_it() {
    let out = run(
        &["bench", "--device", "cuda", "--sentences", "1"],
        None,
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--features cuda"), "{err}");
    assert!(out.stdout.is_empty());
}

/// `--self-test` runs the token-selection op on each device the build opens
/// (here the CPU: the candle op against the host code on its generated
/// cases) and says so, in text and JSON; without it, JSON has no such key.
#[test]
fn self_test_reports_each_device_it_checked() {
    let out = run(&["info", "--self-test", "--json"], None, &[]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tests = v["self_test"].as_array().unwrap();
    let devices: Vec<&str> = tests
        .iter()
        .map(|t| t["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices[0], "cpu");
    let gpu = !v["cuda"]["device"].is_null();
    assert_eq!(devices.len(), 1 + usize::from(gpu));
    let c = &tests[0]["check"];
    assert_eq!(c["mismatch_count"], 0);
    assert!(c["cases"].as_u64().unwrap() >= 5 && c["picks"].as_u64().unwrap() > 1000);

    let text = String::from_utf8(run(&["info", "--self-test"], None, &[]).stdout).unwrap();
    assert!(
        text.contains("self-test     token selection on cpu: ")
            && text.contains("picks equal to the host's"),
        "{text}"
    );
    assert!(info_json(&[]).get("self_test").is_none());
}
