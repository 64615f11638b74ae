#ifndef EMBEDSERVE_CLIENT_INTERNAL_TEXT_OUTPUT_H_
#define EMBEDSERVE_CLIENT_INTERNAL_TEXT_OUTPUT_H_

// How embedctl prints answers. The README and tests/deploy/deploy_test.sh
// quote these lines: change them only together.

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/types/span.h"
#include "client/embedding_client.h"
#include "embedserve/v1/embedserve.pb.h"

namespace embedserve::internal {

// "[v0, v1, ...]" with %.6g values; with 0 < max_values < dim only the
// first max_values, then ", ... (N more)".
std::string FormatRow(const float* row, int64_t dim, int64_t max_values);

// "shape [a, b, dim]" then one line per row r of `t`: "<label(r)>: [...]"
// (FormatRow), e.g. "row 0 (id 7): [0.5, 1.5]", "bag 1: ...", "king: ...".
void PrintRows(std::ostream& out, const Tensor& t, const std::function<std::string(int64_t)>& label,
               int64_t max_values);

// "table <name>" and the spec, size and version, one field a line; a
// dynamic table has "dynamic" (its rules), "rows_stored", "pushes dropped"
// and "index_bytes" lines instead of num_embeddings, and no shards line.
void PrintTableInfo(std::ostream& out, const v1::TableInfo& info);

// A header line and one aligned row per table: name, rows, dim, shards,
// bytes, version; a dynamic table's row (rows: stored) ends with
// "  dynamic (max_rows N|none)".
void PrintTableList(std::ostream& out, absl::Span<const v1::TableInfo> tables);

// "<name>  <created, RFC 3339 in the local time zone>  <bytes> bytes  tables: a,b".
void PrintCheckpoint(std::ostream& out, const v1::Checkpoint& checkpoint);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_TEXT_OUTPUT_H_
