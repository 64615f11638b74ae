#include "core/internal/vocabulary.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace embedserve::internal {

absl::StatusOr<Vocabulary> Vocabulary::Create(std::vector<std::string> words, int64_t num_rows) {
  if (static_cast<int64_t>(words.size()) != num_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocabulary has ", words.size(), " words for ", num_rows, " rows"));
  }
  Vocabulary v;
  v.ids_.reserve(words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    if (!v.ids_.emplace(words[i], static_cast<int64_t>(i)).second) {
      return absl::InvalidArgumentError(absl::StrCat("word '", words[i], "' appears twice (rows ",
                                                     v.ids_[words[i]], " and ", i, ")"));
    }
  }
  v.words_ = std::move(words);
  return v;
}

absl::StatusOr<std::vector<int64_t>> Vocabulary::Ids(absl::Span<const std::string> words,
                                                     absl::string_view table) const {
  if (words_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "table '", table, "' has no vocabulary (it was not loaded from word vectors)"));
  }
  std::vector<int64_t> ids;
  ids.reserve(words.size());
  std::vector<std::string> unknown;
  for (const std::string& w : words) {
    auto it = ids_.find(w);
    if (it == ids_.end()) {
      if (unknown.size() < 10) unknown.push_back("'" + w + "'");
      continue;
    }
    ids.push_back(it->second);
  }
  if (!unknown.empty()) {
    return absl::NotFoundError(
        absl::StrCat("table '", table, "' has no word ", absl::StrJoin(unknown, ", ")));
  }
  return ids;
}

}  // namespace embedserve::internal
