#ifndef EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_
#define EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_

#include <cstdint>

// Software prefetch that the compiler cannot drop.
//
// GCC 12 at -O2/-O3 deleted every __builtin_prefetch of the gather loops
// (the disassembly had none, and random gathers ran at DRAM latency, ~100 ns
// a row). An asm volatile statement is always emitted. It never faults: a
// prefetch of a bad address is ignored by the CPU.
//
// Internal linkage on purpose: the ISA-specific files include this, and a
// shared out-of-line copy compiled with AVX-512 flags must never be picked by
// the linker for other callers.

namespace embedserve::internal {
namespace {

// Prefetch into L1 with the non-temporal hint (rows are used once).
inline void PrefetchNta(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchnta %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 0);
#endif
}

// Prefetch into L1 (a line read again soon: an index bucket, a row to step).
inline void PrefetchT0(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 3);
#endif
}

// Prefetch into L2 (a line needed a little later).
inline void PrefetchL2(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 2);
#endif
}

// Prefetch a line about to be written (exclusive: no second trip to own it).
inline void PrefetchForWrite(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

// Calls visit(i) for i = 0 .. n - 1 in order, in blocks of `block`
// positions, and before each block prefetch(j) for every position j of the
// next one, in a loop of its own (and for the first block, before it).
// Stops at the first i for which visit returns false and returns it; else
// returns n. REQUIRES: block > 0.
//
// Why blocks, for rows read at random (gathers, pushes, replay): each row
// is a DRAM round trip and, on a VM, often a TLB walk, and a prefetch that
// needs a walk holds up retirement, so prefetches interleaved with the
// work (a fixed distance ahead) overlapped only the few that fit in the
// reorder window with them; a loop of nothing but prefetches issues a
// whole block's walks at once. Measured on this project's 2-core EPYC VM,
// blocks against interleaved prefetches: bench/replay_bench's step_rows
// 4.3-5.0 -> 6.3-6.9 M rows/s; a gather of 512 random rows of a 10 M-row
// table (bench/dynamic_bench, both kernels in one process, 3 processes)
// 0.69-0.88x the time dense and 0.76-0.99x through the id index; of
// 65,536 rows (bench/gather_bench) 0.86-1.03x.
template <typename Prefetch, typename Visit>
inline int64_t InPrefetchedBlocks(int64_t n, int64_t block, Prefetch&& prefetch, Visit&& visit) {
  for (int64_t j = 0; j < n && j < block; ++j) prefetch(j);
  for (int64_t first = 0; first < n; first += block) {
    const int64_t end = first + block < n ? first + block : n;
    for (int64_t j = end; j < n && j < end + block; ++j) prefetch(j);
    for (int64_t i = first; i < end; ++i) {
      if (!visit(i)) return i;
    }
  }
  return n;
}

}  // namespace
}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_
