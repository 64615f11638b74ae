// EmbeddingClient over dynamic tables (README, Dynamic tables), through a
// real server on 127.0.0.1:0: create and describe, lookups and pushes of
// any int64 id, ExportTable's ids (in update order, across chunks), an
// import by AssignRows of the exported ids and rows, and the server's
// refusal of a bad spec naming the field.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "client/embedding_client.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

constexpr int kDim = 3;
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
// 2^53 + 1 is not a double: it must arrive as itself.
constexpr int64_t k53 = int64_t{1} << 53;

// Keeps an export: the info, then ids and rows in order.
class IdSink : public ExportSink {
 public:
  absl::Status Begin(const v1::TableInfo& table) override {
    ++begins;
    info = table;
    return absl::OkStatus();
  }
  absl::Status Ids(int64_t first_row, absl::Span<const int64_t> chunk) override {
    EXPECT_EQ(first_row, static_cast<int64_t>(ids.size())) << "ids arrive in order";
    ids.insert(ids.end(), chunk.begin(), chunk.end());
    return absl::OkStatus();
  }
  absl::Status Rows(int64_t first_row, int64_t num_rows, absl::string_view values) override {
    EXPECT_EQ(first_row, rows) << "rows arrive in order";
    EXPECT_EQ(static_cast<int64_t>(ids.size()), rows + num_rows) << "ids come before their rows";
    rows += num_rows;
    ++chunks;
    const size_t at = floats.size();
    floats.resize(at + values.size() / sizeof(float));
    std::memcpy(floats.data() + at, values.data(), values.size());
    return absl::OkStatus();
  }
  int begins = 0, chunks = 0;
  v1::TableInfo info;
  int64_t rows = 0;
  std::vector<int64_t> ids;
  std::vector<float> floats;
};

// A sink that keeps rows only (the default Ids).
class RowsOnlySink : public ExportSink {
 public:
  absl::Status Begin(const v1::TableInfo&) override { return absl::OkStatus(); }
  absl::Status Rows(int64_t, int64_t, absl::string_view) override { return absl::OkStatus(); }
};

class DynamicClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(1 << 26));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    client_ = EmbeddingClient::Connect(server_->address(), absl::Seconds(10));
    ASSERT_THAT(client_->WaitForReady(absl::Seconds(10)), IsOk());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  static v1::TableSpec Dynamic(const std::string& name) {
    v1::TableSpec spec;
    spec.set_name(name);
    spec.set_dynamic(true);
    spec.set_embedding_dim(kDim);
    // The registry has a memory limit, which a dynamic table's rows must fit.
    spec.set_max_rows(20000);
    spec.mutable_initializer()->set_seed(11);
    spec.mutable_optimizer()->set_lr(0.5);
    return spec;
  }

  std::vector<float> Rows(const std::string& table, const std::vector<int64_t>& ids) {
    absl::StatusOr<Tensor> t = client_->Lookup(table, ids);
    EXPECT_THAT(t, IsOk());
    return t.ok() ? t->values : std::vector<float>();
  }

  std::unique_ptr<EmbeddingServer> server_;
  std::unique_ptr<EmbeddingClient> client_;
};

TEST_F(DynamicClientTest, CreateDescribeLookupPushExportImport) {
  v1::TableSpec spec = Dynamic("d");
  spec.set_max_rows(1000);
  auto created = client_->CreateTable(spec);
  ASSERT_THAT(created, IsOk());
  EXPECT_TRUE(created->spec().dynamic());
  EXPECT_EQ(created->spec().max_rows(), 1000);
  EXPECT_EQ(created->num_rows(), 0);

  const std::vector<int64_t> ids = {k53 + 1, k53, -1, kMin, kMax, -k53 - 1};
  const std::vector<float> initial = Rows("d", ids);
  ASSERT_EQ(initial.size(), ids.size() * kDim);
  std::set<std::vector<float>> distinct;
  for (size_t i = 0; i < ids.size(); ++i) {
    distinct.emplace(initial.begin() + i * kDim, initial.begin() + (i + 1) * kDim);
  }
  EXPECT_EQ(distinct.size(), ids.size()) << "each id reads its own initial value";

  // One push per id, in order: that is the export's order (least recently
  // updated first).
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::vector<float> g(kDim, 1.0f + i);
    auto pushed = client_->PushGradients("d", {ids[i]}, g);
    ASSERT_THAT(pushed, IsOk());
    EXPECT_EQ(pushed->rows_applied(), 1);
  }
  const std::vector<float> after = Rows("d", ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int d = 0; d < kDim; ++d) {
      EXPECT_FLOAT_EQ(after[i * kDim + d], initial[i * kDim + d] - 0.5f * (1.0f + i));
    }
  }
  auto described = client_->DescribeTable("d");
  ASSERT_THAT(described, IsOk());
  ASSERT_TRUE(described->has_dynamic());
  EXPECT_EQ(described->num_rows(), 6);
  EXPECT_EQ(described->dynamic().rows_stored(), 6);
  EXPECT_EQ(described->dynamic().rows_admitted(), 6);
  EXPECT_GT(described->dynamic().index_bytes(), 0);

  IdSink sink;
  ASSERT_THAT(client_->ExportTable("d", sink), IsOk());
  EXPECT_EQ(sink.begins, 1);
  EXPECT_EQ(sink.info.num_rows(), 6);
  EXPECT_EQ(sink.ids, ids);
  EXPECT_EQ(sink.floats, after);

  // Imported: AssignRows of the ids and rows into a new dynamic table.
  ASSERT_THAT(client_->CreateTable(Dynamic("copy")), IsOk());
  ASSERT_THAT(client_->AssignRows("copy", sink.ids, sink.floats), IsOk());
  EXPECT_EQ(Rows("copy", ids), after);
  IdSink again;
  ASSERT_THAT(client_->ExportTable("copy", again), IsOk());
  EXPECT_EQ(again.ids, ids);
  EXPECT_EQ(again.floats, after);

  // A sink without ids cannot take a dynamic table.
  RowsOnlySink rows_only;
  EXPECT_THAT(client_->ExportTable("d", rows_only),
              StatusIs(Code::kUnimplemented, HasSubstr("ids")));
}

TEST_F(DynamicClientTest, ExportSpansChunksWithAnIdPerRow) {
  ASSERT_THAT(client_->CreateTable(Dynamic("big")), IsOk());
  std::mt19937_64 rng(5);
  std::vector<int64_t> ids(10000);
  for (int64_t& id : ids) id = static_cast<int64_t>(rng());
  ASSERT_THAT(client_->PushGradients("big", ids, std::vector<float>(ids.size() * kDim, 0.25f)),
              IsOk());
  IdSink sink;
  std::vector<int64_t> progress;
  ASSERT_THAT(client_->ExportTable("big", sink,
                                   [&](int64_t done, int64_t total) {
                                     EXPECT_EQ(total, 10000);
                                     progress.push_back(done);
                                   }),
              IsOk());
  EXPECT_GE(sink.chunks, 3);  // 4096 rows a chunk by default
  EXPECT_EQ(progress.back(), 10000);
  EXPECT_EQ(std::set<int64_t>(sink.ids.begin(), sink.ids.end()),
            std::set<int64_t>(ids.begin(), ids.end()));
  EXPECT_EQ(sink.floats, Rows("big", sink.ids));
}

// An export reads rows as they are stored, as a dense table's does (and as
// torch's weight would show them): a max_norm table's rows are not
// renormalised by it, and the table does not change. A lookup afterwards
// still renormalises.
TEST_F(DynamicClientTest, ExportOfAMaxNormTableGivesTheStoredRowsAndChangesNothing) {
  v1::TableSpec spec = Dynamic("norm");
  spec.set_max_norm(1.0);
  ASSERT_THAT(client_->CreateTable(spec), IsOk());
  const std::vector<int64_t> ids = {5, -6};
  // lr 0.5 x gradient -10: every element moves by +5, a norm far past 1.
  ASSERT_THAT(client_->PushGradients("norm", ids, std::vector<float>(ids.size() * kDim, -10.0f)),
              IsOk());
  auto norm = [](const float* row) {
    double sq = 0;
    for (int d = 0; d < kDim; ++d) sq += static_cast<double>(row[d]) * row[d];
    return std::sqrt(sq);
  };
  const auto before = client_->DescribeTable("norm");
  ASSERT_THAT(before, IsOk());
  IdSink sink;
  ASSERT_THAT(client_->ExportTable("norm", sink), IsOk());
  ASSERT_EQ(sink.ids.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_GT(norm(sink.floats.data() + i * kDim), 2.0) << "row " << sink.ids[i];
  }
  const auto after = client_->DescribeTable("norm");
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->version(), before->version()) << "an export changes no row";
  const std::vector<float> looked_up = Rows("norm", sink.ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_LE(norm(looked_up.data() + i * kDim), 1.0 + 1e-5);
    // The lookup renormalised the very rows the export gave.
    const double scale = norm(looked_up.data() + i * kDim) / norm(sink.floats.data() + i * kDim);
    for (int d = 0; d < kDim; ++d) {
      EXPECT_NEAR(looked_up[i * kDim + d], sink.floats[i * kDim + d] * scale, 1e-5);
    }
  }
}

TEST_F(DynamicClientTest, EmptyDynamicTableExportsItsInfo) {
  ASSERT_THAT(client_->CreateTable(Dynamic("empty")), IsOk());
  IdSink sink;
  ASSERT_THAT(client_->ExportTable("empty", sink), IsOk());
  EXPECT_EQ(sink.begins, 1);
  EXPECT_TRUE(sink.info.spec().dynamic());
  EXPECT_EQ(sink.rows, 0);
  EXPECT_TRUE(sink.ids.empty());
}

TEST_F(DynamicClientTest, BadSpecsAreInvalidArgumentNamingTheField) {
  v1::TableSpec with_num = Dynamic("bad1");
  with_num.set_num_embeddings(10);
  EXPECT_THAT(client_->CreateTable(with_num),
              StatusIs(Code::kInvalidArgument, HasSubstr("num_embeddings")));
  v1::TableSpec dense;
  dense.set_name("bad2");
  dense.set_num_embeddings(10);
  dense.set_embedding_dim(kDim);
  dense.set_max_rows(5);
  EXPECT_THAT(client_->CreateTable(dense),
              StatusIs(Code::kInvalidArgument, HasSubstr("max_rows")));
  dense.clear_max_rows();
  dense.set_admit_after(3);
  EXPECT_THAT(client_->CreateTable(dense),
              StatusIs(Code::kInvalidArgument, HasSubstr("admit_after")));
  EXPECT_THAT(client_->DescribeTable("bad2"), StatusIs(Code::kNotFound, HasSubstr("bad2")));
}

}  // namespace
}  // namespace embedserve
