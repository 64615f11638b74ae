// The keys and family names of storage/FORMAT.md, byte for byte, and the
// order properties the store's scans rely on.
#include "storage/internal/key_layout.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "rocksdb/comparator.h"
#include "rocksdb/slice.h"

namespace embedserve::internal {
namespace {

using namespace std::string_literals;  // "\0..."s keeps embedded NULs

TEST(KeyLayoutTest, DefaultFamilyKeysAreAsFormatMdSays) {
  EXPECT_EQ(MetaKey("item"), "table/item");
  EXPECT_EQ(MetaKey("a.b-c_9"), "table/a.b-c_9");
  EXPECT_EQ(VocabKey("item"), "vocab/item");
  EXPECT_EQ(kMetaKeyPrefix, "table/");
}

TEST(KeyLayoutTest, RowsFamilyNamesAreAsFormatMdSays) {
  EXPECT_EQ(kRowsFamilyPrefix, "rows/");
  EXPECT_EQ(RowsFamily("item"), "rows/item");
  EXPECT_EQ(StagedRowsFamily("item", 1700000000123456), "rows/item#1700000000123456");
  EXPECT_EQ(StagedRowsFamily("a.b", 1), "rows/a.b#1");
}

TEST(KeyLayoutTest, TableOfRowsFamilyUndoesBothForms) {
  for (const std::string table : {"t", "item", "a.b-c_9", "rows", "."}) {
    EXPECT_EQ(TableOfRowsFamily(RowsFamily(table)), table);
    EXPECT_EQ(TableOfRowsFamily(StagedRowsFamily(table, 42)), table);
  }
}

TEST(KeyLayoutTest, IsRowsFamilyOnlyForTheRowsPrefix) {
  EXPECT_TRUE(IsRowsFamily("rows/t"));
  EXPECT_TRUE(IsRowsFamily(StagedRowsFamily("t", 3)));
  EXPECT_FALSE(IsRowsFamily("default"));
  EXPECT_FALSE(IsRowsFamily("rows"));
  EXPECT_FALSE(IsRowsFamily("rowsx/t"));
  EXPECT_FALSE(IsRowsFamily("table/t"));
}

// ListTables reads every key with the metadata prefix as a metadata record:
// no other record of the default family may carry it.
TEST(KeyLayoutTest, OnlyMetadataKeysHaveTheMetadataPrefix) {
  for (const std::string table : {"t", "table", "table.", "vocab", "a.b-c_9"}) {
    EXPECT_TRUE(absl::StartsWith(MetaKey(table), kMetaKeyPrefix)) << table;
    EXPECT_FALSE(absl::StartsWith(VocabKey(table), kMetaKeyPrefix)) << table;
  }
}

TEST(KeyLayoutTest, RowKeyIsEightBigEndianBytes) {
  EXPECT_EQ(RowKey(0), "\0\0\0\0\0\0\0\0"s);
  EXPECT_EQ(RowKey(1), "\0\0\0\0\0\0\0\x01"s);
  EXPECT_EQ(RowKey(256), "\0\0\0\0\0\0\x01\0"s);
  EXPECT_EQ(RowKey(0x0102030405060708), "\x01\x02\x03\x04\x05\x06\x07\x08"s);
  EXPECT_EQ(RowKey(std::numeric_limits<int64_t>::max()), "\x7f\xff\xff\xff\xff\xff\xff\xff"s);
  EXPECT_EQ(RowKey(12345).size(), kRowKeyBytes);
}

const std::vector<int64_t>& AscendingIds() {
  static const auto* ids = new std::vector<int64_t>{0,
                                                    1,
                                                    2,
                                                    127,
                                                    128,
                                                    255,
                                                    256,
                                                    257,
                                                    65535,
                                                    65536,
                                                    (1LL << 24) - 1,
                                                    1LL << 24,
                                                    1LL << 31,
                                                    (1LL << 32) - 1,
                                                    1LL << 32,
                                                    1LL << 40,
                                                    (1LL << 56) + 1,
                                                    std::numeric_limits<int64_t>::max()};
  return *ids;
}

TEST(KeyLayoutTest, DecodeRowKeyUndoesRowKey) {
  for (int64_t id : AscendingIds()) EXPECT_EQ(DecodeRowKey(RowKey(id)), id);
}

// Rows are written to SST files and scanned in RocksDB's (bytewise) key
// order, which must be id order.
TEST(KeyLayoutTest, RocksDbKeyOrderIsIdOrder) {
  const rocksdb::Comparator* bytewise = rocksdb::BytewiseComparator();
  const std::vector<int64_t>& ids = AscendingIds();
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const std::string a = RowKey(ids[i]), b = RowKey(ids[i + 1]);
    EXPECT_LT(bytewise->Compare(rocksdb::Slice(a), rocksdb::Slice(b)), 0)
        << ids[i] << " vs " << ids[i + 1];
  }
  for (int64_t id = 0; id < 1000; ++id) {
    const std::string a = RowKey(id), b = RowKey(id + 1);
    ASSERT_LT(bytewise->Compare(rocksdb::Slice(a), rocksdb::Slice(b)), 0) << id;
  }
}

}  // namespace
}  // namespace embedserve::internal
