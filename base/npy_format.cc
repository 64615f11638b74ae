#include "base/npy_format.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace embedserve {
namespace {

// The value of `key` in a header dict, or "" if absent; a shape with its
// parentheses.
absl::string_view NpyField(absl::string_view header, absl::string_view key) {
  const size_t at = header.find(absl::StrCat("'", key, "'"));
  if (at == absl::string_view::npos) return "";
  const size_t colon = header.find(':', at + key.size() + 2);
  if (colon == absl::string_view::npos) return "";
  if (key == "shape") {
    const size_t open = header.find('(', colon);
    if (open == absl::string_view::npos) return "";
    const size_t close = header.find(')', open);
    if (close == absl::string_view::npos) return "";
    return header.substr(open, close - open + 1);
  }
  const size_t end = std::min(header.find_first_of(",}", colon), header.size());
  return absl::StripAsciiWhitespace(header.substr(colon + 1, end - colon - 1));
}

}  // namespace

absl::StatusOr<int> NpyHeaderLengthBytes(int major) {
  if (major == 1) return 2;
  if (major == 2 || major == 3) return 4;
  return absl::InvalidArgumentError(absl::StrCat("unsupported .npy version ", major));
}

NpyDict SplitNpyDict(absl::string_view header) {
  return NpyDict{NpyField(header, "descr"), NpyField(header, "fortran_order"),
                 NpyField(header, "shape")};
}

absl::StatusOr<std::vector<int64_t>> ParseNpyShape(absl::string_view shape) {
  if (shape.size() < 2) return absl::InvalidArgumentError("no shape in the header");
  std::vector<int64_t> dims;
  for (absl::string_view part :
       absl::StrSplit(shape.substr(1, shape.size() - 2), ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape field ", dims.size(), " is not an integer"));
    }
    dims.push_back(d);
  }
  return dims;
}

std::string DescribeNpyDtype(absl::string_view descr) {
  if (descr.size() < 5 || descr.size() > 6 || descr.front() != '\'' || descr.back() != '\'') {
    return "";
  }
  const char order = descr[1], kind = descr[2];
  int bytes;
  if (!absl::SimpleAtoi(descr.substr(3, descr.size() - 4), &bytes) || bytes <= 0 || bytes > 16) {
    return "";
  }
  const char* name;
  switch (kind) {
    case 'b':
      name = "bool";
      break;
    case 'i':
      name = "int";
      break;
    case 'u':
      name = "uint";
      break;
    case 'f':
      name = "float";
      break;
    case 'c':
      name = "complex";
      break;
    default:
      return "";
  }
  const char* endian;
  switch (order) {
    case '<':
      endian = " (little-endian)";
      break;
    case '>':
      endian = " (big-endian)";
      break;
    case '=':
      endian = " (native)";
      break;
    case '|':
      endian = "";
      break;
    default:
      return "";
  }
  return absl::StrCat(name, bytes * 8, endian);
}

}  // namespace embedserve
