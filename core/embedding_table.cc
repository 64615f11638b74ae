#include "core/embedding_table.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/initializer.h"
#include "core/renorm.h"
#include "core/status_macros.h"

namespace embedserve {
namespace {

constexpr int64_t kRowAlignFloats = 16;                 // one 64-byte cache line
constexpr int64_t kDefaultShardBytes = int64_t{256} << 20;
constexpr int64_t kHugePageBytes = int64_t{2} << 20;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// log2 of the rows per shard for `spec`.
int ShardShift(const TableSpec& spec, int64_t stride) {
  const int64_t n = spec.num_embeddings;
  int64_t shards = spec.num_shards;
  if (shards == 0) {
    const int64_t bytes = n * stride * static_cast<int64_t>(sizeof(float));
    shards = std::clamp<int64_t>((bytes + kDefaultShardBytes - 1) / kDefaultShardBytes, 1,
                                 kMaxShards);
  }
  const uint64_t per_shard = static_cast<uint64_t>((n + shards - 1) / shards);
  return std::bit_width(std::bit_ceil(per_shard)) - 1;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> BagBounds(int64_t num_ids,
                                               absl::Span<const int64_t> offsets,
                                               bool include_last_offset,
                                               absl::Span<const int64_t> shape) {
  std::vector<int64_t> bounds;
  if (!offsets.empty()) {
    if (!shape.empty()) {
      return absl::InvalidArgumentError("give either offsets or a 2-D shape, not both");
    }
    if (offsets[0] != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("offsets[0] must be 0 (the first bag starts at id 0), got ", offsets[0]));
    }
    for (size_t i = 0; i < offsets.size(); ++i) {
      if (offsets[i] > num_ids) {
        return absl::InvalidArgumentError(absl::StrCat(
            "offsets[", i, "] = ", offsets[i], " is past the end of ids (", num_ids, " ids)"));
      }
      if (i > 0 && offsets[i] < offsets[i - 1]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "offsets must be non-decreasing: offsets[", i, "] = ", offsets[i], " < offsets[",
            i - 1, "] = ", offsets[i - 1]));
      }
    }
    bounds.assign(offsets.begin(), offsets.end());
    if (!include_last_offset) bounds.push_back(num_ids);
    if (bounds.size() < 2) {
      // include_last_offset with a single offset: zero bags.
      bounds.assign(1, 0);
    }
    return bounds;
  }
  if (shape.size() == 2) {
    if (shape[0] < 0 || shape[1] < 0 ||
        (shape[1] != 0 && shape[0] > num_ids / std::max<int64_t>(shape[1], 1)) ||
        shape[0] * shape[1] != num_ids) {
      return absl::InvalidArgumentError(absl::StrCat("shape [", absl::StrJoin(shape, ", "),
                                                     "] does not match ", num_ids, " ids"));
    }
    bounds.resize(shape[0] + 1);
    for (int64_t b = 0; b <= shape[0]; ++b) bounds[b] = b * shape[1];
    return bounds;
  }
  if (!shape.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a pooled query's shape must be 2-D [bags, bag_size], got [", absl::StrJoin(shape, ", "),
        "]"));
  }
  return absl::InvalidArgumentError(
      "a pooled query needs offsets (bag starts) or a 2-D shape [bags, bag_size]");
}

EmbeddingTable::EmbeddingTable(const TableSpec& spec)
    : spec_(spec), stride_(RoundUp(spec.embedding_dim, kRowAlignFloats)) {}

int64_t EmbeddingTable::EstimateBytes(const TableSpec& spec) {
  return spec.num_embeddings * RoundUp(spec.embedding_dim, kRowAlignFloats) *
         static_cast<int64_t>(sizeof(float));
}

absl::Status EmbeddingTable::Allocate() {
  shard_shift_ = ShardShift(spec_, stride_);
  const int64_t per_shard = rows_per_shard();
  const int64_t n = spec_.num_embeddings;
  for (int64_t first = 0; first < n; first += per_shard) {
    const int64_t rows = std::min(per_shard, n - first);
    int64_t bytes = rows * stride_ * static_cast<int64_t>(sizeof(float));
    // Random row reads miss the TLB on almost every row of a large table;
    // 2 MiB pages cut those misses (and the page walks, which are nested and
    // costly under virtualisation) by 512x. THP is usually in "madvise" mode,
    // so ask for it. Small shards stay on 4 KiB pages.
    const bool huge = bytes >= kHugePageBytes;
    if (huge) bytes = RoundUp(bytes, kHugePageBytes);
    void* p = std::aligned_alloc(huge ? kHugePageBytes : 64, static_cast<size_t>(bytes));
    if (p == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate ", bytes, " bytes for a shard of table '", spec_.name, "'"));
    }
    if (huge) ::madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);  // best effort
    shards_.emplace_back(static_cast<float*>(p));
    shard_ptrs_.push_back(static_cast<const float*>(p));
    bytes_ += bytes;
  }
  view_.shards = shard_ptrs_.data();
  view_.shard_shift = shard_shift_;
  view_.num_rows = n;
  view_.dim = spec_.embedding_dim;
  view_.stride = stride_;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Create(
    const TableSpec& raw_spec, absl::Span<const float> initial_values) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(raw_spec));
  const int64_t n = spec.num_embeddings, dim = spec.embedding_dim;
  if (!initial_values.empty()) {
    if (static_cast<int64_t>(initial_values.size()) != n * dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "initial_values has ", initial_values.size(), " floats, expected num_embeddings * "
          "embedding_dim = ", n, " * ", dim, " = ", n * dim));
    }
    for (size_t i = 0; i < initial_values.size(); ++i) {
      if (!std::isfinite(initial_values[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "initial_values[", i, "] (row ", i / dim, ", column ", i % dim, ") is ",
            initial_values[i], "; values must be finite"));
      }
    }
  }
  std::unique_ptr<EmbeddingTable> table(new EmbeddingTable(spec));
  RETURN_IF_ERROR(table->Allocate());
  for (int64_t r = 0; r < n; ++r) {
    float* row = table->MutableRow(r);
    if (!initial_values.empty()) {
      std::memcpy(row, initial_values.data() + r * dim, dim * sizeof(float));
    } else if (spec.padding_idx == r) {
      std::fill(row, row + dim, 0.0f);
    } else {
      for (int64_t c = 0; c < dim; ++c) row[c] = InitialValue(spec, r, c);
    }
    std::fill(row + dim, row + table->stride_, 0.0f);
  }
  return table;
}

absl::Status EmbeddingTable::BadIdError(absl::Span<const int64_t> ids, int64_t position) const {
  return absl::InvalidArgumentError(absl::StrCat(
      "id ", ids[position], " at position ", position, " is out of range [0, ",
      spec_.num_embeddings, ") for table '", spec_.name, "'"));
}

absl::Status EmbeddingTable::CheckIds(absl::Span<const int64_t> ids) const {
  const uint64_t n = static_cast<uint64_t>(spec_.num_embeddings);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (static_cast<uint64_t>(ids[i]) >= n) return BadIdError(ids, static_cast<int64_t>(i));
  }
  return absl::OkStatus();
}

void EmbeddingTable::RenormReferenced(absl::Span<const int64_t> ids) {
  // Each distinct row once, as torch.embedding_renorm_ does (a second renorm
  // of a row would change it only by rounding, but costs a pass over it).
  std::vector<int64_t> unique(ids.begin(), ids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  bool changed = false;
  for (int64_t id : unique) {
    changed |= RenormRow(MutableRow(id), spec_.embedding_dim, *spec_.max_norm, spec_.norm_type);
  }
  if (changed) version_.fetch_add(1, std::memory_order_acq_rel);
}

template <typename Kernel>
absl::Status EmbeddingTable::ReadRows(absl::Span<const int64_t> ids, Kernel kernel) {
  int64_t bad;
  if (spec_.max_norm.has_value()) {
    // Renorm writes rows: validate first so that a bad request changes nothing.
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckIds(ids));
    RenormReferenced(ids);
    bad = kernel();
  } else {
    absl::ReaderMutexLock lock(&mu_);
    bad = kernel();
  }
  if (bad != kAllValid) return BadIdError(ids, bad);
  return absl::OkStatus();
}

absl::Status EmbeddingTable::Lookup(absl::Span<const int64_t> ids, absl::Span<float> out) {
  const GatherKernels& k = ActiveKernels();
  return ReadRows(ids, [&] {
    return k.gather(view_, ids.data(), static_cast<int64_t>(ids.size()), out.data());
  });
}

absl::Status EmbeddingTable::CheckBagWeights(size_t num_ids, PoolingMode mode,
                                             absl::Span<const float> weights) {
  if (!weights.empty()) {
    if (mode != PoolingMode::kSum) {
      return absl::InvalidArgumentError(
          "per_sample_weights are only supported with mode SUM (as nn.EmbeddingBag)");
    }
    if (weights.size() != num_ids) {
      return absl::InvalidArgumentError(absl::StrCat("per_sample_weights has ", weights.size(),
                                                     " entries, expected one per id (",
                                                     num_ids, ")"));
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      if (!std::isfinite(weights[i])) {
        return absl::InvalidArgumentError(absl::StrCat("per_sample_weights[", i, "] is ",
                                                       weights[i], "; weights must be finite"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::LookupPooled(absl::Span<const int64_t> ids,
                                          absl::Span<const int64_t> bounds, PoolingMode mode,
                                          absl::Span<const float> weights,
                                          absl::Span<float> out) {
  RETURN_IF_ERROR(CheckBagWeights(ids.size(), mode, weights));
  BagArgs args;
  args.ids = ids.data();
  args.num_ids = static_cast<int64_t>(ids.size());
  args.bounds = bounds.data();
  args.num_bags = static_cast<int64_t>(bounds.size()) - 1;
  args.mode = mode;
  args.weights = weights.empty() ? nullptr : weights.data();
  args.padding_idx = spec_.padding_idx.value_or(-1);
  const GatherKernels& k = ActiveKernels();
  return ReadRows(ids, [&] { return k.pooled(view_, args, out.data()); });
}

absl::StatusOr<int64_t> EmbeddingTable::AssignRows(absl::Span<const int64_t> ids,
                                                   absl::Span<const float> values) {
  const int64_t dim = spec_.embedding_dim;
  if (static_cast<int64_t>(values.size()) != static_cast<int64_t>(ids.size()) * dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "values has ", values.size(), " floats, expected len(ids) * embedding_dim = ",
        ids.size(), " * ", dim, " = ", static_cast<int64_t>(ids.size()) * dim));
  }
  RETURN_IF_ERROR(CheckIds(ids));
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat("values[", i, "] (row ", i / dim,
                                                     " of the request, id ", ids[i / dim],
                                                     ") is ", values[i],
                                                     "; values must be finite"));
    }
  }
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < ids.size(); ++i) {
    std::memcpy(MutableRow(ids[i]), values.data() + i * dim, dim * sizeof(float));
  }
  return version_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

}  // namespace embedserve
