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

}  // namespace
}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_PREFETCH_H_
