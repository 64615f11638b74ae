#include "core/embedding_table.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/initializer.h"
#include "core/internal/worker_pool.h"
#include "core/renorm.h"
#include "core/row_codec.h"
#include "core/status_macros.h"

namespace embedserve {
namespace {

constexpr int64_t kRowAlignFloats = 16;  // one 64-byte cache line
constexpr int64_t kDefaultShardBytes = int64_t{256} << 20;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// log2 of the rows per shard for `spec`.
int ShardShift(const TableSpec& spec, int64_t stride) {
  const int64_t n = spec.num_embeddings;
  int64_t shards = spec.num_shards;
  if (shards == 0) {
    const int64_t bytes = n * stride * static_cast<int64_t>(sizeof(float));
    shards =
        std::clamp<int64_t>((bytes + kDefaultShardBytes - 1) / kDefaultShardBytes, 1, kMaxShards);
  }
  const uint64_t per_shard = static_cast<uint64_t>((n + shards - 1) / shards);
  return std::bit_width(std::bit_ceil(per_shard)) - 1;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> BagBounds(int64_t num_ids, absl::Span<const int64_t> offsets,
                                               bool include_last_offset,
                                               absl::Span<const int64_t> shape,
                                               int64_t max_bags) {
  auto too_many = [&](int64_t bags) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the request asks for ", bags, " bags; the limit is ", max_bags,
                     " (the response size limit over the row width)"));
  };
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
        return absl::InvalidArgumentError(absl::StrCat("offsets must be non-decreasing: offsets[",
                                                       i, "] = ", offsets[i], " < offsets[", i - 1,
                                                       "] = ", offsets[i - 1]));
      }
    }
    const int64_t bags = static_cast<int64_t>(offsets.size()) - (include_last_offset ? 1 : 0);
    if (bags > max_bags) return too_many(bags);
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
    if (shape[0] > max_bags) return too_many(shape[0]);
    bounds.resize(shape[0] + 1);
    for (int64_t b = 0; b <= shape[0]; ++b) bounds[b] = b * shape[1];
    return bounds;
  }
  if (!shape.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a pooled query's shape must be 2-D [bags, bag_size], got [",
                     absl::StrJoin(shape, ", "), "]"));
  }
  return absl::InvalidArgumentError(
      "a pooled query needs offsets (bag starts) or a 2-D shape [bags, bag_size]");
}

EmbeddingTable::EmbeddingTable(const TableSpec& spec)
    : spec_(spec),
      stride_(CompactRowStride(spec.row_type, spec.embedding_dim) / 4),
      state_stride_(RoundUp(spec.embedding_dim, kRowAlignFloats)),
      compact_(spec.row_type != RowType::kFloat32),
      stripes_(new std::atomic<uint32_t>[kStripes]()),
      frozen_(spec.frozen),
      optimizer_(spec.optimizer) {}

int64_t EmbeddingTable::EstimateBytes(const TableSpec& spec) {
  const int64_t row_floats = RoundUp(spec.embedding_dim, kRowAlignFloats);
  return spec.num_embeddings * CompactRowStride(spec.row_type, spec.embedding_dim) +
         spec.num_embeddings * static_cast<int64_t>(sizeof(float)) *
             (row_floats * ElementStateSlots(spec.optimizer.kind) +
              RowStateSlots(spec.optimizer.kind));
}

absl::Status EmbeddingTable::Allocate() {
  shard_shift_ = ShardShift(spec_, stride_);
  const int64_t n = spec_.num_embeddings;
  const std::string what = absl::StrCat("table '", spec_.name, "'");
  ASSIGN_OR_RETURN(rows_, internal::ShardedBuffer::Allocate(n, stride_, shard_shift_, what));
  const int slots = ElementStateSlots(spec_.optimizer.kind);
  if (slots >= 1) {
    ASSIGN_OR_RETURN(state0_, internal::ShardedBuffer::Allocate(n, state_stride_, shard_shift_,
                                                                what + " optimizer state"));
  }
  if (slots >= 2) {
    ASSIGN_OR_RETURN(state1_, internal::ShardedBuffer::Allocate(n, state_stride_, shard_shift_,
                                                                what + " optimizer state"));
  }
  if (RowStateSlots(spec_.optimizer.kind) > 0) {
    row_state_.assign(n, static_cast<float>(spec_.optimizer.initial_accumulator_value));
  }
  if (spec_.optimizer.kind == OptimizerKind::kAdagrad) {
    const float init = static_cast<float>(spec_.optimizer.initial_accumulator_value);
    for (int64_t r = 0; r < n; ++r) {
      std::fill(state0_.Row(r), state0_.Row(r) + state_stride_, init);
    }
  }
  view_.shards = rows_.shard_ptrs();
  view_.shard_shift = shard_shift_;
  view_.num_rows = n;
  view_.dim = spec_.embedding_dim;
  view_.stride = stride_;
  for (int s = 0; s < rows_.num_shards(); ++s) {
    compact_ptrs_.push_back(reinterpret_cast<const uint8_t*>(rows_.shard_ptrs()[s]));
  }
  compact_view_ = CompactRowView{compact_ptrs_.data(), shard_shift_, n,
                                 spec_.embedding_dim,  stride_ * 4,  spec_.row_type};
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Create(
    const TableSpec& raw_spec, absl::Span<const float> initial_values, RowStore* store) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(raw_spec));
  const int64_t n = spec.num_embeddings, dim = spec.embedding_dim;
  if (!initial_values.empty()) {
    if (static_cast<int64_t>(initial_values.size()) != n * dim) {
      return absl::InvalidArgumentError(absl::StrCat("initial_values has ", initial_values.size(),
                                                     " floats, expected num_embeddings * "
                                                     "embedding_dim = ",
                                                     n, " * ", dim, " = ", n * dim));
    }
    for (size_t i = 0; i < initial_values.size(); ++i) {
      if (!std::isfinite(initial_values[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("initial_values[", i, "] (row ", i / dim, ", column ", i % dim, ") is ",
                         initial_values[i], "; values must be finite"));
      }
    }
  }
  std::unique_ptr<EmbeddingTable> table(new EmbeddingTable(spec));
  RETURN_IF_ERROR(table->Allocate());
  // Stride padding stays zero (ShardedBuffer zero-fills).
  std::vector<float> row(dim);
  for (int64_t r = 0; r < n; ++r) {
    if (!initial_values.empty()) {
      std::memcpy(row.data(), initial_values.data() + r * dim, dim * sizeof(float));
    } else if (spec.padding_idx != r) {
      for (int64_t c = 0; c < dim; ++c) row[c] = InitialValue(spec, r, c);
    } else {
      std::fill(row.begin(), row.end(), 0.0f);
    }
    EncodeRow(spec.row_type, row.data(), dim, reinterpret_cast<uint8_t*>(table->MutableRow(r)));
  }
  if (store != nullptr) RETURN_IF_ERROR(table->PersistTo(store));
  return table;
}

absl::Status EmbeddingTable::PersistTo(RowStore* store) {
  if (store == nullptr) {
    DetachStore();
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::string staged, StageTo(store));
  return CommitTo(store, staged);
}

absl::StatusOr<std::string> EmbeddingTable::StageTo(RowStore* store) {
  absl::MutexLock lock(&mu_);
  return store->StageTable(Meta(version_.load(), step_),
                           [this](int64_t r, float* dst) { PackRecord(r, dst); });
}

absl::Status EmbeddingTable::CommitTo(RowStore* store, const std::string& staged) {
  absl::MutexLock lock(&mu_);
  // The vocabulary is written once, with the table; later writes (Meta)
  // leave it out.
  StoredTable meta = Meta(version_.load(), step_);
  meta.vocabulary = vocabulary_;
  RETURN_IF_ERROR(store->CommitTable(meta, staged));
  store_ = store;
  return absl::OkStatus();
}

void EmbeddingTable::DetachStore() {
  absl::MutexLock lock(&mu_);
  store_ = nullptr;
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Restore(const StoredTable& meta,
                                                                        RowStore* store) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(meta.spec));
  std::unique_ptr<EmbeddingTable> table(new EmbeddingTable(spec));
  RETURN_IF_ERROR(table->Allocate());
  EmbeddingTable& t = *table;
  if (meta.floats_per_record != t.record_floats()) {
    return absl::DataLossError(absl::StrCat("table '", spec.name, "' is stored with ",
                                            meta.floats_per_record, " floats per record, expected ",
                                            t.record_floats()));
  }
  int64_t records = 0;
  RETURN_IF_ERROR(store->ReadRecords(meta, [&](int64_t id, absl::Span<const float> record) {
    if (id < 0 || id >= spec.num_embeddings ||
        static_cast<int64_t>(record.size()) != t.record_floats()) {
      return absl::DataLossError(absl::StrCat("table '", spec.name, "': bad record for row ", id));
    }
    t.UnpackRecord(id, record.data());
    ++records;
    return absl::OkStatus();
  }));
  if (records != spec.num_embeddings) {
    return absl::DataLossError(absl::StrCat("table '", spec.name, "' has ", records,
                                            " stored rows, expected ", spec.num_embeddings));
  }
  if (!meta.vocabulary.empty()) RETURN_IF_ERROR(t.SetVocabulary(meta.vocabulary));
  absl::MutexLock lock(&t.mu_);
  t.step_ = meta.step;
  t.version_.store(meta.version);
  t.store_ = store;
  return table;
}

TableSpec EmbeddingTable::spec() const {
  TableSpec s = spec_;
  absl::ReaderMutexLock lock(&mu_);
  s.frozen = frozen_;
  s.optimizer = optimizer_;
  return s;
}

int64_t EmbeddingTable::optimizer_state_bytes() const {
  return state0_.bytes() + state1_.bytes() +
         static_cast<int64_t>(row_state_.size() * sizeof(float));
}

int64_t EmbeddingTable::optimizer_step() const {
  absl::ReaderMutexLock lock(&mu_);
  return step_;
}

absl::Status EmbeddingTable::BadIdError(absl::Span<const int64_t> ids, int64_t position) const {
  return absl::InvalidArgumentError(absl::StrCat("id ", ids[position], " at position ", position,
                                                 " is out of range [0, ", spec_.num_embeddings,
                                                 ") for table '", spec_.name, "'"));
}

absl::Status EmbeddingTable::CheckIds(absl::Span<const int64_t> ids) const {
  const uint64_t n = static_cast<uint64_t>(spec_.num_embeddings);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (static_cast<uint64_t>(ids[i]) >= n) return BadIdError(ids, static_cast<int64_t>(i));
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::RenormReferenced(absl::Span<const int64_t> ids) {
  // Each distinct row once, as torch.embedding_renorm_ does (a second renorm
  // of a row would change it only by rounding, but costs a pass over it).
  std::vector<int64_t> unique(ids.begin(), ids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  const int64_t rf = record_floats();
  std::vector<int64_t> changed;
  std::vector<float> packed;
  for (int64_t id : unique) {
    packed.resize((changed.size() + 1) * rf);
    float* record = packed.data() + changed.size() * rf;
    PackRecord(id, record);
    if (RenormRow(record, spec_.embedding_dim, *spec_.max_norm, spec_.norm_type)) {
      changed.push_back(id);
    }
  }
  packed.resize(changed.size() * rf);
  if (changed.empty()) return absl::OkStatus();
  return Commit(changed, packed, step_).status();
}

int64_t EmbeddingTable::record_floats() const {
  return spec_.embedding_dim * (1 + ElementStateSlots(spec_.optimizer.kind)) +
         RowStateSlots(spec_.optimizer.kind);
}

void EmbeddingTable::PackRecord(int64_t id, float* dst) const {
  const int64_t dim = spec_.embedding_dim;
  DecodeRow(spec_.row_type, reinterpret_cast<const uint8_t*>(rows_.Row(id)), dim, dst);
  dst += dim;
  if (!state0_.empty()) {
    std::memcpy(dst, state0_.Row(id), dim * sizeof(float));
    dst += dim;
  }
  if (!state1_.empty()) {
    std::memcpy(dst, state1_.Row(id), dim * sizeof(float));
    dst += dim;
  }
  if (!row_state_.empty()) *dst = row_state_[id];
}

void EmbeddingTable::UnpackRecord(int64_t id, const float* src) {
  const int64_t dim = spec_.embedding_dim;
  EncodeRow(spec_.row_type, src, dim, reinterpret_cast<uint8_t*>(rows_.Row(id)));
  src += dim;
  if (!state0_.empty()) {
    std::memcpy(state0_.Row(id), src, dim * sizeof(float));
    src += dim;
  }
  if (!state1_.empty()) {
    std::memcpy(state1_.Row(id), src, dim * sizeof(float));
    src += dim;
  }
  if (!row_state_.empty()) row_state_[id] = *src;
}

StoredTable EmbeddingTable::Meta(int64_t version, int64_t step) const {
  StoredTable meta;
  meta.spec = spec_;
  meta.spec.frozen = frozen_;
  meta.spec.optimizer = optimizer_;
  meta.version = version;
  meta.step = step;
  meta.floats_per_record = record_floats();
  return meta;
}

absl::Status EmbeddingTable::CopyRows(int64_t first, int64_t n, float* out) const {
  if (first < 0 || n < 0 || first > spec_.num_embeddings - n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rows [", first, ", ", first + n, ") are out of range [0, ", spec_.num_embeddings, ")"));
  }
  absl::ReaderMutexLock lock(&mu_);  // writers hold mu_ exclusively
  const int64_t dim = spec_.embedding_dim;
  for (int64_t r = 0; r < n; ++r) {
    DecodeRow(spec_.row_type, reinterpret_cast<const uint8_t*>(rows_.Row(first + r)), dim,
              out + r * dim);
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::SetVocabulary(std::vector<std::string> words) {
  if (static_cast<int64_t>(words.size()) != spec_.num_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary has ", words.size(), " words for ",
                                                   spec_.num_embeddings, " rows"));
  }
  absl::flat_hash_map<std::string, int64_t> ids;
  for (size_t i = 0; i < words.size(); ++i) {
    if (!ids.emplace(words[i], static_cast<int64_t>(i)).second) {
      return absl::InvalidArgumentError(absl::StrCat("word '", words[i], "' appears twice (rows ",
                                                     ids[words[i]], " and ", i, ")"));
    }
  }
  vocabulary_ = std::move(words);
  word_ids_ = std::move(ids);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> EmbeddingTable::IdsForWords(
    absl::Span<const std::string> words) const {
  if (vocabulary_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "table '", spec_.name, "' has no vocabulary (it was not loaded from word vectors)"));
  }
  std::vector<int64_t> ids;
  ids.reserve(words.size());
  std::vector<std::string> unknown;
  for (const std::string& w : words) {
    auto it = word_ids_.find(w);
    if (it == word_ids_.end()) {
      if (unknown.size() < 10) unknown.push_back("'" + w + "'");
      continue;
    }
    ids.push_back(it->second);
  }
  if (!unknown.empty()) {
    return absl::NotFoundError(
        absl::StrCat("table '", spec_.name, "' has no word ", absl::StrJoin(unknown, ", ")));
  }
  return ids;
}

absl::StatusOr<int64_t> EmbeddingTable::Commit(absl::Span<const int64_t> ids,
                                               absl::Span<const float> packed, int64_t step) {
  const int64_t version = version_.load(std::memory_order_relaxed) + 1;
  if (store_ != nullptr) RETURN_IF_ERROR(store_->PutRecords(Meta(version, step), ids, packed));
  const int64_t rf = record_floats();
  for (size_t i = 0; i < ids.size(); ++i) {
    BeginRowWrite(ids[i]);
    UnpackRecord(ids[i], packed.data() + i * rf);
    EndRowWrite(ids[i]);
  }
  step_ = step;
  version_.store(version, std::memory_order_release);
  return version;
}

void EmbeddingTable::BeginRowWrite(int64_t id) {
  std::atomic<uint32_t>& seq = Stripe(id);
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // The odd count is visible before any store to the row.
  std::atomic_thread_fence(std::memory_order_release);
}

void EmbeddingTable::EndRowWrite(int64_t id) {
  std::atomic<uint32_t>& seq = Stripe(id);
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

void EmbeddingTable::StableCopyRow(int64_t id, float* dst) const {
  const std::atomic<uint32_t>& seq = Stripe(id);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(rows_.Row(id));
  for (;;) {
    const uint32_t before = seq.load(std::memory_order_acquire);
    if (before & 1) {
      std::this_thread::yield();
      continue;
    }
    DecodeRow(spec_.row_type, src, spec_.embedding_dim, dst);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) == before) return;
  }
}

namespace {

struct Parallelism {
  std::unique_ptr<internal::WorkerPool> pool;
  int64_t min_ids = 0;
};

std::atomic<Parallelism*> g_parallelism{nullptr};

// Runs piece(begin, end) -> first bad position or kAllValid over [0, n), in
// parallel when configured and n is large enough; returns the first bad
// position over all pieces.
template <typename Piece>
int64_t SplitKernel(int64_t n, int64_t work, Piece piece) {
  Parallelism* p = g_parallelism.load(std::memory_order_acquire);
  if (p == nullptr || work < p->min_ids || n < 2) return piece(0, n);
  std::atomic<int64_t> first_bad{INT64_MAX};
  p->pool->ParallelFor(n, p->pool->threads() + 1, [&](int64_t begin, int64_t end) {
    const int64_t bad = piece(begin, end);
    if (bad == kAllValid) return;
    int64_t seen = first_bad.load();
    while (bad < seen && !first_bad.compare_exchange_weak(seen, bad)) {
    }
  });
  return first_bad.load() == INT64_MAX ? kAllValid : first_bad.load();
}

}  // namespace

void SetLookupParallelism(int threads, int64_t min_ids) {
  Parallelism* next = nullptr;
  if (threads > 0) {
    next = new Parallelism{std::make_unique<internal::WorkerPool>(threads), min_ids};
  }
  // The previous pool is leaked on purpose: lookups in flight may still use
  // it, and this is called once at start-up (or by tests).
  g_parallelism.store(next, std::memory_order_release);
}

template <typename Kernel, typename Redo>
absl::Status EmbeddingTable::ReadRows(absl::Span<const int64_t> ids, Kernel kernel, Redo redo) {
  if (spec_.max_norm.has_value()) {
    // Renorm writes rows: validate first so that a bad request changes
    // nothing; holding mu_ keeps every other writer out while we read.
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckIds(ids));
    RETURN_IF_ERROR(RenormReferenced(ids));
    const int64_t bad = kernel();
    if (bad != kAllValid) return BadIdError(ids, bad);
    return absl::OkStatus();
  }
  thread_local std::vector<uint32_t> before;
  before.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    before[i] = Stripe(ids[i]).load(std::memory_order_acquire);
  }
  const int64_t bad = kernel();
  if (bad != kAllValid) return BadIdError(ids, bad);
  std::atomic_thread_fence(std::memory_order_acquire);
  std::vector<int64_t> torn;
  for (size_t i = 0; i < ids.size(); ++i) {
    const uint32_t now = Stripe(ids[i]).load(std::memory_order_relaxed);
    if ((before[i] & 1) || now != before[i]) torn.push_back(static_cast<int64_t>(i));
  }
  if (!torn.empty()) redo(absl::MakeConstSpan(torn));
  return absl::OkStatus();
}

absl::Status EmbeddingTable::Lookup(absl::Span<const int64_t> ids, absl::Span<float> out) {
  const GatherKernels& k = ActiveKernels();
  return ReadRows(
      ids,
      [&] {
        const int64_t n = static_cast<int64_t>(ids.size());
        const int64_t dim = spec_.embedding_dim;
        return SplitKernel(n, n, [&](int64_t begin, int64_t end) -> int64_t {
          const int64_t bad =
              compact_ ? k.compact_gather(compact_view_, ids.data() + begin, end - begin,
                                          out.data() + begin * dim)
                       : k.gather(view_, ids.data() + begin, end - begin, out.data() + begin * dim);
          return bad == kAllValid ? kAllValid : begin + bad;
        });
      },
      [&](absl::Span<const int64_t> torn) {
        for (int64_t i : torn) StableCopyRow(ids[i], out.data() + i * spec_.embedding_dim);
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
                                                     " entries, expected one per id (", num_ids,
                                                     ")"));
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
                                          absl::Span<const float> weights, absl::Span<float> out) {
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
  return ReadRows(
      ids,
      [&] {
        const int64_t dim = spec_.embedding_dim;
        // Pieces are ranges of bags; bounds index the shared ids, so a bad
        // position comes back absolute.
        return SplitKernel(args.num_bags, args.num_ids, [&](int64_t b0, int64_t b1) -> int64_t {
          BagArgs piece = args;
          piece.bounds = args.bounds + b0;
          piece.num_bags = b1 - b0;
          return compact_ ? k.compact_pooled(compact_view_, piece, out.data() + b0 * dim)
                          : k.pooled(view_, piece, out.data() + b0 * dim);
        });
      },
      [&](absl::Span<const int64_t> torn) {
        // Recompute each bag that holds a torn row from consistent copies.
        const int64_t dim = spec_.embedding_dim;
        int64_t last_bag = -1;
        std::vector<float> rows;
        std::vector<int64_t> local_ids, local_bounds = {0, 0};
        std::vector<float> local_weights;
        for (int64_t i : torn) {
          const int64_t bag =
              std::upper_bound(bounds.begin(), bounds.end(), i) - bounds.begin() - 1;
          if (bag == last_bag || bag >= args.num_bags) continue;
          last_bag = bag;
          rows.clear();
          local_ids.clear();
          local_weights.clear();
          for (int64_t j = bounds[bag]; j < bounds[bag + 1]; ++j) {
            if (ids[j] == args.padding_idx) continue;
            local_ids.push_back(static_cast<int64_t>(local_ids.size()));
            rows.resize(local_ids.size() * dim);
            StableCopyRow(ids[j], rows.data() + (local_ids.size() - 1) * dim);
            if (args.weights != nullptr) local_weights.push_back(args.weights[j]);
          }
          const float* base = rows.data();
          RowView view{&base, /*shard_shift=*/62, static_cast<int64_t>(local_ids.size()), dim, dim};
          local_bounds[1] = static_cast<int64_t>(local_ids.size());
          BagArgs one{local_ids.data(),
                      local_bounds[1],
                      local_bounds.data(),
                      1,
                      args.mode,
                      args.weights != nullptr ? local_weights.data() : nullptr,
                      -1};
          KernelsFor(SimdLevel::kScalar).pooled(view, one, out.data() + bag * dim);
        }
      });
}

absl::Status EmbeddingTable::CheckRowValues(absl::Span<const int64_t> ids,
                                            absl::Span<const float> values,
                                            absl::string_view field) const {
  const int64_t dim = spec_.embedding_dim;
  if (static_cast<int64_t>(values.size()) != static_cast<int64_t>(ids.size()) * dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has ", values.size(), " floats, expected len(ids) * embedding_dim = ", ids.size(),
        " * ", dim, " = ", static_cast<int64_t>(ids.size()) * dim));
  }
  RETURN_IF_ERROR(CheckIds(ids));
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] (row ", i / dim, " of the request, id ", ids[i / dim],
                       ", column ", i % dim, ") is ", values[i], "; ", field, " must be finite"));
    }
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::CheckRecords(absl::Span<const int64_t> ids,
                                          absl::Span<const float> packed,
                                          absl::string_view what) const {
  const int64_t dim = spec_.embedding_dim, rf = record_floats();
  for (size_t u = 0; u < ids.size(); ++u) {
    const float* record = packed.data() + u * rf;
    int64_t bad = FirstUnencodable(spec_.row_type, record, dim);
    const char* part = "row";
    if (bad < 0) {
      for (int64_t j = dim; j < rf; ++j) {
        if (!std::isfinite(record[j])) {
          bad = j;
          part = "optimizer state";
          break;
        }
      }
    }
    if (bad >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the ", what, " would make the ", part, " of id ", ids[u], " not finite (element ", bad,
          ": ", record[bad], spec_.row_type == RowType::kFloat32 ? "" : " or past its row type's range",
          "); nothing was applied"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EmbeddingTable::AssignRows(absl::Span<const int64_t> ids,
                                                   absl::Span<const float> values) {
  const int64_t dim = spec_.embedding_dim;
  RETURN_IF_ERROR(CheckRowValues(ids, values, "values"));
  // Distinct ids, the last value of a duplicate winning; state is kept.
  absl::flat_hash_map<int64_t, size_t> last;
  for (size_t i = 0; i < ids.size(); ++i) last[ids[i]] = i;
  std::vector<int64_t> unique;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (last[ids[i]] == i) unique.push_back(ids[i]);
  }
  absl::MutexLock lock(&mu_);
  const int64_t rf = record_floats();
  std::vector<float> packed(unique.size() * rf);
  for (size_t u = 0; u < unique.size(); ++u) {
    float* record = packed.data() + u * rf;
    PackRecord(unique[u], record);
    std::memcpy(record, values.data() + last[unique[u]] * dim, dim * sizeof(float));
  }
  RETURN_IF_ERROR(CheckRecords(unique, packed, "assign"));
  return Commit(unique, packed, step_);
}

absl::StatusOr<EmbeddingTable::PushResult> EmbeddingTable::ApplyGradients(
    absl::Span<const int64_t> ids, absl::Span<const float> grads) {
  const int64_t dim = spec_.embedding_dim;
  RETURN_IF_ERROR(CheckRowValues(ids, grads, "grads"));
  // Coalesce outside the lock: the distinct non-padding ids in order of first
  // occurrence, their summed gradients (summed in push order) and counts.
  const int64_t padding = spec_.padding_idx.value_or(-1);
  absl::flat_hash_map<int64_t, int64_t> slot_of;
  slot_of.reserve(ids.size());
  std::vector<int64_t> unique;
  std::vector<float> sum;
  std::vector<int32_t> count;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == padding) continue;
    auto [it, inserted] = slot_of.try_emplace(ids[i], static_cast<int64_t>(unique.size()));
    const float* g = grads.data() + i * dim;
    if (inserted) {
      unique.push_back(ids[i]);
      sum.insert(sum.end(), g, g + dim);
      count.push_back(1);
    } else {
      float* acc = sum.data() + it->second * dim;
      for (int64_t j = 0; j < dim; ++j) acc[j] += g[j];
      ++count[it->second];
    }
  }
  if (spec_.scale_grad_by_freq) {
    for (size_t u = 0; u < unique.size(); ++u) {
      if (count[u] == 1) continue;
      const float c = static_cast<float>(count[u]);
      for (int64_t j = 0; j < dim; ++j) sum[u * dim + j] /= c;
    }
  }
  absl::MutexLock lock(&mu_);
  if (frozen_) {
    return absl::FailedPreconditionError(
        absl::StrCat("table '", spec_.name, "' is frozen; unfreeze it with UpdateTable"));
  }
  // Only padding ids (or none): nothing to apply, so the optimizer's step
  // does not advance either.
  if (unique.empty()) return PushResult{version_.load(std::memory_order_relaxed), 0};
  const OptimizerKind kind = optimizer_.kind;
  const int64_t step = HasStepCount(kind) ? step_ + 1 : step_;
  const StepScalars k = ComputeStepScalars(optimizer_, std::max<int64_t>(step, 1));
  // Step copies of the records; Commit makes them durable, then visible.
  const int64_t rf = record_floats();
  const int64_t s0 = state0_.empty() ? -1 : dim, s1 = state1_.empty() ? -1 : 2 * dim;
  const int64_t rs = row_state_.empty() ? -1 : rf - 1;
  std::vector<float> packed(unique.size() * rf);
  for (size_t u = 0; u < unique.size(); ++u) {
    float* record = packed.data() + u * rf;
    PackRecord(unique[u], record);
    ApplyRowStep(kind, k, sum.data() + u * dim, dim, record, s0 < 0 ? nullptr : record + s0,
                 s1 < 0 ? nullptr : record + s1, rs < 0 ? nullptr : record + rs);
  }
  RETURN_IF_ERROR(CheckRecords(unique, packed, "push"));
  ASSIGN_OR_RETURN(const int64_t version, Commit(unique, packed, step));
  return PushResult{version, static_cast<int64_t>(unique.size())};
}

absl::Status EmbeddingTable::UpdateSettings(const Settings& settings) {
  absl::MutexLock lock(&mu_);
  OptimizerSpec next = optimizer_;
  if (settings.lr) next.lr = *settings.lr;
  if (settings.lr_decay) next.lr_decay = *settings.lr_decay;
  if (settings.eps) next.eps = *settings.eps;
  if (settings.beta1) next.beta1 = *settings.beta1;
  if (settings.beta2) next.beta2 = *settings.beta2;
  ASSIGN_OR_RETURN(next, NormalizeOptimizerSpec(next));
  const OptimizerSpec old_optimizer = optimizer_;
  const bool old_frozen = frozen_;
  optimizer_ = next;
  if (settings.frozen) frozen_ = *settings.frozen;
  if (store_ != nullptr) {
    absl::Status s = store_->PutMeta(Meta(version_.load(), step_));
    if (!s.ok()) {
      optimizer_ = old_optimizer;
      frozen_ = old_frozen;
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EmbeddingTable::StateSlot>> EmbeddingTable::ReadOptimizerState(
    absl::Span<const int64_t> ids) const {
  RETURN_IF_ERROR(CheckIds(ids));
  const int64_t dim = spec_.embedding_dim;
  std::vector<StateSlot> slots;
  absl::ReaderMutexLock lock(&mu_);
  auto element_slot = [&](const char* name, const internal::ShardedBuffer& buffer) {
    StateSlot slot{name, dim, {}};
    slot.values.reserve(ids.size() * dim);
    for (int64_t id : ids)
      slot.values.insert(slot.values.end(), buffer.Row(id), buffer.Row(id) + dim);
    slots.push_back(std::move(slot));
  };
  switch (optimizer_.kind) {
    case OptimizerKind::kSgd:
      break;
    case OptimizerKind::kAdagrad:
      element_slot("sum", state0_);
      break;
    case OptimizerKind::kSparseAdam:
      element_slot("exp_avg", state0_);
      element_slot("exp_avg_sq", state1_);
      break;
    case OptimizerKind::kRowWiseAdagrad: {
      StateSlot slot{"momentum", 1, {}};
      for (int64_t id : ids) slot.values.push_back(row_state_[id]);
      slots.push_back(std::move(slot));
      break;
    }
  }
  return slots;
}

}  // namespace embedserve
