// Admin calls get deadlines that fit their size (client/admin_deadline.h):
// the rule itself, and a real create through a real server on 127.0.0.1:0
// that the client's per-call timeout alone could never fit.
#include "client/admin_deadline.h"

#include <cstdint>
#include <limits>
#include <memory>

#include "client/embedding_client.h"
#include "core/table_registry.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;

v1::TableSpec Spec(int64_t rows, int64_t dim, v1::OptimizerSpec::Kind kind) {
  v1::TableSpec spec;
  spec.set_name("t");
  spec.set_num_embeddings(rows);
  spec.set_embedding_dim(dim);
  spec.mutable_optimizer()->set_kind(kind);
  return spec;
}

TEST(AdminDeadlineTest, TableBytesCountsRowsAndOptimizerState) {
  EXPECT_EQ(TableBytes(Spec(1000, 64, v1::OptimizerSpec::SGD)), 1000 * 64 * 4);
  EXPECT_EQ(TableBytes(Spec(1000, 64, v1::OptimizerSpec::ADAGRAD)), 1000 * 64 * 4 * 2);
  EXPECT_EQ(TableBytes(Spec(1000, 64, v1::OptimizerSpec::SPARSE_ADAM)), 1000 * 64 * 4 * 3);
  EXPECT_EQ(TableBytes(Spec(1000, 64, v1::OptimizerSpec::ROWWISE_ADAGRAD)), 1000 * (64 * 4 + 4));
  // The table: 20 M x 64 with Adagrad is 10.24 GB.
  EXPECT_EQ(TableBytes(Spec(20'000'000, 64, v1::OptimizerSpec::ADAGRAD)), int64_t{10'240'000'000});
  EXPECT_EQ(TableBytes(Spec(int64_t{1} << 62, 1 << 16, v1::OptimizerSpec::SPARSE_ADAM)),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(TableBytes(Spec(-5, 64, v1::OptimizerSpec::SGD)), 0);
}

TEST(AdminDeadlineTest, TimeoutGrowsWithBytesAt50MBPerSecond) {
  EXPECT_EQ(AdminTimeout(0, absl::Seconds(30)), absl::Seconds(30));
  EXPECT_EQ(AdminTimeout(-1, absl::Seconds(30)), absl::Seconds(30));
  EXPECT_EQ(AdminTimeout(50'000'000, absl::Seconds(30)), absl::Seconds(31));
  // 20 M x 64 Adagrad: 30 s + 204.8 s, past the durable create's 109 s.
  EXPECT_EQ(AdminTimeout(int64_t{10'240'000'000}, absl::Seconds(30)), absl::Seconds(234.8));
  EXPECT_EQ(AdminTimeout(1 << 30, absl::InfiniteDuration()), absl::InfiniteDuration());
}

// A 1 M x 64 create fills 256 MB: never within 1 ms, always within
// 1 ms + 256 MB at 50 MB/s (5 s).
TEST(AdminDeadlineTest, CreateTableGetsTheTablesDeadlineNotThePerCallOne) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(0, nullptr));
  ASSERT_THAT(server, IsOk());
  auto client = EmbeddingClient::Connect((*server)->address(), absl::Milliseconds(1));
  ASSERT_THAT(client->WaitForReady(absl::Seconds(10)), IsOk());
  const v1::TableSpec spec = Spec(1'000'000, 64, v1::OptimizerSpec::SGD);
  // The caller's own deadline wins: 1 ms is too short.
  v1::TableSpec other = spec;
  other.set_name("u");
  EXPECT_THAT(client->CreateTable(other, {}, absl::Milliseconds(1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  auto created = client->CreateTable(spec);
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->num_rows(), 1'000'000);
}

}  // namespace
}  // namespace embedserve
