#include "server/table_config.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

std::string WriteTemp(const std::string& text) {
  std::string path = ::testing::TempDir() + "/config_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".txtpb";
  std::ofstream(path) << text;
  return path;
}

TEST(TableConfigTest, ShippedDemoConfigLoads) {
  auto specs = LoadTableConfig(std::string(EMBEDSERVE_SOURCE_DIR) + "/deploy/demo_tables.txtpb");
  ASSERT_THAT(specs, IsOk());
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].name, "user");
  EXPECT_EQ((*specs)[1].name, "item");
  EXPECT_TRUE((*specs)[1].max_norm.has_value());
}

TEST(TableConfigTest, ParsesEveryField) {
  auto specs = LoadTableConfig(WriteTemp(R"(
    tables { name: "a" num_embeddings: 10 embedding_dim: 4 padding_idx: -1 max_norm: 2
             norm_type: 1 frozen: true num_shards: 2
             initializer { kind: UNIFORM a: -1 b: 1 seed: 9 } })"));
  ASSERT_THAT(specs, IsOk());
  const TableSpec& s = (*specs)[0];
  EXPECT_EQ(s.padding_idx, 9);
  EXPECT_EQ(s.max_norm, 2.0);
  EXPECT_EQ(s.norm_type, 1.0);
  EXPECT_TRUE(s.frozen);
  EXPECT_EQ(s.num_shards, 2);
  EXPECT_EQ(s.initializer.kind, InitKind::kUniform);
  EXPECT_EQ(s.initializer.a, -1.0);
  EXPECT_EQ(s.initializer.seed, 9u);
}

TEST(TableConfigTest, ErrorsNameFileLineAndTable) {
  EXPECT_THAT(LoadTableConfig("/nonexistent/x.txtpb"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/x.txtpb")));
  EXPECT_THAT(LoadTableConfig(WriteTemp("tables { name: \"a\"\n  bogus: 1 }")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
  EXPECT_THAT(
      LoadTableConfig(WriteTemp("tables { name: \"a\" num_embeddings: 0 embedding_dim: 2 }")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("table 'a': num_embeddings")));
}

}  // namespace
}  // namespace embedserve
