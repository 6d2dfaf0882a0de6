//! `pick_row` against a plain reference (the processed row spelled out, every
//! token sorted), the candle op against `pick_rows`, and `pick.cu` against
//! `pick_rows` through `emulate.cpp`, on the cases of [`super::check`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::check::{Case, cases, close, same_bits};
use super::*;

/// The semantics of `PickSpec` written out plainly.
fn reference(c: &Case) -> Vec<Pick> {
    let spec = &c.spec;
    let mut out = Vec::new();
    for (row, e) in c.logits.chunks(c.vocab).zip(&spec.rows) {
        let mut s = row.to_vec();
        if spec.log_probs {
            log_softmax_in_place(&mut s);
        }
        if e.forced {
            for (t, v) in s.iter_mut().enumerate() {
                *v = if spec.forced_tokens.contains(&(t as u32)) {
                    0.0
                } else {
                    f32::NEG_INFINITY
                };
            }
        } else {
            for &t in &e.penalised {
                let v = &mut s[t as usize];
                *v = if *v < 0.0 {
                    *v * spec.repetition_penalty
                } else {
                    *v / spec.repetition_penalty
                };
            }
            for &t in &e.banned {
                s[t as usize] = f32::NEG_INFINITY;
            }
        }
        if spec.renormalize {
            log_softmax_in_place(&mut s);
        }
        let (m, lse) = max_and_log_sum_exp(&s);
        for &base in &e.bases {
            let key = |t: usize| {
                let v = s[t] + base;
                if v.is_nan() { f32::NEG_INFINITY } else { v }
            };
            let mut order: Vec<usize> = (0..c.vocab).collect();
            order.sort_by(|&a, &b| key(b).partial_cmp(&key(a)).unwrap().then(a.cmp(&b)));
            out.extend(order[..spec.k].iter().map(|&t| Pick {
                token: t as u32,
                score: key(t),
                logprob: if spec.log_probs { s[t] } else { s[t] - m - lse },
            }));
        }
    }
    out
}

#[test]
fn host_matches_the_plain_reference() {
    for (n, c) in cases().iter().enumerate() {
        let got = pick_rows(&mut c.logits.clone(), c.vocab, &c.spec);
        let want = reference(c);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.token == w.token
                    && same_bits(g.score, w.score)
                    && same_bits(g.logprob, w.logprob),
                "case {n}, pick {i}: {g:?} != {w:?}"
            );
        }
    }
}

#[test]
fn candle_op_on_the_cpu_is_pick_rows() {
    use candle_core::{Device, Tensor};
    for c in cases() {
        let rows = c.spec.rows.len();
        let t = Tensor::from_slice(&c.logits, (rows, c.vocab), &Device::Cpu).unwrap();
        let out = t.apply_op1_no_bwd(&PickOp { spec: &c.spec }).unwrap();
        assert_eq!(out.dims(), &[rows, c.spec.per_row(), 3]);
        let got = unflatten(&out.flatten_all().unwrap().to_vec1().unwrap());
        let want = pick_rows(&mut c.logits.clone(), c.vocab, &c.spec);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.token == w.token
                    && same_bits(g.score, w.score)
                    && same_bits(g.logprob, w.logprob)
            );
        }
    }
}

#[test]
fn spec_check_names_the_problem() {
    let c = &cases()[1];
    assert!(c.spec.check(14, 1000).is_ok());
    assert!(
        c.spec
            .check(13, 1000)
            .unwrap_err()
            .contains("14 row edits for 13 rows")
    );
    assert!(c.spec.check(14, 7).unwrap_err().contains("k = 8"));
    let mut bad = c.spec.clone();
    bad.rows[3].banned.push(1000);
    assert!(
        bad.check(14, 1000)
            .unwrap_err()
            .contains("outside the vocabulary")
    );
    let mut bad = c.spec.clone();
    bad.rows[2].bases.push(0.0);
    assert!(
        bad.check(14, 1000)
            .unwrap_err()
            .contains("same, non-zero number of bases")
    );
}

/// Builds `emulate.cpp` (with `pick.cu`) once; `None` when there is no C++
/// compiler, which CI does not accept.
fn emulator() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/marian/pick/emulate.cpp");
            let dir = std::env::temp_dir().join(format!("tarjama-pick-emu-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let exe = dir.join("emulate");
            let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
            let built = Command::new(&cxx)
                .args(["-std=c++20", "-O2", "-pthread", "-Wall", "-Werror", "-o"])
                .arg(&exe)
                .arg(&src)
                .status();
            match built {
                Ok(s) if s.success() => Some(exe),
                Ok(s) => panic!("{cxx} failed on {} ({s})", src.display()),
                Err(e) if std::env::var_os("CI").is_none() => {
                    eprintln!("skipped: no C++ compiler ({cxx}: {e})");
                    None
                }
                Err(e) => panic!("CI needs a C++ compiler for the kernel test ({cxx}: {e})"),
            }
        })
        .clone()
}

fn write_case(c: &Case) -> Vec<u8> {
    let flat = Flat::new(&c.spec);
    let rows = c.spec.rows.len();
    let nbases = c.spec.rows[0].bases.len();
    let mut b = Vec::new();
    let ints = |b: &mut Vec<u8>, v: &[i32]| v.iter().for_each(|x| b.extend(x.to_le_bytes()));
    ints(
        &mut b,
        &[
            rows as i32,
            c.vocab as i32,
            c.spec.k as i32,
            nbases as i32,
            i32::from(c.spec.log_probs),
            i32::from(c.spec.renormalize),
        ],
    );
    let floats = |b: &mut Vec<u8>, v: &[f32]| v.iter().for_each(|x| b.extend(x.to_le_bytes()));
    floats(&mut b, &[c.spec.repetition_penalty]);
    floats(&mut b, &c.logits);
    ints(&mut b, &flat.offsets);
    ints(&mut b, &flat.tokens);
    ints(&mut b, &flat.kinds);
    ints(&mut b, &flat.forced_rows);
    ints(&mut b, &[flat.forced_tokens.len() as i32]);
    ints(&mut b, &flat.forced_tokens);
    floats(&mut b, &flat.bases);
    b
}

fn run_emulated(exe: &Path, c: &Case) -> Vec<Pick> {
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&write_case(c))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    unflatten(&v)
}

#[test]
fn cuda_kernel_matches_the_host_in_emulation() {
    let Some(exe) = emulator() else { return };
    for (n, c) in cases().iter().enumerate() {
        let got = run_emulated(&exe, c);
        let want = pick_rows(&mut c.logits.clone(), c.vocab, &c.spec);
        assert_eq!(got.len(), want.len(), "case {n}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.token == w.token && close(g.score, w.score) && close(g.logprob, w.logprob),
                "case {n}, pick {i}: kernel {g:?}, host {w:?}"
            );
        }
    }
}
