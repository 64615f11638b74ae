// PushWindow (client/push_window.h) against a real server on 127.0.0.1:0:
// pushes apply in order like synchronous ones, at most `window` are
// unanswered, a lookup through the window sees the pushes before it
// (min_sequence, no flush), a failed push is returned once by the next call
// (naming table and sequence), Flush waits for every answer.
#include "client/push_window.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

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

constexpr int kRows = 40, kDim = 4;

class PushWindowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(64 << 20));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    client_ = EmbeddingClient::Connect(server_->address(), absl::Seconds(20));
  }
  void TearDown() override { server_->Shutdown(); }

  void MakeTable(const std::string& name) {
    v1::TableSpec spec;
    spec.set_name(name);
    spec.set_num_embeddings(kRows);
    spec.set_embedding_dim(kDim);
    spec.mutable_optimizer()->set_kind(v1::OptimizerSpec::SPARSE_ADAM);
    spec.mutable_optimizer()->set_lr(0.05);
    std::vector<float> w(kRows * kDim);
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 13) / 13;
    ASSERT_THAT(client_->CreateTable(spec, w), IsOk());
  }

  struct Push {
    std::vector<int64_t> ids;
    std::vector<float> grads;
  };
  static std::vector<Push> Pushes(int count, uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int64_t> id(0, kRows - 1);
    std::normal_distribution<float> g;
    std::vector<Push> out(count);
    for (Push& p : out) {
      for (int i = 0; i < 8; ++i) p.ids.push_back(id(gen));
      for (int i = 0; i < 8 * kDim; ++i) p.grads.push_back(g(gen));
    }
    return out;
  }

  std::vector<float> Rows(const std::string& table) {
    std::vector<int64_t> ids(kRows);
    for (int i = 0; i < kRows; ++i) ids[i] = i;
    auto t = client_->Lookup(table, ids);
    EXPECT_THAT(t, IsOk());
    return t.ok() ? t->values : std::vector<float>();
  }

  std::unique_ptr<EmbeddingServer> server_;
  std::unique_ptr<EmbeddingClient> client_;
};

TEST_F(PushWindowTest, PushesApplyInOrderLikeSynchronousOnesAndLookupsSeeThem) {
  MakeTable("windowed");
  MakeTable("synced");
  auto window = PushWindow::Create(client_.get(), {.window = 3, .trainer = "cc-trainer"});
  ASSERT_THAT(window, IsOk());
  uint64_t last = 0;
  for (const Push& p : Pushes(30, 1)) {
    auto seq = (*window)->Push("windowed", p.ids, p.grads);
    ASSERT_THAT(seq, IsOk());
    EXPECT_EQ(*seq, last + 1);
    last = *seq;
    EXPECT_LE((*window)->InFlight(), 3);
    ASSERT_THAT(client_->PushGradients("synced", p.ids, p.grads), IsOk());
    // No flush: the lookup names the push and the server waits for it.
    v1::LookupRequest req;
    v1::LookupQuery* q = req.add_queries();
    q->set_table("windowed");
    q->mutable_ids()->Add(p.ids.begin(), p.ids.end());
    auto got = (*window)->Lookup(req);
    ASSERT_THAT(got, IsOk());
    auto want = client_->Lookup("synced", p.ids);
    ASSERT_THAT(want, IsOk());
    auto got_rows = TensorFromResult(got->results(0));
    ASSERT_THAT(got_rows, IsOk());
    EXPECT_EQ(got_rows->values, want->values);
  }
  ASSERT_THAT((*window)->Flush(), IsOk());
  EXPECT_EQ((*window)->InFlight(), 0);
  EXPECT_EQ((*window)->PendingSequence("windowed"), 0u);
  EXPECT_EQ(Rows("windowed"), Rows("synced"));
  EXPECT_THAT((*window)->Close(), IsOk());
  EXPECT_THAT((*window)->Push("windowed", {1}, std::vector<float>(kDim)),
              StatusIs(Code::kFailedPrecondition, HasSubstr("closed")));
}

TEST_F(PushWindowTest, FailedPushIsReturnedOnceByTheNextCallNamingTableAndSequence) {
  MakeTable("t");
  auto window = PushWindow::Create(client_.get(), {.window = 2});
  ASSERT_THAT(window, IsOk());
  const std::vector<Push> pushes = Pushes(4, 2);
  ASSERT_THAT((*window)->Push("t", pushes[0].ids, pushes[0].grads), IsOk());
  auto bad = (*window)->Push("t", {1, 1000}, std::vector<float>(2 * kDim));
  ASSERT_THAT(bad, IsOk());
  EXPECT_EQ(*bad, 2u);
  absl::Status first_error;
  for (int i = 1; i < 4 && first_error.ok(); ++i) {
    first_error = (*window)->Push("t", pushes[i].ids, pushes[i].grads).status();
  }
  if (first_error.ok()) first_error = (*window)->Flush();
  EXPECT_THAT(first_error, StatusIs(Code::kInvalidArgument, HasSubstr("push 2 to table 't'")));
  EXPECT_THAT((*window)->Flush(), IsOk());  // returned once
}

TEST_F(PushWindowTest, FlushReturnsAFailedPushAndRefusesAZeroWindow) {
  MakeTable("f");
  EXPECT_THAT(PushWindow::Create(client_.get(), {.window = 0}),
              StatusIs(Code::kInvalidArgument, HasSubstr("at least one push")));
  auto window = PushWindow::Create(client_.get());
  ASSERT_THAT(window, IsOk());
  EXPECT_THAT((*window)->Push("nope", {1}, std::vector<float>(kDim)), IsOk());
  EXPECT_THAT((*window)->Flush(), StatusIs(Code::kNotFound, HasSubstr("table 'nope'")));
  EXPECT_FALSE((*window)->trainer().empty());
}

}  // namespace
}  // namespace embedserve
