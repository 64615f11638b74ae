#include "core/lookup_plan.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/pooling.h"
#include "base/status_macros.h"

namespace embedserve {
namespace {

absl::Status CheckIndexShape(const PlainLookup& q) {
  if (q.scalar && (!q.shape.empty() || q.ids.size() != 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a scalar query (a 0-d index) takes exactly one id and no shape, got ",
                     q.ids.size(), " ids and a shape of ", q.shape.size(), " dims"));
  }
  if (q.shape.empty()) return absl::OkStatus();
  int64_t product = 1;
  for (int64_t d : q.shape) {
    if (d < 0 || __builtin_mul_overflow(product, d, &product)) {
      product = -1;
      break;
    }
  }
  if (product != static_cast<int64_t>(q.ids.size())) {
    return absl::InvalidArgumentError(absl::StrCat("shape [", absl::StrJoin(q.shape, ", "),
                                                   "] does not match ", q.ids.size(), " ids"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LookupPlan::Add(std::shared_ptr<EmbeddingTable> table, const PlainLookup& query) {
  RETURN_IF_ERROR(CheckIndexShape(query));
  RETURN_IF_ERROR(table->CheckIds(query.ids));
  Query q;
  q.ids = query.ids;
  q.output = query.output;
  q.output_rows = static_cast<int64_t>(query.ids.size());
  q.output_shape.assign(query.shape.begin(), query.shape.end());
  if (q.output_shape.empty() && !query.scalar) q.output_shape.push_back(q.output_rows);
  q.output_shape.push_back(table->dim());
  q.table = std::move(table);
  queries_.push_back(std::move(q));
  return absl::OkStatus();
}

absl::Status LookupPlan::AddWords(std::shared_ptr<EmbeddingTable> table,
                                  absl::Span<const std::string> words, PlainLookup query) {
  if (!query.ids.empty()) return absl::InvalidArgumentError("give ids or words, not both");
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, table->IdsForWords(words));
  query.ids = ids;
  RETURN_IF_ERROR(Add(std::move(table), query));
  queries_.back().word_ids = std::move(ids);  // the buffer query.ids views
  return absl::OkStatus();
}

absl::Status LookupPlan::Add(std::shared_ptr<EmbeddingTable> table, const PooledLookup& query) {
  ASSIGN_OR_RETURN(std::vector<int64_t> bounds,
                   BagBounds(static_cast<int64_t>(query.ids.size()), query.offsets,
                             query.include_last_offset, query.shape, query.max_bags));
  RETURN_IF_ERROR(CheckBagWeights(query.ids.size(), query.mode, query.weights));
  RETURN_IF_ERROR(table->CheckIds(query.ids));
  Query q;
  q.ids = query.ids;
  q.pooled = true;
  q.bounds = std::move(bounds);
  q.mode = query.mode;
  q.weights = query.weights;
  q.output = query.output;
  q.output_rows = static_cast<int64_t>(q.bounds.size()) - 1;
  q.output_shape = {q.output_rows, table->dim()};
  q.table = std::move(table);
  queries_.push_back(std::move(q));
  return absl::OkStatus();
}

int64_t LookupPlan::output_bytes(int q) const {
  const Query& query = queries_[q];
  const int64_t value_bytes = query.output == OutputType::kFloat16 ? 2 : 4;
  return query.output_rows * query.table->dim() * value_bytes;
}

absl::Status LookupPlan::RunFloat32(const Query& query, float* out) {
  const absl::Span<float> values =
      absl::MakeSpan(out, static_cast<size_t>(query.output_rows * query.table->dim()));
  if (!query.pooled) return query.table->Lookup(query.ids, values);
  return query.table->LookupPooled(query.ids, query.bounds, query.mode, query.weights, values);
}

absl::Status LookupPlan::Run(int q, void* out) const {
  const Query& query = queries_[q];
  if (query.output == OutputType::kFloat32) {
    // The kernels write straight into the caller's bytes.
    return RunFloat32(query, static_cast<float*>(out));
  }
  // Gathered (or pooled) in float32, answered in float16.
  const int64_t n = query.output_rows * query.table->dim();
  std::vector<float> values(static_cast<size_t>(n));
  RETURN_IF_ERROR(RunFloat32(query, values.data()));
  ActiveKernels().to_half(values.data(), n, static_cast<uint16_t*>(out));
  return absl::OkStatus();
}

}  // namespace embedserve
