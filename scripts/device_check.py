#!/usr/bin/env python3
"""GPU device check: tarjama against transformers (and CTranslate2) on one
full-size random opus-mt-ar-en model, in one timed run; writes one JSON.

Normally started by scripts/device-check.sh (which unpacks the carried
binary, finds the CUDA libraries and guards the total time); see that
script's header for the `run` call. Steps, in this order, each skipped (and
listed under "skipped") once the deadline is too close:

0. machine: versions, the GPU, and `tarjama info --json --self-test`, which
   runs the token-selection kernel (src/marian/pick.cu: processors' edits,
   log-softmax, argmax/top-k on the device) on generated cases and compares
   every pick with the host implementation (machine.tarjama_info.self_test).
1. model: a random MarianMTModel of the exact opus-mt-ar-en shape
   (tests/fixtures/configs/opus-mt-ar-en.json: d_model 512, 6+6 layers,
   vocabulary 62834), weights drawn as `gen_marian.py --full` draws them
   (`init_weights`, emb_std 1, logit gain 1: wide logit margins) with a fixed
   seed, then biases zeroed and the cross-attention output scaled by 0.3 (else
   a random model this size repeats one token whatever its input; see
   build_model), plus an EOS bias calibrated with `gen_marian.calibrate_eos`
   so that generations end at mixed lengths; saved with OPUS-MT's generation config,
   the fixture SentencePiece models (tests/fixtures/tokenizer) and a
   vocab.json padded to 62834 entries (`<pad>` = 62833 last), so that
   `tarjama translate` can run it.
2. parity f32: `tarjama translate --input-format lines --emit-ids` on golden
   Arabic sentences (tests/golden/*.sentences.txt) with --beam 1 and 4 and a
   fixed --max-new-tokens; its src_ids are fed to transformers' `generate`
   (same beam, max_new_tokens, the model's generation config) and the
   generated ids must be identical. Mismatches record the first differing
   step and, for greedy, transformers' top-1/top-2 log-prob margin there.
3. throughput: `tarjama bench --sources FILE --fixed-new-tokens N --json` on
   the peers workload (benches/peers/run.py: SplitMix64 random ids, lengths
   10..60) for greedy and beam 4 at batch 32 and at a large batch, dtype f16
   first, against transformers f16 `generate(min_new_tokens=max_new_tokens=N)`
   on the same padded batches, in the same run.
4. CTranslate2 float16 (the machine's package, or a carried wheel that the
   shell script installed), in a child process; when it fails for want of
   cuBLAS 12 (the PyPI wheels dlopen libcublas.so.12; a CUDA 13 machine has
   .so.13), one more try with cuBLAS 13 linked under the .so.12 names
   (unsupported; labelled so).
5. parity f16 and bf16: agreement rates (sentences with identical ids, mean
   shared-prefix fraction) of tarjama against transformers f32 and against
   transformers in the same dtype, and of transformers' own f16/bf16 against
   its f32 (the baseline for how much the number type alone changes).
6. throughput of tarjama bf16 and f32 on the same cases.

The JSON (--out) is rewritten after every step, so a run cut short still
leaves what it measured ("finished": false).

`--device cpu --quick` is the dry run for a machine with no GPU: the same
code paths with the CPU binary and CPU torch on a tiny workload (tarjama f16
then runs on candle's CPU engine, --engine candle).
"""

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOCAB, PAD, EOS = 62834, 62833, 0
SCHEMA = "tarjama-device-check/1"
# A greedy mismatch where transformers' own top-1/top-2 log-prob gap is below
# this is counted as a near tie (f32 rounding can decide it either way).
NEAR_TIE = 1e-3


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# benches/peers/run.py: the workload (same SplitMix64 ids as `tarjama bench`),
# batching, CTranslate2 conversion with a stand-in tokenizer. Stdlib imports
# only at its top.
peers = load_module("peers_run", ROOT / "benches" / "peers" / "run.py")

# Sizes per mode: parity sentences and new tokens; throughput new tokens,
# the large batch, and sentences per case.
SIZES = {
    "full": dict(parity_sentences=128, parity_new_tokens=64, hf_batch=32, new_tokens=64, run_cap_s=75,
                 large_batch=256, cases={"greedy-b32": (512, 32, 1), "beam4-b32": (128, 32, 4),
                                         "greedy-bL": (1024, None, 1), "beam4-bL": (256, None, 4)}),
    "quick": dict(parity_sentences=6, parity_new_tokens=10, hf_batch=32, new_tokens=6, run_cap_s=60,
                  large_batch=64, cases={"greedy-b32": (32, 32, 1), "beam4-b32": (8, 32, 4),
                                         "greedy-bL": (64, None, 1), "beam4-bL": (16, None, 4)}),
}


class Deadline:
    def __init__(self, at, reserve):
        self.at = at
        self.reserve = reserve

    def left(self):
        return self.at - time.time() - self.reserve

    def allows(self, need):
        return self.left() >= need


class Report:
    """The JSON being built; written to disk after every step."""

    def __init__(self, path, args, start):
        self.path = Path(path)
        self.start = start
        self.data = {
            "schema": SCHEMA,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)),
            "finished": False,
            "mode": {"device": args.device, "quick": args.quick, "deadline_s": round(args.deadline - start, 1)},
            "machine": {},
            "model": {},
            "parity": {},
            "throughput": [],
            "ctranslate2": {"tried": False},
            "timings": {},
            "skipped": [],
            "errors": [],
            "notes": [],
        }
        self.write()

    def write(self):
        self.data["elapsed_s"] = round(time.time() - self.start, 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(finite(self.data), indent=1, allow_nan=False) + "\n")
        tmp.replace(self.path)

    def timing(self, name, secs):
        self.data["timings"][name] = round(secs, 2)
        self.write()

    def skip(self, what):
        print(f"[skip] {what}: deadline too close", flush=True)
        self.data["skipped"].append(what)
        self.write()

    def error(self, what, exc):
        msg = f"{type(exc).__name__}: {exc}"
        print(f"[error] {what}: {msg}", flush=True)
        self.data["errors"].append({"step": what, "error": msg[-2000:]})
        self.write()


def finite(x):
    """Infinite or NaN floats (a forced EOS step's top-2 margin) as strings:
    the JSON stays strict."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------
# machine


def machine_info(args):
    import torch
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(),
        "hostname_platform": platform.platform(),
    }
    if args.device == "cuda":
        try:
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        except Exception as e:  # noqa: BLE001 - recorded; the steps below fail on their own
            info["gpu"] = f"torch sees no GPU: {type(e).__name__}: {e}"[:300]
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        if q.returncode == 0 and q.stdout.strip():
            name, driver, mem = [s.strip() for s in q.stdout.strip().splitlines()[0].split(",")]
            info.update(nvidia_smi_gpu=name, driver=driver, gpu_memory_total=mem)
    except (OSError, subprocess.SubprocessError):
        pass
    # --self-test runs the token-selection kernel (pick.cu) against the host
    # implementation on the GPU; exit 1 (JSON still printed) on a difference.
    for cmd, key in [(["--version"], "tarjama_version"), (["info", "--json", "--self-test"], "tarjama_info")]:
        try:
            p = subprocess.run([args.tarjama] + cmd, capture_output=True, text=True, timeout=120)
            out = p.stdout.strip()
            parsed = key == "tarjama_info" and p.returncode in (0, 1) and out.startswith("{")
            info[key] = json.loads(out) if parsed else (out or p.stderr.strip()[-500:])
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            info[key] = f"failed: {e}"
    try:
        import ctranslate2

        info["ctranslate2"] = ctranslate2.__version__
    except Exception as e:  # noqa: BLE001 - any import failure is a finding
        info["ctranslate2"] = f"not importable: {type(e).__name__}: {e}"[:300]
    return info


# ---------------------------------------------------------------------------
# model


def golden_sentences(n):
    lines = []
    for path in sorted((ROOT / "tests" / "golden").glob("*.sentences.txt")):
        lines += [l.strip() for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    seen, out = set(), []
    for l in lines:  # translate dedups; keep the sets the same
        if l not in seen:
            seen.add(l)
            out.append(l)
    return out[:n]


def write_tokenizer(model_dir):
    """The fixture SentencePiece models and its vocab.json padded to the
    model's 62834 entries: fixture ids 0..1033 as they are, filler pieces
    (word-initial, so they decode as words) up to 62832, `<pad>` last."""
    fx = ROOT / "tests" / "fixtures" / "tokenizer"
    for name in ("source.spm", "target.spm"):
        shutil.copyfile(fx / name, model_dir / name)
    vocab = json.loads((fx / "vocab.json").read_text(encoding="utf-8"))
    items = sorted(((i, t) for t, i in vocab.items() if t != "<pad>"))
    assert [i for i, _ in items] == list(range(len(items))), "fixture vocab ids not contiguous"
    tokens = [t for _, t in items]
    tokens += [f"\u2581w{i}" for i in range(len(tokens), PAD)]
    tokens.append("<pad>")
    assert len(tokens) == VOCAB and tokens[EOS] == "</s>"
    (model_dir / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(items)


def build_model(model_dir, seed, calib_sentences, rep):
    """Random full-size model as gen_marian.py --full draws it (on the CPU,
    deterministic for the seed and torch version), EOS bias calibrated on
    `calib_sentences` (tokenized with transformers' MarianTokenizer when
    sentencepiece is there, else random ids)."""
    import torch
    from transformers import GenerationConfig, MarianMTModel

    gm = GM
    model_dir.mkdir(parents=True, exist_ok=True)
    fixture_vocab = write_tokenizer(model_dir)
    torch.manual_seed(seed)
    cfg, vocab_size, pad, eos = gm.build_full(None)
    assert (vocab_size, pad, eos) == (VOCAB, PAD, EOS)
    model = MarianMTModel(cfg)
    gm.init_weights(model, seed, 1.0, eos, 1.0)
    # At full size that draw makes a degenerate model: its output hardly
    # depends on the tokens generated so far (one token repeated, the same
    # for most sentences), because the cross-attention output (the mean of
    # the encoder states) and the constant biases dominate the decoder
    # state. Without biases (final_logits_bias kept) and with the
    # cross-attention output scaled by 0.3, greedy outputs vary per
    # sentence and per step (on 128 golden sentences x 64 steps: 22
    # distinct first tokens, 358 distinct tokens; top-1/top-2 log-prob gap
    # above 2e-3 at 99.9% of the steps).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and name != "final_logits_bias":
                p.zero_()
            if "encoder_attn.out_proj.weight" in name:
                p.mul_(0.3)
    model.eval()
    try:
        from transformers import MarianTokenizer

        tok = MarianTokenizer(str(model_dir / "source.spm"), str(model_dir / "target.spm"),
                              str(model_dir / "vocab.json"))
        calib = [("golden", tok(s)["input_ids"]) for s in calib_sentences]
        calib_src = "golden sentences through MarianTokenizer"
    except Exception as e:  # noqa: BLE001 - sentencepiece missing: random ids
        calib = [("random", ids) for ids in peers.workload(len(calib_sentences), seed)]
        calib_src = f"random ids (MarianTokenizer unavailable: {type(e).__name__})"
    base = dict(bad_words_ids=[[pad]], eos_token_id=eos, forced_eos_token_id=eos, pad_token_id=pad,
                decoder_start_token_id=pad, max_length=40, renormalize_logits=True)
    threads = torch.get_num_threads()
    eos_bias = gm.calibrate_eos(model, calib, base, eos, pad, 0.05)  # under no_grad
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]], bos_token_id=0, decoder_start_token_id=pad, eos_token_id=eos,
        forced_eos_token_id=eos, max_length=512, num_beams=4, pad_token_id=pad,
        renormalize_logits=True)
    model.save_pretrained(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    rep.data["model"] = {
        "arch": "opus-mt-ar-en (tests/fixtures/configs/opus-mt-ar-en.json)",
        "d_model": cfg.d_model, "layers": [cfg.encoder_layers, cfg.decoder_layers],
        "heads": cfg.encoder_attention_heads, "ffn": cfg.encoder_ffn_dim,
        "vocab": vocab_size, "pad": pad, "eos": eos, "parameters": n_params, "seed": seed,
        "init": "tests/fixtures/gen_marian.py init_weights(emb_std=1, logit_gain=1) as --full, then "
                "biases zeroed (final_logits_bias kept) and cross-attention out_proj x 0.3",
        "eos_bias": eos_bias, "eos_calibration": f"quantile 0.05 over {len(calib)} {calib_src}",
        "tokenizer": f"fixture source.spm/target.spm; vocab.json = fixture ids 0..{fixture_vocab - 1}, "
                     f"fillers, <pad>={pad}", "torch_threads": threads, "dir": str(model_dir),
    }
    return model_dir


# ---------------------------------------------------------------------------
# parity


def tarjama_translate(args, model_dir, lines_file, dtype, beam, new_tokens, timeout):
    cmd = [args.tarjama, "translate", str(lines_file), "--model", str(model_dir),
           "--input-format", "lines", "--emit-ids", "--format", "jsonl", "--out", "-",
           "--device", args.device, "--dtype", dtype, "--beam", str(beam),
           "--max-new-tokens", str(new_tokens), "-q"]
    if args.device == "cpu" and dtype == "f16":
        cmd += ["--engine", "candle"]  # f16 runs on candle only
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    secs = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr[-1500:]}")
    recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return recs, secs


def hf_model(model_dir, dtype, device):
    import torch
    from transformers import MarianMTModel

    dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    return MarianMTModel.from_pretrained(model_dir).eval().to(device=device, dtype=dt)


def hf_generate(model, sources, beam, new_tokens, batch, device, deadline, want_scores=False):
    """transformers' generate on padded batches in order: (ids, logprobs,
    margins) per sentence (logprobs/margins only for greedy with want_scores:
    per step, transformers' log-prob of its token and its top-1/top-2 gap)."""
    import torch

    gm_strip = GM.strip
    out_rows = []
    for chunk in peers.batches(sources, batch):
        if not deadline.allows(5):
            raise TimeoutError("deadline reached inside transformers generate")
        width = max(map(len, chunk))
        ids = torch.tensor([r + [PAD] * (width - len(r)) for r in chunk], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk], device=device)
        scores = want_scores and beam == 1
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beam, do_sample=False,
                                 max_new_tokens=new_tokens, return_dict_in_generate=True,
                                 output_scores=scores)
            lps = margins = None
            if scores:
                lps = model.compute_transition_scores(out.sequences, out.scores,
                                                      normalize_logits=True).float().cpu().tolist()
                top = torch.stack([torch.topk(s.float(), 2, dim=-1).values for s in out.scores])
                margins = (top[..., 0] - top[..., 1]).T.cpu().tolist()  # [batch, steps]
        for i, seq in enumerate(out.sequences.tolist()):
            s = gm_strip(seq, [EOS], PAD)
            out_rows.append((s, lps[i][:len(s)] if lps else None, margins[i][:len(s)] if margins else None))
    return out_rows


def prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def agreement(a_rows, b_rows):
    """Sentences with identical ids, and the mean fraction of the longer
    sequence that the two share as a prefix."""
    n = len(a_rows)
    same = sum(a == b for a, b in zip(a_rows, b_rows))
    frac = sum(prefix(a, b) / max(len(a), len(b), 1) for a, b in zip(a_rows, b_rows)) / max(n, 1)
    return {"sentences": n, "identical": same, "identical_rate": round(same / max(n, 1), 4),
            "prefix_agreement": round(frac, 4)}


def parity_f32(args, sz, model_dir, lines_file, rep, deadline, hf_cache):
    import torch

    res = {"sentences": None, "max_new_tokens": sz["parity_new_tokens"],
           "source": "tests/golden/*.sentences.txt via tarjama translate --input-format lines --emit-ids"}
    rep.data["parity"]["f32"] = res
    all_identical = True
    for search, beam in [("greedy", 1), ("beam4", 4)]:
        if not deadline.allows(30):
            rep.skip(f"parity f32 {search}")
            all_identical = None
            continue
        try:
            recs, secs = tarjama_translate(args, model_dir, lines_file, "f32", beam, sz["parity_new_tokens"],
                                           timeout=max(deadline.left(), 5))
            rep.timing(f"parity_tarjama_f32_{search}", secs)
            src = [r["src_ids"] for r in recs]
            tj = [r["tgt_ids"] for r in recs]
            hf_cache.setdefault("src", src)
            res["sentences"] = len(src)
            if "src_ids_match_marian_tokenizer" not in res:
                res["src_ids_match_marian_tokenizer"] = src_ids_check(model_dir, recs)
            model = hf_model(model_dir, "f32", args.device)
            t0 = time.perf_counter()
            hf = hf_generate(model, src, beam, sz["parity_new_tokens"], sz["hf_batch"], args.device,
                             deadline, want_scores=True)
            rep.timing(f"parity_hf_f32_{search}", time.perf_counter() - t0)
            del model
            hf_ids = [h[0] for h in hf]
            hf_cache[("f32", search)] = hf_ids
            hf_cache[("tj", "f32", search)] = tj
            mism = []
            for i, (a, h) in enumerate(zip(tj, hf)):
                if a != h[0]:
                    p = prefix(a, h[0])
                    m = {"index": i, "src_len": len(src[i]), "first_diff_step": p,
                         "tarjama": a[max(0, p - 2):p + 3], "transformers": h[0][max(0, p - 2):p + 3],
                         "lens": [len(a), len(h[0])]}
                    if h[2] is not None and p < len(h[2]):
                        m["hf_top2_margin_at_diff"] = h[2][p]
                    mism.append(m)
            lp_diff = None
            if beam == 1:
                diffs = [abs(x - y) for a, h, r in zip(tj, hf, recs) if a == h[0] and h[1]
                         for x, y in zip(r.get("tgt_logprobs") or [], h[1])]
                lp_diff = max(diffs) if diffs else None
            margins = [m for h in hf if h[2] for m in h[2] if math.isfinite(m)]
            lens = [len(h[0]) for h in hf]
            ended = sum(1 for s in hf_ids if len(s) < sz["parity_new_tokens"])
            near = sum(1 for m in mism if isinstance(m.get("hf_top2_margin_at_diff"), float)
                       and m["hf_top2_margin_at_diff"] < NEAR_TIE)
            res[search] = {
                "identical": not mism, "same": len(tj) - len(mism), "of": len(tj),
                "mismatches_at_near_ties": near if beam == 1 else None,
                "mismatches": mism[:10], "mismatch_count": len(mism),
                "max_abs_logprob_diff": lp_diff,
                "hf_min_top2_margin": min(margins) if margins else None,
                "target_lengths": [min(lens), max(lens)] if lens else None,
                "ended_by_eos_before_limit": ended,
            }
            all_identical = all_identical and not mism
            log(f"parity f32 {search}: {len(tj) - len(mism)}/{len(tj)} identical"
                + (f", max |dlogprob| {lp_diff:.2e}" if lp_diff is not None else ""))
        except Exception as e:  # noqa: BLE001
            rep.error(f"parity f32 {search}", e)
            traceback.print_exc()
            all_identical = None
        rep.write()
    res["identical"] = all_identical
    if args.device == "cuda":
        res["hf_settings"] = {"allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    rep.write()


def src_ids_check(model_dir, recs):
    """tarjama's source ids against transformers' MarianTokenizer (needs
    sentencepiece; None when it is missing)."""
    try:
        from transformers import MarianTokenizer

        tok = MarianTokenizer(str(model_dir / "source.spm"), str(model_dir / "target.spm"),
                              str(model_dir / "vocab.json"))
        same = sum(tok(r["src"])["input_ids"] == r["src_ids"] for r in recs)
        return {"same": same, "of": len(recs)}
    except Exception as e:  # noqa: BLE001
        return f"not checked: {type(e).__name__}: {e}"[:200]


def parity_low(args, sz, model_dir, lines_file, rep, deadline, hf_cache, dtype):
    res = {"max_new_tokens": sz["parity_new_tokens"]}
    rep.data["parity"][dtype] = res
    src = hf_cache.get("src")
    for search, beam in [("greedy", 1), ("beam4", 4)]:
        if not deadline.allows(30):
            rep.skip(f"parity {dtype} {search}")
            continue
        try:
            recs, secs = tarjama_translate(args, model_dir, lines_file, dtype, beam, sz["parity_new_tokens"],
                                           timeout=max(deadline.left(), 5))
            rep.timing(f"parity_tarjama_{dtype}_{search}", secs)
            tj = [r["tgt_ids"] for r in recs]
            if src is None:
                src = [r["src_ids"] for r in recs]
            ref = hf_cache.get(("f32", search))
            if ref is None:
                m = hf_model(model_dir, "f32", args.device)
                ref = [h[0] for h in hf_generate(m, src, beam, sz["parity_new_tokens"], sz["hf_batch"],
                                                 args.device, deadline)]
                hf_cache[("f32", search)] = ref
                del m
            m = hf_model(model_dir, dtype, args.device)
            t0 = time.perf_counter()
            hf_low = [h[0] for h in hf_generate(m, src, beam, sz["parity_new_tokens"], sz["hf_batch"],
                                                args.device, deadline)]
            rep.timing(f"parity_hf_{dtype}_{search}", time.perf_counter() - t0)
            del m
            r = {
                "tarjama_vs_hf_f32": agreement(tj, ref),
                f"tarjama_vs_hf_{dtype}": agreement(tj, hf_low),
                f"hf_{dtype}_vs_hf_f32": agreement(hf_low, ref),
            }
            tj32 = hf_cache.get(("tj", "f32", search))
            if tj32 is not None:
                r["tarjama_vs_tarjama_f32"] = agreement(tj, tj32)
            res[search] = r
            log(f"parity {dtype} {search}: tarjama vs hf f32 {r['tarjama_vs_hf_f32']['identical_rate']:.3f}, "
                f"vs hf {dtype} {r[f'tarjama_vs_hf_{dtype}']['identical_rate']:.3f}, "
                f"hf {dtype} vs hf f32 {r[f'hf_{dtype}_vs_hf_f32']['identical_rate']:.3f} (sentences identical)")
        except Exception as e:  # noqa: BLE001
            rep.error(f"parity {dtype} {search}", e)
            traceback.print_exc()
        rep.write()


# ---------------------------------------------------------------------------
# throughput


def cases_for(sz):
    out = []
    for name, (n, batch, beam) in sz["cases"].items():
        b = batch or sz["large_batch"]
        out.append((name.replace("bL", f"b{b}"), n, b, beam))
    return out


def row(engine, dtype, case, n, batch, beam, tokens, secs, **extra):
    return dict(engine=engine, dtype=dtype, case=case, search="greedy" if beam == 1 else f"beam{beam}",
                batch=batch, sentences=n, target_tokens=tokens, seconds=round(secs, 4),
                tokens_per_second=round(tokens / secs, 1) if secs > 0 else None,
                sentences_per_second=round(n / secs, 2) if secs > 0 else None, **extra)


def tarjama_bench(args, sz, model_dir, work, case, sources, batch, beam, dtype, deadline):
    src = work / f"sources-{case}.json"
    src.write_text(json.dumps(sources))
    out = work / f"bench-{dtype}-{case}.json"
    cmd = [args.tarjama, "bench", "--model", str(model_dir), "--sources", str(src),
           "--batch-size", str(batch), "--beam", str(beam), "--dtype", dtype,
           "--fixed-new-tokens", str(sz["new_tokens"]), "--device", args.device, "--json", str(out)]
    if args.device == "cpu" and dtype == "f16":
        cmd += ["--engine", "candle"]
    t0 = time.perf_counter()
    cap = min(deadline.left(), sz["run_cap_s"])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(cap, 5))
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"stopped after {cap:.0f} s (per-run cap {sz['run_cap_s']} s or the deadline)")
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr[-1500:]}")
    r = json.loads(out.read_text())
    keep = {k: r.get(k) for k in ("device", "padded_source_tokens", "source_tokens", "split",
                                  "gpu", "gpu_memory_used_mb", "peak_rss_mb")}
    keep["tarjama_engine"] = r.get("engine")
    return row("tarjama", dtype, case, r["sentences"], batch, beam, r["target_tokens"], r["seconds"],
               process_wall_s=round(wall, 2), **keep)


def hf_bench(model, sz, case, sources, batch, beam, dtype, device, deadline):
    import torch

    n_new = sz["new_tokens"]

    def gen(chunk, n):
        width = max(map(len, chunk))
        ids = torch.tensor([r + [PAD] * (width - len(r)) for r in chunk], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk], device=device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beam, do_sample=False,
                                 max_new_tokens=n, min_new_tokens=n, early_stopping=False,
                                 length_penalty=1.0)
        return (out.shape[1] - 1) * out.shape[0]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    chunks = peers.batches(sources, batch)
    gen(chunks[0], 2)  # warm-up
    sync()
    start = time.perf_counter()
    tokens, done = 0, 0
    for c in chunks:
        if not deadline.allows(5) or time.perf_counter() - start > sz["run_cap_s"]:
            break
        tokens += gen(c, n_new)
        done += len(c)
    sync()
    secs = time.perf_counter() - start
    extra = {"partial": True} if done < len(sources) else {}
    if device == "cuda":
        extra["torch_max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row("transformers", dtype, case, done, batch, beam, tokens, secs, **extra)


def ct2_worker(args):
    """Child process: CTranslate2 on one converted model; prints one JSON line."""
    import ctranslate2

    cases = json.loads(Path(args.ct2_cases).read_text())
    tr = ctranslate2.Translator(args.ct2_worker, device=args.device, compute_type=args.ct2_compute,
                                inter_threads=1)
    out = []
    for name, sources, bs, beam in cases:
        def gen(batch, n):
            res = tr.translate_batch([[peers.tok(i) for i in r] for r in batch], beam_size=beam,
                                     max_decoding_length=n, min_decoding_length=n, max_batch_size=0,
                                     return_scores=False)
            return sum(len(r.hypotheses[0]) for r in res)

        chunks = peers.batches(sources, bs)
        gen(chunks[0], 2)
        start = time.perf_counter()
        tokens = sum(gen(b, args.new_tokens) for b in chunks)
        out.append([name, tokens, time.perf_counter() - start, len(sources), bs, beam])
    print(json.dumps({"version": ctranslate2.__version__, "cases": out}))


def find_lib(name):
    for d in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if d and (Path(d) / name).exists():
            return Path(d) / name
    return None


def run_ct2(args, sz, work, cases, rep, deadline):
    info = rep.data["ctranslate2"]
    info["tried"] = True
    compute = "float16" if args.device == "cuda" else "float32"
    info["compute_type"] = compute
    try:
        import ctranslate2

        info["available"] = True
        info["version"] = ctranslate2.__version__
        info["from"] = str(Path(ctranslate2.__file__).parent)
    except Exception as e:  # noqa: BLE001
        info.update(available=False, loaded=False, error=f"import: {type(e).__name__}: {e}"[:500])
        rep.write()
        return
    ct2_dir = work / f"ct2-{compute}"
    try:
        t0 = time.perf_counter()
        peers.convert_ct2(Path(rep.data["model"]["dir"]), ct2_dir, compute)
        rep.timing("ct2_convert", time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001
        info.update(loaded=False, error=f"convert: {type(e).__name__}: {e}"[:1000])
        rep.write()
        return
    cases_file = work / "ct2_cases.json"
    cases_file.write_text(json.dumps([[c, s, b, k] for c, s, b, k in cases]))
    attempts = []

    def attempt(label, env):
        cmd = [sys.executable, __file__, "--ct2-worker", str(ct2_dir), "--ct2-cases", str(cases_file),
               "--ct2-compute", compute, "--device", args.device, "--new-tokens", str(sz["new_tokens"]),
               "--tarjama", args.tarjama, "--deadline", str(args.deadline)]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                               timeout=max(min(deadline.left(), 2 * sz["run_cap_s"]), 5))
        except subprocess.TimeoutExpired:
            attempts.append({"label": label, "ok": False, "error": "timeout (deadline)"})
            return None
        a = {"label": label, "ok": p.returncode == 0, "seconds": round(time.perf_counter() - t0, 1)}
        if p.returncode != 0:
            a["error"] = (p.stderr.strip() or p.stdout.strip())[-1200:]
        attempts.append(a)
        if p.returncode == 0:
            return json.loads(p.stdout.strip().splitlines()[-1])
        return None

    out = attempt("as installed", dict(os.environ))
    if out is None and args.device == "cuda" and "libcublas.so.12" in (attempts[-1].get("error") or ""):
        # The PyPI wheels are built for CUDA 12 and dlopen libcublas.so.12;
        # try cuBLAS 13 under those names (not a supported combination).
        alias = work / "cublas12-alias"
        alias.mkdir(exist_ok=True)
        made = []
        for lib in ("libcublas", "libcublasLt"):
            src = find_lib(f"{lib}.so.13")
            if src:
                dst = alias / f"{lib}.so.12"
                if dst.exists() or dst.is_symlink():
                    dst.unlink()
                dst.symlink_to(src)
                made.append(f"{dst.name} -> {src}")
        info["cublas12_alias"] = made
        if made and deadline.allows(20):
            env = dict(os.environ)
            env["LD_LIBRARY_PATH"] = f"{alias}:{env.get('LD_LIBRARY_PATH', '')}"
            out = attempt("cuBLAS 13 aliased as libcublas.so.12 (unsupported)", env)
    info["attempts"] = attempts
    info["loaded"] = out is not None
    if out is None:
        info["error"] = attempts[-1].get("error") if attempts else "not run"
    else:
        label = attempts[-1]["label"]
        for name, tokens, secs, n, bs, beam in out["cases"]:
            rep.data["throughput"].append(row("ctranslate2", compute, name, n, bs, beam, tokens, secs,
                                              how=label))
    rep.write()


# ---------------------------------------------------------------------------


def summary(rep):
    rows = rep.data["throughput"]
    ref = {r["case"]: r["tokens_per_second"] for r in rows
           if r["engine"] == "transformers" and r.get("tokens_per_second")}
    lines = ["", "| engine | dtype | case | sentences | target tokens/s | sentences/s | s | vs transformers f16 |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        tps = r.get("tokens_per_second")
        ratio = f"{tps / ref[r['case']]:.2f}" if tps and ref.get(r["case"]) else "—"
        lines.append(f"| {r['engine']} | {r['dtype']} | {r['case']} | {r['sentences']} | {tps} | "
                     f"{r.get('sentences_per_second')} | {r['seconds']:.2f} | {ratio} |")
    for r in rows:
        if r["engine"] == "tarjama" and ref.get(r["case"]) and r.get("tokens_per_second"):
            r["vs_transformers_f16"] = round(r["tokens_per_second"] / ref[r["case"]], 3)
    p = rep.data["parity"]
    lines.append("")
    if "f32" in p:
        lines.append(f"parity f32 identical: {p['f32'].get('identical')} "
                     + ", ".join(f"{s}: {p['f32'][s]['same']}/{p['f32'][s]['of']}" for s in ("greedy", "beam4")
                                 if s in p["f32"]))
    for dt in ("f16", "bf16"):
        for s in ("greedy", "beam4"):
            r = p.get(dt, {}).get(s)
            if r:
                lines.append(f"parity {dt} {s}: " + ", ".join(
                    f"{k} {v['identical_rate']:.3f} (prefix {v['prefix_agreement']:.3f})" for k, v in r.items()))
    ti = rep.data.get("machine", {}).get("tarjama_info")
    for t in (ti.get("self_test") or []) if isinstance(ti, dict) else []:
        c = t.get("check") or {}
        lines.append(f"self-test {t['device']}: " + (f"{c.get('mismatch_count')} of {c.get('picks')} picks differ"
                                                    if c else f"error {t.get('error')}"))
    c = rep.data["ctranslate2"]
    lines.append(f"ctranslate2: tried {c.get('tried')}, available {c.get('available')}, loaded {c.get('loaded')}"
                 + (f", error: {c['error'][:300]}" if c.get("error") else ""))
    print("\n".join(lines), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tarjama", required=True, help="the tarjama binary")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny workload (the CPU dry run)")
    ap.add_argument("--deadline", type=float, default=None,
                    help="absolute time (epoch seconds) by which the JSON must be final [default: now + 400]")
    ap.add_argument("--out", default="device-check.json")
    ap.add_argument("--work", default="/tmp/device-check")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--skip-ct2", action="store_true")
    ap.add_argument("--ct2-worker", help=argparse.SUPPRESS)
    ap.add_argument("--ct2-cases", help=argparse.SUPPRESS)
    ap.add_argument("--ct2-compute", help=argparse.SUPPRESS)
    ap.add_argument("--new-tokens", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ct2_worker:
        return ct2_worker(args)

    start = time.time()
    if args.deadline is None:
        args.deadline = start + 400
    deadline = Deadline(args.deadline, reserve=8)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rep = Report(args.out, args, start)
    sz = SIZES["quick" if args.quick else "full"]
    rep.data["mode"]["sizes"] = {k: v for k, v in sz.items() if k != "cases"}
    rep.data["notes"] += [
        "tarjama has no CLI path that takes source ids and prints generated ids (`bench` prints only "
        "counts): parity runs `translate --input-format lines --emit-ids` on golden Arabic sentences "
        "through the fixture SentencePiece models, so source ids are all below 1034 of the 62834; the "
        "generated ids range over the whole vocabulary. transformers gets tarjama's src_ids.",
        "`tarjama bench` has no token-budget option: the large-batch cases use --batch-size "
        f"{sz['large_batch']} (padded_source_tokens in each tarjama row gives the source tokens per run).",
        "throughput: EOS disabled (tarjama --fixed-new-tokens N; transformers min_new_tokens = "
        "max_new_tokens = N; CTranslate2 min/max_decoding_length = N); batches cut in input order; one "
        "untimed warm-up batch each; tarjama's time excludes model loading.",
        "gpu_memory_used_mb of tarjama rows counts the whole GPU, including this Python process's "
        "CUDA context and cached transformers memory.",
    ]
    global GM
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*sacremoses.*")
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    t0 = time.perf_counter()
    rep.data["machine"] = machine_info(args)
    rep.timing("machine_info", time.perf_counter() - t0)
    log(f"machine: {json.dumps({k: v for k, v in rep.data['machine'].items() if k != 'tarjama_info'})}")

    GM = load_module("gen_marian", ROOT / "tests" / "fixtures" / "gen_marian.py")
    model_dir = work / "random-opus-mt-ar-en"
    sentences = golden_sentences(sz["parity_sentences"])
    lines_file = work / "parity.txt"
    lines_file.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    build_model(model_dir, args.seed, sentences[:8], rep)
    rep.timing("build_model", time.perf_counter() - t0)
    log(f"model built in {time.perf_counter() - t0:.1f} s: {model_dir} (eos bias {rep.data['model']['eos_bias']:.3f})")

    hf_cache = {}
    # 2. parity f32
    parity_f32(args, sz, model_dir, lines_file, rep, deadline, hf_cache)

    # 3. throughput f16: tarjama and transformers, case by case
    cases = cases_for(sz)
    wl = peers.workload(max(n for _, n, _, _ in cases), args.seed)
    case_src = [(c, wl[:n], b, k) for c, n, b, k in cases]
    hf16 = None
    for case, src, batch, beam in case_src:
        for engine in ("tarjama", "transformers"):
            what = f"throughput {engine} f16 {case}"
            if not deadline.allows(25):
                rep.skip(what)
                continue
            try:
                if engine == "tarjama":
                    r = tarjama_bench(args, sz, model_dir, work, case, src, batch, beam, "f16", deadline)
                else:
                    if hf16 is None:
                        hf16 = hf_model(model_dir, "f16", args.device)
                    r = hf_bench(hf16, sz, case, src, batch, beam, "f16", args.device, deadline)
                rep.data["throughput"].append(r)
                log(f"{what}: {r['tokens_per_second']} tok/s ({r['target_tokens']} tokens, {r['seconds']:.2f} s)")
            except Exception as e:  # noqa: BLE001
                rep.error(what, e)
            rep.write()
    del hf16
    if args.device == "cuda":
        torch.cuda.empty_cache()

    # 4. CTranslate2
    if args.skip_ct2:
        rep.data["ctranslate2"]["skipped"] = "--skip-ct2"
    elif deadline.allows(45):
        t0 = time.perf_counter()
        try:
            run_ct2(args, sz, work, case_src, rep, deadline)
        except Exception as e:  # noqa: BLE001
            rep.error("ctranslate2", e)
            rep.data["ctranslate2"].setdefault("error", str(e)[:500])
        rep.timing("ctranslate2_total", time.perf_counter() - t0)
        c = rep.data["ctranslate2"]
        log(f"ctranslate2: available {c.get('available')}, loaded {c.get('loaded')}"
            + (f", error {c.get('error', '')[:200]}" if not c.get("loaded") else ""))
    else:
        rep.skip("ctranslate2")

    # 5. parity f16, bf16
    for dt in ("f16", "bf16"):
        parity_low(args, sz, model_dir, lines_file, rep, deadline, hf_cache, dt)

    # 6. throughput tarjama bf16, f32
    for case, src, batch, beam in case_src:
        for dt in ("bf16", "f32"):
            what = f"throughput tarjama {dt} {case}"
            if not deadline.allows(20):
                rep.skip(what)
                continue
            try:
                r = tarjama_bench(args, sz, model_dir, work, case, src, batch, beam, dt, deadline)
                rep.data["throughput"].append(r)
                log(f"{what}: {r['tokens_per_second']} tok/s ({r['target_tokens']} tokens, {r['seconds']:.2f} s)")
            except Exception as e:  # noqa: BLE001
                rep.error(what, e)
            rep.write()

    summary(rep)
    rep.data["finished"] = True
    rep.write()
    log(f"wrote {args.out} in {time.time() - start:.0f} s")


GM = None

if __name__ == "__main__":
    main()
