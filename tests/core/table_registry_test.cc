#include "core/table_registry.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

TableSpec Spec(const char* name, int64_t n, int64_t dim) {
  TableSpec s;
  s.name = name;
  s.num_embeddings = n;
  s.embedding_dim = dim;
  return s;
}

TEST(TableRegistryTest, CreateGetListDrop) {
  TableRegistry r;
  ASSERT_THAT(r.Create(Spec("b", 10, 4)), IsOk());
  ASSERT_THAT(r.Create(Spec("a", 10, 4)), IsOk());
  EXPECT_THAT(r.Create(Spec("a", 3, 3)),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'a' already exists")));
  ASSERT_EQ(r.List().size(), 2u);
  EXPECT_EQ(r.List()[0]->name(), "a");
  auto b = r.Get("b");
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(r.Drop("b"), IsOk());
  EXPECT_THAT(r.Get("b"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'b'")));
  EXPECT_THAT(r.Drop("b"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'b'")));
  // A holder of a dropped table can still use it.
  std::vector<float> out(4);
  EXPECT_THAT((*b)->Lookup({3}, absl::MakeSpan(out)), IsOk());
}

TEST(TableRegistryTest, MemoryLimitIsResourceExhausted) {
  TableRegistry r(/*max_total_bytes=*/100 * 16 * 4);
  ASSERT_THAT(r.Create(Spec("a", 60, 16)), IsOk());
  EXPECT_THAT(r.Create(Spec("b", 41, 16)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("byte limit")));
  ASSERT_THAT(r.Create(Spec("b", 40, 16)), IsOk());
  ASSERT_THAT(r.Drop("a"), IsOk());
  EXPECT_THAT(r.Create(Spec("c", 60, 16)), IsOk());
}

TEST(TableRegistryTest, FailedCreateFreesTheName) {
  TableRegistry r;
  EXPECT_THAT(r.Create(Spec("a", 2, 2), {1, 2, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("initial_values")));
  EXPECT_THAT(r.Create(Spec("a", 2, 2), {1, 2, 3, 4}), IsOk());
}

}  // namespace
}  // namespace embedserve
