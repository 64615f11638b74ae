// embedctl over dynamic tables (README, Dynamic tables), in-process
// (RunEmbedctl) against a real server on 127.0.0.1:0: create --dynamic and
// its flags, describe and list, lookup and push of any int64 id, export to
// FILE.npy plus FILE.ids.npy, import-rows of such an export back (and of a
// dense table's, over several calls), and bad specs and files.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/embedding_client.h"
#include "client/internal/embedctl.h"
#include "client/internal/npy.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"
#include "tests/testing/embedctl_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct Outcome {
  int status;
  std::string out, err;
};

Outcome Embedctl(const EmbedctlOptions& options, std::vector<std::string> words) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int status = RunEmbedctl(words, options);
  std::string out = ::testing::internal::GetCapturedStdout();
  return {status, out, ::testing::internal::GetCapturedStderr()};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(EmbedctlDynamicUsageTest, HelpNamesTheDynamicFlagsAndTheIdsFile) {
  const std::string usage = EmbedctlUsage();
  EXPECT_THAT(usage, HasSubstr("--dynamic --dim=D [--max_rows=R] [--ttl_steps=T] "
                               "[--admit_after=K]"));
  EXPECT_THAT(usage, HasSubstr("[--unseen_zeros]"));
  EXPECT_THAT(usage, HasSubstr("FILE.ids.npy"));
}

TEST(NpyInt64HeaderTest, MatchesNumpysBytes) {
  // np.save of np.array([1, 2, 3], dtype='<i8'), its first 128 bytes.
  const std::string numpy =
      std::string("\x93NUMPY\x01\x00v\x00", 10) +
      "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }" + std::string(60, ' ') + "\n";
  EXPECT_EQ(NpyInt64VectorHeader(3), numpy);
  EXPECT_EQ(NpyInt64VectorHeader(0).size() % 64, 0u);
}

class EmbedctlDynamicTest : public ::embedserve::testing::EmbedctlServerTest {
 protected:
  EmbedctlDynamicTest() : EmbedctlServerTest("embedctl_dynamic_test") {}
};

TEST_F(EmbedctlDynamicTest, CreateDescribeLookupPushExport) {
  EmbedctlOptions create = o_;
  create.dynamic = true;
  create.dim = 2;
  create.max_rows = 100;
  create.ttl_steps = 1000;
  create.seed = 4;
  const Outcome created = Embedctl(create, {"create", "d"});
  ASSERT_EQ(created.status, 0) << created.err;
  EXPECT_THAT(created.out,
              StartsWith("created table d\n"
                         "  dynamic         any int64 id; max_rows 100, ttl_steps 1000, "
                         "admit_after 1, unseen ids read their initial value\n"
                         "  rows_stored     0 (admitted 0, evicted 0, expired 0)\n"));
  EXPECT_THAT(created.out, Not(HasSubstr("num_embeddings")));
  EXPECT_THAT(created.out, Not(HasSubstr("shards")));

  // Any int64: a negative id and 2^53 + 1 (not a double).
  const std::vector<int64_t> ids = {-5, 9007199254740993};
  EmbedctlOptions lookup = o_;
  lookup.ids = "-5,9007199254740993";
  lookup.max_values = 0;
  const Outcome looked = Embedctl(lookup, {"lookup", "d"});
  ASSERT_EQ(looked.status, 0) << looked.err;
  EXPECT_THAT(looked.out, HasSubstr("row 0 (id -5): ["));
  EXPECT_THAT(looked.out, HasSubstr("row 1 (id 9007199254740993): ["));

  EmbedctlOptions push = o_;
  push.ids = lookup.ids;
  push.grads = "1,1,2,2";
  const Outcome pushed = Embedctl(push, {"push", "d"});
  ASSERT_EQ(pushed.status, 0) << pushed.err;
  EXPECT_THAT(pushed.out, StartsWith("applied 2 rows to d"));
  EXPECT_NE(Embedctl(lookup, {"lookup", "d"}).out, looked.out);

  const Outcome described = Embedctl(o_, {"describe", "d"});
  ASSERT_EQ(described.status, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("  rows_stored     2 (admitted 2, evicted 0, expired 0)\n"));
  EXPECT_THAT(described.out, HasSubstr("  pushes dropped  0 not admitted, 0 table full\n"));
  EXPECT_THAT(described.out, HasSubstr("  index_bytes     "));
  const Outcome listed = Embedctl(o_, {"list"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("  dynamic (max_rows 100)\n"));

  EmbedctlOptions e = o_;
  e.out = dir_.Path("d.npy");
  const Outcome exported = Embedctl(e, {"export", "d"});
  ASSERT_EQ(exported.status, 0) << exported.err;
  const std::string ids_path = dir_.Path("d.ids.npy");
  EXPECT_EQ(exported.out,
            absl::StrCat("exported 2 rows of d to ", e.out, " (their ids in ", ids_path, ")\n"));
  // The rows, in the order of the ids beside them (least recently updated
  // first: one push, so either order), each as a lookup gives it.
  const std::string ids_file = ReadFile(ids_path);
  const std::string header = NpyInt64VectorHeader(2);
  ASSERT_EQ(ids_file.size(), header.size() + 16);
  EXPECT_EQ(ids_file.substr(0, header.size()), header);
  std::vector<int64_t> got(2);
  std::memcpy(got.data(), ids_file.data() + header.size(), 16);
  EXPECT_THAT(got, ::testing::UnorderedElementsAreArray(ids));
  auto client = EmbeddingClient::Connect(o_.address, absl::Seconds(10));
  auto rows = client->Lookup("d", got);
  ASSERT_THAT(rows, IsOk());
  EXPECT_EQ(ReadFile(e.out), NpyFloat32Header(2, 2) + Bytes(rows->values));
}

TEST_F(EmbedctlDynamicTest, BadSpecsNameTheField) {
  EmbedctlOptions both = o_;
  both.dynamic = true;
  both.num = 10;
  both.dim = 2;
  const Outcome with_num = Embedctl(both, {"create", "x"});
  EXPECT_EQ(with_num.status, 1);
  EXPECT_THAT(with_num.err, StartsWith("embedctl: INVALID_ARGUMENT: "));
  EXPECT_THAT(with_num.err, HasSubstr("num_embeddings"));
  EmbedctlOptions dense = o_;
  dense.num = 10;
  dense.dim = 2;
  dense.ttl_steps = 3;
  const Outcome ttl = Embedctl(dense, {"create", "y"});
  EXPECT_EQ(ttl.status, 1);
  EXPECT_THAT(ttl.err, HasSubstr("INVALID_ARGUMENT: ttl_steps"));
}

TEST_F(EmbedctlDynamicTest, EmptyDynamicTableExportsEmptyFiles) {
  EmbedctlOptions create = o_;
  create.dynamic = true;
  create.dim = 3;
  create.max_rows = 10;  // the registry has a memory limit
  ASSERT_EQ(Embedctl(create, {"create", "e"}).status, 0);
  EmbedctlOptions e = o_;
  e.out = dir_.Path("e_rows");  // no .npy: the ids go to e_rows.ids.npy
  const Outcome exported = Embedctl(e, {"export", "e"});
  ASSERT_EQ(exported.status, 0) << exported.err;
  EXPECT_EQ(ReadFile(e.out), NpyFloat32Header(0, 3));
  EXPECT_EQ(ReadFile(dir_.Path("e_rows.ids.npy")), NpyInt64VectorHeader(0));
}

// import-rows puts an export back: a new dynamic table of the same spec
// exports the very same files (rows, ids, and so their order).
TEST_F(EmbedctlDynamicTest, ImportRowsRestoresAnExportIntoANewTable) {
  EmbedctlOptions create = o_;
  create.dynamic = true;
  create.dim = 3;
  create.max_rows = 1000;
  create.seed = 9;
  ASSERT_EQ(Embedctl(create, {"create", "src"}).status, 0);
  auto client = EmbeddingClient::Connect(o_.address, absl::Seconds(10));
  ASSERT_NE(client, nullptr);
  const std::vector<int64_t> ids = {7, -3, 9007199254740993, INT64_MIN, 42, 5};
  std::vector<float> grads(ids.size() * 3);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.25f * static_cast<float>(i) - 1;
  ASSERT_THAT(client->PushGradients("src", ids, grads), IsOk());
  ASSERT_THAT(client->PushGradients("src", {42, 7}, {1, 2, 3, 4, 5, 6}), IsOk());
  EmbedctlOptions e = o_;
  e.out = dir_.Path("src.npy");
  ASSERT_EQ(Embedctl(e, {"export", "src"}).status, 0);

  create.seed = 10;  // unseen ids differ: only imported rows can match
  ASSERT_EQ(Embedctl(create, {"create", "dst"}).status, 0);
  EmbedctlOptions im = o_;
  im.path = e.out;
  const Outcome imported = Embedctl(im, {"import-rows", "dst"});
  ASSERT_EQ(imported.status, 0) << imported.err;
  EXPECT_THAT(imported.out, StartsWith(absl::StrCat("assigned 6 rows of ", e.out, " to dst")));
  EmbedctlOptions e2 = o_;
  e2.out = dir_.Path("dst.npy");
  ASSERT_EQ(Embedctl(e2, {"export", "dst"}).status, 0);
  EXPECT_EQ(ReadFile(e2.out), ReadFile(e.out));
  EXPECT_EQ(ReadFile(dir_.Path("dst.ids.npy")), ReadFile(dir_.Path("src.ids.npy")));
  auto a = client->Lookup("src", ids);
  auto b = client->Lookup("dst", ids);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->values, b->values);
}

// A dense table's export has no ids file: rows go to ids 0..N-1, here over
// several AssignRows calls (~8 MiB each).
TEST_F(EmbedctlDynamicTest, ImportRowsOfADenseExportInSeveralCalls) {
  auto client = EmbeddingClient::Connect(o_.address, absl::Seconds(10));
  ASSERT_NE(client, nullptr);
  EmbedctlOptions create = o_;
  create.num = 2500;
  create.dim = 1024;  // 2048 rows a call: two calls
  ASSERT_EQ(Embedctl(create, {"create", "t"}).status, 0);
  EmbedctlOptions e = o_;
  e.out = dir_.Path("t.npy");
  ASSERT_EQ(Embedctl(e, {"export", "t"}).status, 0);
  const std::vector<int64_t> changed = {0, 2047, 2048, 2499};
  ASSERT_THAT(client->AssignRows("t", changed, std::vector<float>(4 * 1024, 0.5f)), IsOk());
  EmbedctlOptions im = o_;
  im.path = e.out;
  const Outcome imported = Embedctl(im, {"import-rows", "t"});
  ASSERT_EQ(imported.status, 0) << imported.err;
  EmbedctlOptions e2 = o_;
  e2.out = dir_.Path("t2.npy");
  ASSERT_EQ(Embedctl(e2, {"export", "t"}).status, 0);
  EXPECT_EQ(ReadFile(e2.out), ReadFile(e.out));
}

// Files that do not fit are usage errors naming the file and what is wrong,
// and the table is left as it was.
TEST_F(EmbedctlDynamicTest, ImportRowsRefusesFilesThatDoNotFit) {
  EmbedctlOptions create = o_;
  create.dynamic = true;
  create.dim = 2;
  create.max_rows = 100;
  ASSERT_EQ(Embedctl(create, {"create", "d"}).status, 0);
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir_.Path(name), std::ios::binary) << bytes;
    return dir_.Path(name);
  };
  const std::vector<float> rows = {1, 2, 3, 4, 5, 6};  // 3 rows of 2
  const std::string rows3 = write("r.npy", NpyFloat32Header(3, 2) + Bytes(rows));
  const std::vector<int64_t> two_ids = {1, 2};
  write("r.ids.npy", NpyInt64VectorHeader(2) + Bytes(two_ids));
  const std::string rows_dim3 = write("w.npy", NpyFloat32Header(2, 3) + Bytes(rows));
  const std::string float_ids =
      write("f.ids.npy", NpyFloat32Header(3, 1) + Bytes(std::vector<float>{1, 2, 3}));
  const std::string short_rows = write("s.npy", NpyFloat32Header(4, 2) + Bytes(rows));
  write("s.ids.npy", NpyInt64VectorHeader(4) + Bytes(std::vector<int64_t>{1, 2, 3, 4}));
  const std::string lone = write("lone.npy", NpyFloat32Header(3, 2) + Bytes(rows));

  struct Case {
    std::string path, ids_path, message;
  };
  const Case cases[] = {
      {rows3, "", "r.ids.npy holds 2 ids for the 3 rows of " + rows3},
      {rows_dim3, write("w.ids.npy", NpyInt64VectorHeader(2) + Bytes(two_ids)),
       rows_dim3 + " has rows of 3 values; table d has embedding_dim 2"},
      {rows3, float_ids, float_ids + ": dtype float32 (little-endian) is not int64"},
      {short_rows, "", short_rows + ": the shape says 32 bytes of values but the file holds 24"},
      {lone, "", "table d is dynamic: its rows need their ids"},
      {dir_.Path("none.npy"), "", dir_.Path("none.npy") + ": cannot open it"},
      {write("bad.npy", "not numpy at all"), "", "bad.npy: not a .npy file"},
  };
  for (const Case& c : cases) {
    EmbedctlOptions im = o_;
    im.path = c.path;
    im.ids_path = c.ids_path;
    const Outcome out = Embedctl(im, {"import-rows", "d"});
    EXPECT_EQ(out.status, 2) << c.message;
    EXPECT_THAT(out.err, HasSubstr(c.message));
  }
  const Outcome described = Embedctl(o_, {"describe", "d"});
  EXPECT_THAT(described.out, HasSubstr("  rows_stored     0 "));
}

}  // namespace
}  // namespace embedserve::internal
