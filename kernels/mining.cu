// Online triplet mining kernels: pairwise distances and triplet selection inside a batch.
//
// Loaded by tripletloss/mining/cuda_backend.py with cupy.RawModule (NVRTC) and run on torch tensors through
// DLPack, on torch's current stream. Nothing here materialises a B^3 anything: a pair's candidate negatives are
// counted and chosen by one warp scanning the anchor's distance row. Random choices use the counter-based hash
// of tripletloss/mining/rng.py (lowbias32 chained over seed, anchor, positive), so a seed reproduces the triplets.
// Layouts: x (B, D) float32 row-major; d (B, B) float32; labels (B,) int64. All kernels expect blockDim.x % 32 == 0
// where they use warps. No headers: NVRTC compiles this as is, and `nvcc -ptx` too.

#define FULL_MASK 0xffffffffu
#define TILE 16

__device__ __forceinline__ unsigned int hash32(unsigned int x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

// Same value as rng.pair_random in Python.
__device__ __forceinline__ unsigned int pair_random(unsigned int seed, unsigned int a, unsigned int p) {
    return hash32(hash32(hash32(seed) + a) + p);
}

// Is n a candidate negative for anchor label la: other label, d_an < hi and (if lower_bound) d_an > lo?
__device__ __forceinline__ bool is_candidate(const float* row, const long long* labels, long long la, int n,
                                             int B, float lo, float hi, int lower_bound) {
    if (n >= B || labels[n] == la) return false;
    const float dn = row[n];
    return dn < hi && (!lower_bound || dn > lo);
}

// Number of candidate negatives in the row (whole warp calls it; every lane gets the total).
__device__ int count_candidates(const float* row, const long long* labels, long long la, int B, float lo,
                                float hi, int lower_bound) {
    const int lane = threadIdx.x & 31;
    int count = 0;
    for (int n0 = 0; n0 < B; n0 += 32) {
        count += __popc(__ballot_sync(FULL_MASK, is_candidate(row, labels, la, n0 + lane, B, lo, hi, lower_bound)));
    }
    return count;
}

// Index of the set bit of rank k (0-based, k < popc(m)) in m.
__device__ __forceinline__ int kth_set_bit(unsigned int m, int k) {
    for (int i = 0; i < k; ++i) m &= m - 1;
    return __ffs(m) - 1;
}

extern "C" {

// d[i, j] = sum_k (x[i, k] - x[j, k])^2 (or its square root): exact zero diagonal, symmetric, never negative.
// Grid (ceil(B / 16), ceil(B / 16)), block (16, 16).
__global__ void pairwise_sqdist(const float* __restrict__ x, int B, int D, int squared, float* __restrict__ d) {
    __shared__ float rows_i[TILE][TILE + 1];
    __shared__ float rows_j[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int i = blockIdx.y * TILE + ty, j = blockIdx.x * TILE + tx;
    const int load_i = blockIdx.y * TILE + ty, load_j = blockIdx.x * TILE + ty;
    float acc = 0.0f;
    for (int k0 = 0; k0 < D; k0 += TILE) {
        const int k = k0 + tx;
        rows_i[ty][tx] = (load_i < B && k < D) ? x[(long long)load_i * D + k] : 0.0f;
        rows_j[ty][tx] = (load_j < B && k < D) ? x[(long long)load_j * D + k] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < TILE; ++kk) {
            const float diff = rows_i[ty][kk] - rows_j[tx][kk];
            acc = fmaf(diff, diff, acc);
        }
        __syncthreads();
    }
    if (i < B && j < B) d[(long long)i * B + j] = squared ? acc : sqrtf(acc);
}

// Semihard (lower_bound = 1) and violating (lower_bound = 0): for every same-label pair a < p, one candidate
// negative chosen uniformly (rank floor(r * count / 2^32) in index order), written to out_neg[a * B + p];
// pairs without candidates are left as they were (-1). Grid B blocks (one per anchor), any multiple of 32 threads.
__global__ void one_per_pair(const float* __restrict__ d, const long long* __restrict__ labels, int B,
                             float margin, int lower_bound, unsigned int seed, long long* __restrict__ out_neg) {
    const int a = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const long long la = labels[a];
    const float* row = d + (long long)a * B;
    for (int base = a + 1 + warp * 32; base < B; base += nwarps * 32) {
        const int p_lane = base + lane;
        unsigned int positives = __ballot_sync(FULL_MASK, p_lane < B && labels[p_lane] == la);
        while (positives) {
            const int p = base + __ffs(positives) - 1;
            positives &= positives - 1;
            const float lo = row[p], hi = row[p] + margin;
            const int count = count_candidates(row, labels, la, B, lo, hi, lower_bound);
            if (count == 0) continue;
            int k = (int)(((unsigned long long)pair_random(seed, a, p) * (unsigned long long)count) >> 32);
            for (int n0 = 0; n0 < B; n0 += 32) {
                const unsigned int m = __ballot_sync(FULL_MASK,
                                                     is_candidate(row, labels, la, n0 + lane, B, lo, hi, lower_bound));
                const int c = __popc(m);
                if (k < c) {
                    if (lane == 0) out_neg[(long long)a * B + p] = n0 + kth_set_bit(m, k);
                    break;
                }
                k -= c;
            }
        }
    }
}

// Batch-all, pass 1: counts[a * B + p] = #negatives n with d_an < d_ap + margin, for every same-label a != p
// (other entries untouched, 0). Grid B blocks (one per anchor), any multiple of 32 threads.
__global__ void violation_counts(const float* __restrict__ d, const long long* __restrict__ labels, int B,
                                 float margin, int* __restrict__ counts) {
    const int a = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const long long la = labels[a];
    const float* row = d + (long long)a * B;
    for (int base = warp * 32; base < B; base += nwarps * 32) {
        const int p_lane = base + lane;
        unsigned int positives = __ballot_sync(FULL_MASK, p_lane < B && p_lane != a && labels[p_lane] == la);
        while (positives) {
            const int p = base + __ffs(positives) - 1;
            positives &= positives - 1;
            const int count = count_candidates(row, labels, la, B, 0.0f, row[p] + margin, 0);
            if (lane == 0) counts[(long long)a * B + p] = count;
        }
    }
}

// Batch-all, pass 2: pair q = (pair_a[q], pair_p[q]) owns triplets whose global ranks chosen[sel_lo[q]:sel_hi[q]]
// (sorted) fall in [pair_start[q], pair_start[q] + its count); the candidate of rank chosen[j] - pair_start[q], in
// index order, is written to out_neg[j]. One warp per pair: grid ceil(n_pairs * 32 / blockDim.x) blocks.
__global__ void batch_all_write(const float* __restrict__ d, const long long* __restrict__ labels, int B,
                                float margin, const long long* __restrict__ pair_a,
                                const long long* __restrict__ pair_p, const long long* __restrict__ pair_start,
                                const long long* __restrict__ sel_lo, const long long* __restrict__ sel_hi,
                                const long long* __restrict__ chosen, long long n_pairs,
                                long long* __restrict__ out_neg) {
    const long long q = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (q >= n_pairs) return;  // whole warps leave together: q is uniform within a warp
    const int a = (int)pair_a[q];
    const long long la = labels[a];
    const float* row = d + (long long)a * B;
    const float hi = row[pair_p[q]] + margin;
    long long j = sel_lo[q];
    const long long j_end = sel_hi[q];
    long long seen = pair_start[q];  // global rank of the next candidate
    for (int n0 = 0; n0 < B && j < j_end; n0 += 32) {
        const unsigned int m = __ballot_sync(FULL_MASK, is_candidate(row, labels, la, n0 + lane, B, 0.0f, hi, 0));
        const int c = __popc(m);
        while (j < j_end && chosen[j] < seen + c) {
            if (lane == 0) out_neg[j] = n0 + kth_set_bit(m, (int)(chosen[j] - seen));
            ++j;
        }
        seen += c;
    }
}

// Batch-hard: for each anchor a (one warp each), out_pos[a] = its farthest positive, out_neg[a] = its nearest
// negative, the smallest index on ties; -1 where there is none. Grid ceil(B * 32 / blockDim.x) blocks.
__global__ void batch_hard(const float* __restrict__ d, const long long* __restrict__ labels, int B,
                           long long* __restrict__ out_pos, long long* __restrict__ out_neg) {
    const long long a_wide = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (a_wide >= B) return;  // uniform within a warp
    const int a = (int)a_wide;
    const long long la = labels[a];
    const float* row = d + (long long)a * B;
    float best_p = 0.0f, best_n = 0.0f;
    int arg_p = -1, arg_n = -1;
    for (int n = lane; n < B; n += 32) {
        const float dn = row[n];
        if (labels[n] == la) {
            if (n != a && (arg_p < 0 || dn > best_p)) { best_p = dn; arg_p = n; }
        } else if (arg_n < 0 || dn < best_n) {
            best_n = dn; arg_n = n;
        }
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float other_p = __shfl_down_sync(FULL_MASK, best_p, offset);
        const int other_arg_p = __shfl_down_sync(FULL_MASK, arg_p, offset);
        const float other_n = __shfl_down_sync(FULL_MASK, best_n, offset);
        const int other_arg_n = __shfl_down_sync(FULL_MASK, arg_n, offset);
        if (other_arg_p >= 0 && (arg_p < 0 || other_p > best_p || (other_p == best_p && other_arg_p < arg_p))) {
            best_p = other_p; arg_p = other_arg_p;
        }
        if (other_arg_n >= 0 && (arg_n < 0 || other_n < best_n || (other_n == best_n && other_arg_n < arg_n))) {
            best_n = other_n; arg_n = other_arg_n;
        }
    }
    if (lane == 0) {
        out_pos[a] = arg_p;
        out_neg[a] = arg_n;
    }
}

}  // extern "C"
