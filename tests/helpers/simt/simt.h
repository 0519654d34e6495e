// A small SIMT emulator: runs CUDA kernel source on the CPU, compiled by g++, so the kernels' logic is tested on
// machines without a GPU (tests/simt_kernels.py builds and drives it).
//
// Blocks run one after another. Each thread of a block is a ucontext fiber; fibers switch only at barriers, so
// __syncthreads, warp shuffles/ballots and atomics behave as on a GPU for code free of data races. A barrier that
// some threads never reach (a divergent __syncthreads or warp collective, or threads that returned early) is
// reported as a deadlock instead of hanging. Two schedules expose missing barriers differently: round robin
// (every thread in turn runs to its next barrier) and, given a seed, warps in a random order, each running alone
// until all its threads wait at __syncthreads (one warp far ahead of the others, as a GPU may run them). Dynamic
// shared memory is poisoned (all bits set: NaN floats, -1 integers) before every block, so reading it before
// writing it shows. Function-local __shared__ variables become statics (one copy, fine with one block at a time); dynamic
// shared memory is provided by simt_kernels.py rewriting `extern __shared__ T name[];`.
#pragma once
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

namespace simt {

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};

struct Barrier {
    int arrived = 0;
    long generation = 0;
};

struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    bool done = false;
};

constexpr int WARP = 32;
constexpr size_t STACK_BYTES = 16 * 1024;  // kernels keep a few scalars per thread

inline Dim3 thread_idx, block_idx, block_dim, grid_dim;
inline std::vector<Fiber> fibers;
inline ucontext_t scheduler;
inline int current = 0, live = 0;
inline long progress = 0;  // arrivals at barriers and finished threads: unchanged over a full round = deadlock
inline unsigned long long schedule_seed = 0;  // 0: round robin; else the seed of the random warp order
inline std::function<void()> body;
inline std::vector<char> dynamic_shared;
inline Barrier block_barrier;
inline std::vector<Barrier> warp_barriers;
inline std::vector<std::array<std::array<uint64_t, WARP>, 2>> warp_values;  // [warp][generation parity][lane]

inline void yield() { swapcontext(&fibers[current].context, &scheduler); }

// Wait until `participants` threads have arrived.
inline void wait(Barrier& barrier, int participants) {
    long generation = barrier.generation;
    ++progress;
    if (++barrier.arrived == participants) {
        barrier.arrived = 0;
        ++barrier.generation;
        return;
    }
    while (barrier.generation == generation) yield();
}

// Every lane of the calling warp contributes `value`; returns all 32 contributions, indexed by lane.
template <class T>
std::array<T, WARP> warp_exchange(T value) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "warp values are at most 64 bits");
    int warp = thread_idx.x / WARP, lane = thread_idx.x % WARP;
    Barrier& barrier = warp_barriers[warp];
    // Double-buffered by generation parity: a lane that races ahead to the next exchange writes the other buffer,
    // and cannot reach the one after that before every lane has read this one.
    auto& slots = warp_values[warp][barrier.generation & 1];
    std::memcpy(&slots[lane], &value, sizeof(T));
    wait(barrier, WARP);
    std::array<T, WARP> all;
    for (int i = 0; i < WARP; ++i) std::memcpy(&all[i], &slots[i], sizeof(T));
    return all;
}

inline void fiber_entry() {
    body();
    fibers[current].done = true;
    --live;
    ++progress;
}

// Resume each unfinished thread of [first, last) once, in order.
inline void resume_range(int first, int last) {
    for (current = first; current < last; ++current) {
        if (fibers[current].done) continue;
        thread_idx.x = current;
        swapcontext(&scheduler, &fibers[current].context);
    }
}

// Run warp `w` alone until none of its threads makes progress (all wait at __syncthreads, or are done).
inline void run_warp_alone(int w, int threads) {
    long before;
    do {
        before = progress;
        resume_range(w * WARP, std::min(threads, (w + 1) * WARP));
    } while (progress != before);
}

// Fisher-Yates shuffle of 0..n-1 from a splitmix64 stream.
inline std::vector<int> shuffled(int n, unsigned long long& state) {
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    for (int i = n - 1; i > 0; --i) {
        unsigned long long z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        std::swap(order[i], order[(z ^ (z >> 31)) % (i + 1)]);
    }
    return order;
}

// Run every thread of one block to completion; false on deadlock.
inline bool run_block(int threads, size_t shared_bytes) {
    static ucontext_t blank;  // getcontext once (a system call), then copy: makecontext needs an initialised one
    static bool have_blank = getcontext(&blank) == 0;
    if (!have_blank) return false;
    fibers.resize(threads);
    for (int t = 0; t < threads; ++t) {
        Fiber& fiber = fibers[t];
        fiber.stack.resize(STACK_BYTES);
        fiber.done = false;
        fiber.context = blank;
        fiber.context.uc_stack.ss_sp = fiber.stack.data();
        fiber.context.uc_stack.ss_size = fiber.stack.size();
        fiber.context.uc_link = &scheduler;
        makecontext(&fiber.context, fiber_entry, 0);
    }
    live = threads;
    block_barrier = Barrier();
    warp_barriers.assign((threads + WARP - 1) / WARP, Barrier());
    warp_values.resize(warp_barriers.size());
    dynamic_shared.assign(shared_bytes, char(0xFF));
    unsigned long long state = schedule_seed ^ (0xD1B54A32D192ED03ull * (block_idx.x + 1));
    while (live) {
        long before = progress;
        if (schedule_seed == 0) {
            resume_range(0, threads);
        } else {
            for (int w : shuffled(int(warp_barriers.size()), state)) run_warp_alone(w, threads);
        }
        if (live && progress == before) return false;
    }
    return true;
}

// Launch `kernel` on a 1-D grid under schedule `seed` (0: round robin); args[i] points to the value of the
// kernel's i-th parameter. 0 on success, 1 when a block deadlocked.
template <class... Params, size_t... I>
int launch(void (*kernel)(Params...), int blocks, int threads, size_t shared_bytes, unsigned long long seed,
           void** args, std::index_sequence<I...>) {
    body = [=] { kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<Params>>*>(args[I])...); };
    schedule_seed = seed;
    block_dim = {unsigned(threads), 1, 1};
    grid_dim = {unsigned(blocks), 1, 1};
    for (int b = 0; b < blocks; ++b) {
        block_idx.x = b;
        if (!run_block(threads, shared_bytes)) return 1;
    }
    return 0;
}

template <class... Params>
int launch(void (*kernel)(Params...), int blocks, int threads, size_t shared_bytes, unsigned long long seed,
           void** args) {
    return launch(kernel, blocks, threads, shared_bytes, seed, args, std::index_sequence_for<Params...>());
}

}  // namespace simt

// ---- CUDA's names ----
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define threadIdx simt::thread_idx
#define blockIdx simt::block_idx
#define blockDim simt::block_dim
#define gridDim simt::grid_dim

// Every thread of the block must arrive (one that has exited never does: a deadlock, as CUDA leaves it undefined).
inline void __syncthreads() { simt::wait(simt::block_barrier, simt::block_dim.x); }

template <class T>
T __shfl_xor_sync(unsigned, T value, int lane_mask) {
    return simt::warp_exchange(value)[(simt::thread_idx.x % simt::WARP) ^ lane_mask];
}

inline unsigned __ballot_sync(unsigned, int predicate) {
    auto all = simt::warp_exchange(predicate != 0);
    unsigned bits = 0;
    for (int i = 0; i < simt::WARP; ++i) bits |= unsigned(all[i]) << i;
    return bits;
}

inline int atomicAdd(int* address, int value) {  // fibers never switch inside: a plain add is atomic
    int old = *address;
    *address += value;
    return old;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(unsigned x) { return __builtin_ffs(int(x)); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
inline float __fadd_rn(float a, float b) { return a + b; }  // compiled with -ffp-contract=off: no fused rounding
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
