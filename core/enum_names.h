#ifndef EMBEDSERVE_CORE_ENUM_NAMES_H_
#define EMBEDSERVE_CORE_ENUM_NAMES_H_

// The one place that names core's enums. These names are a contract:
//   - storage writes the initializer and optimizer names into every table's
//     metadata (storage/FORMAT.md); changing one breaks existing data
//     directories (tests/storage/meta_codec_test.cc pins them);
//   - the wire API's enum names (proto/embedserve.proto) are these names
//     upper-cased (tests/server/enum_names_wire_test.cc checks it), and the
//     CLI and the Python client accept the lower-case names
//     (tests/client/python_enum_names_test.py checks the Python table
//     against enum_names_dump, which prints the tables below);
//   - the SIMD level names are --simd's values and the metrics' `simd` label.
//
// Name(x) of a value outside the enum is "unknown". Parse* is exact
// (case-sensitive) and returns nullopt for a name not in the table.

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/gather.h"
#include "core/optimizer.h"
#include "core/table_spec.h"

namespace embedserve {

template <typename Enum>
struct EnumName {
  Enum value;
  absl::string_view name;
};

// Every value of each enum with its name, in declaration order.
absl::Span<const EnumName<OptimizerKind>> OptimizerKindNames();
absl::Span<const EnumName<InitKind>> InitKindNames();
absl::Span<const EnumName<RowType>> RowTypeNames();
absl::Span<const EnumName<PoolingMode>> PoolingModeNames();
absl::Span<const EnumName<SimdLevel>> SimdLevelNames();

absl::string_view Name(OptimizerKind kind);
absl::string_view Name(InitKind kind);
absl::string_view Name(RowType type);
absl::string_view Name(PoolingMode mode);
absl::string_view Name(SimdLevel level);

std::optional<OptimizerKind> ParseOptimizerKind(absl::string_view name);
std::optional<InitKind> ParseInitKind(absl::string_view name);
std::optional<RowType> ParseRowType(absl::string_view name);
std::optional<PoolingMode> ParsePoolingMode(absl::string_view name);
std::optional<SimdLevel> ParseSimdLevel(absl::string_view name);

// The names of a table for a message: "a, b or c".
template <typename Enum>
std::string NameList(absl::Span<const EnumName<Enum>> names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out.append(names[i].name.data(), names[i].name.size());
  }
  return out;
}

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_ENUM_NAMES_H_
