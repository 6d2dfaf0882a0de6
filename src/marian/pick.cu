// Token selection over logit rows on the GPU: the twin of `pick_row` in
// pick.rs (read that first; the semantics are defined there). One block of
// PICK_THREADS threads per row: the processed row goes to `work` (the
// logits stay as they are), then each thread keeps the best k of its
// strided share of the row and k block-wide rounds merge them. Ranking is
// (value + base) descending, then token ascending, NaN as -inf, so ties
// break as on the host. Only __syncthreads and shared memory are used (no
// warp intrinsics): the tests compile this file for an emulation of the
// block model on the CPU.

#define PICK_THREADS 256
#define PICK_MAX_K 64
#define PICK_NONE 0x7fffffff
#define PICK_PENALISE 0
#define PICK_BAN 1

__device__ __forceinline__ float pick_neg_inf() { return -__int_as_float(0x7f800000); }

// a ranks before b.
__device__ __forceinline__ bool pick_better(float ka, int ia, float kb, int ib) {
    return ka > kb || (ka == kb && ia < ib);
}

__device__ float pick_block_max(const float* x, int n, float* red) {
    const int tid = threadIdx.x;
    float m = pick_neg_inf();
    for (int i = tid; i < n; i += PICK_THREADS) m = fmaxf(m, x[i]);
    red[tid] = m;
    __syncthreads();
    for (int s = PICK_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] = fmaxf(red[tid], red[tid + s]);
        __syncthreads();
    }
    const float r = red[0];
    __syncthreads();
    return r;
}

// ln Σ exp(x - max).
__device__ float pick_block_lse(const float* x, int n, float max, float* red) {
    const int tid = threadIdx.x;
    float s = 0.f;
    for (int i = tid; i < n; i += PICK_THREADS) s += expf(x[i] - max);
    red[tid] = s;
    __syncthreads();
    for (int h = PICK_THREADS / 2; h > 0; h >>= 1) {
        if (tid < h) red[tid] += red[tid + h];
        __syncthreads();
    }
    const float r = logf(red[0]);
    __syncthreads();
    return r;
}

// s = log_softmax(s) in place; a row that is all -inf stays as it is.
__device__ void pick_log_softmax(float* s, int n, float* red) {
    const float m = pick_block_max(s, n, red);
    const float l = pick_block_lse(s, n, m, red);
    if (m != pick_neg_inf())
        for (int i = threadIdx.x; i < n; i += PICK_THREADS) s[i] = s[i] - m - l;
    __syncthreads();
}

extern "C" __global__ void tarjama_pick(
    const float* __restrict__ logits,  // (rows, vocab)
    float* __restrict__ work,          // (rows, vocab) scratch
    int vocab, int k, int nbases, int log_probs, int renorm, float penalty,
    const int* __restrict__ edit_off,  // rows + 1 offsets into edit_tok / edit_kind
    const int* __restrict__ edit_tok, const int* __restrict__ edit_kind,
    const int* __restrict__ forced_rows,  // rows
    const int* __restrict__ forced_tok, int n_forced,
    const float* __restrict__ bases,  // (rows, nbases)
    float* __restrict__ out) {        // (rows, nbases, k, 3): token, score, logprob
    __shared__ float red[PICK_THREADS];
    __shared__ int redi[PICK_THREADS];
    const int row = blockIdx.x;
    const int tid = threadIdx.x;
    const float* x = logits + (size_t)row * vocab;
    float* s = work + (size_t)row * vocab;

    for (int i = tid; i < vocab; i += PICK_THREADS) s[i] = x[i];
    __syncthreads();
    if (log_probs) pick_log_softmax(s, vocab, red);

    if (forced_rows[row]) {
        for (int i = tid; i < vocab; i += PICK_THREADS) s[i] = pick_neg_inf();
        __syncthreads();
        for (int j = tid; j < n_forced; j += PICK_THREADS) s[forced_tok[j]] = 0.f;
    } else {
        const int a = edit_off[row], b = edit_off[row + 1];
        // Penalised tokens are distinct: one thread per token.
        if (penalty != 1.f)
            for (int j = a + tid; j < b; j += PICK_THREADS)
                if (edit_kind[j] == PICK_PENALISE) {
                    const float v = s[edit_tok[j]];
                    s[edit_tok[j]] = v < 0.f ? v * penalty : v / penalty;
                }
        __syncthreads();
        for (int j = a + tid; j < b; j += PICK_THREADS)
            if (edit_kind[j] == PICK_BAN) s[edit_tok[j]] = pick_neg_inf();
    }
    __syncthreads();
    if (renorm) pick_log_softmax(s, vocab, red);

    float norm_max = 0.f, norm_lse = 0.f;
    if (!log_probs) {
        norm_max = pick_block_max(s, vocab, red);
        norm_lse = pick_block_lse(s, vocab, norm_max, red);
    }

    float key[PICK_MAX_K];
    int idx[PICK_MAX_K];
    for (int b = 0; b < nbases; ++b) {
        const float base = bases[row * nbases + b];
        // This thread's best k, best first; its tokens come in increasing
        // order, so a later equal value never enters.
        int n = 0;
        for (int i = tid; i < vocab; i += PICK_THREADS) {
            float v = s[i] + base;
            if (v != v) v = pick_neg_inf();
            if (n == k && !(v > key[k - 1])) continue;
            int p = n < k ? n++ : k - 1;
            while (p > 0 && v > key[p - 1]) {
                key[p] = key[p - 1];
                idx[p] = idx[p - 1];
                --p;
            }
            key[p] = v;
            idx[p] = i;
        }
        int head = 0;
        for (int r = 0; r < k; ++r) {
            red[tid] = head < n ? key[head] : pick_neg_inf();
            redi[tid] = head < n ? idx[head] : PICK_NONE;
            __syncthreads();
            for (int h = PICK_THREADS / 2; h > 0; h >>= 1) {
                if (tid < h && pick_better(red[tid + h], redi[tid + h], red[tid], redi[tid])) {
                    red[tid] = red[tid + h];
                    redi[tid] = redi[tid + h];
                }
                __syncthreads();
            }
            const float win_key = red[0];
            const int win = redi[0];
            __syncthreads();
            if (head < n && idx[head] == win) ++head;
            if (tid == 0) {
                float* o = out + (((size_t)row * nbases + b) * k + r) * 3;
                const float v = s[win];
                o[0] = (float)win;
                o[1] = win_key;
                o[2] = log_probs ? v : v - norm_max - norm_lse;
            }
        }
    }
}
