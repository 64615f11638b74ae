// Runtime dispatch: the CPU is inspected once; ActiveKernels() returns a
// pointer into a static const table, so a lookup pays one atomic load.
#include "core/gather.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "core/enum_names.h"
#include "core/internal/gather_kernels.h"

namespace embedserve {
namespace {

constexpr GatherKernels kTable[] = {
    {SimdLevel::kScalar, internal::GatherScalar, internal::PooledScalar,
     internal::CompactGatherScalar, internal::CompactPooledScalar, internal::ToHalfScalar},
    {SimdLevel::kAvx2, internal::GatherAvx2, internal::PooledAvx2, internal::CompactGatherAvx2,
     internal::CompactPooledAvx2, internal::ToHalfAvx2},
    {SimdLevel::kAvx512, internal::GatherAvx512, internal::PooledAvx512,
     internal::CompactGatherAvx512, internal::CompactPooledAvx512, internal::ToHalfAvx512},
};

const GatherKernels* DetectBest() { return &kTable[static_cast<int>(BestSupportedLevel())]; }

std::atomic<const GatherKernels*>& Active() {
  static std::atomic<const GatherKernels*> active{DetectBest()};
  return active;
}

}  // namespace

bool CpuSupports(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return true;
    case SimdLevel::kAvx2:
      // F16C (half rows) came with every AVX2 CPU; checked all the same.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case SimdLevel::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

SimdLevel BestSupportedLevel() {
  if (CpuSupports(SimdLevel::kAvx512)) return SimdLevel::kAvx512;
  if (CpuSupports(SimdLevel::kAvx2)) return SimdLevel::kAvx2;
  return SimdLevel::kScalar;
}

const GatherKernels& KernelsFor(SimdLevel level) { return kTable[static_cast<int>(level)]; }

const GatherKernels& ActiveKernels() { return *Active().load(std::memory_order_acquire); }

absl::Status ForceSimdLevel(SimdLevel level) {
  if (!CpuSupports(level)) {
    return absl::FailedPreconditionError(
        absl::StrCat("this CPU cannot run SIMD level ", Name(level)));
  }
  Active().store(&KernelsFor(level), std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace embedserve
