// The read path: Lookup and LookupPooled, from request bytes to the
// answer's bytes. A request is validated whole (tables, shapes, ids, answer
// size) into a LookupPlan before any query runs; the kernels then gather
// straight into the buffer gRPC sends (ResultsWriter).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "core/lookup_plan.h"
#include "server/conversions.h"
#include "server/embedding_service.h"
#include "server/internal/service_internals.h"
#include "server/server_metrics.h"

namespace embedserve {
namespace {

using internal::AddResponseBytes;
using internal::CheckTotalIds;
using internal::ParseRequest;

absl::Status WithQueryContext(const absl::Status& s, int q, const std::string& table) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("queries[", q, "] (table '", table, "'): ", s.message()));
}

}  // namespace

void EmbeddingServiceImpl::NoteLookup() {
  // Written at most once per millisecond: concurrent lookups only read the
  // shared cache line (PushPause needs 20 ms resolution), so it stays
  // shared in every core's cache instead of bouncing on every lookup.
  const int64_t now = absl::GetCurrentTimeNanos();
  if (now - last_lookup_ns_.load(std::memory_order_relaxed) > 1'000'000) {
    last_lookup_ns_.store(now, std::memory_order_relaxed);
  }
}

absl::Status EmbeddingServiceImpl::HandleLookup(const Raw& in, Raw* out,
                                                const Cancelled& cancelled) {
  NoteLookup();
  v1::LookupRequest req;
  RETURN_IF_ERROR(ParseRequest(in, &req));
  ResultsWriter writer;
  RETURN_IF_ERROR(DoLookup(req, &writer));
  *out = writer.Release();
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::HandleLookupPooled(const Raw& in, Raw* out,
                                                      const Cancelled& cancelled) {
  NoteLookup();
  v1::PooledRequest req;
  RETURN_IF_ERROR(ParseRequest(in, &req));
  ResultsWriter writer;
  RETURN_IF_ERROR(DoLookupPooled(req, &writer));
  *out = writer.Release();
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoLookup(const v1::LookupRequest& req, ResultsWriter* out) {
  int64_t total_ids = 0;
  for (const auto& q : req.queries()) total_ids += q.ids_size();
  RETURN_IF_ERROR(CheckTotalIds(total_ids, options_.limits));
  // Validate everything first: a failed request must change nothing.
  LookupPlan plan;
  // Queries by word, resolved to ids (the plan borrows them).
  std::vector<std::vector<int64_t>> word_ids(req.queries_size());
  int64_t response_bytes = 0;
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::LookupQuery& query = req.queries(q);
    auto ctx = [&](const absl::Status& s) { return WithQueryContext(s, q, query.table()); };
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(query.table());
    RETURN_IF_ERROR(ctx(table.status()));
    if (query.words_size() > 0) {
      if (query.ids_size() > 0) {
        return ctx(absl::InvalidArgumentError("give ids or words, not both"));
      }
      RETURN_IF_ERROR(CheckTotalIds(total_ids + query.words_size(), options_.limits));
      absl::StatusOr<std::vector<int64_t>> ids = (*table)->IdsForWords(
          std::vector<std::string>(query.words().begin(), query.words().end()));
      RETURN_IF_ERROR(ctx(ids.status()));
      word_ids[q] = *std::move(ids);
    }
    absl::StatusOr<PlainLookup> lookup = PlainLookupFromProto(
        query, query.words_size() > 0 ? absl::MakeConstSpan(word_ids[q]) : IdSpan(query.ids()));
    RETURN_IF_ERROR(ctx(lookup.status()));
    RETURN_IF_ERROR(ctx(plan.Add(*std::move(table), *lookup)));
    RETURN_IF_ERROR(AddResponseBytes(plan.output_rows(q), plan.table(q).dim(), options_.limits,
                                     &response_bytes));
  }
  return AnswerPlan(plan, out);
}

absl::Status EmbeddingServiceImpl::DoLookupPooled(const v1::PooledRequest& req,
                                                  ResultsWriter* out) {
  int64_t total_ids = 0;
  for (const auto& q : req.queries()) total_ids += q.ids_size();
  RETURN_IF_ERROR(CheckTotalIds(total_ids, options_.limits));
  LookupPlan plan;
  int64_t response_bytes = 0;
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::PooledQuery& query = req.queries(q);
    auto ctx = [&](const absl::Status& s) { return WithQueryContext(s, q, query.table()); };
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(query.table());
    RETURN_IF_ERROR(ctx(table.status()));
    absl::StatusOr<PooledLookup> lookup = PooledLookupFromProto(query);
    RETURN_IF_ERROR(ctx(lookup.status()));
    // The bags this answer still has room for: checked before the bounds
    // are built (a 30-byte request can ask for 500 M empty bags).
    lookup->max_bags = (options_.limits.max_response_bytes - response_bytes) /
                       ((*table)->dim() * static_cast<int64_t>(sizeof(float)));
    RETURN_IF_ERROR(ctx(plan.Add(*std::move(table), *lookup)));
    RETURN_IF_ERROR(AddResponseBytes(plan.output_rows(q), plan.table(q).dim(), options_.limits,
                                     &response_bytes));
  }
  return AnswerPlan(plan, out);
}

absl::Status EmbeddingServiceImpl::AnswerPlan(const LookupPlan& plan, ResultsWriter* out) {
  for (int q = 0; q < plan.size(); ++q) {
    out->Add(plan.output_shape(q), OutputTypeToProto(plan.output(q)),
             static_cast<size_t>(plan.output_bytes(q)));
  }
  out->Allocate();
  for (int q = 0; q < plan.size(); ++q) {
    // The kernels write straight into the answer's bytes.
    RETURN_IF_ERROR(WithQueryContext(plan.Run(q, out->values(q)), q, plan.table(q).name()));
  }
  if (metrics_ != nullptr) {
    for (int q = 0; q < plan.size(); ++q) {
      metrics_->AddRowsLookedUp(plan.table(q).name(), plan.num_ids(q));
    }
  }
  return absl::OkStatus();
}

}  // namespace embedserve
