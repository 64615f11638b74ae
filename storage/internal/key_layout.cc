#include "storage/internal/key_layout.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace embedserve::internal {

std::string MetaKey(absl::string_view table) { return absl::StrCat(kMetaKeyPrefix, table); }

std::string VocabKey(absl::string_view table) { return absl::StrCat("vocab/", table); }

std::string RowsFamily(absl::string_view table) { return absl::StrCat(kRowsFamilyPrefix, table); }

std::string StagedRowsFamily(absl::string_view table, int64_t generation) {
  return absl::StrCat(kRowsFamilyPrefix, table, "#", generation);
}

bool IsRowsFamily(absl::string_view family) { return absl::StartsWith(family, kRowsFamilyPrefix); }

std::string TableOfRowsFamily(absl::string_view family) {
  absl::string_view rest = family.substr(kRowsFamilyPrefix.size());
  return std::string(rest.substr(0, rest.find('#')));
}

std::string RowKey(int64_t id) {
  std::string key(kRowKeyBytes, '\0');
  const uint64_t v = static_cast<uint64_t>(id);
  for (size_t i = 0; i < kRowKeyBytes; ++i) key[i] = static_cast<char>(v >> (56 - 8 * i));
  return key;
}

int64_t DecodeRowKey(absl::string_view key) {
  uint64_t v = 0;
  for (size_t i = 0; i < kRowKeyBytes; ++i) v = (v << 8) | static_cast<uint8_t>(key[i]);
  return static_cast<int64_t>(v);
}

}  // namespace embedserve::internal
