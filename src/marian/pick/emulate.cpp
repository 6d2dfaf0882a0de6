// Runs pick.cu's kernel on the CPU, for the tests of pick.rs (no GPU here):
// a block's PICK_THREADS threads are std::threads that meet at one
// std::barrier for __syncthreads, and __shared__ variables become statics
// (one block runs at a time). What this checks is the kernel's logic, its
// barriers and its ties, not nvcc's code or the GPU's float rounding.
//
// stdin: a case as little-endian words (see `write_case` in tests.rs);
// stdout: (rows, nbases, k, 3) f32.
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
static thread_local Dim3 threadIdx, blockIdx;
static std::barrier<>* block_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

static void __syncthreads() { block_barrier->arrive_and_wait(); }
static float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

#include "../pick.cu"

template <class T>
static std::vector<T> read(size_t n) {
    std::vector<T> v(n);
    if (n && std::fread(v.data(), sizeof(T), n, stdin) != n) {
        std::fprintf(stderr, "emulate: short input\n");
        std::exit(2);
    }
    return v;
}

int main() {
    const auto h = read<int32_t>(6);
    const int rows = h[0], vocab = h[1], k = h[2], nbases = h[3], log_probs = h[4], renorm = h[5];
    const float penalty = read<float>(1)[0];
    const auto logits = read<float>((size_t)rows * vocab);
    const auto off = read<int32_t>(rows + 1);
    const auto tok = read<int32_t>(off[rows]);
    const auto kind = read<int32_t>(off[rows]);
    const auto forced_rows = read<int32_t>(rows);
    const int n_forced = read<int32_t>(1)[0];
    const auto forced_tok = read<int32_t>(n_forced);
    const auto bases = read<float>((size_t)rows * nbases);

    std::vector<float> work((size_t)rows * vocab, std::nanf(""));
    std::vector<float> out((size_t)rows * nbases * k * 3, std::nanf(""));
    for (int row = 0; row < rows; ++row) {
        std::barrier<> bar(PICK_THREADS);
        block_barrier = &bar;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < PICK_THREADS; ++t)
            threads.emplace_back([&, t] {
                threadIdx.x = t;
                blockIdx.x = row;
                tarjama_pick(logits.data(), work.data(), vocab, k, nbases, log_probs, renorm,
                             penalty, off.data(), tok.data(), kind.data(), forced_rows.data(),
                             forced_tok.data(), n_forced, bases.data(), out.data());
            });
        for (auto& t : threads) t.join();
    }
    std::fwrite(out.data(), sizeof(float), out.size(), stdout);
    return 0;
}
