#include "core/embedding_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/renorm.h"
#include "core/row_codec.h"

namespace embedserve {

EmbeddingTable::EmbeddingTable(const TableSpec& spec, std::unique_ptr<RowStorage> rows,
                               std::shared_ptr<LookupParallelism> parallelism)
    : spec_(spec),
      rows_(std::move(rows)),
      dynamic_(spec.dynamic ? static_cast<internal::DynamicRowStorage*>(rows_.get()) : nullptr),
      initializer_(spec),
      parallelism_(std::move(parallelism)),
      frozen_(spec.frozen),
      optimizer_(spec.optimizer) {}

TableSpec EmbeddingTable::spec() const {
  TableSpec s = spec_;
  absl::ReaderMutexLock lock(&mu_);
  s.frozen = frozen_;
  s.optimizer = optimizer_;
  return s;
}

int64_t EmbeddingTable::optimizer_step() const {
  absl::ReaderMutexLock lock(&mu_);
  return step_;
}

absl::Status EmbeddingTable::SetVocabulary(std::vector<std::string> words) {
  ASSIGN_OR_RETURN(vocabulary_,
                   internal::Vocabulary::Create(std::move(words), spec_.num_embeddings));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> EmbeddingTable::IdsForWords(
    absl::Span<const std::string> words) const {
  return vocabulary_.Ids(words, spec_.name);
}

absl::Status EmbeddingTable::BadIdError(absl::Span<const int64_t> ids, int64_t position) const {
  return absl::InvalidArgumentError(absl::StrCat("id ", ids[position], " at position ", position,
                                                 " is out of range [0, ", spec_.num_embeddings,
                                                 ") for table '", spec_.name, "'"));
}

absl::Status EmbeddingTable::CheckIds(absl::Span<const int64_t> ids) const {
  if (dynamic_ != nullptr) return absl::OkStatus();  // every int64 is an id
  const uint64_t n = static_cast<uint64_t>(spec_.num_embeddings);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (static_cast<uint64_t>(ids[i]) >= n) return BadIdError(ids, static_cast<int64_t>(i));
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::CopyRows(int64_t first, int64_t n, float* out) const {
  if (dynamic_ != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "table '", spec_.name, "' is dynamic: its rows have ids, not a range (look up its ids)"));
  }
  if (first < 0 || n < 0 || first > spec_.num_embeddings - n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rows [", first, ", ", first + n, ") are out of range [0, ", spec_.num_embeddings, ")"));
  }
  absl::ReaderMutexLock lock(&mu_);  // writers hold mu_ exclusively
  const int64_t dim = spec_.embedding_dim;
  for (int64_t r = 0; r < n; ++r) {
    DecodeRow(spec_.row_type, rows_->Row(rows_->SlotOf(first + r)), dim, out + r * dim);
  }
  return absl::OkStatus();
}

// ---- Lookups ---------------------------------------------------------------

void EmbeddingTable::StableCopyRow(int64_t slot, float* dst) const {
  const uint8_t* src = rows_->Row(slot);
  seqlock_.ReadStable(slot, [&] { DecodeRow(spec_.row_type, src, spec_.embedding_dim, dst); });
}

int64_t EmbeddingTable::Split(int64_t n, int64_t work,
                              absl::FunctionRef<int64_t(int64_t, int64_t)> piece) {
  if (parallelism_ == nullptr) return piece(0, n);
  return parallelism_->Run(n, work, piece);
}

template <typename Kernel, typename Redo>
absl::Status EmbeddingTable::ReadRows(absl::Span<const int64_t> ids,
                                      absl::Span<const int64_t> slots, Kernel kernel, Redo redo) {
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
  before.resize(slots.size());
  seqlock_.Snapshot(slots, absl::MakeSpan(before));
  const int64_t bad = kernel();
  if (bad != kAllValid) return BadIdError(ids, bad);
  std::vector<int64_t> torn;
  seqlock_.Torn(slots, before, &torn);
  if (!torn.empty()) redo(absl::MakeConstSpan(torn));
  return absl::OkStatus();
}

absl::Status EmbeddingTable::Lookup(absl::Span<const int64_t> ids, absl::Span<float> out) {
  if (dynamic_ != nullptr) return LookupDynamic(ids, out);
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> slots = rows_->Resolve(ids, &scratch);
  const KernelRows& rows = rows_->kernel_rows();
  const GatherKernels& k = ActiveKernels();
  const int64_t dim = spec_.embedding_dim;
  return ReadRows(
      ids, slots,
      [&] {
        const int64_t n = static_cast<int64_t>(slots.size());
        return Split(n, n, [&](int64_t begin, int64_t end) -> int64_t {
          const int64_t bad = rows.is_compact
                                  ? k.compact_gather(rows.compact, slots.data() + begin,
                                                     end - begin, out.data() + begin * dim)
                                  : k.gather(rows.rows, slots.data() + begin, end - begin,
                                             out.data() + begin * dim);
          return bad == kAllValid ? kAllValid : begin + bad;
        });
      },
      [&](absl::Span<const int64_t> torn) {
        for (int64_t i : torn) StableCopyRow(slots[i], out.data() + i * dim);
      });
}

absl::Status EmbeddingTable::LookupPooled(absl::Span<const int64_t> ids,
                                          absl::Span<const int64_t> bounds, PoolingMode mode,
                                          absl::Span<const float> weights, absl::Span<float> out) {
  RETURN_IF_ERROR(CheckBagWeights(ids.size(), mode, weights));
  if (dynamic_ != nullptr) return LookupPooledDynamic(ids, bounds, mode, weights, out);
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> slots = rows_->Resolve(ids, &scratch);
  BagArgs args;
  args.ids = slots.data();
  args.num_ids = static_cast<int64_t>(slots.size());
  args.bounds = bounds.data();
  args.num_bags = static_cast<int64_t>(bounds.size()) - 1;
  args.mode = mode;
  args.weights = weights.empty() ? nullptr : weights.data();
  args.padding_idx = spec_.padding_idx ? rows_->SlotOf(*spec_.padding_idx) : -1;
  const KernelRows& rows = rows_->kernel_rows();
  const GatherKernels& k = ActiveKernels();
  const int64_t dim = spec_.embedding_dim;
  return ReadRows(
      ids, slots,
      [&] {
        // Pieces are ranges of bags; bounds index the shared ids, so a bad
        // position comes back absolute.
        return Split(args.num_bags, args.num_ids, [&](int64_t b0, int64_t b1) -> int64_t {
          BagArgs piece = args;
          piece.bounds = args.bounds + b0;
          piece.num_bags = b1 - b0;
          return rows.is_compact ? k.compact_pooled(rows.compact, piece, out.data() + b0 * dim)
                                 : k.pooled(rows.rows, piece, out.data() + b0 * dim);
        });
      },
      [&](absl::Span<const int64_t> torn) {
        // Recompute each bag that holds a torn row from consistent copies.
        int64_t last_bag = -1;
        std::vector<float> copies, copy_weights;
        for (int64_t i : torn) {
          const int64_t bag =
              std::upper_bound(bounds.begin(), bounds.end(), i) - bounds.begin() - 1;
          if (bag == last_bag || bag >= args.num_bags) continue;
          last_bag = bag;
          copies.clear();
          copy_weights.clear();
          for (int64_t j = bounds[bag]; j < bounds[bag + 1]; ++j) {
            if (slots[j] == args.padding_idx) continue;
            copies.resize(copies.size() + dim);
            StableCopyRow(slots[j], copies.data() + copies.size() - dim);
            if (args.weights != nullptr) copy_weights.push_back(args.weights[j]);
          }
          PoolCopiedBag(copies, dim, mode, copy_weights, out.data() + bag * dim);
        }
      });
}

// ---- The renorm of a max_norm lookup (a write made by a read) -----------

absl::Status EmbeddingTable::RenormReferenced(absl::Span<const int64_t> ids) {
  // Each distinct row once, as torch.embedding_renorm_ does (a second renorm
  // of a row would change it only by rounding, but costs a pass over it).
  std::vector<int64_t> unique(ids.begin(), ids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  if (dynamic_ != nullptr) {
    // Only stored rows: an id without one reads as its initial row already
    // renormalised (InitialRecords), and a lookup never makes a row.
    unique.erase(std::remove_if(unique.begin(), unique.end(),
                                [&](int64_t id) { return dynamic_->SlotOf(id) < 0; }),
                 unique.end());
  }
  const int64_t rf = record_floats();
  std::vector<float> packed = ReadRecords(unique);
  // Keep only the rows that changed, packed at the front.
  std::vector<int64_t> changed;
  for (size_t u = 0; u < unique.size(); ++u) {
    float* record = packed.data() + u * rf;
    if (!RenormRow(record, spec_.embedding_dim, *spec_.max_norm, spec_.norm_type)) continue;
    std::memmove(packed.data() + changed.size() * rf, record, rf * sizeof(float));
    changed.push_back(unique[u]);
  }
  if (changed.empty()) return absl::OkStatus();
  packed.resize(changed.size() * rf);
  // Logged as the records it wrote (kRenorm: not an update, so a dynamic
  // table's LRU order stays; reads never decide evictions). A lookup does
  // not wait for it to be durable: every later change of
  // the table is logged after it, so no acknowledged change can survive a
  // crash without it.
  UpdateRecord logged;
  logged.kind = UpdateRecord::Kind::kRenorm;
  logged.ids = changed;
  logged.floats = packed;
  return Commit(logged, changed, packed, step_).status();
}

absl::StatusOr<std::vector<EmbeddingTable::StateSlot>> EmbeddingTable::ReadOptimizerState(
    absl::Span<const int64_t> ids) const {
  RETURN_IF_ERROR(CheckIds(ids));
  const int64_t dim = spec_.embedding_dim;
  std::vector<StateSlot> slots;
  absl::ReaderMutexLock lock(&mu_);  // writers hold mu_ exclusively
  switch (optimizer_.kind) {
    case OptimizerKind::kSgd:
      return slots;
    case OptimizerKind::kAdagrad:
      slots = {{"sum", dim, {}}};
      break;
    case OptimizerKind::kSparseAdam:
      slots = {{"exp_avg", dim, {}}, {"exp_avg_sq", dim, {}}};
      break;
    case OptimizerKind::kRowWiseAdagrad:
      slots = {{"momentum", 1, {}}};
      break;
  }
  // A record holds the row, then each state slot in this order.
  const std::vector<float> packed = ReadRecords(ids);
  const int64_t rf = record_floats();
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* state = packed.data() + i * rf + dim;
    for (StateSlot& slot : slots) {
      slot.values.insert(slot.values.end(), state, state + slot.width);
      state += slot.width;
    }
  }
  return slots;
}

}  // namespace embedserve
