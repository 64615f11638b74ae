// The read path: Lookup and LookupPooled, from request bytes to the
// answer's bytes. A request is validated whole (tables, shapes, ids, answer
// size) into a LookupPlan before any query runs; the kernels then gather
// straight into the buffer gRPC sends (ResultsWriter).
//
// Read-your-writes (LookupQuery.trainer / min_sequence): a lookup that must
// see a trainer's push the table has not applied yet is parked, not run.
// Lookups run inline on gRPC's callback threads, which every other lookup
// needs too, so the wait holds no thread: the parsed request waits on a
// grpc::Alarm and is checked again every few hundred microseconds (a check
// is a mutex and a map lookup in the table) until the pushes are applied,
// the client cancels, or the wait's deadline (the call's, at most
// --max_sequence_wait_ms) passes. Polling rather than a wake-up from the
// push lane keeps the push path untouched and costs a trainer at most one
// poll interval of latency per step.

#include <grpcpp/alarm.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "core/answer_budget.h"
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

// How long a parked lookup sleeps before its next check: doubling from
// kFirstPoll up to kMaxPoll, so that a short wait (a push being applied as
// the lookup arrives) costs little latency and a long one few wake-ups.
constexpr absl::Duration kFirstPoll = absl::Microseconds(20);
constexpr absl::Duration kMaxPoll = absl::Microseconds(250);

// OK if every query's table has applied its trainer's min_sequence; false
// (in the StatusOr) if one has not yet. With `final` (the wait's deadline
// passed), the table's DeadlineExceeded (naming the trainer, the sequence
// and the last one applied) instead of false. A query naming an unknown
// table waits for nothing: the lookup itself reports it.
template <typename Query>
absl::StatusOr<bool> SequencesApplied(const google::protobuf::RepeatedPtrField<Query>& queries,
                                      TableRegistry& registry, bool final) {
  for (int q = 0; q < queries.size(); ++q) {
    const Query& query = queries.Get(q);
    if (query.min_sequence() == 0 && query.trainer().empty()) continue;
    auto ctx = [&](const absl::Status& s) { return WithQueryContext(s, q, query.table()); };
    RETURN_IF_ERROR(ctx(EmbeddingTable::CheckTrainerName(query.trainer())));
    if (query.min_sequence() == 0) continue;
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry.Get(query.table());
    if (!table.ok()) continue;
    // A deadline in the past: a check, never a wait.
    absl::Status s =
        (*table)->WaitForSequence(query.trainer(), query.min_sequence(), absl::InfinitePast());
    if (s.ok()) continue;
    if (s.code() != absl::StatusCode::kDeadlineExceeded || final) return ctx(s);
    return false;
  }
  return true;
}

template <typename Query>
bool NamesTrainer(const google::protobuf::RepeatedPtrField<Query>& queries) {
  for (const Query& q : queries) {
    if (!q.trainer().empty()) return true;
  }
  return false;
}

}  // namespace

// A lookup request parsed once, kept while it waits for its sequences.
struct EmbeddingServiceImpl::PendingRead {
  grpc::CallbackServerContext* ctx;
  grpc::ServerUnaryReactor* reactor;
  Raw* out;
  int rpc;
  Clock::time_point started;
  bool pooled;
  v1::LookupRequest lookup;
  v1::PooledRequest pooled_lookup;
  absl::Time deadline;
  absl::Duration poll = kFirstPoll;
  std::unique_ptr<grpc::Alarm> alarm;
};

grpc::ServerUnaryReactor* EmbeddingServiceImpl::AnswerRead(grpc::CallbackServerContext* ctx,
                                                           const Raw* in, Raw* out,
                                                           const UnaryMethod& method) {
  auto read = std::make_unique<PendingRead>();
  read->ctx = ctx;
  read->reactor = ctx->DefaultReactor();
  read->out = out;
  read->rpc = static_cast<int>(&method - kUnaryMethods);
  read->started = metrics_ != nullptr ? Clock::now() : Clock::time_point();
  read->pooled = method.handler == &EmbeddingServiceImpl::HandleLookupPooled;
  if (absl::Status s = Authorize(ctx, method.name, method.role); !s.ok()) {
    FinishUnary(read->reactor, read->rpc, read->started, s);
    return read->reactor;
  }
  absl::Status parsed = read->pooled ? ParseRequest(*in, &read->pooled_lookup)
                                     : ParseRequest(*in, &read->lookup);
  if (!parsed.ok()) {
    NoteLookup();
    FinishUnary(read->reactor, read->rpc, read->started, parsed);
    return read->reactor;
  }
  // A trainer's own lookups (they name it) are part of its training steps,
  // not the serving traffic that push streams pause for (PushPause): they
  // would otherwise slow down the very pushes they wait for.
  if (!(read->pooled ? NamesTrainer(read->pooled_lookup.queries())
                     : NamesTrainer(read->lookup.queries()))) {
    NoteLookup();
  }
  // The deadline is read only when the request asks for a sequence (the
  // common lookup reads no clock here).
  grpc::ServerUnaryReactor* reactor = read->reactor;
  RunOrWait(std::move(read));
  return reactor;
}

void EmbeddingServiceImpl::RunOrWait(std::unique_ptr<PendingRead> read) {
  const bool has_deadline = read->deadline != absl::Time();
  const bool final = has_deadline && absl::Now() >= read->deadline;
  absl::StatusOr<bool> ready =
      read->pooled ? SequencesApplied(read->pooled_lookup.queries(), *registry_, final)
                   : SequencesApplied(read->lookup.queries(), *registry_, final);
  if (ready.ok() && !*ready) {
    if (read->ctx->IsCancelled()) {
      ready = absl::CancelledError("the lookup was cancelled while it waited for a trainer's push");
    } else if (push_lane_.stopping()) {
      ready = absl::UnavailableError("the server is shutting down");
    }
  }
  if (!ready.ok()) {
    FinishUnary(read->reactor, read->rpc, read->started, ready.status());
    return;
  }
  if (!*ready) {
    if (!has_deadline) {
      read->deadline = std::min(absl::FromChrono(read->ctx->deadline()),
                                absl::Now() + options_.max_sequence_wait);
    }
    const absl::Time when = std::min(absl::Now() + read->poll, read->deadline);
    read->poll = std::min(read->poll * 2, kMaxPoll);
    // The alarm that fired last (if any) is destroyed here, inside its own
    // callback: gRPC holds a reference to it until the callback returns.
    read->alarm = std::make_unique<grpc::Alarm>();
    grpc::Alarm* alarm = read->alarm.get();
    alarm->Set(absl::ToChronoTime(when),
               [this, r = read.release()](bool) { RunOrWait(std::unique_ptr<PendingRead>(r)); });
    return;
  }
  ResultsWriter writer;
  absl::Status s =
      read->pooled ? DoLookupPooled(read->pooled_lookup, &writer) : DoLookup(read->lookup, &writer);
  if (s.ok()) *read->out = writer.Release();
  FinishUnary(read->reactor, read->rpc, read->started, s);
}

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
  // Called directly (CallForTest) a lookup cannot wait: an unapplied
  // sequence is DEADLINE_EXCEEDED at once.
  RETURN_IF_ERROR(SequencesApplied(req.queries(), *registry_, /*final=*/true).status());
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
  RETURN_IF_ERROR(SequencesApplied(req.queries(), *registry_, /*final=*/true).status());
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
  int64_t response_bytes = 0;
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::LookupQuery& query = req.queries(q);
    auto ctx = [&](const absl::Status& s) { return WithQueryContext(s, q, query.table()); };
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(query.table());
    RETURN_IF_ERROR(ctx(table.status()));
    const bool by_words = query.words_size() > 0;
    if (by_words && query.ids_size() == 0) {
      RETURN_IF_ERROR(CheckTotalIds(total_ids + query.words_size(), options_.limits));
    }
    absl::StatusOr<PlainLookup> lookup = PlainLookupFromProto(query, IdSpan(query.ids()));
    RETURN_IF_ERROR(ctx(lookup.status()));
    // By words: the plan resolves them (and keeps their ids).
    RETURN_IF_ERROR(ctx(by_words ? plan.AddWords(*std::move(table),
                                                 std::vector<std::string>(query.words().begin(),
                                                                          query.words().end()),
                                                 *lookup)
                                 : plan.Add(*std::move(table), *lookup)));
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
    // The bags this answer still has room for.
    lookup->max_bags = Float32RowsThatFit(options_.limits.max_response_bytes, response_bytes,
                                          (*table)->dim());
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
