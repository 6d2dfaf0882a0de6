//! Puts the git commit into `tarjama --version` when built from a checkout
//! (`tarjama 0.1.0 (git 1a2b3c4d5e6f)`); a build from a source archive says
//! only the version. With `--features cuda`, compiles tarjama's CUDA kernels
//! to PTX (`$OUT_DIR/kernels.rs` names them), for the compute capability in
//! `CUDA_COMPUTE_CAP` or of the GPU `nvidia-smi` finds, as candle does.

use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let full = match commit {
        Some(c) => format!("{version} (git {c})"),
        None => version,
    };
    println!("cargo:rustc-env=TARJAMA_VERSION={full}");
    // A new commit moves HEAD's branch (or HEAD itself when detached).
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    #[cfg(feature = "cuda")]
    cuda_kernels();
}

#[cfg(feature = "cuda")]
fn cuda_kernels() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let built = cudaforge::KernelBuilder::new()
        .source_files(["src/marian/pick.cu"])
        .out_dir(&out)
        .arg("-std=c++17")
        .arg("-O3")
        .build_ptx()
        .and_then(|ptx| ptx.write(out.join("kernels.rs")));
    if let Err(e) = built {
        panic!("compiling the CUDA kernels: {e}");
    }
}
