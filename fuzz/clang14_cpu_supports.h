// Force-included into core/gather.cc by fuzz/CMakeLists.txt when the
// compiler is clang < 15, whose __builtin_cpu_supports does not know "f16c"
// (a compile error; gcc and clang >= 15 accept it). Routes the builtin
// through a function that asks CPUID for F16C itself. Only the fuzz build
// (clang) needs this; delete it once core/gather.cc checks F16C with CPUID.
#ifndef EMBEDSERVE_FUZZ_CLANG14_CPU_SUPPORTS_H_
#define EMBEDSERVE_FUZZ_CLANG14_CPU_SUPPORTS_H_

#include <cpuid.h>

#include <cstdlib>
#include <cstring>

inline bool EmbedserveCpuSupports(const char* feature) {
  if (std::strcmp(feature, "f16c") == 0) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  }
  if (std::strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
  if (std::strcmp(feature, "fma") == 0) return __builtin_cpu_supports("fma");
  if (std::strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
  std::abort();  // a feature this shim does not know: add it here
}
#define __builtin_cpu_supports(feature) EmbedserveCpuSupports(feature)

#endif  // EMBEDSERVE_FUZZ_CLANG14_CPU_SUPPORTS_H_
