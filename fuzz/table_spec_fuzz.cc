// An embedserve.v1.TableSpec from arbitrary bytes, through the checks a
// CreateTable runs: SpecFromProto, NormalizeTableSpec, and for a valid spec
// small enough to build here (EstimateBytes < 1 MiB), EmbeddingTable::Create,
// a lookup of row 0 and of the last row, one gradient push and a lookup
// again. Any of them may fail with a Status; none may crash.

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/embedding_table.h"
#include "core/table_spec.h"
#include "embedserve/v1/embedserve.pb.h"
#include "server/conversions.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  embedserve::v1::TableSpec proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<embedserve::TableSpec> spec = embedserve::SpecFromProto(proto);
  if (!spec.ok()) return 0;
  spec = embedserve::NormalizeTableSpec(*std::move(spec));
  if (!spec.ok()) return 0;
  const int64_t bytes = embedserve::EmbeddingTable::EstimateBytes(*spec);
  if (bytes < 0) std::abort();  // an overflowed estimate would defeat admission
  if (bytes >= (1 << 20)) return 0;
  absl::StatusOr<std::unique_ptr<embedserve::EmbeddingTable>> table =
      embedserve::EmbeddingTable::Create(*spec);
  if (!table.ok()) return 0;
  embedserve::EmbeddingTable& t = **table;
  if (t.num_rows() != spec->num_embeddings || t.dim() != spec->embedding_dim) std::abort();
  const std::vector<int64_t> ids = {0, t.num_rows() - 1};
  std::vector<float> out(ids.size() * t.dim());
  if (!t.Lookup(ids, absl::MakeSpan(out)).ok()) std::abort();  // valid ids
  const std::vector<float> grads(ids.size() * t.dim(), 0.5f);
  (void)t.ApplyGradients(ids, grads);
  if (!t.Lookup(ids, absl::MakeSpan(out)).ok()) std::abort();
  return 0;
}
