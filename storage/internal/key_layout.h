#ifndef EMBEDSERVE_STORAGE_INTERNAL_KEY_LAYOUT_H_
#define EMBEDSERVE_STORAGE_INTERNAL_KEY_LAYOUT_H_

// The names and keys of storage/FORMAT.md (format 1): which record of the
// `default` column family holds what, which column family holds a table's
// rows, and how a row id is a key. Changing any byte here changes the
// on-disk format: existing data directories would no longer open.
//
// Table names never hold '#' or '/' (TableSpec validation: [A-Za-z0-9_.-]),
// which is what makes the family names below unambiguous. Pure functions,
// thread-safe.

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace embedserve::internal {

// `default` family: every key that starts with kMetaKeyPrefix is a table's
// metadata record, and nothing else starts with it (ListTables scans the
// prefix).
inline constexpr absl::string_view kMetaKeyPrefix = "table/";
// Every rows family's name starts with this; other families are not ours.
inline constexpr absl::string_view kRowsFamilyPrefix = "rows/";

// `table/<table>`: the metadata record (storage/internal/meta_codec.h).
std::string MetaKey(absl::string_view table);
// `vocab/<table>`: the table's words, one per row in row order, joined by
// '\n' (only tables loaded from word vectors have one).
std::string VocabKey(absl::string_view table);

// `rows/<table>`: the rows family of a table whose metadata names none (as
// an offline job writes it).
std::string RowsFamily(absl::string_view table);
// `rows/<table>#<generation>`: the family a create or replace writes.
std::string StagedRowsFamily(absl::string_view table, int64_t generation);
// Whether `family` is a rows family (starts with kRowsFamilyPrefix).
bool IsRowsFamily(absl::string_view family);
// The table a rows family belongs to: `rows/<table>` or
// `rows/<table>#<generation>` -> `<table>`.
// REQUIRES: IsRowsFamily(family).
std::string TableOfRowsFamily(absl::string_view family);

// A row's key: the id as 8 bytes, big-endian, so that RocksDB's bytewise
// order is id order for ids >= 0 (rows are scanned and SST files written in
// id order).
inline constexpr size_t kRowKeyBytes = 8;
std::string RowKey(int64_t id);
// The id of a row key. REQUIRES: key.size() == kRowKeyBytes.
int64_t DecodeRowKey(absl::string_view key);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_KEY_LAYOUT_H_
