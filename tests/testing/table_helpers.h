#ifndef EMBEDSERVE_TESTS_TESTING_TABLE_HELPERS_H_
#define EMBEDSERVE_TESTS_TESTING_TABLE_HELPERS_H_

// Small EmbeddingTable fixtures for tests/core/embedding_table_test.cc and
// embedding_table_training_test.cc: Spec(n, dim) names the table "t" with
// every other field at its default; Iota(n) counts up from 0.5; Rows(t, ids)
// looks rows up, expecting success.

#include <cstdint>
#include <numeric>
#include <vector>

#include "absl/types/span.h"
#include "core/embedding_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::testing {

inline TableSpec Spec(int64_t n, int64_t dim) {
  TableSpec s;
  s.name = "t";
  s.num_embeddings = n;
  s.embedding_dim = dim;
  return s;
}

inline std::vector<float> Iota(int64_t n, float start = 0.5f) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

inline std::vector<float> Rows(EmbeddingTable& t, std::vector<int64_t> ids) {
  std::vector<float> out(ids.size() * t.dim());
  EXPECT_THAT(t.Lookup(ids, absl::MakeSpan(out)), IsOk());
  return out;
}

}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_TABLE_HELPERS_H_
