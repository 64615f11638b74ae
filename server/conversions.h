#ifndef EMBEDSERVE_SERVER_CONVERSIONS_H_
#define EMBEDSERVE_SERVER_CONVERSIONS_H_

// Wire <-> core conversions. Every function here is pure and thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/embedding_table.h"
#include "core/table_spec.h"
#include "embedserve/v1/embedserve.pb.h"

namespace embedserve {

// InvalidArgument for an unknown enum value; the spec itself is checked later
// by NormalizeTableSpec.
absl::StatusOr<TableSpec> SpecFromProto(const v1::TableSpec& proto);
void SpecToProto(const TableSpec& spec, v1::TableSpec* proto);
void TableInfoToProto(const EmbeddingTable& table, v1::TableInfo* proto);
absl::StatusOr<PoolingMode> PoolingModeFromProto(v1::PoolingMode mode);

// Views `bytes` (packed little-endian float32) as floats, copying into
// *scratch only if the buffer is not 4-byte aligned. InvalidArgument, naming
// `field`, if the length is not a multiple of 4.
absl::StatusOr<absl::Span<const float>> FloatsFromBytes(const std::string& bytes,
                                                        absl::string_view field,
                                                        std::vector<float>* scratch);

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_CONVERSIONS_H_
