// embedctl's commands in-process (RunEmbedctl) against a real server on
// 127.0.0.1:0. tests/deploy/deploy_test.sh runs the binary itself.
#include "client/internal/embedctl.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
using ::testing::StartsWith;

// What one run printed and returned.
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

TEST(EmbedctlUsageTest, ListsEveryCommandWithoutTheProgramName) {
  const std::string usage = EmbedctlUsage();
  // absl prints "embedctl: " before it; the text must not say it again.
  EXPECT_THAT(usage, StartsWith("talk to an embedserve server."));
  for (const char* line :
       {"  health [SERVICE] ", "  list ", "  describe TABLE ", "  create TABLE --num=N",
        "  drop TABLE\n", "  lookup TABLE --ids=", "[--output=float32|float16]",
        "  load TABLE --path=FILE", "  lookup-pooled TABLE", "  import TABLE --path=LOCAL_FILE",
        "  export TABLE --out=FILE.npy", "  checkpoint create NAME\n", "  checkpoint list\n",
        "  checkpoint restore NAME", "  assign TABLE", "  push TABLE", "  update TABLE",
        "  state TABLE"}) {
    EXPECT_THAT(usage, HasSubstr(line));
  }
}

TEST(EmbedctlUsageTest, UsageErrorsExitTwoBeforeConnecting) {
  EmbedctlOptions o;
  o.address = "127.0.0.1:1";  // nobody there: usage errors never get this far
  const Outcome missing = Embedctl(o, {"describe"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.err, "embedctl: describe needs a TABLE name\n(embedctl --help for usage)\n");
  EXPECT_EQ(Embedctl(o, {"frobnicate", "x"}).status, 2);
  EXPECT_EQ(Embedctl(o, {"checkpoint", "drop", "x"}).status, 2);
  o.ids = "1,x";
  const Outcome bad_ids = Embedctl(o, {"lookup", "t"});
  EXPECT_EQ(bad_ids.status, 2);
  EXPECT_EQ(bad_ids.err, "embedctl: --ids: 'x' is not a number\n");
}

class EmbedctlTest : public ::embedserve::testing::EmbedctlServerTest {
 protected:
  EmbedctlTest() : EmbedctlServerTest("embedctl_test") {}
};

TEST_F(EmbedctlTest, LookupOutputFloat16PrintsTheRoundedValues) {
  EmbedctlOptions create = o_;
  create.num = 2;
  create.dim = 3;
  create.init = "constant";
  create.value = 0.1;
  ASSERT_EQ(Embedctl(create, {"create", "half"}).status, 0);
  EmbedctlOptions lookup = o_;
  lookup.ids = "1";
  lookup.output = "float16";
  const Outcome half = Embedctl(lookup, {"lookup", "half"});
  EXPECT_EQ(half.status, 0) << half.err;
  EXPECT_EQ(half.out, "shape [1, 3]\nrow 0 (id 1): [0.0999756, 0.0999756, 0.0999756]\n");
  lookup.output = "float32";
  EXPECT_EQ(Embedctl(lookup, {"lookup", "half"}).out,
            "shape [1, 3]\nrow 0 (id 1): [0.1, 0.1, 0.1]\n");
  lookup.output = "bf16";
  const Outcome bad = Embedctl(lookup, {"lookup", "half"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_THAT(bad.err, HasSubstr("--output must be float32 or float16, got bf16"));
}

TEST_F(EmbedctlTest, ExportThenImportRoundTrips) {
  EmbedctlOptions create = o_;
  create.num = 5000;
  create.dim = 4;
  create.seed = 3;
  ASSERT_EQ(Embedctl(create, {"create", "src"}).status, 0);
  EmbedctlOptions e = o_;
  e.out = dir_.Path("src.npy");
  const Outcome exported = Embedctl(e, {"export", "src"});
  ASSERT_EQ(exported.status, 0) << exported.err;
  EXPECT_EQ(exported.out, absl::StrCat("exported 5000 rows of src to ", e.out, "\n"));
  EXPECT_THAT(exported.err, StartsWith("export src: 5000/5000 rows (100%), "));
  EXPECT_FALSE(std::filesystem::exists(e.out + ".part"));

  EmbedctlOptions i = o_;
  i.path = e.out;
  const Outcome imported = Embedctl(i, {"import", "copy"});
  ASSERT_EQ(imported.status, 0) << imported.err;
  EXPECT_THAT(imported.out, StartsWith("imported table copy\n  num_embeddings  5000\n"));
  EmbedctlOptions l = o_;
  l.ids = "0,4999";
  l.max_values = 0;
  const std::string src = Embedctl(l, {"lookup", "src"}).out;
  EXPECT_THAT(src, HasSubstr("row 1 (id 4999): ["));
  EXPECT_EQ(Embedctl(l, {"lookup", "copy"}).out, src);

  // A refused export leaves the file as it was, and no .part.
  const Outcome refused = Embedctl(e, {"export", "nope"});
  EXPECT_EQ(refused.status, 1);
  EXPECT_EQ(refused.err, "embedctl: NOT_FOUND: no table named 'nope'\n");
  EXPECT_EQ(Embedctl(i, {"import", "copy2"}).status, 0);
  EXPECT_FALSE(std::filesystem::exists(e.out + ".part"));
}

}  // namespace
}  // namespace embedserve::internal
