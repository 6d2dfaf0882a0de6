#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/ (standard library
only, no torch or numpy): text seeds cut from corpus/ and tests/fixtures,
and tiny but complete checkpoints (safetensors, and torch.save-style zip
archives with a hand-written pickle) for the two configurations in
fuzz_targets/common/mod.rs. Run from anywhere: python3 fuzz/gen_seeds.py
"""

import json
import struct
import zipfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"
FIX = ROOT / "tests" / "fixtures"

# fuzz_targets/common/mod.rs CONFIGS: (vocab, decoder vocab, shared, tied).
CONFIGS = [(8, 8, True, True), (8, 6, False, False)]
D, FFN, POS = 4, 8, 8


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def tensors(which, positions=False):
    """(name, shape) of every tensor configuration `which` needs."""
    v, dv, shared, tied = CONFIGS[which]
    tgt = v if shared else dv
    out = []
    if shared:
        out.append(("model.shared.weight", [v, D]))
    else:
        out.append(("model.encoder.embed_tokens.weight", [v, D]))
        out.append(("model.decoder.embed_tokens.weight", [dv, D]))
    if not tied:
        out.append(("lm_head.weight", [tgt, D]))

    def linear(p, o, i):
        return [(f"{p}.weight", [o, i]), (f"{p}.bias", [o])]

    def attn(p):
        return [t for x in "qkvo" for t in linear(f"{p}.{'out' if x == 'o' else x}_proj", D, D)]

    def norm(p):
        return [(f"{p}.weight", [D]), (f"{p}.bias", [D])]

    e = "model.encoder.layers.0"
    out += attn(f"{e}.self_attn") + norm(f"{e}.self_attn_layer_norm")
    out += linear(f"{e}.fc1", FFN, D) + linear(f"{e}.fc2", D, FFN) + norm(f"{e}.final_layer_norm")
    d = "model.decoder.layers.0"
    out += attn(f"{d}.self_attn") + norm(f"{d}.self_attn_layer_norm")
    out += attn(f"{d}.encoder_attn") + norm(f"{d}.encoder_attn_layer_norm")
    out += linear(f"{d}.fc1", FFN, D) + linear(f"{d}.fc2", D, FFN) + norm(f"{d}.final_layer_norm")
    out.append(("final_logits_bias", [1, tgt]))
    if positions:
        out.append(("model.encoder.embed_positions.weight", [POS, D]))
        out.append(("model.decoder.embed_positions.weight", [POS, D]))
    return out


def numel(shape):
    n = 1
    for x in shape:
        n *= x
    return n


def values(n, k):
    return [((i * 7 + k) % 11) * 0.02 - 0.1 for i in range(n)]


def f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def bf16(vals):
    return b"".join(struct.pack("<f", x)[2:] for x in vals)


def safetensors(which, dtype="F32", positions=False):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for k, (name, shape) in enumerate(tensors(which, positions)):
        vals = values(numel(shape), k)
        blob = f32(vals) if dtype == "F32" else bf16(vals)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return h, data


def uni(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def int_(n):
    return b"J" + struct.pack("<i", n)


def tup(items):
    return b"(" + b"".join(items) + b"t"


def pickle(entries, storage="FloatStorage"):
    """torch.save's protocol-2 pickle of a state dict: entries are (name,
    storage key, shape); contiguous tensors at offset 0."""
    out = b"\x80\x02}("
    for name, key, shape in entries:
        stride, acc = [], 1
        for x in reversed(shape):
            stride.insert(0, acc)
            acc *= x
        out += uni(name) + b"ctorch._utils\n_rebuild_tensor_v2\n"
        out += b"(" + tup([uni("storage"), f"ctorch\n{storage}\n".encode(), uni(str(key)), uni("cpu"), int_(numel(shape))])
        out += b"Q" + int_(0) + tup(int_(x) for x in shape) + tup(int_(x) for x in stride)
        out += b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR"
    return out + b"u."


def pth(which, storage="FloatStorage"):
    entries, blobs = [], []
    for k, (name, shape) in enumerate(tensors(which)):
        entries.append((name, k, shape))
        vals = values(numel(shape), k)
        blobs.append(f32(vals) if storage == "FloatStorage" else bf16(vals))
    path = SEEDS / "pytorch_bin" / f"tiny-{which}-{storage}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle(entries, storage))
        z.writestr("archive/version", "3\n")
        for k, b in enumerate(blobs):
            z.writestr(f"archive/data/{k}", b)
    raw = path.read_bytes()
    path.unlink()
    return pickle(entries, storage), raw


def text_seeds():
    lines = []
    for f in sorted((ROOT / "corpus").glob("*.txt")):
        lines += [l for l in f.read_text().splitlines() if l.strip()][:6]
    doc = "\n".join(lines[:6])
    put("document", "corpus-head.txt", doc[:3000])
    put("document", "crlf-bom.txt", "\ufeff" + "\r\n".join(lines[6:9])[:1500] + "\r\n\r\n")
    put("document", "breaks.txt", "أ. ب!\rج؟\u2028د…\u2029ه\x0bو\x0cز\x85ح\n\u00a0\n")
    put("document", "cp1256.txt", "سلام".encode() + b"\xe3 more\n")
    for i, l in enumerate(lines[:8]):
        put("segment", f"corpus-{i}.txt", l[:600])
    put("segment", "edge.txt", 'قال د.محمد ك. ك. ماسيموف عام 1950م. وكان "هل؟" قال Plan B. The bit.ly/x؟#وسم (...) انتهى..')
    for i, l in enumerate(lines[:3]):
        put("tokenizer", f"corpus-{i}.txt", l[:300])
    put("tokenizer", "specials.txt", ">>ara<< مرحبا <unk> بالعالم</s> <pad>  ")
    put("tokenizer", "ids.bin", struct.pack("<8I", 0, 1, 5, 1034, 1035, 70000, 2**32 - 1, 3))


def config_seeds():
    for name in ["config.json", "generation_config.json"]:
        put("config", f"fixture-{name}", (FIX / "marian" / name).read_bytes())
    for f in sorted((FIX / "configs").glob("*.json")):
        put("config", f.name, f.read_bytes())


def checkpoint_seeds():
    # safetensors: first byte = (config << 1) | header-only.
    for which in (0, 1):
        h, data = safetensors(which)
        put("safetensors", f"tiny-{which}.bin", bytes([which << 1]) + struct.pack("<Q", len(h)) + h + data)
        put("safetensors", f"tiny-{which}-header.bin", bytes([which << 1 | 1]) + h)
    h, data = safetensors(0, "BF16", positions=True)
    put("safetensors", "tiny-0-bf16.bin", b"\x00" + struct.pack("<Q", len(h)) + h + data)
    # The fixture's real header, without its data (truncated).
    fx = (FIX / "marian" / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", fx[:8])[0]
    put("safetensors", "fixture-header-truncated.bin", b"\x00" + fx[: 8 + n + 64])
    # pytorch_model.bin: same first byte, pickle-only mode zips it.
    for which, storage in [(0, "FloatStorage"), (1, "BFloat16Storage")]:
        pkl, raw = pth(which, storage)
        put("pytorch_bin", f"tiny-{which}-{storage}.bin", bytes([which << 1]) + raw)
        put("pytorch_bin", f"tiny-{which}-{storage}-pickle.bin", bytes([which << 1 | 1]) + pkl)
    with zipfile.ZipFile(FIX / "marian" / "pytorch_model.bin") as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    put("pytorch_bin", "fixture-pickle.bin", b"\x01" + pkl)


if __name__ == "__main__":
    text_seeds()
    config_seeds()
    checkpoint_seeds()
    total = sum(f.stat().st_size for f in SEEDS.rglob("*") if f.is_file())
    print(f"{sum(1 for f in SEEDS.rglob('*') if f.is_file())} seeds, {total} bytes")
