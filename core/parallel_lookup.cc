#include "core/parallel_lookup.h"

#include <atomic>

#include "core/gather.h"
#include "core/internal/worker_pool.h"

namespace embedserve {

LookupParallelism::LookupParallelism(int threads, int64_t min_ids)
    : pool_(std::make_unique<internal::WorkerPool>(threads)), min_ids_(min_ids) {}

LookupParallelism::~LookupParallelism() = default;

int LookupParallelism::threads() const { return pool_->threads(); }

int64_t LookupParallelism::Run(int64_t n, int64_t work,
                               absl::FunctionRef<int64_t(int64_t, int64_t)> piece) {
  if (work < min_ids_ || n < 2) return piece(0, n);
  std::atomic<int64_t> first_bad{INT64_MAX};
  pool_->ParallelFor(n, pool_->threads() + 1, [&](int64_t begin, int64_t end) {
    const int64_t bad = piece(begin, end);
    if (bad == kAllValid) return;
    int64_t seen = first_bad.load();
    while (bad < seen && !first_bad.compare_exchange_weak(seen, bad)) {
    }
  });
  return first_bad.load() == INT64_MAX ? kAllValid : first_bad.load();
}

}  // namespace embedserve
