// The service through a real gRPC server on 127.0.0.1:0 and a real channel.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "client/embedding_client.h"
#include "core/row_codec.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

v1::TableSpec Spec(const std::string& name, int64_t n, int64_t dim) {
  v1::TableSpec s;
  s.set_name(name);
  s.set_num_embeddings(n);
  s.set_embedding_dim(dim);
  return s;
}

std::vector<float> Iota(int64_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 1.0f);
  return v;
}

class EmbeddingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.service.limits.max_ids_per_request = 1000;
    options.service.limits.max_response_bytes = 64 * 1024;
    auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(1 << 24));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    client_ = EmbeddingClient::Connect(server_->address(), absl::Seconds(10));
    ASSERT_THAT(client_->WaitForReady(absl::Seconds(10)), IsOk());
    // 6 x 3 table with rows [1,2,3], [4,5,6], ... (from_pretrained).
    ASSERT_THAT(client_->CreateTable(Spec("w", 6, 3), Iota(18)), IsOk());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<EmbeddingServer> server_;
  std::unique_ptr<EmbeddingClient> client_;
};

TEST_F(EmbeddingServiceTest, CreateDescribeListDrop) {
  v1::TableSpec spec = Spec("emb", 1000, 16);
  spec.set_padding_idx(-1);
  spec.set_max_norm(2.0);
  auto info = client_->CreateTable(spec);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->spec().padding_idx(), 999);
  EXPECT_EQ(info->num_rows(), 1000);
  EXPECT_EQ(info->bytes_used(), 1000 * 16 * 4);
  EXPECT_EQ(info->version(), 0);
  auto described = client_->DescribeTable("emb");
  ASSERT_THAT(described, IsOk());
  EXPECT_EQ(described->spec().max_norm(), 2.0);
  // Unset, the generator is the server's current one, and the spec says so.
  EXPECT_EQ(described->spec().initializer().generator(), 2u);
  auto tables = client_->ListTables();
  ASSERT_THAT(tables, IsOk());
  ASSERT_EQ(tables->size(), 2u);
  EXPECT_EQ((*tables)[0].spec().name(), "emb");
  ASSERT_THAT(client_->DropTable("emb"), IsOk());
  EXPECT_THAT(client_->DescribeTable("emb"), StatusIs(Code::kNotFound, HasSubstr("'emb'")));
  EXPECT_THAT(client_->DropTable("emb"), StatusIs(Code::kNotFound, HasSubstr("'emb'")));
}

// The initializer's generator on the wire: a table may ask for generator 1
// (a dense table's rows as servers before generator 2 made them) and
// Describe names it; an unknown one, or 1 for a dynamic table, is refused
// by name and makes no table.
TEST_F(EmbeddingServiceTest, InitializerGeneratorIsChosenAndReported) {
  v1::TableSpec one = Spec("g1", 8, 4);
  one.mutable_initializer()->set_seed(5);
  one.mutable_initializer()->set_generator(1);
  v1::TableSpec two = Spec("g2", 8, 4);
  two.mutable_initializer()->set_seed(5);
  ASSERT_THAT(client_->CreateTable(one), IsOk());
  ASSERT_THAT(client_->CreateTable(two), IsOk());
  EXPECT_EQ(client_->DescribeTable("g1")->spec().initializer().generator(), 1u);
  EXPECT_EQ(client_->DescribeTable("g2")->spec().initializer().generator(), 2u);
  const std::vector<int64_t> ids = {0, 1, 7};
  auto rows1 = client_->Lookup("g1", ids);
  auto rows2 = client_->Lookup("g2", ids);
  ASSERT_THAT(rows1, IsOk());
  ASSERT_THAT(rows2, IsOk());
  EXPECT_NE(rows1->values, rows2->values);  // same seed, another generator
  v1::TableSpec bad = Spec("g3", 8, 4);
  bad.mutable_initializer()->set_generator(3);
  EXPECT_THAT(client_->CreateTable(bad),
              StatusIs(Code::kInvalidArgument, HasSubstr("generator 3")));
  v1::TableSpec dyn = Spec("g4", 0, 4);
  dyn.set_dynamic(true);
  dyn.mutable_initializer()->set_generator(1);
  EXPECT_THAT(client_->CreateTable(dyn),
              StatusIs(Code::kInvalidArgument, HasSubstr("generator 2")));
  EXPECT_THAT(client_->DescribeTable("g3"), StatusIs(Code::kNotFound, HasSubstr("g3")));
  EXPECT_THAT(client_->DescribeTable("g4"), StatusIs(Code::kNotFound, HasSubstr("g4")));
}

TEST_F(EmbeddingServiceTest, LookupReturnsRowsInShape) {
  auto t = client_->Lookup("w", {5, 0, 2, 2}, {2, 2});
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->shape, ElementsAre(2, 2, 3));
  EXPECT_THAT(t->values, ElementsAre(16, 17, 18, 1, 2, 3, 7, 8, 9, 7, 8, 9));
  auto flat = client_->Lookup("w", {1});
  ASSERT_THAT(flat, IsOk());
  EXPECT_THAT(flat->shape, ElementsAre(1, 3));
  auto empty = client_->Lookup("w", {});
  ASSERT_THAT(empty, IsOk());
  EXPECT_THAT(empty->shape, ElementsAre(0, 3));
}

TEST_F(EmbeddingServiceTest, LookupFloat16OutputIsTheFloat32AnswerRounded) {
  std::vector<float> values(6 * 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 1.0f / (3.0f + i) - 0.1f * i;
  values[4] = 70000.0f;  // past float16's range: inf
  ASSERT_THAT(client_->CreateTable(Spec("h", 6, 3), values), IsOk());
  auto full = client_->Lookup("h", {1, 5, 0}, {}, v1::FLOAT32);
  auto half = client_->Lookup("h", {1, 5, 0}, {}, v1::FLOAT16);
  ASSERT_THAT(full, IsOk());
  ASSERT_THAT(half, IsOk());
  EXPECT_THAT(half->shape, ElementsAre(3, 3));
  ASSERT_EQ(half->values.size(), full->values.size());
  int inexact = 0;
  for (size_t i = 0; i < full->values.size(); ++i) {
    EXPECT_EQ(half->values[i], HalfToFloat(FloatToHalf(full->values[i]))) << i;
    inexact += half->values[i] != full->values[i];
  }
  EXPECT_GT(inexact, 0);  // really float16, not float32 relabelled
  EXPECT_EQ(half->values[1], INFINITY);
  // The bytes on the wire are half as many.
  v1::LookupRequest req;
  v1::LookupQuery* q = req.add_queries();
  q->set_table("h");
  q->add_ids(2);
  q->set_output(v1::FLOAT16);
  auto raw = client_->Lookup(req);
  ASSERT_THAT(raw, IsOk());
  EXPECT_EQ(raw->results(0).dtype(), v1::FLOAT16);
  EXPECT_EQ(raw->results(0).values().size(), 3u * 2);
}

TEST_F(EmbeddingServiceTest, LookupSeveralTablesInOneRequest) {
  ASSERT_THAT(client_->CreateTable(Spec("z", 4, 2), std::vector<float>(8, 0.5f)), IsOk());
  v1::LookupRequest req;
  auto* q = req.add_queries();
  q->set_table("w");
  q->add_ids(1);
  q = req.add_queries();
  q->set_table("z");
  q->add_ids(3);
  q->add_ids(0);
  auto resp = client_->Lookup(req);
  ASSERT_THAT(resp, IsOk());
  ASSERT_EQ(resp->results_size(), 2);
  auto a = TensorFromResult(resp->results(0));
  auto b = TensorFromResult(resp->results(1));
  EXPECT_THAT(a->values, ElementsAre(4, 5, 6));
  EXPECT_THAT(b->shape, ElementsAre(2, 2));
  EXPECT_THAT(b->values, ElementsAre(0.5, 0.5, 0.5, 0.5));
}

TEST_F(EmbeddingServiceTest, LookupPooledModes) {
  BagQuery q;
  q.table = "w";
  q.ids = {0, 1, 2, 5};
  q.offsets = {0, 1, 1};  // bags {0}, {}, {1, 2, 5}
  q.mode = v1::SUM;
  auto t = client_->LookupPooled(q);
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->shape, ElementsAre(3, 3));
  EXPECT_THAT(t->values, ElementsAre(1, 2, 3, 0, 0, 0, 27, 30, 33));
  q.mode = v1::MEAN;
  EXPECT_THAT(client_->LookupPooled(q)->values, ElementsAre(1, 2, 3, 0, 0, 0, 9, 10, 11));
  q.mode = v1::MAX;
  EXPECT_THAT(client_->LookupPooled(q)->values, ElementsAre(1, 2, 3, 0, 0, 0, 16, 17, 18));
  q.mode = v1::SUM;
  q.per_sample_weights = {2, 1, 0, -1};
  EXPECT_THAT(client_->LookupPooled(q)->values, ElementsAre(2, 4, 6, 0, 0, 0, -12, -12, -12));
  BagQuery fixed;
  fixed.table = "w";
  fixed.ids = {0, 1, 2, 3};
  fixed.shape = {2, 2};
  EXPECT_THAT(client_->LookupPooled(fixed)->values, ElementsAre(5, 7, 9, 17, 19, 21));
  fixed.shape.clear();
  fixed.offsets = {0, 1, 4};
  fixed.include_last_offset = true;
  EXPECT_THAT(client_->LookupPooled(fixed)->values, ElementsAre(1, 2, 3, 21, 24, 27));
}

TEST_F(EmbeddingServiceTest, PaddingIdxAndMaxNorm) {
  v1::TableSpec spec = Spec("p", 3, 2);
  spec.set_padding_idx(1);
  spec.set_max_norm(1.0);
  ASSERT_THAT(client_->CreateTable(spec, {3, 4, 0, 0, 0.3f, 0.4f}), IsOk());
  // weight[padding_idx] = custom vector, as in PyTorch.
  ASSERT_THAT(client_->AssignRows("p", {1}, {6, 8}), IsOk());
  BagQuery q;
  q.table = "p";
  q.ids = {0, 1, 2};
  q.offsets = {0};
  auto pooled = client_->LookupPooled(q);  // renorms 0 and 1, skips 1 in the sum
  ASSERT_THAT(pooled, IsOk());
  const float s0 = static_cast<float>(1.0 / (5 + 1e-7));
  EXPECT_FLOAT_EQ(pooled->values[0], 3 * s0 + 0.3f);
  EXPECT_FLOAT_EQ(pooled->values[1], 4 * s0 + 0.4f);
  auto rows = client_->Lookup("p", {1});
  EXPECT_FLOAT_EQ(rows->values[0], 6 * static_cast<float>(1.0 / (10 + 1e-7)));
  EXPECT_GT(client_->DescribeTable("p")->version(), 1);
}

TEST_F(EmbeddingServiceTest, AssignRowsAllowedOnFrozenTable) {
  v1::TableSpec spec = Spec("f", 4, 2);
  spec.set_frozen(true);
  ASSERT_THAT(client_->CreateTable(spec), IsOk());
  auto v = client_->AssignRows("f", {2}, {7, 8});
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, 1);
  EXPECT_THAT(client_->Lookup("f", {2})->values, ElementsAre(7, 8));
}

// Point 6 of the foundation issue: each bad input gets its code and a message
// naming what was wrong, and changes nothing.
TEST_F(EmbeddingServiceTest, BadInputsGetClearStatusesAndChangeNothing) {
  v1::TableSpec mn = Spec("mn", 3, 2);
  mn.set_max_norm(1.0);
  ASSERT_THAT(client_->CreateTable(mn, {3, 4, 6, 8, 0, 0}), IsOk());

  EXPECT_THAT(client_->Lookup("w", {1, 6}),
              StatusIs(Code::kInvalidArgument, HasSubstr("id 6 at position 1")));
  EXPECT_THAT(client_->Lookup("w", {-1}),
              StatusIs(Code::kInvalidArgument, HasSubstr("id -1 at position 0")));
  EXPECT_THAT(client_->Lookup("nope", {1}), StatusIs(Code::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(client_->CreateTable(Spec("w", 2, 2)),
              StatusIs(Code::kAlreadyExists, HasSubstr("'w' already exists")));
  EXPECT_THAT(client_->Lookup("w", {1, 2, 3}, {2, 2}),
              StatusIs(Code::kInvalidArgument, HasSubstr("shape [2, 2] does not match 3 ids")));
  EXPECT_THAT(client_->Lookup("w", {1, 2}, {-1, -2}),
              StatusIs(Code::kInvalidArgument, HasSubstr("does not match")));
  BagQuery q;
  q.table = "w";
  q.ids = {1, 2, 3};
  q.offsets = {0, 2, 1};
  EXPECT_THAT(client_->LookupPooled(q),
              StatusIs(Code::kInvalidArgument, HasSubstr("non-decreasing")));
  q.offsets = {1};
  EXPECT_THAT(client_->LookupPooled(q), StatusIs(Code::kInvalidArgument, HasSubstr("offsets[0]")));
  q.offsets = {0, 4};
  EXPECT_THAT(client_->LookupPooled(q),
              StatusIs(Code::kInvalidArgument, HasSubstr("past the end")));
  q.offsets = {0};
  q.per_sample_weights = {1, 2};
  EXPECT_THAT(client_->LookupPooled(q), StatusIs(Code::kInvalidArgument, HasSubstr("one per id")));
  q.per_sample_weights = {1, 2, NAN};
  EXPECT_THAT(client_->LookupPooled(q),
              StatusIs(Code::kInvalidArgument, HasSubstr("per_sample_weights[2]")));
  q.per_sample_weights = {1, 2, 3};
  q.mode = v1::MAX;
  EXPECT_THAT(client_->LookupPooled(q), StatusIs(Code::kInvalidArgument, HasSubstr("mode SUM")));
  EXPECT_THAT(client_->AssignRows("w", {1}, {1, 2}),
              StatusIs(Code::kInvalidArgument, HasSubstr("values has 2 floats, expected")));
  EXPECT_THAT(client_->AssignRows("w", {1}, {1, NAN, 2}),
              StatusIs(Code::kInvalidArgument, HasSubstr("values[1]")));
  EXPECT_THAT(client_->AssignRows("w", {9}, {1, 2, 3}),
              StatusIs(Code::kInvalidArgument, HasSubstr("id 9 at position 0")));
  EXPECT_THAT(client_->CreateTable(Spec("d0", 10, 0)),
              StatusIs(Code::kInvalidArgument, HasSubstr("embedding_dim")));
  EXPECT_THAT(client_->CreateTable(Spec("n0", 0, 4)),
              StatusIs(Code::kInvalidArgument, HasSubstr("num_embeddings")));
  EXPECT_THAT(client_->CreateTable(Spec("iv", 2, 2), {1, 2, 3}),
              StatusIs(Code::kInvalidArgument, HasSubstr("initial_values has 3 floats")));
  // Over the limits: ids per request, response bytes, table memory.
  std::vector<int64_t> many(1001, 0);
  EXPECT_THAT(client_->Lookup("w", many),
              StatusIs(Code::kResourceExhausted, HasSubstr("limit is 1000")));
  ASSERT_THAT(client_->CreateTable(Spec("wide", 2, 4096)), IsOk());
  EXPECT_THAT(client_->Lookup("wide", {0, 1, 0, 1, 0}),
              StatusIs(Code::kResourceExhausted, HasSubstr("response limit")));
  EXPECT_THAT(client_->CreateTable(Spec("huge", int64_t{1} << 40, 64)),
              StatusIs(Code::kResourceExhausted, HasSubstr("byte limit")));
  // Multi-query request whose second query is bad: the max_norm table in the
  // first query must not be renormalised.
  v1::LookupRequest req;
  auto* a = req.add_queries();
  a->set_table("mn");
  a->add_ids(0);
  auto* b = req.add_queries();
  b->set_table("w");
  b->add_ids(77);
  EXPECT_THAT(client_->Lookup(req),
              StatusIs(Code::kInvalidArgument, HasSubstr("queries[1] (table 'w'): id 77")));
  EXPECT_EQ(client_->DescribeTable("mn")->version(), 0);
  // Nothing above changed the table.
  EXPECT_EQ(client_->DescribeTable("w")->version(), 0);
  EXPECT_EQ(client_->Lookup("w", {0, 1, 2, 3, 4, 5})->values, Iota(18));
}

TEST_F(EmbeddingServiceTest, HealthServiceReportsServing) {
  auto whole = client_->CheckHealth();
  ASSERT_THAT(whole, IsOk());
  EXPECT_EQ(*whole, "SERVING");
  auto named = client_->CheckHealth("embedserve.v1.EmbeddingService");
  ASSERT_THAT(named, IsOk());
  EXPECT_EQ(*named, "SERVING");
  EXPECT_THAT(client_->CheckHealth("no.such.Service"),
              StatusIs(Code::kNotFound, HasSubstr("unknown")));
  server_->Shutdown();
  server_->Wait();
  EXPECT_THAT(client_->CheckHealth(), ::testing::Not(IsOk()));
}

TEST(EmbeddingServerTest, BusyPortIsUnavailable) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  auto first = EmbeddingServer::Start(options, std::make_shared<TableRegistry>());
  ASSERT_THAT(first, IsOk());
  options.address = (*first)->address();
  EXPECT_THAT(EmbeddingServer::Start(options, std::make_shared<TableRegistry>()),
              StatusIs(Code::kUnavailable, HasSubstr("cannot listen")));
  options.address = "no-port";
  EXPECT_THAT(EmbeddingServer::Start(options, std::make_shared<TableRegistry>()),
              StatusIs(Code::kInvalidArgument, HasSubstr("host:port")));
}

}  // namespace
}  // namespace embedserve
