#include "core/internal/vocabulary.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(VocabularyTest, WordINamesRowI) {
  auto v = Vocabulary::Create({"the", "cat", "sat"}, 3);
  ASSERT_THAT(v, IsOk());
  EXPECT_FALSE(v->empty());
  EXPECT_THAT(v->words(), ElementsAre("the", "cat", "sat"));
  EXPECT_THAT(*v->Ids({"sat", "the", "sat"}, "t"), ElementsAre(2, 0, 2));
}

TEST(VocabularyTest, CountMustMatchTheRows) {
  EXPECT_THAT(Vocabulary::Create({"a", "b"}, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 words for 3 rows")));
}

TEST(VocabularyTest, RepeatedWordNamesBothRows) {
  EXPECT_THAT(Vocabulary::Create({"a", "b", "a"}, 3),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("word 'a' appears twice (rows 0 and 2)")));
}

TEST(VocabularyTest, UnknownWordsAreNotFoundUpToTenNamed) {
  auto v = Vocabulary::Create({"a"}, 1);
  ASSERT_THAT(v, IsOk());
  EXPECT_THAT(
      v->Ids({"a", "x", "y"}, "words"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("table 'words' has no word 'x', 'y'")));
  std::vector<std::string> many;
  for (int i = 0; i < 12; ++i) many.push_back("w" + std::to_string(i));
  auto ids = v->Ids(many, "words");
  EXPECT_THAT(ids, StatusIs(absl::StatusCode::kNotFound, HasSubstr("'w9'")));
  EXPECT_THAT(ids.status().message(), ::testing::Not(HasSubstr("'w10'")));
}

TEST(VocabularyTest, NoWordsIsFailedPrecondition) {
  Vocabulary v;
  EXPECT_TRUE(v.empty());
  EXPECT_THAT(v.Ids({"a"}, "t"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("table 't' has no vocabulary")));
}

}  // namespace
}  // namespace embedserve::internal
