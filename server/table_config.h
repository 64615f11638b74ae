#ifndef EMBEDSERVE_SERVER_TABLE_CONFIG_H_
#define EMBEDSERVE_SERVER_TABLE_CONFIG_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/table_spec.h"

namespace embedserve {

// Reads a server config (embedserve.v1.ServerConfig in protobuf text format,
// e.g. deploy/demo_tables.txtpb) and returns its table specs.
// NotFound: no such file. InvalidArgument: a parse error (with line and
// column) or a bad spec (naming the table).
absl::StatusOr<std::vector<TableSpec>> LoadTableConfig(absl::string_view path);

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_TABLE_CONFIG_H_
