#include "client/internal/text_output.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

using ::testing::MatchesRegex;

TEST(FormatRowTest, ShortensPastMaxValues) {
  const float row[] = {0.5f, -1.19742f, 1e-7f, 100000000.0f};
  EXPECT_EQ(FormatRow(row, 4, 8), "[0.5, -1.19742, 1e-07, 1e+08]");
  EXPECT_EQ(FormatRow(row, 4, 0), "[0.5, -1.19742, 1e-07, 1e+08]");  // 0 = all
  EXPECT_EQ(FormatRow(row, 4, 2), "[0.5, -1.19742, ... (2 more)]");
  EXPECT_EQ(FormatRow(row, 0, 8), "[]");
}

TEST(PrintRowsTest, ShapeThenOneLabelledLinePerRow) {
  Tensor t{{2, 1, 2}, {0, 0, 0.1f, 2.5f}};
  std::ostringstream out;
  PrintRows(
      out, t, [](int64_t r) { return absl::StrCat("row ", r, " (id ", 7 + r, ")"); }, 8);
  EXPECT_EQ(out.str(), "shape [2, 1, 2]\nrow 0 (id 7): [0, 0]\nrow 1 (id 8): [0.1, 2.5]\n");
  std::ostringstream empty;
  PrintRows(
      empty, Tensor{{0, 3}, {}}, [](int64_t) { return "x"; }, 8);
  EXPECT_EQ(empty.str(), "shape [0, 3]\n");
}

TEST(PrintTableInfoTest, EveryFieldOnItsLine) {
  v1::TableInfo info;
  v1::TableSpec* s = info.mutable_spec();
  s->set_name("user");
  s->set_num_embeddings(100000);
  s->set_embedding_dim(64);
  s->set_padding_idx(0);
  s->set_max_norm(1);
  s->set_norm_type(2);
  s->mutable_initializer()->set_kind(v1::Initializer::NORMAL);
  s->mutable_initializer()->set_seed(7);
  s->mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAGRAD);
  s->mutable_optimizer()->set_lr(0.5);
  info.set_optimizer_step(3);
  info.set_optimizer_state_bytes(400000);
  info.set_num_shards(2);
  info.set_rows_per_shard(50000);
  info.set_bytes_used(27262976);
  info.set_version(9);
  std::ostringstream out;
  PrintTableInfo(out, info);
  EXPECT_EQ(out.str(),
            "table user\n"
            "  num_embeddings  100000\n"
            "  embedding_dim   64\n"
            "  padding_idx     0\n"
            "  max_norm        1 (norm_type 2)\n"
            "  frozen          no\n"
            "  initializer     NORMAL (seed 7)\n"
            "  optimizer       ADAGRAD (lr 0.5, step 3, 400000 state bytes)\n"
            "  scale_grad_by_freq no\n"
            "  shards          2 x 50000 rows\n"
            "  bytes_used      27262976\n"
            "  version         9\n");
}

TEST(PrintTableListTest, TheReadmesColumns) {
  std::vector<v1::TableInfo> tables(2);
  tables[0].mutable_spec()->set_name("item");
  tables[0].set_num_rows(50000);
  tables[0].mutable_spec()->set_embedding_dim(64);
  tables[0].set_num_shards(1);
  tables[0].set_bytes_used(14680064);
  tables[1].mutable_spec()->set_name("user");
  tables[1].set_num_rows(100000);
  tables[1].mutable_spec()->set_embedding_dim(64);
  tables[1].set_num_shards(1);
  tables[1].set_bytes_used(27262976);
  std::ostringstream out;
  PrintTableList(out, tables);
  // As README.md shows `embedctl list`.
  EXPECT_EQ(out.str(),
            "TABLE                              ROWS    DIM   SHARDS          BYTES  VERSION\n"
            "item                              50000     64        1       14680064        0\n"
            "user                             100000     64        1       27262976        0\n");
}

TEST(PrintCheckpointTest, NameTimeBytesTables) {
  v1::Checkpoint c;
  c.set_name("cp1");
  c.set_created_unix_ms(1700000000123);
  c.set_bytes(197493);
  // std::string: GCC 12 warns (-Wrestrict, a false positive) on add_tables(const char*).
  for (const std::string t : {"t", "u"}) c.add_tables(t);
  std::ostringstream out;
  PrintCheckpoint(out, c);
  EXPECT_THAT(out.str(), MatchesRegex("cp1  2023-11-1[45]T[0-9:]+\\.123[-+][0-9:]+  197493 bytes  "
                                      "tables: t,u\n"));
}

}  // namespace
}  // namespace embedserve::internal
