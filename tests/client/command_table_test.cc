#include "client/internal/command_table.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using Code = absl::StatusCode;

using Table = Command<int>;  // the "handler" is a number the test can see
constexpr Table kTable[] = {
    {"health", "[SERVICE]", "", "status", 1},
    {"list", "", "", "", 2},
    {"drop", "TABLE", "", "", 3},
    {"checkpoint create", "NAME", "", "", 4},
    {"checkpoint list", "", "", "", 5},
    {"checkpoint restore", "NAME", "[--tables=a,b]", "", 6},
};

// The handler FindCommand picks for `words`, and the argument.
absl::StatusOr<std::pair<int, std::string>> Find(std::vector<std::string> words) {
  std::string arg = "unset";
  absl::StatusOr<const Table*> c = FindCommand<int>(kTable, words, &arg);
  if (!c.ok()) return c.status();
  return std::make_pair((*c)->run, arg);
}

TEST(CommandTableTest, FindsOneAndTwoWordCommands) {
  EXPECT_EQ(*Find({"list"}), std::make_pair(2, std::string()));
  EXPECT_EQ(*Find({"drop", "t"}), std::make_pair(3, std::string("t")));
  EXPECT_EQ(*Find({"checkpoint", "list"}), std::make_pair(5, std::string()));
  EXPECT_EQ(*Find({"checkpoint", "restore", "cp"}), std::make_pair(6, std::string("cp")));
}

TEST(CommandTableTest, OptionalArgument) {
  EXPECT_EQ(*Find({"health"}), std::make_pair(1, std::string()));
  EXPECT_EQ(*Find({"health", "svc"}), std::make_pair(1, std::string("svc")));
}

TEST(CommandTableTest, UsageErrorsNameWhatIsWrong) {
  EXPECT_THAT(Find({}), StatusIs(Code::kInvalidArgument, "missing COMMAND"));
  EXPECT_THAT(Find({"frobnicate", "x"}),
              StatusIs(Code::kInvalidArgument, "unknown command 'frobnicate'"));
  EXPECT_THAT(Find({"drop"}), StatusIs(Code::kInvalidArgument, "drop needs a TABLE name"));
  EXPECT_THAT(Find({"drop", ""}), StatusIs(Code::kInvalidArgument, "drop needs a TABLE name"));
  EXPECT_THAT(Find({"checkpoint", "create"}),
              StatusIs(Code::kInvalidArgument, "checkpoint create needs a NAME"));
  EXPECT_THAT(Find({"drop", "t", "u"}),
              StatusIs(Code::kInvalidArgument, "unexpected argument 'u'"));
  EXPECT_THAT(Find({"list", "x"}), StatusIs(Code::kInvalidArgument, "unexpected argument 'x'"));
  EXPECT_THAT(Find({"checkpoint"}),
              StatusIs(Code::kInvalidArgument, "checkpoint actions are create, list and restore"));
  EXPECT_THAT(Find({"checkpoint", "frobnicate", "x"}),
              StatusIs(Code::kInvalidArgument, "checkpoint actions are create, list and restore"));
}

TEST(CommandTableTest, HelpLinesUpDescriptions) {
  // Short: the description at column 36.
  EXPECT_EQ(CommandHelp("describe", "TABLE", "", "spec"),
            "  describe TABLE                    spec\n");
  // Past column 33: at column 44.
  EXPECT_EQ(CommandHelp("assign", "TABLE", "--ids=0 --values=v1,v2,...", "set whole rows"),
            "  assign TABLE --ids=0 --values=v1,v2,...   set whole rows\n");
  // Past column 41: on a line of its own, at column 36.
  EXPECT_EQ(CommandHelp("import", "TABLE", "--path=LOCAL_FILE [--format=...]", "upload"),
            "  import TABLE --path=LOCAL_FILE [--format=...]\n"
            "                                    upload\n");
  // Continuation lines: synopsis indented by 9, description at 36; no
  // description, no padding.
  EXPECT_EQ(CommandHelp("export", "TABLE", "--out=F\n[--x]", "download\nwhole"),
            "  export TABLE --out=F\n"
            "         [--x]                      download\n"
            "                                    whole\n");
  EXPECT_EQ(CommandHelp("checkpoint list", "", "", ""), "  checkpoint list\n");
}

TEST(CommandTableTest, HelpListsEveryCommandInTableOrder) {
  EXPECT_EQ(CommandsHelp<int>(kTable),
            "  health [SERVICE]                  status\n"
            "  list\n"
            "  drop TABLE\n"
            "  checkpoint create NAME\n"
            "  checkpoint list\n"
            "  checkpoint restore NAME [--tables=a,b]\n");
}

}  // namespace
}  // namespace embedserve::internal
