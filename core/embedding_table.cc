#include "core/embedding_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/coalesce.h"
#include "core/initializer.h"
#include "core/internal/sharded_row_storage.h"
#include "core/renorm.h"
#include "core/row_codec.h"

namespace embedserve {

EmbeddingTable::EmbeddingTable(const TableSpec& spec, std::unique_ptr<RowStorage> rows,
                               std::shared_ptr<LookupParallelism> parallelism)
    : spec_(spec),
      rows_(std::move(rows)),
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
  const uint64_t n = static_cast<uint64_t>(spec_.num_embeddings);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (static_cast<uint64_t>(ids[i]) >= n) return BadIdError(ids, static_cast<int64_t>(i));
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::CopyRows(int64_t first, int64_t n, float* out) const {
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

template <typename Piece>
int64_t EmbeddingTable::Split(int64_t n, int64_t work, Piece piece) {
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

// ---- Writes ----------------------------------------------------------------

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
  const RowFormat& f = rows_->format();
  for (size_t u = 0; u < ids.size(); ++u) {
    const float* record = packed.data() + u * f.record_floats();
    const int64_t bad = f.FirstUnstorable(record);
    if (bad < 0) continue;
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " would make the ", bad < f.dim ? "row" : "optimizer state",
                     " of id ", ids[u], " not finite (element ", bad, ": ", record[bad],
                     f.type == RowType::kFloat32 ? "" : " or past its row type's range",
                     "); nothing was applied"));
  }
  return absl::OkStatus();
}

std::vector<float> EmbeddingTable::ReadRecords(absl::Span<const int64_t> ids) const {
  const int64_t rf = record_floats();
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> slots = rows_->Resolve(ids, &scratch);
  std::vector<float> packed(ids.size() * rf);
  for (size_t u = 0; u < slots.size(); ++u) rows_->ReadRecord(slots[u], packed.data() + u * rf);
  return packed;
}

absl::Status EmbeddingTable::RenormReferenced(absl::Span<const int64_t> ids) {
  // Each distinct row once, as torch.embedding_renorm_ does (a second renorm
  // of a row would change it only by rounding, but costs a pass over it).
  std::vector<int64_t> unique(ids.begin(), ids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
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
  // Logged as the records it wrote: replay need not know that a lookup did
  // it. A lookup does not wait for it to be durable: every later change of
  // the table is logged after it, so no acknowledged change can survive a
  // crash without it.
  UpdateRecord logged;
  logged.kind = UpdateRecord::Kind::kWriteRecords;
  logged.ids = changed;
  logged.floats = packed;
  return Commit(logged, changed, packed, step_).status();
}

void EmbeddingTable::WriteRecords(absl::Span<const int64_t> ids, absl::Span<const float> packed) {
  const int64_t rf = record_floats();
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> slots = rows_->Resolve(ids, &scratch);
  for (size_t i = 0; i < slots.size(); ++i) {
    seqlock_.BeginWrite(slots[i]);
    rows_->WriteRecord(slots[i], packed.data() + i * rf);
    seqlock_.EndWrite(slots[i]);
  }
}

absl::StatusOr<EmbeddingTable::Committed> EmbeddingTable::Commit(
    UpdateRecord logged, absl::Span<const int64_t> ids, absl::Span<const float> packed,
    int64_t step, const PushOrigin& origin) {
  const int64_t version = version_.load(std::memory_order_relaxed) + 1;
  LogPosition position = 0;
  if (persistence_.log() != nullptr) {
    logged.table = spec_.name;
    logged.version = version;
    logged.step = step;
    logged.trainer = origin.trainer;
    logged.trainer_sequence = origin.sequence;
    ASSIGN_OR_RETURN(position, persistence_.Append(logged));
  } else {
    RETURN_IF_ERROR(persistence_.PutRecords(Meta(version, step), ids, packed));
  }
  WriteRecords(ids, packed);
  if (!origin.trainer.empty()) {
    absl::MutexLock lock(&trainers_mu_);
    trainers_.Applied(origin.trainer, origin.sequence);
  }
  step_ = step;
  version_.store(version, std::memory_order_release);
  return Committed{version, position};
}

absl::StatusOr<int64_t> EmbeddingTable::AssignRows(absl::Span<const int64_t> ids,
                                                   absl::Span<const float> values) {
  const int64_t dim = spec_.embedding_dim;
  RETURN_IF_ERROR(CheckRowValues(ids, values, "values"));
  // Distinct ids, the last value of a duplicate winning; state is kept.
  const CoalescedAssignment assign = CoalesceAssignment(ids);
  Committed done;
  {
    absl::MutexLock lock(&mu_);
    const int64_t rf = record_floats();
    std::vector<float> packed = ReadRecords(assign.ids);
    for (size_t u = 0; u < assign.ids.size(); ++u) {
      std::memcpy(packed.data() + u * rf, values.data() + assign.positions[u] * dim,
                  dim * sizeof(float));
    }
    RETURN_IF_ERROR(CheckRecords(assign.ids, packed, "assign"));
    UpdateRecord logged;
    logged.kind = UpdateRecord::Kind::kWriteRecords;
    logged.ids = assign.ids;
    logged.floats = packed;
    ASSIGN_OR_RETURN(done, Commit(logged, assign.ids, packed, step_));
  }
  RETURN_IF_ERROR(WaitDurable(done.position));
  return done.version;
}

std::vector<float> EmbeddingTable::SteppedRecords(absl::Span<const int64_t> ids,
                                                  absl::Span<const float> sums,
                                                  int64_t step) const {
  const int64_t dim = spec_.embedding_dim;
  const StepScalars k = ComputeStepScalars(optimizer_, std::max<int64_t>(step, 1));
  // Step copies of the records (row, then state: see RowFormat).
  const RowFormat& f = rows_->format();
  const int64_t rf = f.record_floats();
  std::vector<float> packed = ReadRecords(ids);
  for (size_t u = 0; u < ids.size(); ++u) {
    float* record = packed.data() + u * rf;
    ApplyRowStep(optimizer_.kind, k, sums.data() + u * dim, dim, record,
                 f.element_slots >= 1 ? record + dim : nullptr,
                 f.element_slots >= 2 ? record + 2 * dim : nullptr,
                 f.row_slots > 0 ? record + rf - 1 : nullptr);
  }
  return packed;
}

absl::StatusOr<EmbeddingTable::PushResult> EmbeddingTable::ApplyGradients(
    absl::Span<const int64_t> ids, absl::Span<const float> grads, const PushOrigin& origin) {
  const int64_t dim = spec_.embedding_dim;
  const bool once = !origin.trainer.empty() && origin.sequence > 0;
  if (!origin.trainer.empty()) RETURN_IF_ERROR(internal::TrainerSequences::CheckName(origin.trainer));
  RETURN_IF_ERROR(CheckRowValues(ids, grads, "grads"));
  // Coalesced outside the lock.
  const CoalescedGradients g =
      CoalesceGradients(ids, grads, dim, spec_.padding_idx.value_or(-1), spec_.scale_grad_by_freq);
  PushResult result;
  Committed done;
  {
    absl::MutexLock lock(&mu_);
    bool duplicate = false, room = true;
    if (once) {
      absl::ReaderMutexLock read(&trainers_mu_);
      duplicate = trainers_.IsDuplicate(origin.trainer, origin.sequence);
      room = trainers_.CheckRoom(origin.trainer, spec_.name).ok();
    }
    if (duplicate) {
      // Answered once what it repeats is durable (it may be in flight).
      result.version = version_.load(std::memory_order_relaxed);
      result.duplicate = true;
      done.position = persistence_.last_position();
    } else {
      if (frozen_) {
        return absl::FailedPreconditionError(
            absl::StrCat("table '", spec_.name, "' is frozen; unfreeze it with UpdateTable"));
      }
      if (!room) {
        absl::ReaderMutexLock read(&trainers_mu_);
        return trainers_.CheckRoom(origin.trainer, spec_.name);
      }
      // Only padding ids (or none): nothing to apply, so the optimizer's step
      // does not advance either (the trainer's number is not remembered:
      // nothing would make it durable).
      if (g.ids.empty()) return PushResult{version_.load(std::memory_order_relaxed), 0};
      const int64_t step = HasStepCount(optimizer_.kind) ? step_ + 1 : step_;
      const std::vector<float> packed = SteppedRecords(g.ids, g.sums, step);
      RETURN_IF_ERROR(CheckRecords(g.ids, packed, "push"));
      // The log gets the command (the coalesced gradients), not the records.
      UpdateRecord logged;
      logged.kind = UpdateRecord::Kind::kPush;
      logged.ids = g.ids;
      logged.floats = g.sums;
      ASSIGN_OR_RETURN(done, Commit(logged, g.ids, packed, step,
                                    once ? origin : PushOrigin{}));
      result.version = done.version;
      result.rows_applied = static_cast<int64_t>(g.ids.size());
    }
  }
  RETURN_IF_ERROR(WaitDurable(done.position));
  return result;
}

absl::Status EmbeddingTable::WaitForSequence(absl::string_view trainer, uint64_t sequence,
                                             absl::Time deadline) const {
  RETURN_IF_ERROR(internal::TrainerSequences::CheckName(trainer));
  auto applied = [&]() ABSL_SHARED_LOCKS_REQUIRED(trainers_mu_) {
    return trainers_.Last(trainer) >= sequence;
  };
  if (trainers_mu_.ReaderLockWhenWithDeadline(absl::Condition(&applied), deadline)) {
    trainers_mu_.ReaderUnlock();
    return absl::OkStatus();
  }
  const uint64_t last = trainers_.Last(trainer);
  trainers_mu_.ReaderUnlock();
  return absl::DeadlineExceededError(
      absl::StrCat("table '", spec_.name, "' has not applied push ", sequence, " of trainer '",
                   trainer, "' in time (its last applied push is ", last, ")"));
}

// ---- Settings and inspection ----------------------------------------------

absl::Status EmbeddingTable::UpdateSettings(const Settings& settings) {
  LogPosition position = 0;
  {
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
    absl::Status s;
    if (persistence_.log() != nullptr) {
      const TableSpec now = Meta(0, 0).spec;
      UpdateRecord logged;
      logged.kind = UpdateRecord::Kind::kSettings;
      logged.table = spec_.name;
      logged.version = version_.load();
      logged.step = step_;
      logged.spec = &now;
      absl::StatusOr<LogPosition> p = persistence_.Append(logged);
      s = p.status();
      if (p.ok()) position = *p;
    } else {
      s = persistence_.PutMeta(Meta(version_.load(), step_));
    }
    if (!s.ok()) {
      optimizer_ = old_optimizer;
      frozen_ = old_frozen;
      return s;
    }
  }
  return WaitDurable(position);
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
