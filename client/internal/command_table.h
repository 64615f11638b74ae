#ifndef EMBEDSERVE_CLIENT_INTERNAL_COMMAND_TABLE_H_
#define EMBEDSERVE_CLIENT_INTERNAL_COMMAND_TABLE_H_

// A command-line tool's commands as one table (embedctl): its help, its
// checks of positional arguments and its dispatch all come from the table.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/status_macros.h"

namespace embedserve::internal {

// One command. `Handler` is whatever the tool runs (a function pointer).
template <typename Handler>
struct Command {
  // One or two words: "list", "checkpoint create". Two-word commands that
  // share their first word form a group ("checkpoint").
  absl::string_view name;
  // Its positional argument as help shows it: "" for none, a required one
  // ("TABLE", "NAME") or an optional one in brackets ("[SERVICE]").
  absl::string_view arg;
  // What follows name and arg in help (flags); '\n' starts an indented
  // continuation line.
  absl::string_view synopsis;
  // What it does, for help; may be empty; '\n' as in synopsis.
  absl::string_view what;
  Handler run;
};

// The help of one command: "  name arg synopsis" and `what` lined up at
// column 36 (or 44 after a longer synopsis, else on a line of its own).
std::string CommandHelp(absl::string_view name, absl::string_view arg, absl::string_view synopsis,
                        absl::string_view what);

// The index in `names` of the command that `words` (the command line
// after its flags, program name removed) starts with. InvalidArgument
// "missing COMMAND" for no words, "unknown command 'x'", or for a group
// without a known second word "checkpoint actions are create, list and
// restore" (in table order).
absl::StatusOr<size_t> FindCommandName(absl::Span<const absl::string_view> names,
                                       absl::Span<const std::string> words);

// The positional argument of command `name` given `rest` (the words after
// its name): "" when it takes none or an optional one is absent.
// InvalidArgument "unexpected argument 'x'" for too many, "drop needs a
// TABLE name" / "checkpoint create needs a NAME" for a required one absent.
absl::StatusOr<std::string> CommandArgument(absl::string_view name, absl::string_view arg,
                                            absl::Span<const std::string> rest);

// The help of every command, in table order.
template <typename Handler>
std::string CommandsHelp(absl::Span<const Command<Handler>> commands) {
  std::string help;
  for (const Command<Handler>& c : commands) help += CommandHelp(c.name, c.arg, c.synopsis, c.what);
  return help;
}

// The command `words` names and, in `*arg`, its positional argument; the
// errors of FindCommandName and CommandArgument.
template <typename Handler>
absl::StatusOr<const Command<Handler>*> FindCommand(absl::Span<const Command<Handler>> commands,
                                                    absl::Span<const std::string> words,
                                                    std::string* arg) {
  std::vector<absl::string_view> names;
  for (const Command<Handler>& c : commands) names.push_back(c.name);
  ASSIGN_OR_RETURN(const size_t i, FindCommandName(names, words));
  const Command<Handler>& command = commands[i];
  const size_t name_words = 1 + std::count(command.name.begin(), command.name.end(), ' ');
  ASSIGN_OR_RETURN(*arg, CommandArgument(command.name, command.arg, words.subspan(name_words)));
  return &command;
}

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_COMMAND_TABLE_H_
