#!/usr/bin/env python3
"""Peer comparison: tarjama vs transformers vs CTranslate2 on one workload.

Builds one random-weight model of the opus-mt-ar-en shape with transformers
(d_model 512, 6+6 layers, 8 heads, FFN 2048, swish, vocabulary 62834, tied),
saves it under benches/peers/work/ (git-ignored), converts it for CTranslate2
(float32 and int8), writes the workload (random source ids, lengths 10..=60
with </s>, drawn with the same SplitMix64 as `tarjama bench`, so the same
seed gives the same ids) to a JSON file, and runs every engine on exactly
those ids with EOS disabled (exactly --new-tokens new tokens per sentence),
in batches cut in input order. Prints a table of target tokens/s and
tarjama's ratio to each peer, and writes benches/peers/work/results.json.

Setup (once), from the repository root:

    python3 -m venv benches/peers/.venv
    benches/peers/.venv/bin/pip install -r benches/peers/requirements.txt
    cargo build --release
    benches/peers/.venv/bin/python benches/peers/run.py

CTranslate2 is run in a child process per compute type and ISA
(CT2_FORCE_CPU_ISA is read when the library starts); the faster ISA of
AVX512/AVX2 on a short probe is kept.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = HERE / "work"
MASK = (1 << 64) - 1

VOCAB, PAD, EOS = 62834, 62833, 0


class SplitMix64:
    """The generator of src/bench.rs, bit for bit."""

    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def range(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)


def workload(n, seed):
    rng = SplitMix64(seed)
    out = []
    for _ in range(n):
        length = rng.range(10, 60)
        row = []
        while len(row) < length - 1:
            i = rng.range(0, VOCAB - 1)
            if i not in (EOS, PAD):
                row.append(i)
        out.append(row + [EOS])
    return out


def build_model(model_dir, seed):
    import torch
    from transformers import MarianConfig, MarianMTModel

    if (model_dir / "model.safetensors").is_file():
        return
    torch.manual_seed(seed)
    cfg = MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=512,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        activation_function="swish", max_position_embeddings=512,
        pad_token_id=PAD, decoder_start_token_id=PAD, eos_token_id=EOS,
        forced_eos_token_id=EOS, scale_embedding=True,
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
    )
    MarianMTModel(cfg).eval().save_pretrained(model_dir)


def tok(i):
    return "</s>" if i == EOS else "<unk>" if i == 1 else "<pad>" if i == PAD else f"t{i}"


class FakeTokenizer:
    """What CTranslate2's Marian loader reads from a tokenizer; the random
    model has no SentencePiece files, and the ids are all we feed."""

    eos_token = "</s>"
    unk_token = "<unk>"

    def get_vocab(self):
        return {tok(i): i for i in range(VOCAB)}


def convert_ct2(model_dir, out_dir, quant):
    if (out_dir / "model.bin").is_file():
        return
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_tokenizer(self, *args, **kwargs):
            return FakeTokenizer()

    Converter(str(model_dir)).convert(str(out_dir), quantization=quant, force=True)


def batches(sources, size):
    return [sources[i:i + size] for i in range(0, len(sources), size)]


def run_transformers(model_dir, cases, threads, new_tokens):
    import torch
    from transformers import MarianMTModel

    torch.set_num_threads(threads)
    model = MarianMTModel.from_pretrained(model_dir).eval()
    results = []
    for name, sources, bs, beam in cases:
        def gen(batch, n):
            width = max(map(len, batch))
            ids = torch.tensor([r + [PAD] * (width - len(r)) for r in batch])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in batch])
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids, attention_mask=mask, num_beams=beam,
                    do_sample=False, max_new_tokens=n, min_new_tokens=n,
                    early_stopping=False, length_penalty=1.0,
                )
            return (out.shape[1] - 1) * out.shape[0]

        gen(batches(sources, bs)[0], 2)  # warm-up
        start = time.perf_counter()
        tokens = sum(gen(b, new_tokens) for b in batches(sources, bs))
        secs = time.perf_counter() - start
        results.append(row("transformers f32", name, tokens, secs, len(sources)))
    return results


def ct2_worker(args):
    """Child process: runs cases on one CTranslate2 model, prints JSON."""
    import ctranslate2

    cases = json.loads(Path(args.ct2_cases).read_text())
    tr = ctranslate2.Translator(args.ct2_worker, device="cpu", intra_threads=args.threads,
                                inter_threads=1, compute_type="default")
    out = []
    for name, sources, bs, beam in cases:
        def gen(batch, n):
            res = tr.translate_batch(
                [[tok(i) for i in r] for r in batch], beam_size=beam,
                max_decoding_length=n, min_decoding_length=n, max_batch_size=0,
                return_scores=False,
            )
            return sum(len(r.hypotheses[0]) for r in res)

        gen(batches(sources, bs)[0], 2)
        start = time.perf_counter()
        tokens = sum(gen(b, args.new_tokens) for b in batches(sources, bs))
        out.append([name, tokens, time.perf_counter() - start, len(sources)])
    # VmHWM belongs to this process's own address space (ru_maxrss would carry
    # over the parent's peak across fork and exec).
    status = Path("/proc/self/status").read_text()
    peak_mb = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM")) / 1024
    print(json.dumps({"cases": out, "peak_rss_mb": peak_mb}))


def run_ct2(model_dir, cases, args, isa):
    cases_file = WORK / "ct2_cases.json"
    cases_file.write_text(json.dumps(cases))
    env = dict(os.environ)
    if isa:
        env["CT2_FORCE_CPU_ISA"] = isa
        # CTranslate2's own kernels follow CT2_FORCE_CPU_ISA; the GEMM
        # libraries it calls (oneDNN, MKL) pick their ISA themselves.
        if isa == "AVX2":
            vnni = args.cpu_isa == "avx2-vnni"
            env["ONEDNN_MAX_CPU_ISA"] = "AVX2_VNNI" if vnni else "AVX2"
            env["MKL_ENABLE_INSTRUCTIONS"] = "AVX2"
    cmd = [sys.executable, __file__, "--ct2-worker", str(model_dir), "--ct2-cases",
           str(cases_file), "--threads", str(args.threads), "--new-tokens", str(args.new_tokens)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # One worker process runs every case: its peak covers all of them.
    return [c + [out["peak_rss_mb"]] for c in out["cases"]]


def run_tarjama(binary, model_dir, cases, args, dtype):
    results = []
    for name, sources, bs, beam in cases:
        src = WORK / f"sources-{name}.json"
        src.write_text(json.dumps(sources))
        out = WORK / f"tarjama-{dtype}-{name}.json"
        env = dict(os.environ)
        if args.cpu_isa:
            env["TARJAMA_CPU_ISA"] = args.cpu_isa
        subprocess.run([binary, "bench", "--model", str(model_dir), "--sources", str(src),
                        "--batch-size", str(bs), "--beam", str(beam), "--dtype", dtype,
                        "--fixed-new-tokens", str(args.new_tokens),
                        "--threads", str(args.threads), "--json", str(out)],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        r = json.loads(out.read_text())
        results.append(row(f"tarjama {dtype}", name, r["target_tokens"], r["seconds"],
                           len(sources), split=r["split"], peak_rss_mb=r["peak_rss_mb"]))
    return results


def row(engine, case, tokens, secs, sentences, **extra):
    return dict(engine=engine, case=case, target_tokens=tokens, seconds=secs,
                tokens_per_second=tokens / secs, sentences=sentences, **extra)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=256)
    ap.add_argument("--slow-sentences", type=int, default=64,
                    help="sentences for the beam-4 and batch-1 cases (a prefix of the workload)")
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tarjama", default=None, help="binary [default: $CARGO_TARGET_DIR or target/release/tarjama]")
    ap.add_argument("--engines", default="tarjama,transformers,ct2")
    ap.add_argument("--tarjama-dtypes", default="f32,bf16,int8",
                    help="tarjama bench --dtype values to run")
    ap.add_argument("--cpu-isa", choices=["avx512", "avx2-vnni", "avx2"], default=None,
                    help="force one instruction set on both sides: TARJAMA_CPU_ISA for tarjama; "
                         "CT2_FORCE_CPU_ISA, ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS for "
                         "CTranslate2 and its GEMM libraries [default: each picks its best]")
    ap.add_argument("--chart", metavar="FILE.svg", default=None,
                    help="also draw the results as a grouped bar chart (chart.py; needs matplotlib)")
    ap.add_argument("--ct2-worker", help=argparse.SUPPRESS)
    ap.add_argument("--ct2-cases", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ct2_worker:
        return ct2_worker(args)

    WORK.mkdir(exist_ok=True)
    model_dir = WORK / "random-opus-mt-ar-en"
    build_model(model_dir, args.seed)
    sources = workload(args.sentences, args.seed)
    (WORK / "sources.json").write_text(json.dumps(sources))
    slow = sources[:args.slow_sentences]
    cases = [("greedy-b32", sources, 32, 1), ("beam4-b32", slow, 32, 4), ("greedy-b1", slow, 1, 1)]
    engines = args.engines.split(",")
    results = []

    def report(rs):
        for r in rs:
            rss = f", peak RSS {r['peak_rss_mb']:.0f} MB" if r.get("peak_rss_mb") else ""
            print(f"  {r['engine']:<24} {r['case']:<11} {r['tokens_per_second']:8.1f} tok/s "
                  f"({r['target_tokens']} tokens, {r['seconds']:.1f} s{rss})", flush=True)
        results.extend(rs)
        (WORK / "results.json").write_text(json.dumps(results, indent=1))

    if "tarjama" in engines:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        binary = args.tarjama or str(Path(target) / "release" / "tarjama")
        print("tarjama:", binary, flush=True)
        for dtype in args.tarjama_dtypes.split(","):
            report(run_tarjama(binary, model_dir, cases, args, dtype))
    if "transformers" in engines:
        print("transformers", flush=True)
        report(run_transformers(model_dir, cases, args.threads, args.new_tokens))
    if "ct2" in engines:
        for quant in ["float32", "int8"]:
            ct2_dir = WORK / f"ct2-{quant}"
            convert_ct2(model_dir, ct2_dir, quant)
            probe = [("probe", sources[:32], 32, 1)]
            speeds = {}
            forced = {"avx512": "AVX512", "avx2-vnni": "AVX2", "avx2": "AVX2"}.get(args.cpu_isa)
            for isa in [forced] if forced else ["AVX512", "AVX2"]:
                try:
                    _, t, s, _, _ = run_ct2(ct2_dir, probe, args, isa)[0]
                    speeds[isa] = t / s
                except subprocess.CalledProcessError as e:
                    print(f"  CT2 {quant} {isa}: failed: {e.stderr[-300:]}", flush=True)
            isa = max(speeds, key=speeds.get) if speeds else None
            print(f"CTranslate2 {quant}: probe tok/s {speeds}, using {isa}", flush=True)
            rs = run_ct2(ct2_dir, cases, args, isa)
            report([row(f"ct2 {quant} ({isa})", n, t, s, k, peak_rss_mb=m)
                    for n, t, s, k, m in rs])

    versions = {"python": platform.python_version(), "cpu_isa": args.cpu_isa or "best"}
    for mod in ["torch", "transformers", "ctranslate2"]:
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    print("\nversions:", versions)
    print(f"\n| engine | case | target tokens/s | peak RSS MB | tarjama f32 / engine | tarjama int8 / engine |")
    print("|---|---|---:|---:|---:|---:|")
    ours = {(r["engine"], r["case"]): r["tokens_per_second"] for r in results
            if r["engine"].startswith("tarjama")}
    for r in results:
        f32 = ours.get(("tarjama f32", r["case"]), float("nan")) / r["tokens_per_second"]
        i8 = ours.get(("tarjama int8", r["case"]), float("nan")) / r["tokens_per_second"]
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "—"
        print(f"| {r['engine']} | {r['case']} | {r['tokens_per_second']:.1f} | {rss} | {f32:.2f} | {i8:.2f} |")
    (WORK / "results.json").write_text(json.dumps({"versions": versions, "results": results}, indent=1))
    if args.chart:
        sys.path.insert(0, str(HERE))
        import chart

        chart.draw(WORK / "results.json", args.chart)
        print("chart:", args.chart)


if __name__ == "__main__":
    main()
