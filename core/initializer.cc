#include "core/initializer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/row_codec.h"

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

absl::Status CheckInitialValues(const TableSpec& spec, absl::Span<const float> values) {
  const int64_t n = spec.num_embeddings, dim = spec.embedding_dim;
  if (static_cast<int64_t>(values.size()) != n * dim) {
    return absl::InvalidArgumentError(absl::StrCat("initial_values has ", values.size(),
                                                   " floats, expected num_embeddings * "
                                                   "embedding_dim = ",
                                                   n, " * ", dim, " = ", n * dim));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat("initial_values[", i, "] (row ", i / dim,
                                                     ", column ", i % dim, ") is ", values[i],
                                                     "; values must be finite"));
    }
  }
  return absl::OkStatus();
}

void FillInitialRows(const TableSpec& spec, absl::Span<const float> initial_values,
                     RowStorage& rows) {
  const int64_t dim = spec.embedding_dim;
  std::vector<float> row(dim);
  for (int64_t r = 0; r < spec.num_embeddings; ++r) {
    if (!initial_values.empty()) {
      std::memcpy(row.data(), initial_values.data() + r * dim, dim * sizeof(float));
    } else if (spec.padding_idx != r) {
      for (int64_t c = 0; c < dim; ++c) row[c] = InitialValue(spec, r, c);
    } else {
      std::fill(row.begin(), row.end(), 0.0f);
    }
    EncodeRow(spec.row_type, row.data(), dim, rows.MutableRow(rows.SlotOf(r)));
  }
}

}  // namespace embedserve
