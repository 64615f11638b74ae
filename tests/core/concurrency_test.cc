// Stress test of the table's concurrency invariant: a lookup never returns a
// half-written row. Writers assign or push rows whose every element is the
// same value (and uniform gradients keep them so); readers check that every
// row they get, and every pooled bag, is uniform. Bounded in time.
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "core/embedding_table.h"
#include "gtest/gtest.h"

namespace embedserve {
namespace {

constexpr int64_t kRows = 4096, kDim = 1024;  // 4 KiB rows: wide write windows
constexpr auto kDuration = std::chrono::milliseconds(1500);

bool Uniform(const float* row) {
  for (int64_t j = 1; j < kDim; ++j) {
    if (row[j] != row[0]) return false;
  }
  return true;
}

struct Counts {
  std::atomic<int64_t> rows_read{0}, torn{0}, writes{0};
};

void RunStress(EmbeddingTable& t, bool with_pushes, Counts& c) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // assigns whole uniform rows
    std::mt19937_64 rng(1);
    std::vector<float> values(8 * kDim);
    std::vector<int64_t> ids(8);
    while (!stop) {
      for (int r = 0; r < 8; ++r) {
        ids[r] = rng() % kRows;
        std::fill(values.begin() + r * kDim, values.begin() + (r + 1) * kDim,
                  static_cast<float>(rng() % 1000));
      }
      if (t.AssignRows(ids, values).ok()) ++c.writes;
    }
  });
  if (with_pushes) {
    threads.emplace_back([&] {  // pushes uniform gradients (with duplicates)
      std::mt19937_64 rng(2);
      std::vector<float> grads(16 * kDim);
      std::vector<int64_t> ids(16);
      while (!stop) {
        for (int r = 0; r < 16; ++r) {
          ids[r] = r % 4 == 3 ? ids[r - 1] : static_cast<int64_t>(rng() % kRows);
          std::fill(grads.begin() + r * kDim, grads.begin() + (r + 1) * kDim,
                    static_cast<float>(rng() % 7) - 3.0f);
        }
        if (t.ApplyGradients(ids, grads).ok()) ++c.writes;
      }
    });
  }
  auto reader = [&](int seed, bool pooled) {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> ids(32);
    std::vector<float> out(32 * kDim);
    std::vector<int64_t> bounds = {0, 1, 3, 6, 10, 15, 21, 28, 32};
    while (!stop) {
      for (auto& id : ids) id = rng() % kRows;
      const int64_t n = pooled ? static_cast<int64_t>(bounds.size()) - 1 : 32;
      absl::Status s = pooled ? t.LookupPooled(ids, bounds, PoolingMode::kSum, {},
                                               absl::MakeSpan(out.data(), n * kDim))
                              : t.Lookup(ids, absl::MakeSpan(out));
      if (!s.ok()) {
        ++c.torn;  // counted as a failure
        continue;
      }
      for (int64_t r = 0; r < n; ++r) {
        if (!Uniform(out.data() + r * kDim)) ++c.torn;
      }
      c.rows_read += n;
    }
  };
  threads.emplace_back(reader, 10, false);
  threads.emplace_back(reader, 11, true);
  std::this_thread::sleep_for(kDuration);
  stop = true;
  for (auto& th : threads) th.join();
}

TableSpec Spec() {
  TableSpec s;
  s.name = "stress";
  s.num_embeddings = kRows;
  s.embedding_dim = kDim;
  s.initializer.kind = InitKind::kZeros;
  s.optimizer.lr = 1.0;
  return s;
}

TEST(ConcurrencyTest, LookupsNeverSeeHalfWrittenRows) {
  auto t = EmbeddingTable::Create(Spec());
  ASSERT_TRUE(t.ok());
  Counts c;
  RunStress(**t, /*with_pushes=*/true, c);
  EXPECT_GT(c.rows_read.load(), 1000);
  EXPECT_GT(c.writes.load(), 100);
  EXPECT_EQ(c.torn.load(), 0) << "of " << c.rows_read.load() << " rows read";
}

TEST(ConcurrencyTest, MaxNormLookupsWriteSafely) {
  TableSpec s = Spec();
  s.max_norm = 100.0;  // renorm in place keeps a uniform row uniform
  auto t = EmbeddingTable::Create(s);
  ASSERT_TRUE(t.ok());
  Counts c;
  RunStress(**t, /*with_pushes=*/false, c);
  EXPECT_GT(c.rows_read.load(), 1000);
  EXPECT_EQ(c.torn.load(), 0) << "of " << c.rows_read.load() << " rows read";
}

}  // namespace
}  // namespace embedserve
