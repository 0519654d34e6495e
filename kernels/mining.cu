// Online triplet mining kernels (loaded by tripletloss/mining/cuda_backend.py with cupy.RawModule).
//
// Inputs are the (B, B) float32 Gram matrix G = X X^T, its diagonal sq (contiguous, so reads coalesce) and int64
// labels. Distances are computed on the fly as d_an = (-2 G_an + sq_a) + sq_n, clamped at 0 (sqrt'ed unless
// `squared`): the same expression in the same order as tripletloss.mining.distances.gram_to_squared, so both
// backends see bit-identical distances.
//
// Every mining kernel runs one block per anchor row a. The block stages row a's distances to negatives in shared
// memory (+inf for same-label columns, so "d > lo && d < hi" alone tests a candidate), then one warp per work item
// (a pair, or a pair and a rank) scans that row. Nothing of size B^3 is ever materialised.
#define FULL_MASK 0xffffffffu
#define INF __int_as_float(0x7f800000)  // NVRTC has no <math.h>, hence no INFINITY

__device__ __forceinline__ float distance(const float* gram, const float* sq, int B, int a, int n, int squared) {
    float d = fmaxf(__fadd_rn(__fadd_rn(-2.0f * gram[(long long)a * B + n], sq[a]), sq[n]), 0.0f);
    return squared ? d : __fsqrt_rn(d);
}

// Counter-based random numbers: splitmix64 finaliser of (seed, counter); uniform integer in [0, n).
__device__ __forceinline__ unsigned long long mix64(unsigned long long x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

__device__ __forceinline__ int uniform_below(unsigned long long seed, unsigned long long counter, int n) {
    return (int)__umul64hi(mix64(seed ^ mix64(counter)), (unsigned long long)n);
}

// Stage row a of the distance matrix in shared memory, +inf where the column has a's label.
__device__ void load_negatives(const float* gram, const float* sq, const long long* labels, int B, int a,
                               int squared, float* row) {
    long long label = labels[a];
    for (int n = threadIdx.x; n < B; n += blockDim.x)
        row[n] = labels[n] == label ? INF : distance(gram, sq, B, a, n, squared);
}

// Collect a's positives (p > a, or p != a when `ordered`) into shared `positives`, in any order; every other
// column j of out_row gets `fill`. Returns the number of positives (same value in all threads).
__device__ int collect_positives(const long long* labels, int B, int a, int ordered, int* positives,
                                 int* out_row, int fill) {
    __shared__ int count;
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    long long label = labels[a];
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        if (labels[j] == label && (ordered ? j != a : j > a)) positives[atomicAdd(&count, 1)] = j;
        else if (out_row) out_row[j] = fill;
    }
    __syncthreads();
    return count;
}

// Number of candidates n (lo < row[n] < hi); all lanes of the warp return it.
__device__ int warp_count(const float* row, int B, float lo, float hi) {
    int c = 0;
    for (int n = threadIdx.x & 31; n < B; n += 32) c += (row[n] > lo && row[n] < hi);
    for (int offset = 16; offset; offset >>= 1) c += __shfl_xor_sync(FULL_MASK, c, offset);
    return c;
}

// Column of the k-th (0-based, in column order) candidate, or -1; all lanes of the warp return it.
__device__ int warp_kth(const float* row, int B, float lo, float hi, int k) {
    int lane = threadIdx.x & 31;
    for (int base = 0; base < B; base += 32) {
        int n = base + lane;
        unsigned hits = __ballot_sync(FULL_MASK, n < B && row[n] > lo && row[n] < hi);
        int c = __popc(hits);
        if (k < c) {
            for (int i = 0; i < k; ++i) hits &= hits - 1;  // drop the k lowest set bits
            return base + __ffs(hits) - 1;
        }
        k -= c;
    }
    return -1;
}

// semihard (lo = d_ap) / violating (lo = -inf): for every pair a < p, out[a, p] = a candidate n with
// lo < d_an < d_ap + margin chosen uniformly (counter a * B + p), or -1; out[a, j] = -1 for non-pairs.
// Shared memory: B floats + B ints.
extern "C" __global__ void pair_negatives(const float* gram, const float* sq, const long long* labels, int B,
                                          float margin, int semihard, int squared, unsigned long long seed, int* out) {
    extern __shared__ float row[];
    int* positives = (int*)(row + B);
    int a = blockIdx.x;
    int npos = collect_positives(labels, B, a, 0, positives, out + (long long)a * B, -1);
    if (npos == 0) return;
    load_negatives(gram, sq, labels, B, a, squared, row);
    __syncthreads();
    for (int q = threadIdx.x >> 5; q < npos; q += blockDim.x >> 5) {
        int p = positives[q];
        float d_ap = distance(gram, sq, B, a, p, squared);
        float lo = semihard ? d_ap : -INF, hi = __fadd_rn(d_ap, margin);
        int count = warp_count(row, B, lo, hi);
        int n = count ? warp_kth(row, B, lo, hi, uniform_below(seed, (unsigned long long)a * B + p, count)) : -1;
        if ((threadIdx.x & 31) == 0) out[(long long)a * B + p] = n;
    }
}

// batch_all pass 1: counts[a, p] = #{n : d_an < d_ap + margin} for ordered pairs a != p, 0 elsewhere.
extern "C" __global__ void count_violations(const float* gram, const float* sq, const long long* labels, int B,
                                            float margin, int squared, int* counts) {
    extern __shared__ float row[];
    int* positives = (int*)(row + B);
    int a = blockIdx.x;
    int npos = collect_positives(labels, B, a, 1, positives, counts + (long long)a * B, 0);
    if (npos == 0) return;
    load_negatives(gram, sq, labels, B, a, squared, row);
    __syncthreads();
    for (int q = threadIdx.x >> 5; q < npos; q += blockDim.x >> 5) {
        int p = positives[q];
        int c = warp_count(row, B, -INF, __fadd_rn(distance(gram, sq, B, a, p, squared), margin));
        if ((threadIdx.x & 31) == 0) counts[(long long)a * B + p] = c;
    }
}

// batch_all pass 2: write every violating (a, p, n) at starts[a, p] + (rank of n among the pair's candidates).
extern "C" __global__ void write_violations(const float* gram, const float* sq, const long long* labels, int B,
                                            float margin, int squared, const long long* starts, long long* out_a,
                                            long long* out_p, long long* out_n) {
    extern __shared__ float row[];
    int* positives = (int*)(row + B);
    int a = blockIdx.x, lane = threadIdx.x & 31;
    int npos = collect_positives(labels, B, a, 1, positives, 0, 0);
    if (npos == 0) return;
    load_negatives(gram, sq, labels, B, a, squared, row);
    __syncthreads();
    for (int q = threadIdx.x >> 5; q < npos; q += blockDim.x >> 5) {
        int p = positives[q];
        float hi = __fadd_rn(distance(gram, sq, B, a, p, squared), margin);
        long long at = starts[(long long)a * B + p];
        for (int base = 0; base < B; base += 32) {
            int n = base + lane;
            bool hit = n < B && row[n] < hi;
            unsigned hits = __ballot_sync(FULL_MASK, hit);
            if (hit) {
                long long k = at + __popc(hits & ((1u << lane) - 1));
                out_a[k] = a;
                out_p[k] = p;
                out_n[k] = n;
            }
            at += __popc(hits);
        }
    }
}

// batch_all with a cap: item i (sorted by anchor) asks for the rank[i]-th violating negative of pair
// (anchor[i], positive[i]) in column order; out_n[i] receives it.
extern "C" __global__ void kth_violations(const float* gram, const float* sq, const long long* labels, int B,
                                          float margin, int squared, const long long* anchor, const long long* positive,
                                          const long long* rank, long long items, long long* out_n) {
    extern __shared__ float row[];
    __shared__ long long range[2];
    int a = blockIdx.x;
    if (threadIdx.x < 2) {  // lower_bound of a (thread 0) and a + 1 (thread 1) in the sorted anchors
        long long lo = 0, hi = items, key = a + threadIdx.x;
        while (lo < hi) {
            long long mid = (lo + hi) / 2;
            if (anchor[mid] < key) lo = mid + 1; else hi = mid;
        }
        range[threadIdx.x] = lo;
    }
    __syncthreads();
    if (range[0] == range[1]) return;
    load_negatives(gram, sq, labels, B, a, squared, row);
    __syncthreads();
    for (long long i = range[0] + (threadIdx.x >> 5); i < range[1]; i += blockDim.x >> 5) {
        float hi = __fadd_rn(distance(gram, sq, B, a, (int)positive[i], squared), margin);
        int n = warp_kth(row, B, -INF, hi, (int)rank[i]);
        if ((threadIdx.x & 31) == 0) out_n[i] = n;
    }
}

// batch_hard: hardest_p[a] = farthest positive, hardest_n[a] = nearest negative (lowest index on ties), -1 if none.
__device__ __forceinline__ void keep_better(float& v, int& i, float v2, int i2, float sign) {
    if (sign * v2 > sign * v || (v2 == v && i2 < i)) { v = v2; i = i2; }
}

__device__ void block_best(float& v, int& i, float sign) {
    __shared__ float vs[32];
    __shared__ int is[32];
    for (int offset = 16; offset; offset >>= 1)
        keep_better(v, i, __shfl_xor_sync(FULL_MASK, v, offset), __shfl_xor_sync(FULL_MASK, i, offset), sign);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    __syncthreads();  // vs / is may still be read by a previous call
    if (lane == 0) { vs[warp] = v; is[warp] = i; }
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? vs[lane] : -sign * INF;
        i = lane < nwarps ? is[lane] : 0x7fffffff;
        for (int offset = 16; offset; offset >>= 1)
            keep_better(v, i, __shfl_xor_sync(FULL_MASK, v, offset), __shfl_xor_sync(FULL_MASK, i, offset), sign);
    }
}

extern "C" __global__ void batch_hard(const float* gram, const float* sq, const long long* labels, int B,
                                      int squared, long long* hardest_p, long long* hardest_n) {
    int a = blockIdx.x;
    long long label = labels[a];
    float vp = -INF, vn = INF;
    int ip = 0x7fffffff, in = 0x7fffffff;
    for (int n = threadIdx.x; n < B; n += blockDim.x) {
        if (n == a) continue;
        float d = distance(gram, sq, B, a, n, squared);
        if (labels[n] == label) keep_better(vp, ip, d, n, 1.0f);
        else keep_better(vn, in, d, n, -1.0f);
    }
    block_best(vp, ip, 1.0f);
    block_best(vn, in, -1.0f);
    if (threadIdx.x == 0) {
        hardest_p[a] = ip == 0x7fffffff ? -1 : ip;
        hardest_n[a] = in == 0x7fffffff ? -1 : in;
    }
}
