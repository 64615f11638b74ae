#ifndef EMBEDSERVE_SERVER_CONVERSIONS_H_
#define EMBEDSERVE_SERVER_CONVERSIONS_H_

// Wire <-> core conversions. Every function here is pure and thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/embedding_table.h"
#include "core/lookup_plan.h"
#include "core/row_store.h"
#include "core/table_spec.h"
#include "embedserve/v1/embedserve.pb.h"
#include "storage/pretrained.h"

namespace embedserve {

// InvalidArgument for an unknown enum value; the spec itself is checked later
// by NormalizeTableSpec.
absl::StatusOr<TableSpec> SpecFromProto(const v1::TableSpec& proto);
void SpecToProto(const TableSpec& spec, v1::TableSpec* proto);
void TableInfoToProto(const EmbeddingTable& table, v1::TableInfo* proto);
absl::StatusOr<PoolingMode> PoolingModeFromProto(v1::PoolingMode mode);

// A repeated int64 field (ids, offsets, shape) as a span over its storage.
template <typename Ids>
absl::Span<const int64_t> IdSpan(const Ids& ids) {
  return absl::MakeConstSpan(ids.data(), ids.size());
}

// InvalidArgument unless `type` is FLOAT32 or FLOAT16 (the types a lookup
// answers in).
absl::StatusOr<OutputType> OutputTypeFromProto(v1::ValueType type);
v1::ValueType OutputTypeToProto(OutputType type);

// A plain query as core's PlainLookup over `ids` (the query's own ids, or
// the ids its words resolved to); the lookup borrows `query` and `ids`.
// InvalidArgument for an output type a lookup cannot answer in.
absl::StatusOr<PlainLookup> PlainLookupFromProto(const v1::LookupQuery& query,
                                                 absl::Span<const int64_t> ids);
// A pooled query as core's PooledLookup (max_bags left at its default; the
// caller bounds it by the room left in the answer). Borrows `query`.
// InvalidArgument for an unknown pooling mode.
absl::StatusOr<PooledLookup> PooledLookupFromProto(const v1::PooledQuery& query);

// The settings an UpdateTable asks for (the table judges them: the
// optimizer kind and initial_accumulator_value are fixed at creation).
// InvalidArgument for an optimizer kind the wire does not know.
absl::StatusOr<EmbeddingTable::Settings> SettingsFromProto(const v1::UpdateTableRequest& req);

// The core kind of a wire OptimizerSpec kind; nullopt for an unknown one.
std::optional<OptimizerKind> OptimizerKindFromProto(int kind);

// The spec a LoadTable asks for, all but its shape (num_embeddings and
// embedding_dim are 1 until the file is read). InvalidArgument for an
// unknown optimizer kind: checked before the file is read.
absl::StatusOr<TableSpec> LoadSpecFromProto(const v1::LoadTableRequest& req);
// InvalidArgument for an unknown file format.
absl::StatusOr<PretrainedFormat> PretrainedFormatFromProto(v1::FileFormat format);

void CheckpointToProto(const CheckpointInfo& info, v1::Checkpoint* proto);
// One entry per state slot, each with shape [num_ids] or [num_ids, width].
void StateSlotsToProto(absl::Span<const EmbeddingTable::StateSlot> slots, int64_t num_ids,
                       v1::OptimizerStateResponse* proto);

// Views `bytes` (packed little-endian float32) as floats, copying into
// *scratch only if the buffer is not 4-byte aligned. InvalidArgument, naming
// `field`, if the length is not a multiple of 4.
absl::StatusOr<absl::Span<const float>> FloatsFromBytes(const std::string& bytes,
                                                        absl::string_view field,
                                                        std::vector<float>* scratch);

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_CONVERSIONS_H_
