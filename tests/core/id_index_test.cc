// The dynamic storage's id index (core/internal/id_index.h): against a map
// through inserts, erases and rebuilds; every int64 is a key.

#include "core/internal/id_index.h"

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(IdIndexTest, MatchesAMapThroughInsertsErasesAndRebuilds) {
  auto index = IdIndex::Create(7, 0);
  ASSERT_NE(index, nullptr);
  std::map<int64_t, int64_t> model;
  std::mt19937_64 rng(1);
  const int64_t initial_capacity = index->capacity();
  for (int op = 0; op < 200000; ++op) {
    // A small id space so that erases and re-inserts of one id happen.
    const int64_t id = static_cast<int64_t>(rng() % 5000) * 0x9E3779B97F4A7C15LL;
    auto it = model.find(id);
    if (it == model.end()) {
      ASSERT_EQ(index->WriterFind(id), IdIndex::kMissing);
      ASSERT_TRUE(index->Insert(id, op));
      model[id] = op;
    } else if (rng() % 2) {
      ASSERT_TRUE(index->Erase(id));
      model.erase(it);
    } else {
      ASSERT_EQ(index->Find(id), it->second);
    }
  }
  EXPECT_EQ(index->size(), static_cast<int64_t>(model.size()));
  EXPECT_GT(index->rebuilds(), 0);
  EXPECT_GT(index->capacity(), initial_capacity);
  std::vector<int64_t> ids, slots;
  for (const auto& [id, slot] : model) ids.push_back(id);
  ids.push_back(12345);  // never inserted (not a multiple of the stride's ids)
  slots.resize(ids.size());
  index->Find(ids, absl::MakeSpan(slots));
  for (size_t i = 0; i + 1 < ids.size(); ++i) ASSERT_EQ(slots[i], model[ids[i]]);
  EXPECT_EQ(slots.back(), IdIndex::kMissing);
}

TEST(IdIndexTest, ExtremeIdsAreKeys) {
  auto index = IdIndex::Create(0, 4);
  for (int64_t id : {kMin, kMax, int64_t{0}, int64_t{-1}, kMin + 1}) {
    EXPECT_EQ(index->Find(id), IdIndex::kMissing);
  }
  ASSERT_TRUE(index->Insert(kMin, 0));
  ASSERT_TRUE(index->Insert(kMax, 1));
  ASSERT_TRUE(index->Insert(0, 2));
  ASSERT_TRUE(index->Insert(-1, 3));
  EXPECT_EQ(index->Find(kMin), 0);
  EXPECT_EQ(index->Find(kMax), 1);
  EXPECT_EQ(index->Find(0), 2);
  EXPECT_EQ(index->Find(-1), 3);
  EXPECT_EQ(index->Find(kMin + 1), IdIndex::kMissing);
  EXPECT_EQ(index->Find(kMax - 1), IdIndex::kMissing);
  EXPECT_TRUE(index->Erase(kMin));
  EXPECT_FALSE(index->Erase(kMin));
  EXPECT_EQ(index->Find(kMin), IdIndex::kMissing);
  EXPECT_EQ(index->Find(kMax), 1);
}

TEST(IdIndexTest, ChurnAtAFixedSizeRebuildsWithoutGrowing) {
  // A steady insert-and-erase stream rebuilds the array at the same size,
  // and new ids take erased entries: 1000 ids in 2560 entries rebuilt ~108
  // times in 100 k inserts when every insert used up an empty entry (one
  // rebuild per 0.75 * 2560 - 1000 = 920), at most 64 with reuse (the
  // filter's bound: one per 2560 - 1000 = 1560).
  auto index = IdIndex::Create(3, 1000);
  const int64_t capacity = index->capacity();
  for (int64_t i = 0; i < 100000; ++i) {
    ASSERT_TRUE(index->Insert(i, i % 1000));
    if (i >= 1000) {
      ASSERT_TRUE(index->Erase(i - 1000));
    }
  }
  EXPECT_EQ(index->size(), 1000);
  EXPECT_EQ(index->capacity(), capacity);
  EXPECT_EQ(capacity, 2560);
  EXPECT_GT(index->rebuilds(), 10);
  EXPECT_LE(index->rebuilds(), 64);
  for (int64_t i = 99000; i < 100000; ++i) ASSERT_EQ(index->Find(i), i % 1000);
  EXPECT_EQ(index->Find(98999), IdIndex::kMissing);
}

TEST(IdIndexTest, FilterHoldsEveryStoredIdAndFewOthers) {
  // The reader's filter (MayHold) may only err towards "maybe": every
  // stored id passes, through erases, re-inserts and rebuilds; ids never
  // inserted mostly do not (the filter is what spares them a line).
  auto index = IdIndex::Create(9, 0);
  std::set<int64_t> stored;
  std::mt19937_64 rng(4);
  for (int op = 0; op < 300000; ++op) {
    const int64_t id = static_cast<int64_t>(rng() % 60000) * 7919 - 100000;
    if (stored.count(id)) {
      if (rng() % 3 == 0) {
        ASSERT_TRUE(index->Erase(id));
        stored.erase(id);
      }
    } else {
      ASSERT_TRUE(index->Insert(id, op));
      stored.insert(id);
    }
  }
  ASSERT_GT(index->rebuilds(), 0);
  const IdIndex::Reader reader(*index);
  int64_t position = 0;
  for (const int64_t id : stored) {
    const uint64_t h = reader.Hash(id);
    ASSERT_TRUE(reader.MayHold(h)) << id;
    ASSERT_GE(reader.Find(h, id, &position), 0) << id;
  }
  int64_t passed = 0;
  const int64_t absent = 100000;
  for (int64_t k = 0; k < absent; ++k) {
    const int64_t id = k * 7919 + 3;  // never a multiple of 7919 minus 100000
    const uint64_t h = reader.Hash(id);
    if (reader.MayHold(h)) {
      ++passed;
      ASSERT_EQ(reader.Find(h, id, &position), IdIndex::kMissing);
    }
  }
  EXPECT_LT(passed, absent / 10) << "false positives";
}

TEST(IdIndexTest, IdsOfOneHomeLineOverflowIntoTheNextLines) {
  // A line holds five entries: the 6th..20th id of one home line go to the
  // lines after it, and lookups of them, and of absent ids of that home
  // line, must follow the overflow flag (while absent ids of other lines
  // stop at their own line).
  auto index = IdIndex::Create(5, 1000);
  const uint64_t lines = static_cast<uint64_t>(index->capacity() / 5);
  ASSERT_EQ(lines & (lines - 1), 0u);
  std::vector<int64_t> same;  // ids whose home line is line 3
  for (int64_t id = 0; same.size() < 40; ++id) {
    if ((index->Hash(id) & (lines - 1)) == 3) same.push_back(id);
  }
  for (size_t i = 0; i < 20; ++i) ASSERT_TRUE(index->Insert(same[i], static_cast<int64_t>(i)));
  for (size_t i = 0; i < 20; ++i) ASSERT_EQ(index->Find(same[i]), static_cast<int64_t>(i));
  for (size_t i = 20; i < 40; ++i) ASSERT_EQ(index->Find(same[i]), IdIndex::kMissing);
  // Erased entries keep their line full: the ids past them are still found,
  // and an erased id comes back (into the first erased entry of its path).
  for (size_t i = 0; i < 20; i += 2) ASSERT_TRUE(index->Erase(same[i]));
  for (size_t i = 0; i < 20; ++i) {
    ASSERT_EQ(index->Find(same[i]), i % 2 ? static_cast<int64_t>(i) : IdIndex::kMissing);
  }
  ASSERT_TRUE(index->Insert(same[4], 104));
  ASSERT_TRUE(index->Insert(same[30], 130));
  EXPECT_EQ(index->Find(same[4]), 104);
  EXPECT_EQ(index->Find(same[30]), 130);
  EXPECT_EQ(index->Find(same[19]), 19);
  std::vector<int64_t> ids(same.begin(), same.end()), slots(ids.size());
  index->Find(ids, absl::MakeSpan(slots));
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t want = i == 4 ? 104 : i == 30 ? 130 : (i < 20 && i % 2) ? static_cast<int64_t>(i)
                                                                           : IdIndex::kMissing;
    EXPECT_EQ(slots[i], want) << i;
  }
}

TEST(IdIndexTest, RecheckSeesAnEntryTakenByAnotherIdForTheSameSlot) {
  // A table at max_rows evicts X and gives its slot to a new id Y, which
  // may take X's erased entry too: the entry's value is X's again, its id
  // is not. A reader that found X there must see the change (else it would
  // hand out Y's row as X's once its seqlock snapshot is past Y's write).
  auto index = IdIndex::Create(5, 1000);
  const uint64_t mask = static_cast<uint64_t>(index->capacity() / 5 - 1);
  const int64_t x = 42;
  int64_t y = x + 1;
  while ((index->Hash(y) & mask) != (index->Hash(x) & mask)) ++y;  // X's home line
  ASSERT_TRUE(index->Insert(x, 7));
  const IdIndex::Reader reader(*index);
  int64_t position = 0;
  ASSERT_EQ(reader.Find(x, &position), 7);
  const uint64_t generation = reader.generation();
  EXPECT_TRUE((reader.Current() && reader.StillHolds(position, x, 7)));
  ASSERT_TRUE(index->Erase(x));
  EXPECT_FALSE((reader.Current() && reader.StillHolds(position, x, 7)));
  ASSERT_TRUE(index->Insert(y, 7));
  int64_t y_position = 0;
  ASSERT_EQ(reader.Find(y, &y_position), 7);
  ASSERT_EQ(y_position, position);  // the very entry
  EXPECT_FALSE((reader.Current() && reader.StillHolds(position, x, 7)));
  EXPECT_TRUE((reader.Current() && reader.StillHolds(position, y, 7)));
  std::vector<int64_t> changed;
  const std::vector<int64_t> ids = {x, y}, slots = {7, 7}, positions = {position, position};
  index->Recheck(ids, slots, positions, generation, &changed);
  EXPECT_THAT(changed, testing::ElementsAre(0));
  EXPECT_EQ(index->Find(x), IdIndex::kMissing);
}

// ---- AdmissionSketch -------------------------------------------------------

// The exact counts the sketch over-approximates: +1 an Add, halved at each
// aging, capped at 255.

}  // namespace
}  // namespace embedserve::internal
