// EmbeddingTable: the changes (assign, push, settings) and how they are
// committed (the update log or the store first, then memory). Lookups are in
// embedding_table.cc, creation, snapshots and replay in table_durability.cc.

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/coalesce.h"
#include "core/embedding_table.h"
#include "core/internal/parallel_replay.h"
#include "core/optimizer.h"

namespace embedserve {



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
  std::vector<int64_t> missing, missing_ids;
  // Rows at random, asked for a block ahead, for writing: a push writes
  // them back next (bench/replay_bench's push, memory only, the same
  // binary with and without: 1.28-1.47 against 1.12-1.15 M rows/s).
  internal::InRowBlocks(
      slots.size(), rows_->format().row_bytes,
      [&](size_t u) { return slots[u] >= 0 ? rows_->Row(slots[u]) : nullptr; },
      [&](size_t u) {
        if (slots[u] >= 0) {
          rows_->ReadRecord(slots[u], packed.data() + u * rf);
        } else {  // a dynamic table's id without a row
          missing.push_back(static_cast<int64_t>(u));
          missing_ids.push_back(ids[u]);
        }
      });
  if (!missing.empty()) {
    std::vector<float> initial(missing.size() * rf);
    InitialRecords(missing_ids, initial.data());
    for (size_t m = 0; m < missing.size(); ++m) {
      std::memcpy(packed.data() + missing[m] * rf, initial.data() + m * rf, rf * sizeof(float));
    }
  }
  return packed;
}

EmbeddingTable::WriteKind EmbeddingTable::WriteKindOf(UpdateRecord::Kind kind) {
  switch (kind) {
    case UpdateRecord::Kind::kPush:
      return WriteKind::kPush;
    case UpdateRecord::Kind::kRenorm:
      return WriteKind::kInPlace;
    default:
      return WriteKind::kAssign;
  }
}

int64_t EmbeddingTable::WriteRecords(absl::Span<const int64_t> ids, absl::Span<const float> packed,
                                     WriteKind kind, int64_t step) {
  const int64_t rf = record_floats();
  auto write = [&](size_t i, int64_t slot) {
    seqlock_.BeginWrite(slot);
    rows_->WriteRecord(slot, packed.data() + i * rf);
    seqlock_.EndWrite(slot);
  };
  if (dynamic_ != nullptr && kind != WriteKind::kInPlace) {
    // New rows are written by Upsert (under the seqlock: the slot may have
    // held an evicted id's row that readers still read) before their ids
    // are published; the others after it.
    std::vector<int64_t> slots(ids.size());
    std::vector<bool> fresh(ids.size(), false);
    // A failure to grow (ResourceExhausted) leaves the later ids without a
    // row, as ids that were not admitted.
    const internal::UpsertMode mode =
        kind == WriteKind::kPush ? internal::UpsertMode::kPush : internal::UpsertMode::kWrite;
    dynamic_->Upsert(ids, step, mode, absl::MakeSpan(slots), [&](int64_t i, int64_t slot) {
      fresh[i] = true;
      write(i, slot);
    }).IgnoreError();
    int64_t stored = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (slots[i] < 0) continue;
      ++stored;
      if (!fresh[i]) write(i, slots[i]);
    }
    return stored;
  }
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> slots = rows_->Resolve(ids, &scratch);
  int64_t stored = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] < 0) continue;  // kInPlace of a dynamic table: rows it has only
    write(i, slots[i]);
    ++stored;
  }
  return stored;
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
  const int64_t stored = WriteRecords(ids, packed, WriteKindOf(logged.kind), step);
  if (!origin.trainer.empty()) {
    absl::MutexLock lock(&trainers_mu_);
    trainers_.Applied(origin.trainer, origin.sequence);
  }
  step_ = step;
  version_.store(version, std::memory_order_release);
  return Committed{version, position, stored};
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
  // Step copies of the records (row, then state: see RowFormat), as replay
  // does (core/internal/parallel_replay.h).
  const RowFormat& f = rows_->format();
  const int64_t rf = f.record_floats();
  std::vector<float> packed = ReadRecords(ids);
  for (size_t u = 0; u < ids.size(); ++u) {
    internal::StepRecord(f, optimizer_.kind, k, sums.data() + u * dim, packed.data() + u * rf);
  }
  return packed;
}

absl::Status EmbeddingTable::CheckTrainerName(absl::string_view trainer) {
  return internal::TrainerSequences::CheckName(trainer);
}

absl::Status EmbeddingTable::CheckPushOrigin(const PushOrigin& origin) {
  if (origin.trainer.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckTrainerName(origin.trainer));
  if (origin.sequence == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a push from trainer '", origin.trainer, "' needs a sequence number above 0"));
  }
  return absl::OkStatus();
}

absl::StatusOr<EmbeddingTable::PushResult> EmbeddingTable::ApplyGradients(
    absl::Span<const int64_t> ids, absl::Span<const float> grads, const PushOrigin& origin) {
  const int64_t dim = spec_.embedding_dim;
  const bool once = !origin.trainer.empty();
  RETURN_IF_ERROR(CheckPushOrigin(origin));
  RETURN_IF_ERROR(CheckRowValues(ids, grads, "grads"));
  // Coalesced outside the lock.
  const CoalescedGradients g =
      CoalesceGradients(ids, grads, dim, spec_.padding_idx, spec_.scale_grad_by_freq);
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
      // A dynamic table counts every push (its eviction clock); the step
      // changes the math of Adagrad and SparseAdam only.
      const int64_t step =
          HasStepCount(optimizer_.kind) || dynamic_ != nullptr ? step_ + 1 : step_;
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
      result.rows_applied = done.stored;
    }
  }
  RETURN_IF_ERROR(WaitDurable(done.position));
  return result;
}

absl::Status EmbeddingTable::WaitForSequence(absl::string_view trainer, uint64_t sequence,
                                             absl::Time deadline) const {
  RETURN_IF_ERROR(CheckTrainerName(trainer));
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
    if (settings.kind && *settings.kind != optimizer_.kind) {
      return absl::InvalidArgumentError("the optimizer kind is fixed at creation");
    }
    if (settings.initial_accumulator_value) {
      return absl::InvalidArgumentError("initial_accumulator_value is fixed at creation");
    }
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

}  // namespace embedserve
