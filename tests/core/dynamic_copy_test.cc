// A dynamic storage's copy beside its writer and its restore (the pieces of
// a dynamic table's snapshot, issue 14's bounded pause): a copy begun at one
// moment gives exactly the rows of that moment, however the writer updates,
// evicts, expires, erases and reuses slots between its pieces; a restore of
// such a copy gives back the same rows, steps and update order, so that the
// same later updates evict and expire the same ids.

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "core/internal/dynamic_row_storage.h"
#include "core/row_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kDim = 4;

RowFormat Format() {
  RowFormat f;
  f.dim = kDim;
  f.type = RowType::kFloat32;
  f.row_bytes = CompactRowStride(RowType::kFloat32, kDim);
  f.element_slots = 1;  // optimizer state, kept with the row
  f.initial_state = 0.5f;
  return f;
}

std::unique_ptr<DynamicRowStorage> Make(const DynamicRowOptions& o) {
  auto s = DynamicRowStorage::Create(Format(), o);
  EXPECT_THAT(s, IsOk());
  return s.ok() ? *std::move(s) : nullptr;
}

// One row as a copy or ForEachRow shows it.
struct Row {
  int64_t id, last_step;
  std::vector<float> record;
  bool operator==(const Row&) const = default;
};

// Every row in update order, as of now.
std::vector<Row> Rows(const DynamicRowStorage& s) {
  std::vector<Row> rows;
  s.ForEachRow([&](int64_t id, int64_t slot, int64_t step) {
    Row r{id, step, std::vector<float>(s.format().record_floats())};
    s.ReadRecord(slot, r.record.data());
    rows.push_back(std::move(r));
  });
  return rows;
}

// A writer's step: a push of a few ids (some new: evictions when full),
// each stored row's record rewritten with values naming the step; at times
// an erase, or a write in place of a stored row.
void Step(DynamicRowStorage& s, std::mt19937_64& rng, int64_t step) {
  std::set<int64_t> distinct;
  while (distinct.size() < 5) distinct.insert(static_cast<int64_t>(rng() % 90) * 104729 - 999);
  const std::vector<int64_t> ids(distinct.begin(), distinct.end());
  std::vector<int64_t> slots(ids.size());
  std::vector<float> record(s.format().record_floats());
  auto write = [&](int64_t i, int64_t slot) {
    for (size_t j = 0; j < record.size(); ++j) record[j] = static_cast<float>(step * 100 + i * 10 + j);
    s.WriteRecord(slot, record.data());
  };
  ASSERT_THAT(s.Upsert(ids, step, UpsertMode::kPush, absl::MakeSpan(slots), write), IsOk());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (slots[i] >= 0) write(static_cast<int64_t>(i) + 50, slots[i]);
  }
  if (step % 7 == 0) s.Erase(ids[0]);
}

// The copy's rows, CopyRows(piece) at a time with `between` after each.
std::vector<DynamicRowStorage::CopiedRow> CopyAll(DynamicRowStorage& s, int64_t piece,
                                                  const std::function<void()>& between,
                                                  std::vector<std::vector<float>>* records) {
  std::vector<DynamicRowStorage::CopiedRow> rows;
  for (;;) {
    const int64_t n = s.CopyRows(piece, [&](const DynamicRowStorage::CopiedRow& r) {
      records->emplace_back(r.record, r.record + s.format().record_floats());
      rows.push_back(r);
      rows.back().record = nullptr;  // valid during the visit only
    });
    EXPECT_LE(n, piece);
    if (n == 0) break;
    between();
  }
  return rows;
}

// The copy's rows in update order.
std::vector<Row> InOrder(const std::vector<DynamicRowStorage::CopiedRow>& copied,
                         const std::vector<std::vector<float>>& records) {
  std::vector<size_t> by_order(copied.size());
  for (size_t i = 0; i < by_order.size(); ++i) by_order[i] = i;
  std::sort(by_order.begin(), by_order.end(),
            [&](size_t a, size_t b) { return copied[a].order < copied[b].order; });
  std::vector<Row> rows;
  for (size_t i : by_order) rows.push_back(Row{copied[i].id, copied[i].last_step, records[i]});
  return rows;
}

TEST(DynamicCopyTest, ACopyIsOfItsFirstMomentWhateverTheWriterDoesBetweenItsPieces) {
  for (const DynamicRowOptions& o : {DynamicRowOptions{.max_rows = 40},
                                     DynamicRowOptions{.max_rows = 60, .ttl_steps = 9},
                                     DynamicRowOptions{}}) {
    SCOPED_TRACE(::testing::Message() << "max_rows " << o.max_rows << " ttl " << o.ttl_steps);
    auto s = Make(o);
    std::mt19937_64 rng(11);
    int64_t step = 1;
    for (; step <= 40; ++step) Step(*s, rng, step);
    const std::vector<Row> at_begin = Rows(*s);
    ASSERT_GT(at_begin.size(), 20u);
    ASSERT_THAT(s->BeginCopy(), IsOk());
    std::vector<std::vector<float>> records;
    const auto copied = CopyAll(*s, 3, [&] {
      for (int k = 0; k < 3; ++k) Step(*s, rng, step++);
    }, &records);
    s->EndCopy();
    EXPECT_GT(s->stats().rows_evicted + s->stats().rows_expired + s->stats().rows_erased, 10);
    EXPECT_NE(Rows(*s), at_begin);  // the writer did change rows meanwhile
    EXPECT_EQ(InOrder(copied, records), at_begin);
    // Orders grow along the update order.
    std::vector<int64_t> orders;
    for (const auto& r : copied) orders.push_back(r.order);
    std::sort(orders.begin(), orders.end());
    EXPECT_EQ(std::adjacent_find(orders.begin(), orders.end()), orders.end());
  }
}

TEST(DynamicCopyTest, WithoutACopyOrAfterItsEndNothingIsVisited) {
  auto s = Make({});
  std::mt19937_64 rng(3);
  for (int64_t step = 1; step <= 5; ++step) Step(*s, rng, step);
  auto visit = [](const DynamicRowStorage::CopiedRow&) { ADD_FAILURE() << "visited"; };
  EXPECT_EQ(s->CopyRows(100, visit), 0);
  ASSERT_THAT(s->BeginCopy(), IsOk());
  s->EndCopy();
  EXPECT_EQ(s->CopyRows(100, visit), 0);
}

// A copy restored into a fresh storage, as a snapshot's restore does
// (records in slot order, each with its order).
std::unique_ptr<DynamicRowStorage> Restored(DynamicRowStorage& from, const DynamicRowOptions& o) {
  EXPECT_THAT(from.BeginCopy(), IsOk());
  std::vector<std::vector<float>> records;
  const auto copied = CopyAll(from, 1000, [] {}, &records);
  from.EndCopy();
  auto to = Make(o);
  for (size_t i = 0; i < copied.size(); ++i) {
    EXPECT_THAT(to->Restore(copied[i].id, copied[i].last_step, copied[i].order, records[i].data()),
                IsOk());
  }
  EXPECT_THAT(to->FinishRestore(), IsOk());
  return to;
}

TEST(DynamicCopyTest, ARestoredCopyEvictsAndExpiresAsTheOriginalWould) {
  const DynamicRowOptions o{.max_rows = 30, .ttl_steps = 12};
  auto live = Make(o);
  std::mt19937_64 rng(5);
  int64_t step = 1;
  for (; step <= 50; ++step) Step(*live, rng, step);
  auto restored = Restored(*live, o);
  EXPECT_EQ(Rows(*restored), Rows(*live));
  EXPECT_EQ(restored->stats().rows_stored, live->stats().rows_stored);
  std::mt19937_64 rng_live(6), rng_restored(6);
  for (int64_t k = 0; k < 30; ++k, ++step) {
    Step(*live, rng_live, step);
    Step(*restored, rng_restored, step);
    ASSERT_EQ(Rows(*restored), Rows(*live)) << "after step " << step;
  }
}

// Enough rows for the radix sort of a restore (FinishRestore), orders
// spread over more than 48 bits, given in a shuffled order.
TEST(DynamicCopyTest, ARestoreOfManyRowsLinksThemInOrder) {
  constexpr int64_t kRows = 20000;
  std::vector<int64_t> orders(kRows);
  for (int64_t i = 0; i < kRows; ++i) orders[i] = 1 + i * 0x10000000001 + (i % 7);
  std::vector<int64_t> given(kRows);
  for (int64_t i = 0; i < kRows; ++i) given[i] = i;
  std::mt19937_64 rng(9);
  for (int64_t i = kRows - 1; i > 0; --i) std::swap(given[i], given[rng() % (i + 1)]);
  const std::vector<float> record(Format().record_floats(), 1.0f);
  for (bool twice : {false, true}) {
    auto s = Make({});
    for (int64_t k : given) {
      // id k, updated at step k / 3 (steps grow along the order).
      ASSERT_THAT(s->Restore(1000 + k, k / 3, orders[k], record.data()), IsOk());
    }
    if (twice) {  // one more row with an order already taken
      ASSERT_THAT(s->Restore(5, kRows, orders[kRows / 2], record.data()), IsOk());
      EXPECT_THAT(s->FinishRestore(),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the same order")));
      continue;
    }
    ASSERT_THAT(s->FinishRestore(), IsOk());
    std::vector<int64_t> ids;
    s->ForEachRow([&](int64_t id, int64_t, int64_t) { ids.push_back(id); });
    ASSERT_EQ(static_cast<int64_t>(ids.size()), kRows);
    for (int64_t i = 0; i < kRows; ++i) ASSERT_EQ(ids[i], 1000 + i) << i;
  }
}

TEST(DynamicCopyTest, RestoreRefusesWhatNoCopyHolds) {
  const std::vector<float> record(Format().record_floats(), 1.0f);
  {
    auto s = Make({});
    ASSERT_THAT(s->Restore(7, 1, 1, record.data()), IsOk());
    EXPECT_THAT(s->Restore(7, 2, 2, record.data()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 7 is restored twice")));
    EXPECT_THAT(s->Restore(8, 2, 0, record.data()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("order 0")));
  }
  {
    auto s = Make({});
    ASSERT_THAT(s->Restore(7, 1, 4, record.data()), IsOk());
    ASSERT_THAT(s->Restore(8, 1, 4, record.data()), IsOk());
    EXPECT_THAT(s->FinishRestore(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the same order 4")));
  }
  {
    auto s = Make({});
    ASSERT_THAT(s->Restore(7, 5, 1, record.data()), IsOk());
    ASSERT_THAT(s->Restore(8, 4, 2, record.data()), IsOk());
    EXPECT_THAT(s->FinishRestore(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 8 comes after id 7 in the update order (order 2 > 1) but was updated at step 4 < 5")));
  }
  {
    auto s = Make({.max_rows = 1});
    ASSERT_THAT(s->Restore(7, 1, 1, record.data()), IsOk());
    EXPECT_THAT(s->Restore(8, 1, 2, record.data()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no room for id 8")));
  }
}

}  // namespace
}  // namespace embedserve::internal
