#!/usr/bin/env bash
# A CUDA 13.0 toolchain from PyPI, for building `--features cuda` on a machine
# with no CUDA install and no GPU (a developer's, CI's):
#   scripts/cuda-toolchain.sh               # all that `cargo build --features cuda` needs (~1.2 GB)
#   scripts/cuda-toolchain.sh --check-only  # only what `cargo check --features cuda` needs
#                                           # (nvcc, headers, cudart: no cuBLAS; ~300 MB)
#   source .cuda/env.sh                     # then build or check as usual
# It installs NVIDIA's wheels into a virtual environment (.cuda/venv, or
# $TARJAMA_CUDA_DIR/venv), and for linking adds the unversioned lib*.so links
# the wheels lack and a libcuda link stub (the driver library is not on PyPI;
# at run time the real driver's libcuda.so.1 is loaded instead). It writes the
# environment to .cuda/env.sh (check-only: .cuda/env-check.sh). Rerunning is
# cheap: a stamp skips pip once the same pinned set is installed.
# Needs python3 (>= 3.9) with venv, pip access to PyPI, a C compiler (cc) and
# g++ (nvcc's host compiler).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${TARJAMA_CUDA_DIR:-$root/.cuda}"

mode=full
case "${1:-}" in
    "") ;;
    --check-only) mode=check ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "cuda-toolchain: unknown argument '$1' (use --check-only, or none)" >&2
        exit 2
        ;;
esac

die() {
    echo "cuda-toolchain: $*" >&2
    exit 1
}

# One CUDA release throughout: nvvm and crt are pinned too, since an unpinned
# pip takes the newest ones, whose PTX version 13.0's ptxas rejects.
check_pkgs=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
)
# What cudarc links (candle turns on its `dynamic-linking`): cuBLAS(Lt),
# cuRAND and NVRTC, besides cudart and the driver (the stub below).
link_pkgs=(
    nvidia-cublas==13.0.2.14
    nvidia-cuda-nvrtc==13.0.88
    nvidia-curand==10.4.0.35
)
pkgs=("${check_pkgs[@]}")
if [[ $mode == full ]]; then
    pkgs+=("${link_pkgs[@]}")
fi

for tool in python3 cc g++; do
    command -v "$tool" > /dev/null || die "needs $tool on PATH"
done

venv="$dir/venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
stamp="$dir/installed-$mode"
want="${pkgs[*]}"
# A full install covers a check-only one.
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] ||
    [[ $mode == check && -f "$dir/installed-full" ]]; then
    echo "cuda-toolchain: $mode set already installed in $venv"
else
    echo "cuda-toolchain: installing ${pkgs[*]} into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}" ||
        die "pip install failed (PyPI reachable? disk space: ~1.2 GB?)"
    echo "$want" > "$stamp"
fi

# The wheels lay CUDA out as one tree: nvidia/cu13/{bin,include,lib}.
shopt -s nullglob
trees=("$venv"/lib/python3*/site-packages/nvidia/cu13)
shopt -u nullglob
[[ ${#trees[@]} == 1 && -x "${trees[0]}/bin/nvcc" ]] ||
    die "no nvidia/cu13/bin/nvcc under $venv (the wheels' layout changed?)"
cuda="${trees[0]}"
version="$("$cuda/bin/nvcc" --version)" || die "$cuda/bin/nvcc does not run"
grep -q 'release 13\.0' <<< "$version" || die "expected nvcc 13.0, got: $version"

compute_cap_line='export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"'
# CUDA_HOME too: cudaforge (candle-kernels' build) prefers it to CUDA_PATH,
# so one set for another toolkit would win.
common="# Written by scripts/cuda-toolchain.sh ($mode): source it before cargo.
export CUDA_HOME='$cuda'
export CUDA_PATH='$cuda'
export CUDA_ROOT='$cuda'
export PATH='$cuda/bin':\"\$PATH\"
# The GPU generation the kernels are compiled for (no GPU here to ask):
# 90 = Hopper (H100, H200); 80 = A100, 89 = L4/L40/RTX 40xx, 120 = RTX 50xx.
$compute_cap_line"

if [[ $mode == check ]]; then
    printf '%s\n' "$common" > "$dir/env-check.sh"
    echo "cuda-toolchain: now: source $dir/env-check.sh && cargo check --features cuda"
    exit 0
fi

# Link directory: lib*.so -> the wheels' versioned libraries.
lib="$dir/lib"
mkdir -p "$lib"
for f in "$cuda"/lib/lib*.so.*; do
    name="$(basename "$f")"
    ln -sfn "$f" "$lib/${name%%.so.*}.so"
done
for l in cudart cublas cublasLt curand nvrtc; do
    [[ -e "$lib/lib$l.so" ]] || die "lib$l.so.* missing from $cuda/lib"
done

# The libcuda link stub: every cu* function cuda.h declares, as seen after
# the preprocessor (which maps e.g. cuMemAlloc to cuMemAlloc_v2, as the
# bindings do). Its soname is the driver's, so the binary needs the real
# libcuda.so.1 at run time; loaded in its place (LD_LIBRARY_PATH=.cuda/stub),
# every call fails with CUDA_ERROR_STUB_LIBRARY, as NVIDIA's own stub does.
stub="$dir/stub"
if [[ ! -f "$stub/libcuda.so" || "$cuda/include/cuda.h" -nt "$stub/libcuda.so" ]]; then
    mkdir -p "$stub"
    src="$stub/libcuda-stub.c"
    {
        echo '/* Generated by scripts/cuda-toolchain.sh from cuda.h: a link stub. */'
        echo 'static const char *stub_name = "CUDA_ERROR_STUB_LIBRARY";'
        echo 'static const char *stub_text = "libcuda.so.1 is a link stub, not an NVIDIA driver (no GPU driver on this machine)";'
        echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = stub_name; return 0; }'
        echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = stub_text; return 0; }'
        cc -E -P -I"$cuda/include" "$cuda/include/cuda.h" |
            grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' \t(' | sort -u |
            grep -vxE 'cuGetErrorName|cuGetErrorString' |
            sed 's/.*/int &(void) { return 34; }/'
    } > "$src"
    [[ $(grep -c 'return 34' "$src") -gt 100 ]] || die "found too few functions in $cuda/include/cuda.h"
    cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$src" ||
        die "compiling the libcuda stub failed"
    ln -sfn libcuda.so "$stub/libcuda.so.1"
fi

{
    printf '%s\n' "$common"
    echo "# Link time only: the wheels' libraries and the libcuda stub."
    echo "export LIBRARY_PATH='$lib:$stub'\"\${LIBRARY_PATH:+:\$LIBRARY_PATH}\""
    echo "# To run a cuda build here: LD_LIBRARY_PATH=\"\$TARJAMA_CUDA_LIBS\" (add"
    echo "# \$TARJAMA_CUDA_STUB where there is no NVIDIA driver: every CUDA call then fails)."
    echo "export TARJAMA_CUDA_LIBS='$cuda/lib'"
    echo "export TARJAMA_CUDA_STUB='$stub'"
} > "$dir/env.sh"
echo "cuda-toolchain: now: source $dir/env.sh && cargo build --release --features cuda"
