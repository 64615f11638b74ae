#ifndef EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_
#define EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_

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

}  // namespace
}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_
