// Random and extreme requests against a real server: every answer is OK or a
// clear client-error status, and the server keeps serving. Bounded: a fixed
// number of requests with a fixed seed.
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "client/embedding_client.h"
#include "core/table_registry.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"

namespace embedserve {
namespace {

int64_t WildId(std::mt19937_64& rng, int64_t n) {
  switch (rng() % 6) {
    case 0:
      return std::numeric_limits<int64_t>::min();
    case 1:
      return std::numeric_limits<int64_t>::max();
    case 2:
      return -static_cast<int64_t>(rng() % 3) - 1;
    case 3:
      return n + static_cast<int64_t>(rng() % 3);
    default:
      return static_cast<int64_t>(rng() % n);
  }
}

float WildFloat(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return std::numeric_limits<float>::quiet_NaN();
    case 1:
      return std::numeric_limits<float>::infinity();
    case 2:
      return std::numeric_limits<float>::max();
    default:
      return static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 100.0f;
  }
}

TEST(RobustnessTest, RandomRequestsGetCleanStatusesAndTheServerKeepsServing) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.service.limits.max_ids_per_request = 5000;
  options.service.limits.max_response_bytes = 1 << 20;
  auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(int64_t{1} << 28));
  ASSERT_TRUE(server.ok());
  auto client = EmbeddingClient::Connect((*server)->address(), absl::Seconds(20));
  const char* kinds[] = {"SGD", "ADAGRAD", "ROWWISE_ADAGRAD", "SPARSE_ADAM"};
  for (int k = 0; k < 4; ++k) {
    v1::TableSpec spec;
    spec.set_name(kinds[k]);
    spec.set_num_embeddings(100);
    spec.set_embedding_dim(7 + k);
    spec.set_padding_idx(3);
    if (k == 1) spec.set_max_norm(1.0);
    spec.set_scale_grad_by_freq(k % 2 == 0);
    v1::OptimizerSpec::Kind kind = v1::OptimizerSpec::SGD;
    ASSERT_TRUE(v1::OptimizerSpec::Kind_Parse(kinds[k], &kind));
    spec.mutable_optimizer()->set_kind(kind);
    ASSERT_TRUE(client->CreateTable(spec).ok());
  }
  const std::set<absl::StatusCode> allowed = {absl::StatusCode::kOk,
                                              absl::StatusCode::kInvalidArgument,
                                              absl::StatusCode::kNotFound,
                                              absl::StatusCode::kAlreadyExists,
                                              absl::StatusCode::kResourceExhausted,
                                              absl::StatusCode::kFailedPrecondition};
  std::mt19937_64 rng(42);
  int ok = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const int k = static_cast<int>(rng() % 5);  // 4 = a table that does not exist
    const std::string table = k == 4 ? "missing" : kinds[k];
    const int64_t dim = 7 + (k % 4);
    const int n = static_cast<int>(rng() % (rng() % 50 == 0 ? 6000 : 20));
    std::vector<int64_t> ids(n);
    for (auto& id : ids) id = WildId(rng, 100);
    absl::Status s;
    switch (rng() % 6) {
      case 0: {
        std::vector<int64_t> shape;
        for (int d = static_cast<int>(rng() % 4); d > 0; --d) shape.push_back(WildId(rng, 8));
        s = client->Lookup(table, ids, shape).status();
        break;
      }
      case 1: {
        BagQuery q;
        q.table = table;
        q.ids = ids;
        for (int b = static_cast<int>(rng() % 5); b > 0; --b)
          q.offsets.push_back(WildId(rng, n + 1));
        if (rng() % 4 == 0) q.shape = {WildId(rng, 5), WildId(rng, 5)};
        q.include_last_offset = rng() % 2;
        q.mode = static_cast<v1::PoolingMode>(rng() % 4);
        if (rng() % 3 == 0) {
          for (int i = 0; i < n + static_cast<int>(rng() % 2); ++i)
            q.per_sample_weights.push_back(WildFloat(rng));
        }
        s = client->LookupPooled(q).status();
        break;
      }
      case 2:
      case 3: {
        std::vector<float> grads(n * dim + (rng() % 5 == 0 ? 1 : 0));
        for (auto& g : grads) g = rng() % 50 == 0 ? WildFloat(rng) : 0.01f;
        s = client->PushGradients(table, ids, grads).status();
        break;
      }
      case 4: {
        std::vector<float> values(n * dim);
        for (auto& v : values) v = WildFloat(rng);
        s = client->AssignRows(table, ids, values).status();
        break;
      }
      case 5: {
        v1::UpdateTableRequest req;
        req.set_name(table);
        if (rng() % 2) req.set_frozen(rng() % 3 == 0);
        if (rng() % 2) req.mutable_optimizer()->set_lr(WildFloat(rng));
        if (rng() % 4 == 0) req.mutable_optimizer()->set_beta1(WildFloat(rng));
        s = client->UpdateTable(req).status();
        break;
      }
    }
    ASSERT_TRUE(allowed.count(s.code())) << "request " << iter << ": " << s;
    ok += s.ok();
  }
  EXPECT_GT(ok, 100);  // the generator also makes valid requests
  // Files and names that are not what they claim to be.
  const std::set<absl::StatusCode> file_errors = {
      absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound, absl::StatusCode::kDataLoss,
      absl::StatusCode::kUnavailable, absl::StatusCode::kFailedPrecondition};
  for (const char* path : {"/", "/dev/null", "/nonexistent", ""}) {
    for (v1::FileFormat format :
         {v1::NPY, v1::WORD2VEC_TEXT, v1::WORD2VEC_BINARY, v1::GLOVE_TEXT, v1::RAW_F32}) {
      v1::LoadTableRequest req;
      req.set_name("loaded");
      req.set_path(path);
      req.set_format(format);
      req.set_raw_dim(3);
      auto s = client->Unary(&v1::EmbeddingService::Stub::LoadTable, req).status();
      ASSERT_TRUE(file_errors.count(s.code())) << path << ": " << s;
    }
  }
  for (const char* name : {"", "../x", "a/b", "."}) {
    v1::CreateCheckpointRequest req;
    req.set_name(name);
    auto s = client->Unary(&v1::EmbeddingService::Stub::CreateCheckpoint, req).status();
    ASSERT_TRUE(file_errors.count(s.code())) << name << ": " << s;
  }
  auto health = client->CheckHealth();
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(*health, "SERVING");
  // Every table still reads back finite values of the right size.
  for (const char* name : kinds) {
    auto t = client->Lookup(name, {0, 99});
    ASSERT_TRUE(t.ok()) << t.status();
  }
}

}  // namespace
}  // namespace embedserve
