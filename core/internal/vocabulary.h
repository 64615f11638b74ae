#ifndef EMBEDSERVE_CORE_INTERNAL_VOCABULARY_H_
#define EMBEDSERVE_CORE_INTERNAL_VOCABULARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace embedserve::internal {

// The words of a table loaded from word vectors: word i names row i.
//
// Immutable once made; const methods are thread-safe.
class Vocabulary {
 public:
  Vocabulary() = default;  // no words

  // One word per row. InvalidArgument if words.size() != num_rows or a word
  // repeats (naming the word and both rows).
  static absl::StatusOr<Vocabulary> Create(std::vector<std::string> words, int64_t num_rows);

  bool empty() const { return words_.empty(); }
  const std::vector<std::string>& words() const { return words_; }

  // The ids of `words`, in order. FailedPrecondition if there are no words;
  // NotFound naming every unknown word (up to 10). `table` names the table
  // in the messages.
  absl::StatusOr<std::vector<int64_t>> Ids(absl::Span<const std::string> words,
                                           absl::string_view table) const;

 private:
  std::vector<std::string> words_;
  absl::flat_hash_map<std::string, int64_t> ids_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_VOCABULARY_H_
