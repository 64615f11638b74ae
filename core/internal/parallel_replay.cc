#include "core/internal/parallel_replay.h"

#include <algorithm>
#include <utility>

namespace embedserve::internal {

void StepRows(RowStorage& rows, OptimizerKind kind, const StepScalars& k,
              absl::Span<const int64_t> ids, absl::Span<const float> sums, int part, int parts) {
  const RowFormat& f = rows.format();
  const int64_t dim = f.dim;
  std::vector<size_t> mine;
  mine.reserve(parts == 1 ? ids.size() : ids.size() / parts + 64);
  for (size_t u = 0; u < ids.size(); ++u) {
    if (parts == 1 || ParallelReplay::PartOf(ids[u], parts) == part) mine.push_back(u);
  }
  // A float32 row without optimizer state is its whole record (RowFormat):
  // it is stepped where it lies, not copied out and back (the same
  // arithmetic on the same floats, so the same bytes).
  const bool in_place = f.type == RowType::kFloat32 && f.record_floats() == dim;
  std::vector<float> record(f.record_floats());
  // Only the row itself is asked for: RowStorage does not show where the
  // optimizer state lives.
  InRowBlocks(
      mine.size(), f.row_bytes, [&](size_t i) { return rows.Row(ids[mine[i]]); },
      [&](size_t i) {
        const size_t u = mine[i];
        if (in_place) {
          StepRecord(f, kind, k, sums.data() + u * dim,
                     reinterpret_cast<float*>(rows.MutableRow(ids[u])));
          return;
        }
        rows.ReadRecord(ids[u], record.data());
        StepRecord(f, kind, k, sums.data() + u * dim, record.data());
        rows.WriteRecord(ids[u], record.data());
      });
}

ParallelReplay::ParallelReplay(int workers, int64_t max_queued_bytes)
    : max_queued_bytes_(max_queued_bytes) {
  workers = std::max(1, workers);
  {
    absl::MutexLock lock(&mu_);
    next_.assign(workers, 0);
  }
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w, workers] { Work(w, workers); });
}

ParallelReplay::~ParallelReplay() {
  Drain();
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void ParallelReplay::Push(RowStorage& rows, OptimizerKind kind, const StepScalars& k,
                          absl::Span<const int64_t> ids, absl::Span<const float> sums,
                          std::shared_ptr<const void> pin) {
  if (ids.empty()) return;
  std::unique_ptr<Task> task;
  {
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      task = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (task == nullptr) task = std::make_unique<Task>();
  task->rows = &rows;
  task->kind = kind;
  task->k = k;
  if (pin != nullptr) {
    // In place: a copy cost the reading thread ~0.15 s of CPU per GiB of
    // log, beside the workers on the same cores.
    task->ids = ids;
    task->sums = sums;
    task->pin = std::move(pin);
  } else {
    task->ids_copy.assign(ids.begin(), ids.end());
    task->sums_copy.assign(sums.begin(), sums.end());
    task->ids = task->ids_copy;
    task->sums = task->sums_copy;
  }
  task->bytes = static_cast<int64_t>(ids.size() * sizeof(int64_t) + sums.size() * sizeof(float));
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() || queued_bytes_ < max_queued_bytes_;
  };
  mu_.Await(absl::Condition(&room));
  queued_bytes_ += task->bytes;
  queue_.push_back(std::move(task));
}

void ParallelReplay::Drain() {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_.empty(); };
  mu_.Await(absl::Condition(&empty));
}

void ParallelReplay::Retire() {
  const int64_t done = *std::min_element(next_.begin(), next_.end());
  while (first_ < done) {
    queued_bytes_ -= queue_.front()->bytes;
    queue_.front()->pin.reset();
    if (free_.size() < 8) free_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    ++first_;
  }
}

void ParallelReplay::Work(int part, int parts) {
  for (;;) {
    const Task* task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, part]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || next_[part] < first_ + static_cast<int64_t>(queue_.size());
      };
      mu_.Await(absl::Condition(&ready));
      if (next_[part] == first_ + static_cast<int64_t>(queue_.size())) return;  // stop_
      task = queue_[next_[part] - first_].get();
    }
    StepRows(*task->rows, task->kind, task->k, task->ids, task->sums, part, parts);
    absl::MutexLock lock(&mu_);
    ++next_[part];
    Retire();
  }
}

}  // namespace embedserve::internal
