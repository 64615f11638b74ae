// EmbeddingClient's answer decoding, and its file and checkpoint calls
// through a real server on 127.0.0.1:0 with a store and a load directory.
#include "client/embedding_client.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"
#include "server/startup.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

std::string Bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

v1::LookupResult Result(v1::ValueType dtype, std::vector<int64_t> shape, std::string values) {
  v1::LookupResult r;
  r.set_dtype(dtype);
  for (int64_t d : shape) r.add_shape(d);
  r.set_values(std::move(values));
  return r;
}

TEST(TensorFromResultTest, DecodesFloat32) {
  auto t = TensorFromResult(Result(v1::FLOAT32, {2, 2}, Bytes({0.1f, -2, 3.5f, 1e30f})));
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->shape, ElementsAre(2, 2));
  EXPECT_THAT(t->values, ElementsAre(0.1f, -2, 3.5f, 1e30f));
}

TEST(TensorFromResultTest, DecodesFloat16) {
  // IEEE half bits: 0.1 rounds to 0x2e66 = 0.0999755859375; -2; 65504, the
  // largest half; +inf; -0; 0x0001, the smallest subnormal (2^-24).
  const uint16_t halves[] = {0x2e66, 0xc000, 0x7bff, 0x7c00, 0x8000, 0x0001};
  auto t = TensorFromResult(
      Result(v1::FLOAT16, {3, 2}, std::string(reinterpret_cast<const char*>(halves), 12)));
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->shape, ElementsAre(3, 2));
  EXPECT_EQ(t->values[0], 0.0999755859375f);
  EXPECT_EQ(t->values[1], -2.0f);
  EXPECT_EQ(t->values[2], 65504.0f);
  EXPECT_TRUE(std::isinf(t->values[3]) && t->values[3] > 0);
  EXPECT_TRUE(t->values[4] == 0 && std::signbit(t->values[4]));
  EXPECT_EQ(t->values[5], std::ldexp(1.0f, -24));
}

TEST(TensorFromResultTest, ByteCountMustMatchTheShape) {
  // 3 float16 values are 6 bytes; 12 bytes would be 3 float32 values.
  EXPECT_THAT(TensorFromResult(Result(v1::FLOAT16, {3}, std::string(12, '\0'))),
              StatusIs(Code::kDataLoss, HasSubstr("12 bytes for 3 values of 2 bytes")));
  EXPECT_THAT(TensorFromResult(Result(v1::FLOAT32, {3}, std::string(6, '\0'))),
              StatusIs(Code::kDataLoss, HasSubstr("6 bytes for 3 values of 4 bytes")));
}

TEST(TensorFromResultTest, OtherDtypesAreInvalidArgument) {
  EXPECT_THAT(TensorFromResult(Result(v1::BFLOAT16, {1}, std::string(2, '\0'))),
              StatusIs(Code::kInvalidArgument, HasSubstr("BFLOAT16")));
}

// Collects an export: the info, then the rows in order.
class RecordingSink : public ExportSink {
 public:
  absl::Status Begin(const v1::TableInfo& table) override {
    ++begins;
    info = table;
    return begin_status;
  }
  absl::Status Rows(int64_t first_row, int64_t num_rows, absl::string_view values) override {
    EXPECT_EQ(first_row, rows) << "rows arrive in order";
    rows += num_rows;
    const size_t at = floats.size();
    floats.resize(at + values.size() / sizeof(float));
    std::memcpy(floats.data() + at, values.data(), values.size());
    return rows_status;
  }
  int begins = 0;
  v1::TableInfo info;
  int64_t rows = 0;
  std::vector<float> floats;
  absl::Status begin_status, rows_status;
};

class FileCallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.Path("rows.f32"), std::ios::binary) << Bytes({1, 2, 3, 4, 5, 6, 7, 8});
    auto store = OpenDataDir(dir_.Path("data"), "async");
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.service.load_dir = dir_.path();
    options.service.upload_dir = dir_.path();
    auto server = EmbeddingServer::Start(
        options, std::make_shared<TableRegistry>(int64_t{1} << 26, store_.get()));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    client_ = EmbeddingClient::Connect(server_->address(), absl::Seconds(10));
    ASSERT_THAT(client_->WaitForReady(absl::Seconds(10)), IsOk());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
  }

  // A 4 x 2 raw_f32 load or import of table `name`.
  static v1::LoadTableRequest RawRequest(const std::string& name) {
    v1::LoadTableRequest req;
    req.set_name(name);
    req.set_path("rows.f32");
    req.set_format(v1::RAW_F32);
    req.set_raw_dim(2);
    return req;
  }

  ::embedserve::testing::TempDir dir_{"embedding_client_test"};
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<EmbeddingServer> server_;
  std::unique_ptr<EmbeddingClient> client_;
};

TEST_F(FileCallsTest, LoadTableReadsBeneathTheLoadDir) {
  auto info = client_->LoadTable(RawRequest("loaded"));
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->num_rows(), 4);
  EXPECT_EQ(info->spec().embedding_dim(), 2);
  EXPECT_THAT(client_->LoadTable(RawRequest("loaded")),
              StatusIs(Code::kAlreadyExists, HasSubstr("loaded")));
  v1::LoadTableRequest missing = RawRequest("missing");
  missing.set_path("nope.f32");
  EXPECT_THAT(client_->LoadTable(missing), StatusIs(Code::kNotFound, HasSubstr("nope.f32")));
}

TEST_F(FileCallsTest, LookupWordsOfALoadedWordVectorTable) {
  std::ofstream(dir_.Path("vectors.txt")) << "3 2\nking 0.5 1.5\nqueen 2 3\nman 4 5\n";
  v1::LoadTableRequest req;
  req.set_name("wv");
  req.set_path("vectors.txt");
  req.set_format(v1::WORD2VEC_TEXT);
  ASSERT_THAT(client_->LoadTable(req), IsOk());
  const std::vector<std::string> words = {"queen", "king"};
  auto t = client_->LookupWords("wv", words);
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->shape, ElementsAre(2, 2));
  EXPECT_THAT(t->values, ElementsAre(2, 3, 0.5, 1.5));
  auto half = client_->LookupWords("wv", words, v1::FLOAT16);
  ASSERT_THAT(half, IsOk());
  EXPECT_EQ(half->values, t->values);  // all exact in float16
  const std::vector<std::string> unknown = {"king", "prince"};
  EXPECT_THAT(client_->LookupWords("wv", unknown),
              StatusIs(Code::kNotFound, HasSubstr("'prince'")));
}

TEST_F(FileCallsTest, ImportTableUploadsAStreamAndReportsProgress) {
  // 3000 rows of 100 floats: 1.2 MB, two upload messages.
  std::vector<float> rows(3000 * 100);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 977);
  std::istringstream data(Bytes(rows));
  v1::LoadTableRequest req = RawRequest("imported");
  req.set_path("local.f32");
  req.set_raw_dim(100);
  std::vector<std::pair<int64_t, int64_t>> calls;
  auto info = client_->ImportTable(
      req, data, [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->num_rows(), 3000);
  const int64_t size = static_cast<int64_t>(rows.size() * sizeof(float));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], std::make_pair(int64_t{1} << 20, size));
  EXPECT_EQ(calls[1], std::make_pair(size, size));
  auto row = client_->Lookup("imported", {2999});
  ASSERT_THAT(row, IsOk());
  EXPECT_EQ(row->values[0], static_cast<float>(2999 * 100 % 977));
}

TEST_F(FileCallsTest, ImportTableErrorsAreTheServers) {
  std::istringstream ragged(std::string(29, 'x'));  // not a whole number of rows
  EXPECT_THAT(client_->ImportTable(RawRequest("ragged"), ragged),
              StatusIs(Code::kDataLoss, HasSubstr("rows.f32: 29 bytes is not a whole number")));
  std::istringstream empty("");
  EXPECT_THAT(client_->ImportTable(RawRequest("empty"), empty), ::testing::Not(IsOk()));
}

// A stream that fails after its first megabyte, as a disk error would.
class FailingBuf : public std::streambuf {
 protected:
  int_type underflow() override {
    if (served_ >= (1 << 20)) throw std::ios_base::failure("disk error");
    buffer_.assign(4096, '\0');
    served_ += 4096;
    setg(buffer_.data(), buffer_.data(), buffer_.data() + buffer_.size());
    return traits_type::to_int_type(buffer_[0]);
  }

 private:
  std::string buffer_;
  int64_t served_ = 0;
};

TEST_F(FileCallsTest, ImportTableCancelsWhenTheStreamFails) {
  FailingBuf buf;
  std::istream data(&buf);  // a throwing streambuf sets badbit
  EXPECT_THAT(client_->ImportTable(RawRequest("half"), data),
              StatusIs(Code::kDataLoss, HasSubstr("nothing stored")));
  EXPECT_THAT(client_->DescribeTable("half"), StatusIs(Code::kNotFound, HasSubstr("half")));
}

TEST_F(FileCallsTest, ExportTableDeliversInfoThenRowsInOrder) {
  v1::TableSpec spec;
  spec.set_name("e");
  spec.set_num_embeddings(10000);  // more than one 4096-row chunk
  spec.set_embedding_dim(3);
  std::vector<float> values(30000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  ASSERT_THAT(client_->CreateTable(spec, values), IsOk());
  RecordingSink sink;
  std::vector<int64_t> progress;
  ASSERT_THAT(client_->ExportTable("e", sink,
                                   [&](int64_t done, int64_t total) {
                                     EXPECT_EQ(total, 10000);
                                     progress.push_back(done);
                                   }),
              IsOk());
  EXPECT_EQ(sink.begins, 1);
  EXPECT_EQ(sink.info.num_rows(), 10000);
  EXPECT_EQ(sink.rows, 10000);
  EXPECT_EQ(sink.floats, values);
  ASSERT_GE(progress.size(), 3u);
  EXPECT_EQ(progress.back(), 10000);
  EXPECT_THAT(client_->ExportTable("nope", sink), StatusIs(Code::kNotFound, HasSubstr("nope")));
}

TEST_F(FileCallsTest, ExportTableStopsAtTheSinksError) {
  ASSERT_THAT(client_->LoadTable(RawRequest("t")), IsOk());
  RecordingSink refuses_begin;
  refuses_begin.begin_status = absl::UnavailableError("disk full");
  EXPECT_THAT(client_->ExportTable("t", refuses_begin), StatusIs(Code::kUnavailable, "disk full"));
  EXPECT_EQ(refuses_begin.rows, 0);
  RecordingSink refuses_rows;
  refuses_rows.rows_status = absl::UnavailableError("disk full");
  EXPECT_THAT(client_->ExportTable("t", refuses_rows), StatusIs(Code::kUnavailable, "disk full"));
}

TEST_F(FileCallsTest, CheckpointsCreateListRestore) {
  ASSERT_THAT(client_->LoadTable(RawRequest("t")), IsOk());
  auto created = client_->CreateCheckpoint("cp1");
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->name(), "cp1");
  EXPECT_THAT(created->tables(), ElementsAre("t"));
  EXPECT_GT(created->bytes(), 0);
  EXPECT_THAT(client_->CreateCheckpoint("cp1"), StatusIs(Code::kAlreadyExists, HasSubstr("cp1")));
  EXPECT_THAT(client_->CreateCheckpoint("../x"),
              StatusIs(Code::kInvalidArgument, HasSubstr("../x")));
  auto all = client_->ListCheckpoints();
  ASSERT_THAT(all, IsOk());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name(), "cp1");

  ASSERT_THAT(client_->AssignRows("t", {0}, {9, 9}), IsOk());
  const std::vector<std::string> tables = {"t"};
  auto restored = client_->RestoreCheckpoint("cp1", tables);
  ASSERT_THAT(restored, IsOk());
  ASSERT_EQ(restored->size(), 1u);
  EXPECT_EQ((*restored)[0].spec().name(), "t");
  EXPECT_EQ((*restored)[0].version(), 0);
  auto row = client_->Lookup("t", {0});
  ASSERT_THAT(row, IsOk());
  EXPECT_THAT(row->values, ElementsAre(1, 2));
  EXPECT_THAT(client_->RestoreCheckpoint("nope"), StatusIs(Code::kNotFound, HasSubstr("nope")));
  const std::vector<std::string> unknown = {"zz"};
  EXPECT_THAT(client_->RestoreCheckpoint("cp1", unknown),
              StatusIs(Code::kNotFound, HasSubstr("zz")));
}

TEST(FileCallsWithoutStoreTest, CheckpointsNeedADataDir) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(1 << 20));
  ASSERT_THAT(server, IsOk());
  auto client = EmbeddingClient::Connect((*server)->address(), absl::Seconds(10));
  EXPECT_THAT(client->CreateCheckpoint("cp"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("--data_dir")));
  auto none = client->ListCheckpoints();
  ASSERT_THAT(none, IsOk());
  EXPECT_TRUE(none->empty());
  EXPECT_THAT(client->RestoreCheckpoint("cp"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("--data_dir")));
  v1::LoadTableRequest req;
  req.set_name("x");
  req.set_path("x.npy");
  EXPECT_THAT(client->LoadTable(req), StatusIs(Code::kFailedPrecondition, HasSubstr("--load_dir")));
  (*server)->Shutdown();
}

}  // namespace
}  // namespace embedserve
