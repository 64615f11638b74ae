// EmbeddingServiceImpl: the unary dispatch table (lane and role per
// method), authorization, and the unary handlers of the write path (assign,
// push, optimizer state) that convert a request, call a table, and convert
// the answer back. Table administration (create, drop, load, checkpoints)
// is in table_calls.cc, the read path in lookup_calls.cc, the streaming
// calls in streaming_calls.cc, the proto <-> core conversions in
// conversions.cc.

#include "server/embedding_service.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "proto/grpc_status.h"
#include "server/conversions.h"
#include "server/internal/log.h"
#include "server/internal/service_internals.h"
#include "server/server_metrics.h"
#include "storage/pretrained.h"

namespace embedserve {
namespace {

using Raw = grpc::ByteBuffer;
using internal::AddResponseBytes;
using internal::CheckTotalIds;
using internal::ParseRequest;
using internal::SerializeResponse;

bool NeverCancelled() { return false; }

// Indices into kUnaryMethods.
enum UnaryIndex {
  kCreateTable,
  kDropTable,
  kListTables,
  kDescribeTable,
  kLookup,
  kLookupPooled,
  kAssignRows,
  kPushGradients,
  kUpdateTable,
  kGetOptimizerState,
  kLoadTable,
  kCreateCheckpoint,
  kListCheckpoints,
  kRestoreCheckpoint,
  kNumUnary
};

internal::BoundedExecutor::Options LaneOptions(const char* name, int threads, int queue, int nice) {
  internal::BoundedExecutor::Options o;
  o.name = name;
  o.threads =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.max_queue = queue;
  o.nice = nice;
  return o;
}

}  // namespace

const EmbeddingServiceImpl::UnaryMethod EmbeddingServiceImpl::kUnaryMethods[] = {
    {"CreateTable", Lane::kAdmin, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::CreateTableRequest, v1::CreateTableResponse,
                                  &EmbeddingServiceImpl::DoCreateTable>},
    {"DropTable", Lane::kAdmin, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::DropTableRequest, v1::DropTableResponse,
                                  &EmbeddingServiceImpl::DoDropTable>},
    {"ListTables", Lane::kInline, Role::kReader,
     &EmbeddingServiceImpl::Proto<v1::ListTablesRequest, v1::ListTablesResponse,
                                  &EmbeddingServiceImpl::DoListTables>},
    {"DescribeTable", Lane::kInline, Role::kReader,
     &EmbeddingServiceImpl::Proto<v1::DescribeTableRequest, v1::DescribeTableResponse,
                                  &EmbeddingServiceImpl::DoDescribeTable>},
    {"Lookup", Lane::kInline, Role::kReader, &EmbeddingServiceImpl::HandleLookup},
    {"LookupPooled", Lane::kInline, Role::kReader, &EmbeddingServiceImpl::HandleLookupPooled},
    {"AssignRows", Lane::kPush, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::AssignRowsRequest, v1::AssignRowsResponse,
                                  &EmbeddingServiceImpl::DoAssignRows>},
    {"PushGradients", Lane::kPush, Role::kTrainer,
     &EmbeddingServiceImpl::Proto<v1::PushRequest, v1::PushResponse,
                                  &EmbeddingServiceImpl::ApplyPush>},
    {"UpdateTable", Lane::kInline, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::UpdateTableRequest, v1::UpdateTableResponse,
                                  &EmbeddingServiceImpl::DoUpdateTable>},
    {"GetOptimizerState", Lane::kInline, Role::kTrainer,
     &EmbeddingServiceImpl::Proto<v1::OptimizerStateRequest, v1::OptimizerStateResponse,
                                  &EmbeddingServiceImpl::DoGetOptimizerState>},
    {"LoadTable", Lane::kAdmin, Role::kAdmin, &EmbeddingServiceImpl::HandleLoadTable},
    {"CreateCheckpoint", Lane::kAdmin, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::CreateCheckpointRequest, v1::CreateCheckpointResponse,
                                  &EmbeddingServiceImpl::DoCreateCheckpoint>},
    {"ListCheckpoints", Lane::kAdmin, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::ListCheckpointsRequest, v1::ListCheckpointsResponse,
                                  &EmbeddingServiceImpl::DoListCheckpoints>},
    {"RestoreCheckpoint", Lane::kAdmin, Role::kAdmin,
     &EmbeddingServiceImpl::Proto<v1::RestoreCheckpointRequest, v1::RestoreCheckpointResponse,
                                  &EmbeddingServiceImpl::DoRestoreCheckpoint>},
};

EmbeddingServiceImpl::EmbeddingServiceImpl(std::shared_ptr<TableRegistry> registry,
                                           ServiceOptions options)
    : registry_(std::move(registry)),
      options_(std::move(options)),
      metrics_(options_.enable_metrics ? std::make_unique<ServiceMetrics>(RpcNames()) : nullptr),
      push_lane_(
          LaneOptions("push", options_.push_threads, options_.push_queue, options_.push_nice)),
      admin_lane_(LaneOptions("admin", options_.admin_threads, options_.admin_queue,
                              /*nice=*/std::max(options_.push_nice, 10))) {
  static_assert(sizeof(kUnaryMethods) / sizeof(kUnaryMethods[0]) == kNumUnary,
                "one entry per UnaryIndex");
  static_assert(static_cast<int>(kStreamGradientsRpc) == static_cast<int>(kNumUnary),
                "streams are numbered after the unary methods");
}

std::vector<std::string> EmbeddingServiceImpl::RpcNames() {
  std::vector<std::string> names;
  for (const UnaryMethod& m : kUnaryMethods) names.push_back(m.name);
  names.push_back("StreamGradients");
  names.push_back("ImportTable");
  names.push_back("ExportTable");
  return names;
}

void EmbeddingServiceImpl::RecordStream(int rpc, grpc::StatusCode code, Clock::time_point started) {
  if (metrics_ != nullptr) metrics_->RecordRpc(rpc, code, Clock::now() - started);
}

void EmbeddingServiceImpl::FinishUnary(grpc::ServerUnaryReactor* reactor, int rpc,
                                       Clock::time_point started, const absl::Status& s) {
  const grpc::Status status = ToGrpcStatus(s);
  // Counted before Finish: after it the call (and this reactor) may be gone.
  if (metrics_ != nullptr) metrics_->RecordRpc(rpc, status.error_code(), Clock::now() - started);
  reactor->Finish(status);
}

EmbeddingServiceImpl::EmbeddingServiceImpl(std::shared_ptr<TableRegistry> registry,
                                           RequestLimits limits)
    : EmbeddingServiceImpl(std::move(registry), [&] {
        ServiceOptions options;
        options.limits = limits;
        return options;
      }()) {}

EmbeddingServiceImpl::~EmbeddingServiceImpl() { Shutdown(); }

void EmbeddingServiceImpl::Shutdown() {
  admin_lane_.Shutdown();
  push_lane_.Shutdown();
}

template <typename Req, typename Resp, absl::Status (EmbeddingServiceImpl::*Do)(const Req&, Resp*)>
absl::Status EmbeddingServiceImpl::Proto(const Raw& in, Raw* out, const Cancelled& cancelled) {
  Req req;
  RETURN_IF_ERROR(ParseRequest(in, &req));
  Resp resp;
  RETURN_IF_ERROR((this->*Do)(req, &resp));
  return SerializeResponse(resp, options_.limits, out);
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::Answer(grpc::CallbackServerContext* ctx,
                                                       const Raw* in, Raw* out,
                                                       const UnaryMethod& method) {
  // With metrics off, no clock is read: the hot path pays the null check.
  const Clock::time_point started = metrics_ != nullptr ? Clock::now() : Clock::time_point();
  const int rpc = static_cast<int>(&method - kUnaryMethods);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status s = Authorize(ctx, method.name, method.role); !s.ok()) {
    FinishUnary(reactor, rpc, started, s);
    return reactor;
  }
  if (method.lane == Lane::kInline) {
    FinishUnary(reactor, rpc, started, (this->*method.handler)(*in, out, NeverCancelled));
    return reactor;
  }
  internal::BoundedExecutor& lane = method.lane == Lane::kPush ? push_lane_ : admin_lane_;
  const bool queued =
      lane.TrySubmit([this, ctx, in, out, reactor, &method, &lane, rpc, started](bool stopping) {
        absl::Status s;
        if (stopping) {
          s = absl::UnavailableError("the server is shutting down; the call did not run");
        } else if (ctx->IsCancelled()) {
          s = absl::CancelledError("the call was cancelled before it ran; nothing changed");
        } else {
          s = (this->*method.handler)(
              *in, out, [ctx, &lane] { return ctx->IsCancelled() || lane.stopping(); });
        }
        FinishUnary(reactor, rpc, started, s);
      });
  if (!queued) {
    FinishUnary(reactor, rpc, started,
                lane.stopping()
                    ? absl::UnavailableError("the server is shutting down")
                    : absl::ResourceExhaustedError(absl::StrCat(
                          method.name, ": the ", method.lane == Lane::kPush ? "push" : "admin",
                          " queue is full (", lane.max_queue(), " calls waiting); retry later")));
  }
  return reactor;
}

absl::Status EmbeddingServiceImpl::Authorize(grpc::CallbackServerContext* ctx,
                                             absl::string_view method, Role need) const {
  if (options_.authorizer == nullptr) return absl::OkStatus();
  const auto& metadata = ctx->client_metadata();
  const auto it = metadata.find("authorization");
  const absl::string_view value = it == metadata.end()
                                      ? absl::string_view()
                                      : absl::string_view(it->second.data(), it->second.size());
  ASSIGN_OR_RETURN(TokenAuthorizer::Identity who, options_.authorizer->Authenticate(value));
  if (who.role < need) {
    return absl::PermissionDeniedError(absl::StrCat("role '", RoleName(who.role), "' (", who.name,
                                                    ") may not call ", method, "; it needs '",
                                                    RoleName(need), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EmbeddingServiceImpl::CallForTest(absl::string_view method,
                                                              absl::string_view request) {
  for (const UnaryMethod& m : kUnaryMethods) {
    if (method != m.name) continue;
    grpc::Slice in_slice(request.data(), request.size());
    Raw in(&in_slice, 1), out;
    RETURN_IF_ERROR((this->*m.handler)(in, &out, NeverCancelled));
    std::vector<grpc::Slice> slices;
    if (!out.Dump(&slices).ok()) return absl::InternalError("cannot read the answer");
    std::string bytes;
    for (const grpc::Slice& s : slices)
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    return bytes;
  }
  return absl::UnimplementedError(absl::StrCat("no unary method '", method, "'"));
}

#define EMBEDSERVE_UNARY(Name)                                                           \
  grpc::ServerUnaryReactor* EmbeddingServiceImpl::Name(grpc::CallbackServerContext* ctx, \
                                                       const Raw* req, Raw* resp) {      \
    return Answer(ctx, req, resp, kUnaryMethods[k##Name]);                               \
  }
EMBEDSERVE_UNARY(CreateTable)
EMBEDSERVE_UNARY(DropTable)
EMBEDSERVE_UNARY(ListTables)
EMBEDSERVE_UNARY(DescribeTable)
EMBEDSERVE_UNARY(AssignRows)
EMBEDSERVE_UNARY(PushGradients)
EMBEDSERVE_UNARY(UpdateTable)
EMBEDSERVE_UNARY(GetOptimizerState)
EMBEDSERVE_UNARY(LoadTable)
EMBEDSERVE_UNARY(CreateCheckpoint)
EMBEDSERVE_UNARY(ListCheckpoints)
EMBEDSERVE_UNARY(RestoreCheckpoint)
#undef EMBEDSERVE_UNARY

// The reads may wait for a trainer's pushes (lookup_calls.cc).
grpc::ServerUnaryReactor* EmbeddingServiceImpl::Lookup(grpc::CallbackServerContext* ctx,
                                                       const Raw* req, Raw* resp) {
  return AnswerRead(ctx, req, resp, kUnaryMethods[kLookup]);
}
grpc::ServerUnaryReactor* EmbeddingServiceImpl::LookupPooled(grpc::CallbackServerContext* ctx,
                                                             const Raw* req, Raw* resp) {
  return AnswerRead(ctx, req, resp, kUnaryMethods[kLookupPooled]);
}

absl::Duration EmbeddingServiceImpl::PushPause(absl::Duration push_took) const {
  const double share = options_.push_share_under_lookups;
  if (share <= 0 || share >= 1) return absl::ZeroDuration();
  const int64_t since =
      absl::GetCurrentTimeNanos() - last_lookup_ns_.load(std::memory_order_relaxed);
  if (since > 20'000'000) return absl::ZeroDuration();  // no lookup in the last 20 ms
  // Busy `push_took`, then idle so that busy / (busy + idle) = share.
  return std::min(push_took * ((1 - share) / share), absl::Milliseconds(50));
}

absl::Status EmbeddingServiceImpl::DoAssignRows(const v1::AssignRowsRequest& req,
                                                v1::AssignRowsResponse* resp) {
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), options_.limits));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> values,
                   FloatsFromBytes(req.values(), "values", &scratch));
  ASSIGN_OR_RETURN(int64_t version, table->AssignRows(IdSpan(req.ids()), values));
  resp->set_version(version);
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::ApplyPush(const v1::PushRequest& req, v1::PushResponse* resp) {
  resp->set_sequence(req.sequence());
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), options_.limits));
  EmbeddingTable::PushOrigin origin;
  if (!req.trainer().empty()) origin = {req.trainer(), req.sequence()};
  // Before the table is looked up: a bad origin is named first.
  RETURN_IF_ERROR(EmbeddingTable::CheckPushOrigin(origin));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> grads, FloatsFromBytes(req.grads(), "grads", &scratch));
  ASSIGN_OR_RETURN(EmbeddingTable::PushResult result,
                   table->ApplyGradients(IdSpan(req.ids()), grads, origin));
  resp->set_version(result.version);
  resp->set_rows_applied(result.rows_applied);
  resp->set_duplicate(result.duplicate);
  if (metrics_ != nullptr) metrics_->AddRowsPushed(table->name(), req.ids_size());
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoGetOptimizerState(const v1::OptimizerStateRequest& req,
                                                       v1::OptimizerStateResponse* resp) {
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), options_.limits));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  // Sized before anything is read: state floats per id times ids.
  int64_t answer_bytes = 0;
  RETURN_IF_ERROR(AddResponseBytes(req.ids_size(),
                                   StateFloatsPerRow(table->spec().optimizer.kind, table->dim()),
                                   options_.limits, &answer_bytes));
  ASSIGN_OR_RETURN(std::vector<EmbeddingTable::StateSlot> slots,
                   table->ReadOptimizerState(IdSpan(req.ids())));
  StateSlotsToProto(slots, req.ids_size(), resp);
  resp->set_step(table->optimizer_step());
  return absl::OkStatus();
}

}  // namespace embedserve
