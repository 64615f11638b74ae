#include "core/initializer.h"

#include <cmath>

namespace embedserve {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 53 random bits.
double Unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace

float InitialValue(const TableSpec& spec, int64_t row, int64_t col) {
  const InitializerSpec& init = spec.initializer;
  const uint64_t index = static_cast<uint64_t>(row) * static_cast<uint64_t>(spec.embedding_dim) +
                         static_cast<uint64_t>(col);
  const uint64_t h = SplitMix64(SplitMix64(init.seed) ^ (index * 0xd1342543de82ef95ULL));
  switch (init.kind) {
    case InitKind::kZeros:
      return 0.0f;
    case InitKind::kConstant:
      return static_cast<float>(init.value);
    case InitKind::kUniform:
      return static_cast<float>(init.a + (init.b - init.a) * Unit(h));
    case InitKind::kXavierUniform: {
      const double r =
          std::sqrt(6.0 / static_cast<double>(spec.num_embeddings + spec.embedding_dim));
      return static_cast<float>(-r + 2.0 * r * Unit(h));
    }
    case InitKind::kNormal: {
      // 1 - Unit() is in (0, 1], so the log is finite.
      const double u1 = 1.0 - Unit(h);
      const double u2 = Unit(SplitMix64(h));
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      return static_cast<float>(init.mean + init.std * z);
    }
  }
  return 0.0f;
}

}  // namespace embedserve
