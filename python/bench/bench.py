"""Throughput of the Python binding against the CLI, and Ray Data against one process.

    python/.venv/bin/python python/bench/bench.py [--copies 20] [--repeat 3] [--ray]

Sentences: the sample corpus's sentences (tarjama.segment), each in `copies`
numbered variants so that none is a duplicate (the engine translates each
distinct sentence once). Model: the tiny random fixture (tests/fixtures/marian)
unless --model. The CLI runs on the same sentences with --input-format lines
(one per line, no segmentation) and the same --threads/--workers; its time is
the whole process (start, model load, JSONL to /dev/null), the binding's the
translate_batch call alone and with the Translator's construction.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import tarjama

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]


def sentences(copies: int) -> list[str]:
    base = []
    for p in sorted((REPO / "corpus").glob("*.txt")):
        base += [s.text for s in tarjama.segment(p.read_text(encoding="utf-8"))]
    base = list(dict.fromkeys(base))
    return [f"{s} ({i})" if i else s for i in range(copies) for s in base]


def best(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(REPO / "tests/fixtures/marian"))
    ap.add_argument("--cli", default=os.environ.get("TARJAMA_CLI", str(REPO / "python/target/release/tarjama")))
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ray", action="store_true")
    args = ap.parse_args()
    src = sentences(args.copies)
    print(f"{len(src)} distinct sentences, model {args.model}")
    results = {"sentences": len(src)}
    with tempfile.TemporaryDirectory() as tmp:
        lines = pathlib.Path(tmp) / "lines.txt"
        lines.write_text("\n".join(src) + "\n", encoding="utf-8")
        for threads, workers in [(1, 1), (2, 1), (2, 2)]:
            cmd = [args.cli, "translate", str(lines), "--input-format", "lines", "--model", args.model,
                   "--out", "-", "--format", "jsonl", "--quiet", "--threads", str(threads),
                   "--workers", str(workers)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            cli_texts = [json.loads(line)["tgt"] for line in out.splitlines()]
            cli_s = best(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL), args.repeat)
            tr = tarjama.Translator(args.model, threads=threads, workers=workers)
            py_texts = [t.text for t in tr.translate_batch(src)]
            assert py_texts == cli_texts, "the binding and the CLI disagree"
            py_s = best(lambda: tr.translate_batch(src), args.repeat)
            py_all_s = best(lambda: tarjama.Translator(args.model, threads=threads, workers=workers)
                            .translate_batch(src), args.repeat)
            key = f"{threads}t-{workers}w"
            results[key] = dict(cli_s=cli_s, py_batch_s=py_s, py_with_load_s=py_all_s)
            print(f"threads={threads} workers={workers}: CLI {cli_s:.3f} s ({len(src)/cli_s:.0f} sent/s), "
                  f"translate_batch {py_s:.3f} s ({len(src)/py_s:.0f} sent/s), "
                  f"with Translator() {py_all_s:.3f} s; binding/CLI {py_all_s/cli_s:.3f}")
    if args.ray:
        import ray
        from tarjama.ray import translate as ray_translate

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ds = ray.data.from_items([{"text": s} for s in src], override_num_blocks=8).materialize()

        def run_ray():
            out = ray_translate(ds, model=args.model, concurrency=2, num_cpus=1,
                                        threads=1, batch_size=128).materialize()
            return out

        rows = run_ray().take_all()
        want = {t: x.text for t, x in zip(src, tarjama.Translator(args.model, threads=2).translate_batch(src))}
        assert all(want[r["text"]] == r["translation"] for r in rows)
        ray_s = best(run_ray, args.repeat)
        one = {}
        for workers in (1, 2):
            one[workers] = best(lambda: tarjama.Translator(args.model, threads=2, workers=workers)
                                .translate_batch(src), args.repeat)
        results["ray"] = dict(ray_2x1_s=ray_s, one_process_2t_1w_s=one[1], one_process_2t_2w_s=one[2])
        print(f"Ray Data 2 actors x 1 thread (batch_size 128, actor start and model load included): "
              f"{ray_s:.3f} s ({len(src)/ray_s:.0f} sent/s); 1 process x 2 threads: "
              f"workers=1 {one[1]:.3f} s, workers=2 {one[2]:.3f} s (Translator() included)")
        ray.shutdown()
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
