//! Helpers shared by the integration tests.

// Each test crate compiles this module and uses only some of it.
#![allow(dead_code)]

pub mod align_pairs;

/// xorshift64*: deterministic, dependency-free randomness for generated input.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Runs the `tarjama` binary in the repository root with `stdin` piped in
/// and `env` added to its environment.
pub fn run(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A command that fails before reading its input (a usage error) closes
    // the pipe first: that is its answer, not the test's failure.
    if let Err(e) = pipe.write_all(stdin.unwrap_or_default())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        panic!("writing the child's standard input: {e}");
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// `tarjama translate INPUTS --model MODEL --out OUT` (every format).
pub fn translate_into(
    inputs: &str,
    model: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    run(
        &[
            "translate",
            inputs,
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        &[],
    )
}

/// The standard output of a run that must have succeeded (its stderr in
/// the failure message otherwise).
pub fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}
