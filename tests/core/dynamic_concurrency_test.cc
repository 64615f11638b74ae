// Stress test of a dynamic table's lookup invariant (issue 15): a lookup
// never returns a torn row or another id's row while pushes and assigns
// insert, update, evict and expire rows. Every stored row is written whole
// with one value that encodes its id (code(id) + version / 16) by AssignRows,
// and pushes of zero gradients make rows of new ids (their initial value),
// move rows in the LRU order and advance the TTL clock; max_rows is a
// quarter of the ids, so slots are handed from id to id all the time.
// Readers check each row they get: the id's initial row, bit for bit, or a
// uniform row whose value has the id's code. Bounded by the writers' number
// of calls, not by time.
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/embedding_table.h"
#include "gtest/gtest.h"

namespace embedserve {
namespace {

constexpr int64_t kDim = 256;  // 1 KiB rows: wide write windows
constexpr int kIds = 64;
constexpr int kWrites = 6000;  // calls per writer thread

struct Case {
  RowType row_type;
  int64_t ttl_steps;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return absl::StrCat(info.param.row_type == RowType::kFloat32 ? "Float32" : "Float16", "Ttl",
                      info.param.ttl_steps);
}

class DynamicConcurrencyTest : public ::testing::TestWithParam<Case> {};

// The id's code: distinct for the ids of the test, < 100 so that
// code + k / 16 is exact in float16 too.
float Code(int64_t id) { return static_cast<float>(static_cast<uint64_t>(id) % 100); }

TEST_P(DynamicConcurrencyTest, LookupsNeverSeeATornRowOrAnotherIdsRow) {
  TableSpec spec;
  spec.name = "stress";
  spec.embedding_dim = kDim;
  spec.row_type = GetParam().row_type;
  spec.optimizer.kind = OptimizerKind::kSgd;
  spec.optimizer.lr = 1.0;
  spec.initializer.seed = 5;
  spec.dynamic = DynamicSpec{};
  spec.dynamic->max_rows = kIds / 4;
  spec.dynamic->ttl_steps = GetParam().ttl_steps;
  auto created = EmbeddingTable::Create(spec);
  ASSERT_TRUE(created.ok()) << created.status();
  EmbeddingTable& t = **created;

  // Random 64-bit ids (negative ones too) with distinct codes.
  std::mt19937_64 rng(7);
  std::vector<int64_t> ids;
  std::set<uint64_t> codes;
  while (static_cast<int>(ids.size()) < kIds) {
    const int64_t id = static_cast<int64_t>(rng());
    if (codes.insert(static_cast<uint64_t>(id) % 100).second) ids.push_back(id);
  }
  std::vector<float> initial(kIds * kDim);
  ASSERT_TRUE(t.Lookup(ids, absl::MakeSpan(initial)).ok());

  std::atomic<int> writers_left{2};
  std::atomic<int64_t> rows_read{0}, bad{0};
  std::vector<std::string> failures;  // the first few, written by readers
  std::atomic<int> failures_taken{0};
  failures.resize(8);

  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // whole rows of one value with the id's code
    std::mt19937_64 r(1);
    std::vector<int64_t> batch(4);
    std::vector<float> values(4 * kDim);
    for (int w = 0; w < kWrites; ++w) {
      for (int k = 0; k < 4; ++k) {
        batch[k] = ids[r() % kIds];
        const float v = Code(batch[k]) + static_cast<float>(r() % 16) / 16.0f;
        std::fill(values.begin() + k * kDim, values.begin() + (k + 1) * kDim, v);
      }
      EXPECT_TRUE(t.AssignRows(batch, values).ok());
    }
    --writers_left;
  });
  threads.emplace_back([&] {  // zero gradients: new rows, LRU moves, the TTL clock
    std::mt19937_64 r(2);
    std::vector<int64_t> batch(8);
    const std::vector<float> zeros(8 * kDim, 0.0f);
    for (int w = 0; w < kWrites; ++w) {
      for (int64_t& id : batch) id = ids[r() % kIds];
      EXPECT_TRUE(t.ApplyGradients(batch, zeros).ok());
    }
    --writers_left;
  });
  auto reader = [&](int seed, bool pooled) {
    std::mt19937_64 r(seed);
    constexpr int64_t kBatch = 32;
    std::vector<int64_t> positions(kBatch), batch(kBatch), bounds(kBatch + 1);
    for (int64_t b = 0; b <= kBatch; ++b) bounds[b] = b;  // one id per bag
    std::vector<float> out(kBatch * kDim);
    while (writers_left.load() > 0) {
      for (int64_t i = 0; i < kBatch; ++i) {
        positions[i] = static_cast<int64_t>(r() % kIds);
        batch[i] = ids[positions[i]];
      }
      const absl::Status s =
          pooled ? t.LookupPooled(batch, bounds, PoolingMode::kSum, {}, absl::MakeSpan(out))
                 : t.Lookup(batch, absl::MakeSpan(out));
      if (!s.ok()) {
        ++bad;
        continue;
      }
      for (int64_t i = 0; i < kBatch; ++i) {
        const float* row = out.data() + i * kDim;
        const float* init = initial.data() + positions[i] * kDim;
        if (std::memcmp(row, init, kDim * sizeof(float)) == 0) continue;
        bool uniform = true;
        for (int64_t j = 1; j < kDim && uniform; ++j) uniform = row[j] == row[0];
        if (uniform && std::floor(row[0]) == Code(batch[i])) continue;
        ++bad;
        const int slot = failures_taken++;
        if (slot < static_cast<int>(failures.size())) {
          int64_t first_odd = 0;
          while (first_odd < kDim && row[first_odd] == row[0]) ++first_odd;
          failures[slot] = absl::StrCat(pooled ? "pooled" : "lookup", ": id ", batch[i],
                                        " (code ", Code(batch[i]), ") read ", row[0],
                                        first_odd < kDim ? absl::StrCat(" and ", row[first_odd],
                                                                        " at ", first_odd)
                                                         : std::string(" uniformly"));
        }
      }
      rows_read += kBatch;
    }
  };
  threads.emplace_back(reader, 11, false);
  threads.emplace_back(reader, 12, true);
  for (std::thread& th : threads) th.join();

  for (const std::string& f : failures) {
    if (!f.empty()) ADD_FAILURE() << f;
  }
  EXPECT_EQ(bad.load(), 0) << "of " << rows_read.load() << " rows read";
  // The writers did make the table churn (not how fast anything ran).
  const DynamicTableStats stats = *t.dynamic_stats();
  EXPECT_GT(stats.rows_evicted, 1000);
  if (GetParam().ttl_steps > 0) {
    EXPECT_GT(stats.rows_expired, 0);
  }
  EXPECT_LE(stats.rows_stored, kIds / 4);
  std::printf("%lld rows read, %lld admitted, %lld evicted, %lld expired\n",
              static_cast<long long>(rows_read.load()),
              static_cast<long long>(stats.rows_admitted),
              static_cast<long long>(stats.rows_evicted),
              static_cast<long long>(stats.rows_expired));
}

INSTANTIATE_TEST_SUITE_P(Stress, DynamicConcurrencyTest,
                         ::testing::Values(Case{RowType::kFloat32, 0}, Case{RowType::kFloat32, 3},
                                           Case{RowType::kFloat16, 3}),
                         CaseName);

}  // namespace
}  // namespace embedserve
