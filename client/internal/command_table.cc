#include "client/internal/command_table.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace embedserve::internal {
namespace {

constexpr size_t kWhatColumn = 36, kWideWhatColumn = 44;
constexpr absl::string_view kSynopsisIndent = "         ";

// The words of a command's name: one or two.
std::vector<absl::string_view> NameWords(absl::string_view name) {
  return absl::StrSplit(name, ' ');
}

}  // namespace

std::string CommandHelp(absl::string_view name, absl::string_view arg, absl::string_view synopsis,
                        absl::string_view what) {
  std::string help = absl::StrCat("  ", name);
  if (!arg.empty()) absl::StrAppend(&help, " ", arg);
  if (!synopsis.empty()) {
    absl::StrAppend(&help, " ",
                    absl::StrReplaceAll(synopsis, {{"\n", absl::StrCat("\n", kSynopsisIndent)}}));
  }
  if (!what.empty()) {
    const size_t line_start = help.rfind('\n') == std::string::npos ? 0 : help.rfind('\n') + 1;
    const size_t width = help.size() - line_start;
    const std::string indent(kWhatColumn, ' ');
    if (width + 3 <= kWhatColumn) {
      help.append(kWhatColumn - width, ' ');
    } else if (width + 3 <= kWideWhatColumn) {
      help.append(kWideWhatColumn - width, ' ');
    } else {
      absl::StrAppend(&help, "\n", indent);
    }
    absl::StrAppend(&help, absl::StrReplaceAll(what, {{"\n", absl::StrCat("\n", indent)}}));
  }
  return help + "\n";
}

absl::StatusOr<size_t> FindCommandName(absl::Span<const absl::string_view> names,
                                       absl::Span<const std::string> words) {
  if (words.empty()) return absl::InvalidArgumentError("missing COMMAND");
  std::vector<absl::string_view> group;  // second words of the commands words[0] starts
  for (size_t i = 0; i < names.size(); ++i) {
    const std::vector<absl::string_view> name = NameWords(names[i]);
    if (name[0] != words[0]) continue;
    if (name.size() == 1) return i;
    if (words.size() > 1 && name[1] == words[1]) return i;
    group.push_back(name[1]);
  }
  if (group.empty())
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", words[0], "'"));
  const absl::string_view last = group.back();
  group.pop_back();
  return absl::InvalidArgumentError(absl::StrCat(
      words[0], " actions are ", absl::StrJoin(group, ", "), group.empty() ? "" : " and ", last));
}

absl::StatusOr<std::string> CommandArgument(absl::string_view name, absl::string_view arg,
                                            absl::Span<const std::string> rest) {
  const size_t accepted = arg.empty() ? 0 : 1;
  if (rest.size() > accepted) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", rest[accepted], "'"));
  }
  if (!rest.empty() && !rest[0].empty()) return rest[0];
  if (arg.empty() || arg.front() == '[') return std::string();
  return absl::InvalidArgumentError(
      absl::StrCat(name, " needs a ", arg, arg == "TABLE" ? " name" : ""));
}

}  // namespace embedserve::internal
