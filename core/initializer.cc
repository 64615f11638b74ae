#include "core/initializer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/gather.h"
#include "core/internal/init_kernels.h"
#include "core/parallel_lookup.h"
#include "core/row_codec.h"

namespace embedserve {
namespace internal {
namespace {

constexpr InitKernels kInitTable[] = {
    {SimdLevel::kScalar, InitFillScalar, InitFillIdsScalar},
    {SimdLevel::kAvx2, InitFillAvx2, InitFillIdsAvx2},
    {SimdLevel::kAvx512, InitFillAvx512, InitFillIdsAvx512},
};

}  // namespace

const InitKernels& InitKernelsFor(SimdLevel level) {
  return kInitTable[static_cast<int>(level)];
}

}  // namespace internal

namespace {

// ---- Generator 1, unchanged since the first release: its values are
// pinned (tests/core/initializer_test.cc) because tables made with it must
// recompute them.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 53 random bits.
double Unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

double XavierBound(const TableSpec& spec) {
  return std::sqrt(6.0 / static_cast<double>(spec.num_embeddings + spec.embedding_dim));
}

float InitialValueV1(const TableSpec& spec, int64_t row, int64_t col) {
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
      const double r = XavierBound(spec);
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

// ---- Generator 2.
uint32_t GeneratorOf(const TableSpec& spec) {
  return spec.initializer.generator == 0 ? kCurrentInitGenerator : spec.initializer.generator;
}

bool IsRandom(InitKind kind) { return kind != InitKind::kZeros && kind != InitKind::kConstant; }

// REQUIRES: IsRandom(spec.initializer.kind).
internal::InitParams ParamsFor(const TableSpec& spec) {
  const InitializerSpec& init = spec.initializer;
  internal::InitParams p;
  p.key[0] = static_cast<uint32_t>(init.seed);
  p.key[1] = static_cast<uint32_t>(init.seed >> 32);
  p.normal = init.kind == InitKind::kNormal;
  p.mean = static_cast<float>(init.mean);
  p.std = static_cast<float>(init.std);
  double a = init.a, b = init.b;
  if (init.kind == InitKind::kXavierUniform) {
    b = XavierBound(spec);
    a = -b;
  }
  p.a = a;
  p.width = b - a;
  // Values are rounded to float: keep them below float(b) (U[a, b) as
  // torch's), unless a and b round to the same float.
  const float fa = static_cast<float>(a), fb = static_cast<float>(b);
  p.below_b = fa < fb ? std::nextafter(fb, -std::numeric_limits<float>::infinity()) : fb;
  return p;
}

int64_t BlocksPerRow(int64_t dim) { return (dim + 3) / 4; }

// RowInitializer::Fill's stack buffer for widths that are not whole blocks
// (16 KiB).
constexpr int64_t kFillScratchFloats = 4096;

// Rows of one table written piece by piece (Fill may run on several threads
// at once for disjoint ranges).
class RowFiller {
 public:
  RowFiller(const TableSpec& spec, absl::Span<const float> initial_values, RowStorage& rows)
      : spec_(spec),
        initial_values_(initial_values),
        rows_(rows),
        dim_(spec.embedding_dim),
        kernels_(ActiveKernels()),
        init_kernels_(internal::InitKernelsFor(kernels_.level)),
        philox_(initial_values.empty() && GeneratorOf(spec) >= 2 &&
                IsRandom(spec.initializer.kind)) {
    if (philox_) params_ = ParamsFor(spec);
    const RowFormat& f = rows.format();
    // float32 rows of whole cache lines are the generator's own layout
    // (4-value blocks back to back): fill them in place.
    direct_ = philox_ && f.type == RowType::kFloat32 && dim_ % 16 == 0 &&
              f.row_bytes == dim_ * static_cast<int64_t>(sizeof(float)) &&
              rows.rows_per_shard() > 0;
    if (initial_values.empty() && !IsRandom(spec.initializer.kind)) {
      const float v = spec.initializer.kind == InitKind::kConstant
                          ? static_cast<float>(spec.initializer.value)
                          : 0.0f;
      const std::vector<float> row(dim_, v);
      constant_row_.assign(f.row_bytes, 0);
      Encode(row.data(), constant_row_.data());
    }
  }

  void Fill(int64_t begin, int64_t end) {
    if (!initial_values_.empty()) {
      for (int64_t r = begin; r < end; ++r) Encode(initial_values_.data() + r * dim_, Row(r));
      return;  // the given values include the padding row
    }
    if (!constant_row_.empty()) {
      for (int64_t r = begin; r < end; ++r) {
        std::memcpy(Row(r), constant_row_.data(), constant_row_.size());
      }
    } else if (!philox_) {
      std::vector<float> row(dim_);
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t c = 0; c < dim_; ++c) row[c] = InitialValueV1(spec_, r, c);
        Encode(row.data(), Row(r));
      }
    } else {
      FillPhilox(begin, end);
    }
    if (spec_.padding_idx && *spec_.padding_idx >= begin && *spec_.padding_idx < end) {
      const std::vector<float> zeros(dim_, 0.0f);
      Encode(zeros.data(), Row(*spec_.padding_idx));
    }
  }

 private:
  uint8_t* Row(int64_t id) { return rows_.MutableRow(rows_.SlotOf(id)); }

  void Encode(const float* src, uint8_t* dst) {
    if (rows_.format().type == RowType::kFloat16) {
      // Equal to EncodeRow's FloatToHalf for the non-NaN values rows hold.
      kernels_.to_half(src, dim_, reinterpret_cast<uint16_t*>(dst));
    } else {
      EncodeRow(rows_.format().type, src, dim_, dst);
    }
  }

  // Rows [r, r + n) that the kernel may fill at once: inside one 2^32-row
  // range (its counters keep the high word fixed).
  static int64_t WithinHighWord(int64_t r, int64_t n) {
    const int64_t next = (r | int64_t{0xFFFFFFFF}) + 1;
    return std::min(n, next - r);
  }

  void FillPhilox(int64_t begin, int64_t end) {
    const int64_t nb = BlocksPerRow(dim_);
    const int64_t row_bytes = rows_.format().row_bytes;
    int64_t r = begin;
    if (direct_) {
      const int64_t per_shard = rows_.rows_per_shard();
      while (r < end) {
        const int64_t n = WithinHighWord(r, std::min(end, (r / per_shard + 1) * per_shard) - r);
        uint8_t* first = Row(r);
        if (Row(r + n - 1) != first + (n - 1) * row_bytes) break;  // not contiguous after all
        init_kernels_.fill(params_, static_cast<uint64_t>(r), n, nb,
                           reinterpret_cast<float*>(first));
        r += n;
      }
    }
    // Through a small buffer, then encoded row by row.
    const int64_t chunk = std::max<int64_t>(1, kScratchValues / (4 * nb));
    std::vector<float> scratch(chunk * nb * 4);
    while (r < end) {
      const int64_t n = WithinHighWord(r, std::min(chunk, end - r));
      init_kernels_.fill(params_, static_cast<uint64_t>(r), n, nb, scratch.data());
      for (int64_t i = 0; i < n; ++i) Encode(scratch.data() + i * nb * 4, Row(r + i));
      r += n;
    }
  }

  static constexpr int64_t kScratchValues = 4096;  // 16 KiB: stays in L1

  const TableSpec& spec_;
  const absl::Span<const float> initial_values_;
  RowStorage& rows_;
  const int64_t dim_;
  const GatherKernels& kernels_;
  const internal::InitKernels& init_kernels_;
  const bool philox_;
  bool direct_ = false;
  internal::InitParams params_;
  std::vector<uint8_t> constant_row_;  // zeros / constant tables: one encoded row
};

// Values a piece of a parallel fill computes: about 4 MiB of float32 rows,
// a millisecond or two with generator 2.
constexpr int64_t kPieceValues = int64_t{1} << 20;

}  // namespace

float InitialValue(const TableSpec& spec, int64_t row, int64_t col) {
  const InitKind kind = spec.initializer.kind;
  if (GeneratorOf(spec) == 1 || !IsRandom(kind)) return InitialValueV1(spec, row, col);
  float block[4];
  internal::InitBlockScalar(ParamsFor(spec), static_cast<uint64_t>(row),
                            static_cast<uint32_t>(col / 4), block);
  return block[col % 4];
}

void InitialRow(const TableSpec& spec, int64_t row, absl::Span<float> out) {
  const int64_t dim = spec.embedding_dim;
  if (spec.padding_idx == row) {
    std::fill(out.begin(), out.end(), 0.0f);
  } else if (GeneratorOf(spec) == 1 || !IsRandom(spec.initializer.kind)) {
    for (int64_t c = 0; c < dim; ++c) out[c] = InitialValueV1(spec, row, c);
  } else {
    const int64_t nb = BlocksPerRow(dim);
    const internal::InitFillFn fill = internal::InitKernelsFor(ActiveKernels().level).fill;
    if (dim % 4 == 0) {  // whole blocks: in place
      fill(ParamsFor(spec), static_cast<uint64_t>(row), 1, nb, out.data());
      return;
    }
    std::vector<float> values(nb * 4);
    fill(ParamsFor(spec), static_cast<uint64_t>(row), 1, nb, values.data());
    std::copy(values.begin(), values.begin() + dim, out.begin());
  }
}

RowInitializer::RowInitializer(const TableSpec& spec)
    : spec_(spec), dim_(spec.embedding_dim), blocks_(BlocksPerRow(spec.embedding_dim)) {
  const InitKind kind = spec.initializer.kind;
  if (!IsRandom(kind)) {
    mode_ = Mode::kConstant;
    constant_ = kind == InitKind::kConstant ? static_cast<float>(spec.initializer.value) : 0.0f;
  } else if (GeneratorOf(spec) == 1) {
    mode_ = Mode::kGenerator1;
  } else {
    mode_ = Mode::kPhilox;
    params_ = ParamsFor(spec);
  }
}

void RowInitializer::Fill(absl::Span<const int64_t> ids, float* out) const {
  const int64_t n = static_cast<int64_t>(ids.size());
  switch (mode_) {
    case Mode::kConstant:
      std::fill(out, out + n * dim_, constant_);
      break;
    case Mode::kGenerator1:
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t c = 0; c < dim_; ++c) out[i * dim_ + c] = InitialValueV1(spec_, ids[i], c);
      }
      break;
    case Mode::kPhilox: {
      const internal::InitFillIdsFn fill_ids =
          internal::InitKernelsFor(ActiveKernels().level).fill_ids;
      // int64 and uint64 may alias: the rows are the ids' bits.
      const uint64_t* const rows = reinterpret_cast<const uint64_t*>(ids.data());
      if (dim_ % 4 == 0) {
        fill_ids(params_, rows, n, blocks_, out);  // rows of whole blocks: in place
        break;
      }
      const int64_t row_floats = 4 * blocks_;
      const int64_t per_chunk = kFillScratchFloats / row_floats;
      if (per_chunk > 0) {
        // Through a buffer on the stack, then each row's first dim values.
        alignas(64) float scratch[kFillScratchFloats];
        for (int64_t first = 0; first < n; first += per_chunk) {
          const int64_t m = std::min(per_chunk, n - first);
          fill_ids(params_, rows + first, m, blocks_, scratch);
          for (int64_t i = 0; i < m; ++i) {
            std::memcpy(out + (first + i) * dim_, scratch + i * row_floats,
                        static_cast<size_t>(dim_) * sizeof(float));
          }
        }
        break;
      }
      // Wide rows: the whole blocks in place, the last one alone.
      const int64_t whole = dim_ / 4;
      for (int64_t i = 0; i < n; ++i) {
        float* dst = out + i * dim_;
        fill_ids(params_, rows + i, 1, whole, dst);
        float block[4];
        internal::InitBlockScalar(params_, rows[i], static_cast<uint32_t>(whole), block);
        std::copy(block, block + dim_ % 4, dst + 4 * whole);
      }
      break;
    }
  }
  if (spec_.padding_idx) {
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] == *spec_.padding_idx) std::fill(out + i * dim_, out + (i + 1) * dim_, 0.0f);
    }
  }
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
  FillInitialRows(spec, initial_values, rows, nullptr);
}

void FillInitialRows(const TableSpec& spec, absl::Span<const float> initial_values,
                     RowStorage& rows, LookupParallelism* parallelism) {
  RowFiller filler(spec, initial_values, rows);
  const int64_t n = spec.num_embeddings, dim = spec.embedding_dim;
  if (parallelism == nullptr) {
    filler.Fill(0, n);
    return;
  }
  // In rounds of (threads + 1) pieces: a lookup queued on the pool behind a
  // round waits for one piece, never for the whole table.
  const int64_t rows_per_piece = std::max<int64_t>(1, kPieceValues / dim);
  const int64_t round = rows_per_piece * (parallelism->threads() + 1);
  for (int64_t first = 0; first < n; first += round) {
    const int64_t m = std::min(round, n - first);
    parallelism->Run(m, m * dim, [&](int64_t begin, int64_t end) {
      filler.Fill(first + begin, first + end);
      return kAllValid;
    });
  }
}

}  // namespace embedserve
