#!/usr/bin/env python3
"""Corpus-scale benchmark of `tarjama translate` (issue: translate at corpus scale).

Generates N documents of random Arabic sentences (words drawn from the sample
corpus, a fixed seed, so that sentences are distinct as in real news text),
runs `tarjama translate DIR --out OUT` on the tiny fixture model, and records
for each run: peak RSS (the child's own, from wait4), wall time, and the
summary line's sentences, target tokens, batches and padding.

Two things are measured, side by side in one run (absolute times drift on a
shared machine; compare within one table):
  * --sizes: peak RSS and throughput for 250 / 1,000 / 4,000 documents, this
    build against a baseline binary (e.g. the build before streaming:
    `git worktree add /tmp/base b11fd37 && cargo build --release
    --manifest-path /tmp/base/Cargo.toml`);
  * --windows: padding and throughput against --window on 2,000 documents
    and on the sample corpus (corpus/).

Usage:
  cargo build --release
  python3 benches/corpus/run.py --baseline /tmp/base/target/release/tarjama \
      --json benches/corpus/results-DATE.json
Only the Python standard library is needed.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "tests/fixtures/marian")
SUMMARY = re.compile(
    r"(\d+) sentences \((\d+) unique\), (\d+) source / (\d+) target tokens in "
    r"[\d.]+ s \([\d.]+ target tokens/s\); (\d+) batches, ([\d.]+)% padding"
)


def words():
    text = ""
    for name in sorted(os.listdir(os.path.join(ROOT, "corpus"))):
        with open(os.path.join(ROOT, "corpus", name), encoding="utf-8") as f:
            text += f.read()
    return sorted(set(re.findall(r"[\u0600-\u06ff]+", text)))


def make_corpus(folder, n, seed=0):
    rng = random.Random(seed)
    vocab = words()
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        paras = []
        for _ in range(rng.randint(1, 4)):
            sents = [
                " ".join(rng.choice(vocab) for _ in range(rng.randint(4, 24))) + "."
                for _ in range(rng.randint(1, 4))
            ]
            paras.append(" ".join(sents))
        sub = os.path.join(folder, f"{i % 10:02d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"doc{i:05d}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(paras) + "\n")


def run(binary, inputs, out, extra):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [binary, "translate", inputs, "--model", MODEL, "--out", out, "--format", "jsonl"]
    cmd += extra
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    m = SUMMARY.search(err)
    sentences, unique, src, tgt, batches, padding = m.groups()
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "sentences": int(sentences),
        "unique": int(unique),
        "target_tokens": int(tgt),
        "batches": int(batches),
        "padding_pct": float(padding),
        "target_tokens_per_s": round(int(tgt) / wall, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/tarjama"))
    ap.add_argument("--baseline", help="an older tarjama binary to compare with")
    ap.add_argument("--sizes", default="250,1000,4000")
    ap.add_argument("--windows", default="256,1024,2048,4096,8192,1000000")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--json")
    args = ap.parse_args()
    common = ["--threads", args.threads]
    work = tempfile.mkdtemp(prefix="tarjama-corpus-bench-")
    results = {"machine": os.uname().nodename, "cpu_count": os.cpu_count(), "sizes": [], "windows": []}

    def best(runs):
        return min(runs, key=lambda r: r["wall_s"]) | {
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "cpu_s": min(r["cpu_s"] for r in runs),
        }

    def line(label, name, r):
        print(f"{label:<12} {name:<14} {r['peak_rss_mb']:>7} {r['wall_s']:>7} {r['cpu_s']:>7} "
              f"{r['target_tokens_per_s']:>8} {r['padding_pct']:>6} {r['batches']:>7}")

    header = f"{'input':<12} {'run':<14} {'RSS MB':>7} {'wall s':>7} {'cpu s':>7} {'tok/s':>8} {'pad %':>6} {'batches':>7}"
    print(header)
    out = os.path.join(work, "out")
    for n in [int(x) for x in args.sizes.split(",") if x]:
        folder = os.path.join(work, f"docs{n}")
        make_corpus(folder, n)
        binaries = [("this", args.binary)] + ([("baseline", args.baseline)] if args.baseline else [])
        # Interleaved, so that a change in the machine's load hits both.
        runs = {name: [] for name, _ in binaries}
        for _ in range(args.repeat):
            for name, binary in binaries:
                runs[name].append(run(binary, folder, out, common))
        for name, _ in binaries:
            r = best(runs[name])
            results["sizes"].append({"documents": n, "binary": name} | r)
            line(f"{n} docs", name, r)

    print()
    print(header)
    folder = os.path.join(work, "docs2000")
    make_corpus(folder, 2000)
    windows = [int(x) for x in args.windows.split(",") if x]
    for label, inputs in [("2000 docs", folder), ("corpus/", os.path.join(ROOT, "corpus"))]:
        runs = {w: [] for w in windows}
        for _ in range(args.repeat):
            for w in windows:
                runs[w].append(run(args.binary, inputs, out, ["--window", str(w)] + common))
        for w in windows:
            r = best(runs[w])
            results["windows"].append({"input": label, "window": w} | r)
            line(label, f"window {w}", r)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
