#!/usr/bin/env bash
# One prepared GPU check of tarjama (issue 13 item 4), for the device machine
# (one H200, CUDA 13 driver, python3 with PyTorch + transformers, no Rust, no
# network), in under 8 minutes in all; `--device cpu --quick` is its dry run
# on a machine with no GPU.
#
#   scripts/device-check.sh [--device cuda|cpu] [--quick] [--budget SECONDS]
#                           [--bin PATH] [--out DIR] [--work DIR] [--python PY]
#
# It unpacks the tarjama binary (.xz is decompressed with Python's lzma), puts
# the CUDA 13 libraries of the machine's PyTorch wheels (site-packages/
# nvidia/*/lib: cuBLAS, cuRAND, cudart) on LD_LIBRARY_PATH, checks with ldd
# that the binary resolves them, prints nvidia-smi and `tarjama info`,
# installs a carried CTranslate2 wheel if the machine has none, and runs
# scripts/device_check.py (its docstring lists the steps: random full-size
# opus-mt-ar-en model built with the machine's transformers, seed 3; f32
# parity of generated ids against transformers' generate, greedy and beam 4;
# f16/bf16 agreement rates; target tokens/s of tarjama f16/bf16/f32 against
# transformers f16 and CTranslate2 float16, greedy and beam 4, batch 32 and
# batch 256) under a deadline of --budget seconds from this script's start
# (default 420), with `timeout` as a guard. The results go to
# $OUT/device-check.json (rewritten after every step, so a cut-short run
# still has what it measured) and the whole log to $OUT/device-check.log.
#
# On the device machine (the session's `run` tool), after, here:
#   mkdir -p carry && cp /work/cuda-bin/tarjama-cuda.xz carry/    # 7.7 MB
#   # optional, for the CTranslate2 rows: its cp312 wheel (43 MB, PyPI)
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 \
#       --platform manylinux_2_17_x86_64 -d carry ctranslate2==4.8.5
# call
#   run(command="bash scripts/device-check.sh --device cuda",
#       carry=["carry"], timeout_s=480)
# carry/ is git-ignored (50 MB with the wheel; with the tree about 56 MB of
# the 64 MiB that may travel); the binary is the `--features cuda` release
# build for compute capability 9.0 (55 MB unpacked). Expect 5 to 7 minutes of
# command time plus the machine's start; device-check.json and
# device-check.log come back under files_at. To shorten a rerun:
# --budget 240 (steps are skipped in priority order, see device_check.py).
#
# Dry run here (no GPU; CPU binary, the peers venv's CPU torch):
#   scripts/device-check.sh --device cpu --quick --budget 900 \
#       --python benches/peers/.venv/bin/python --out /tmp/dc-out
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)

device=cuda
quick=()
budget=""
bin="${TARJAMA_BIN:-}"
out="${OUT:-}"
work="${DEVICE_CHECK_WORK:-/tmp/device-check}"
py="${PYTHON:-}"
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --quick) quick=(--quick); shift ;;
        --budget) budget="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --python) py="$2"; shift 2 ;;
        --skip-ct2) extra+=(--skip-ct2); shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "device-check: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $device == cuda || $device == cpu ]] || { echo "device-check: --device cuda or cpu" >&2; exit 2; }
budget="${budget:-420}"
out="${out:-$work/out}"
mkdir -p "$out" "$work"
log="$out/device-check.log"
exec > >(tee "$log") 2>&1

echo "== device-check: device $device ${quick[*]:-full}, budget ${budget}s, out $out, work $work"
date -u

# Python with torch and transformers.
if [[ -z $py ]]; then
    for c in python3 "$root/benches/peers/.venv/bin/python"; do
        if "$c" -c 'import torch, transformers' 2>/dev/null; then py="$c"; break; fi
    done
fi
[[ -n $py ]] || { echo "device-check: no python with torch and transformers (use --python)"; exit 1; }
echo "python: $py ($("$py" -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__)'))"

# The binary.
if [[ -z $bin ]]; then
    if [[ $device == cuda ]]; then
        for c in carry/tarjama-cuda.xz carry/tarjama-cuda carry/tarjama; do
            [[ -e $c ]] && { bin="$c"; break; }
        done
    else
        bin="${CARGO_TARGET_DIR:-$root/target}/release/tarjama"
    fi
fi
[[ -n $bin && -e $bin ]] || { echo "device-check: no tarjama binary (--bin, TARJAMA_BIN or carry/tarjama-cuda.xz)"; exit 1; }
echo "binary: $bin ($(stat -c %s "$bin") bytes)"
if [[ $bin == *.xz ]]; then
    "$py" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$bin" "$work/tarjama" || { echo "device-check: cannot unpack $bin"; exit 1; }
    bin="$work/tarjama"
    chmod +x "$bin"
    echo "unpacked: $bin ($(stat -c %s "$bin") bytes)"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

# CUDA libraries of the machine's PyTorch wheels.
if [[ $device == cuda ]]; then
    libdirs=$("$py" - <<'EOF'
import glob, os, site, sys
roots = set(site.getsitepackages())
try:
    import nvidia
    roots.update(os.path.dirname(p) for p in nvidia.__path__)
except ImportError:
    pass
dirs = set()
for r in roots:
    for pat in ("nvidia/*/lib", "nvidia/*/lib64", "nvidia/*/*/lib"):
        dirs.update(d for d in glob.glob(os.path.join(r, pat)) if glob.glob(os.path.join(d, "lib*.so*")))
# cu13 first: the binary wants the .so.13 libraries.
print(":".join(sorted(dirs, key=lambda d: ("cu13" not in d, d))))
EOF
)
    export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    missing=$(ldd "$bin" | awk '/not found/ {print $1}')
    for lib in $missing; do
        hit=$(find /usr/local/nvidia /usr/local/cuda/lib64 /usr/local /usr/lib /usr/lib64 /opt \
            -name "$lib" 2>/dev/null | head -1)
        if [[ -n $hit ]]; then
            echo "found $lib outside the wheels: $hit"
            export LD_LIBRARY_PATH="$(dirname "$hit"):$LD_LIBRARY_PATH"
        fi
    done
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ldd "$bin" | grep -E 'cu|nvrtc|not found'
    echo "== nvidia-smi"
    nvidia-smi || echo "(nvidia-smi failed)"
fi

echo "== tarjama --version / info"
"$bin" --version
"$bin" info || echo "(tarjama info failed: exit $?)"

# CTranslate2: the machine's, else a carried wheel (installed outside the tree).
if [[ ${#extra[@]} -eq 0 ]] && ! "$py" -c 'import ctranslate2' 2>/dev/null; then
    whl=$(ls carry/ctranslate2-*.whl 2>/dev/null | head -1)
    if [[ -n $whl ]]; then
        echo "installing $whl into $work/ct2site"
        if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$work/ct2site" "$whl"; then
            export PYTHONPATH="$work/ct2site${PYTHONPATH:+:$PYTHONPATH}"
        else
            echo "(pip install of $whl failed)"
        fi
    else
        echo "no ctranslate2 on this machine and no carry/ctranslate2-*.whl"
    fi
fi

# Nothing may reach for the Hugging Face Hub (the device machine has no network).
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
deadline=$((start + budget - 10))
guard=$((deadline - $(date +%s) + 40))
echo "== device_check.py (deadline in $((deadline - $(date +%s))) s, guard ${guard} s)"
PYTHONUNBUFFERED=1 timeout -k 10 "$guard" "$py" -u scripts/device_check.py --tarjama "$bin" \
    --device "$device" "${quick[@]}" "${extra[@]}" --deadline "$deadline" \
    --out "$out/device-check.json" --work "$work"
rc=$?
[[ $rc -eq 124 || $rc -eq 137 ]] && echo "device-check: device_check.py stopped by the guard; the JSON holds what was done"
echo "== done: rc $rc in $(( $(date +%s) - start )) s; $out/device-check.json"
exit $rc
