#include "server/embedding_service.h"

#include <fcntl.h>
#include <grpcpp/alarm.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "core/lookup_plan.h"
#include "base/status_macros.h"
#include "proto/grpc_status.h"
#include "server/conversions.h"
#include "server/internal/log.h"
#include "server/server_metrics.h"
#include "storage/pretrained.h"

namespace embedserve {
namespace {

using Raw = grpc::ByteBuffer;

absl::Status WithQueryContext(const absl::Status& s, int q, const std::string& table) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("queries[", q, "] (table '", table, "'): ", s.message()));
}

template <typename Ids>
absl::Span<const int64_t> IdSpan(const Ids& ids) {
  return absl::MakeConstSpan(ids.data(), ids.size());
}

absl::Status CheckTotalIds(int64_t total, const RequestLimits& limits) {
  if (total > limits.max_ids_per_request) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request has ", total, " ids; the limit is ", limits.max_ids_per_request));
  }
  return absl::OkStatus();
}

absl::Status ResponseTooLarge(const RequestLimits& limits) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the answer would take more than ", limits.max_response_bytes,
                   " bytes (the response limit, --max_response_bytes)"));
}

// Adds rows * width values of `value_bytes` each to *total; ResourceExhausted
// past the response limit. Overflow-checked: every factor comes from the
// request.
absl::Status AddResponseBytes(int64_t rows, int64_t width, const RequestLimits& limits,
                              int64_t* total, int64_t value_bytes = sizeof(float)) {
  int64_t bytes;
  if (rows < 0 || width < 0 || __builtin_mul_overflow(rows, width, &bytes) ||
      __builtin_mul_overflow(bytes, value_bytes, &bytes) ||
      __builtin_add_overflow(*total, bytes, total) || *total > limits.max_response_bytes) {
    return ResponseTooLarge(limits);
  }
  return absl::OkStatus();
}

// Parses a raw method's request bytes.
template <typename Message>
absl::Status ParseRequest(const Raw& bytes, Message* msg) {
  Raw shared(bytes);  // shares the slices
  grpc::ProtoBufferReader reader(&shared);
  if (!msg->ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(absl::StrCat("the request is not a valid ",
                                                   Message::descriptor()->full_name(), " (",
                                                   bytes.Length(), " bytes)"));
  }
  return absl::OkStatus();
}

// Serializes an answer; ResourceExhausted past the response limit.
absl::Status SerializeResponse(const google::protobuf::Message& msg, const RequestLimits& limits,
                               Raw* out) {
  const size_t size = msg.ByteSizeLong();
  if (size > static_cast<size_t>(limits.max_response_bytes)) return ResponseTooLarge(limits);
  std::string bytes;
  msg.SerializeToString(&bytes);
  grpc::Slice slice(std::move(bytes));
  *out = Raw(&slice, 1);
  return absl::OkStatus();
}

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
    : EmbeddingServiceImpl(std::move(registry), ServiceOptions{.limits = limits}) {}

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
EMBEDSERVE_UNARY(Lookup)
EMBEDSERVE_UNARY(LookupPooled)
EMBEDSERVE_UNARY(AssignRows)
EMBEDSERVE_UNARY(PushGradients)
EMBEDSERVE_UNARY(UpdateTable)
EMBEDSERVE_UNARY(GetOptimizerState)
EMBEDSERVE_UNARY(LoadTable)
EMBEDSERVE_UNARY(CreateCheckpoint)
EMBEDSERVE_UNARY(ListCheckpoints)
EMBEDSERVE_UNARY(RestoreCheckpoint)
#undef EMBEDSERVE_UNARY

absl::Status EmbeddingServiceImpl::DoCreateTable(const v1::CreateTableRequest& req,
                                                 v1::CreateTableResponse* resp) {
  ASSIGN_OR_RETURN(TableSpec spec, SpecFromProto(req.spec()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> values,
                   FloatsFromBytes(req.initial_values(), "initial_values", &scratch));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Create(spec, values));
  TableInfoToProto(*table, resp->mutable_table());
  internal::LogInfo(absl::StrCat("created table '", table->name(), "': ", table->num_rows(), " x ",
                                 table->dim(), values.empty() ? "" : " (from values)", ", ",
                                 table->bytes_used(), " bytes"));
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoDropTable(const v1::DropTableRequest& req,
                                               v1::DropTableResponse* resp) {
  RETURN_IF_ERROR(registry_->Drop(req.name()));
  internal::LogInfo(absl::StrCat("dropped table '", req.name(), "'"));
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoListTables(const v1::ListTablesRequest& req,
                                                v1::ListTablesResponse* resp) {
  for (const auto& table : registry_->List()) TableInfoToProto(*table, resp->add_tables());
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoDescribeTable(const v1::DescribeTableRequest& req,
                                                   v1::DescribeTableResponse* resp) {
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.name()));
  TableInfoToProto(*table, resp->mutable_table());
  return absl::OkStatus();
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

absl::Duration EmbeddingServiceImpl::PushPause(absl::Duration push_took) const {
  const double share = options_.push_share_under_lookups;
  if (share <= 0 || share >= 1) return absl::ZeroDuration();
  const int64_t since =
      absl::GetCurrentTimeNanos() - last_lookup_ns_.load(std::memory_order_relaxed);
  if (since > 20'000'000) return absl::ZeroDuration();  // no lookup in the last 20 ms
  // Busy `push_took`, then idle so that busy / (busy + idle) = share.
  return std::min(push_took * ((1 - share) / share), absl::Milliseconds(50));
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
    if (query.output() != v1::FLOAT32 && query.output() != v1::FLOAT16) {
      return ctx(absl::InvalidArgumentError("output must be FLOAT32 or FLOAT16"));
    }
    PlainLookup lookup;
    lookup.ids = query.words_size() > 0 ? absl::MakeConstSpan(word_ids[q]) : IdSpan(query.ids());
    lookup.shape = IdSpan(query.shape());
    lookup.scalar = query.scalar();
    lookup.output = query.output() == v1::FLOAT16 ? OutputType::kFloat16 : OutputType::kFloat32;
    RETURN_IF_ERROR(ctx(plan.Add(*std::move(table), lookup)));
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
    absl::StatusOr<PoolingMode> mode = PoolingModeFromProto(query.mode());
    RETURN_IF_ERROR(ctx(mode.status()));
    PooledLookup lookup;
    lookup.ids = IdSpan(query.ids());
    lookup.offsets = IdSpan(query.offsets());
    lookup.include_last_offset = query.include_last_offset();
    lookup.shape = IdSpan(query.shape());
    lookup.mode = *mode;
    lookup.weights =
        absl::MakeConstSpan(query.per_sample_weights().data(), query.per_sample_weights_size());
    // The bags this answer still has room for: checked before the bounds
    // are built (a 30-byte request can ask for 500 M empty bags).
    lookup.max_bags = (options_.limits.max_response_bytes - response_bytes) /
                      ((*table)->dim() * static_cast<int64_t>(sizeof(float)));
    RETURN_IF_ERROR(ctx(plan.Add(*std::move(table), lookup)));
    RETURN_IF_ERROR(AddResponseBytes(plan.output_rows(q), plan.table(q).dim(), options_.limits,
                                     &response_bytes));
  }
  return AnswerPlan(plan, out);
}

absl::Status EmbeddingServiceImpl::AnswerPlan(const LookupPlan& plan, ResultsWriter* out) {
  for (int q = 0; q < plan.size(); ++q) {
    out->Add(plan.output_shape(q),
             plan.output(q) == OutputType::kFloat16 ? v1::FLOAT16 : v1::FLOAT32,
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

absl::Status EmbeddingServiceImpl::DoUpdateTable(const v1::UpdateTableRequest& req,
                                                 v1::UpdateTableResponse* resp) {
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.name()));
  const v1::OptimizerSpec& o = req.optimizer();
  if (o.kind() != v1::OptimizerSpec::SGD &&
      static_cast<int>(o.kind()) != static_cast<int>(table->spec().optimizer.kind)) {
    return absl::InvalidArgumentError("the optimizer kind is fixed at creation");
  }
  if (o.has_initial_accumulator_value()) {
    return absl::InvalidArgumentError("initial_accumulator_value is fixed at creation");
  }
  EmbeddingTable::Settings settings;
  if (req.has_frozen()) settings.frozen = req.frozen();
  if (o.has_lr()) settings.lr = o.lr();
  if (o.has_lr_decay()) settings.lr_decay = o.lr_decay();
  if (o.has_eps()) settings.eps = o.eps();
  if (o.has_beta1()) settings.beta1 = o.beta1();
  if (o.has_beta2()) settings.beta2 = o.beta2();
  RETURN_IF_ERROR(table->UpdateSettings(settings));
  TableInfoToProto(*table, resp->mutable_table());
  internal::LogInfo(absl::StrCat("updated table '", table->name(), "'"));
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoLoadTable(const v1::LoadTableRequest& req,
                                               v1::LoadTableResponse* resp,
                                               const Cancelled& cancelled, bool confined,
                                               const std::string& display_path) {
  absl::Status s = LoadTableFrom(req, resp, cancelled, confined);
  if (s.ok() || display_path.empty()) return s;
  return absl::Status(s.code(), absl::StrReplaceAll(s.message(), {{req.path(), display_path}}));
}

absl::Status EmbeddingServiceImpl::HandleLoadTable(const Raw& in, Raw* out,
                                                   const Cancelled& cancelled) {
  v1::LoadTableRequest req;
  RETURN_IF_ERROR(ParseRequest(in, &req));
  v1::LoadTableResponse resp;
  RETURN_IF_ERROR(DoLoadTable(req, &resp, cancelled, /*confined=*/true));
  return SerializeResponse(resp, options_.limits, out);
}

absl::Status EmbeddingServiceImpl::LoadTableFrom(const v1::LoadTableRequest& req,
                                                 v1::LoadTableResponse* resp,
                                                 const Cancelled& cancelled, bool confined) {
  if (confined && options_.load_dir.empty()) {
    return absl::FailedPreconditionError(
        "LoadTable is off: the server reads files only beneath --load_dir, which is not set "
        "(ImportTable uploads a file instead)");
  }
  PretrainedFormat format;
  switch (req.format()) {
    case v1::NPY:
      format = PretrainedFormat::kNpy;
      break;
    case v1::WORD2VEC_TEXT:
      format = PretrainedFormat::kWord2VecText;
      break;
    case v1::WORD2VEC_BINARY:
      format = PretrainedFormat::kWord2VecBinary;
      break;
    case v1::GLOVE_TEXT:
      format = PretrainedFormat::kGloveText;
      break;
    case v1::RAW_F32:
      format = PretrainedFormat::kRaw;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown file format ", req.format()));
  }
  // Parse what the spec needs first: a bad name or optimizer fails before
  // the file is read.
  v1::TableSpec proto;
  proto.set_name(req.name());
  proto.set_num_embeddings(1);
  proto.set_embedding_dim(1);
  *proto.mutable_optimizer() = req.optimizer();
  ASSIGN_OR_RETURN(TableSpec spec, SpecFromProto(proto));
  const auto started = absl::Now();
  LoadOptions load;
  load.raw_dim = req.raw_dim();
  load.cancelled = cancelled;
  if (confined) load.root = options_.load_dir;
  ASSIGN_OR_RETURN(std::unique_ptr<PretrainedMatrix> matrix,
                   LoadPretrained(req.path(), format, load));
  // A call abandoned while the file was read stores nothing.
  if (cancelled()) {
    return absl::CancelledError(absl::StrCat(
        "loading ", req.path(), " was cancelled (client or shutdown); nothing stored"));
  }
  spec.num_embeddings = matrix->rows();
  spec.embedding_dim = matrix->dim();
  spec.frozen = req.freeze();
  if (req.has_padding_idx()) spec.padding_idx = req.padding_idx();
  if (req.has_max_norm()) spec.max_norm = req.max_norm();
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> table =
      registry_->Load(spec, matrix->values(), matrix->words(), req.replace());
  if (!table.ok()) {
    return absl::Status(table.status().code(),
                        absl::StrCat(req.path(), ": ", table.status().message()));
  }
  TableInfoToProto(**table, resp->mutable_table());
  internal::LogInfo(absl::StrCat("loaded table '", req.name(), "' from ", req.path(), ": ",
                                 matrix->rows(), " x ", matrix->dim(), " in ",
                                 absl::FormatDuration(absl::Now() - started)));
  return absl::OkStatus();
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
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> grads, FloatsFromBytes(req.grads(), "grads", &scratch));
  ASSIGN_OR_RETURN(EmbeddingTable::PushResult result,
                   table->ApplyGradients(IdSpan(req.ids()), grads));
  resp->set_version(result.version);
  resp->set_rows_applied(result.rows_applied);
  if (metrics_ != nullptr) metrics_->AddRowsPushed(table->name(), req.ids_size());
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoGetOptimizerState(const v1::OptimizerStateRequest& req,
                                                       v1::OptimizerStateResponse* resp) {
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), options_.limits));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  // Sized before anything is read: state floats per id times ids.
  const OptimizerKind kind = table->spec().optimizer.kind;
  int64_t answer_bytes = 0;
  RETURN_IF_ERROR(AddResponseBytes(req.ids_size(),
                                   ElementStateSlots(kind) * table->dim() + RowStateSlots(kind),
                                   options_.limits, &answer_bytes));
  ASSIGN_OR_RETURN(std::vector<EmbeddingTable::StateSlot> slots,
                   table->ReadOptimizerState(IdSpan(req.ids())));
  for (const auto& slot : slots) {
    auto* out = resp->add_slots();
    out->set_name(slot.name);
    out->add_shape(req.ids_size());
    if (slot.width != 1) out->add_shape(slot.width);
    out->set_values(slot.values.data(), slot.values.size() * sizeof(float));
  }
  resp->set_step(table->optimizer_step());
  return absl::OkStatus();
}

namespace {

void CheckpointToProto(const CheckpointInfo& info, v1::Checkpoint* p) {
  p->set_name(info.name);
  p->set_created_unix_ms(info.created_unix_ms);
  p->set_bytes(info.bytes);
  for (const auto& t : info.tables) p->add_tables(t);
}

}  // namespace

absl::Status EmbeddingServiceImpl::DoCreateCheckpoint(const v1::CreateCheckpointRequest& req,
                                                      v1::CreateCheckpointResponse* resp) {
  RETURN_IF_ERROR(registry_->CreateCheckpoint(req.name()));
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, registry_->ListCheckpoints());
  for (const auto& c : all) {
    if (c.name == req.name()) CheckpointToProto(c, resp->mutable_checkpoint());
  }
  internal::LogInfo(absl::StrCat("created checkpoint '", req.name(), "'"));
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoListCheckpoints(const v1::ListCheckpointsRequest& req,
                                                     v1::ListCheckpointsResponse* resp) {
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, registry_->ListCheckpoints());
  for (const auto& c : all) CheckpointToProto(c, resp->add_checkpoints());
  return absl::OkStatus();
}

absl::Status EmbeddingServiceImpl::DoRestoreCheckpoint(const v1::RestoreCheckpointRequest& req,
                                                       v1::RestoreCheckpointResponse* resp) {
  std::vector<std::string> names(req.tables().begin(), req.tables().end());
  ASSIGN_OR_RETURN(std::vector<std::shared_ptr<EmbeddingTable>> restored,
                   registry_->RestoreCheckpoint(req.name(), names));
  for (const auto& t : restored) TableInfoToProto(*t, resp->add_tables());
  internal::LogInfo(
      absl::StrCat("restored ", restored.size(), " tables from checkpoint '", req.name(), "'"));
  return absl::OkStatus();
}

namespace {

// StreamGradients: one push in flight per stream, applied on the push lane,
// answered in order.
class GradientStream final : public grpc::ServerBidiReactor<Raw, Raw> {
 public:
  explicit GradientStream(EmbeddingServiceImpl* service)
      : service_(service), rpc_started_(EmbeddingServiceImpl::Clock::now()) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or went away): every push has been answered
      End(grpc::Status::OK);
      return;
    }
    ++received_;
    started_ = absl::Now();
    // Parsed and applied on the push lane: a 1 MiB push message costs
    // about a millisecond to parse, which lookups should not wait behind.
    internal::BoundedExecutor& lane = service_->push_lane();
    const bool queued = lane.TrySubmit([this](bool stopping) {
      if (stopping) {
        End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
        return;
      }
      response_.Clear();
      request_.Clear();
      if (absl::Status s = ParseRequest(in_, &request_); !s.ok()) {
        // The pushes behind it are still read and applied.
        Reply(absl::InvalidArgumentError(
            absl::StrCat("message ", received_, " of the stream: ", s.message())));
        return;
      }
      Reply(service_->ApplyPush(request_, &response_));
    });
    if (!queued) {
      if (lane.stopping()) {
        End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
        return;
      }
      response_.Clear();
      Reply(absl::ResourceExhaustedError(absl::StrCat("the push queue is full (", lane.max_queue(),
                                                      " pushes waiting); push not applied")));
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed while answering"));
      return;
    }
    // Lookups first: while they are coming in, this stream reads its next
    // push only after a pause in proportion to what the last one took, so
    // that HTTP/2 flow control slows the trainer down (and its transport
    // work with it) instead of the lookups.
    const absl::Duration pause = service_->PushPause(absl::Now() - started_);
    if (pause <= absl::ZeroDuration()) {
      StartRead(&in_);
      return;
    }
    alarm_.Set(absl::ToChronoTime(absl::Now() + pause), [this](bool) { StartRead(&in_); });
  }

  void OnDone() override {
    service_->RecordStream(EmbeddingServiceImpl::kStreamGradientsRpc, code_, rpc_started_);
    delete this;
  }

 private:
  void End(const grpc::Status& s) {
    code_ = s.error_code();
    Finish(s);
  }

  void Reply(const absl::Status& s) {
    if (!s.ok()) {
      response_.set_code(static_cast<int>(s.code()));
      response_.set_error(std::string(s.message()));
    }
    std::string bytes;
    response_.SerializeToString(&bytes);
    grpc::Slice slice(std::move(bytes));
    out_ = Raw(&slice, 1);
    StartWrite(&out_);
  }

  EmbeddingServiceImpl* const service_;
  const EmbeddingServiceImpl::Clock::time_point rpc_started_;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  Raw in_, out_;
  int64_t received_ = 0;
  absl::Time started_;
  grpc::Alarm alarm_;
  v1::PushRequest request_;
  v1::PushResponse response_;
};

// ImportTable: stages the upload in a file of its own, then loads it on the
// admin lane. The staged file is removed whatever happens (OnDone).
class ImportReader final : public grpc::ServerReadReactor<Raw> {
 public:
  ImportReader(EmbeddingServiceImpl* service, grpc::CallbackServerContext* ctx, Raw* resp)
      : service_(service),
        ctx_(ctx),
        resp_(resp),
        rpc_started_(EmbeddingServiceImpl::Clock::now()) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (ctx_->IsCancelled()) {  // an interrupted upload is never loaded
        FinishWith(absl::CancelledError("the upload was cancelled; nothing stored"));
      } else {
        Load();
      }
      return;
    }
    ++received_;
    v1::ImportChunk chunk;
    if (absl::Status s = ParseRequest(in_, &chunk); !s.ok()) {
      FinishWith(absl::InvalidArgumentError(
          absl::StrCat("message ", received_, " of the upload: ", s.message())));
      return;
    }
    if (received_ == 1) {
      request_ = chunk.request();
      display_ = request_.path().empty() ? "upload" : request_.path();
      if (absl::Status s = CreateStagingFile(); !s.ok()) {
        FinishWith(s);
        return;
      }
    }
    const std::string& data = chunk.data();
    const int64_t limit = service_->options().limits.max_upload_bytes;
    if (limit > 0 && bytes_ + static_cast<int64_t>(data.size()) > limit) {
      FinishWith(absl::ResourceExhaustedError(absl::StrCat(
          "the upload is larger than ", limit, " bytes (--max_upload_bytes); nothing stored")));
      return;
    }
    for (size_t done = 0; done < data.size();) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : ENOSPC;
        FinishWith(absl::ResourceExhaustedError(absl::StrCat(
            "cannot stage the upload: ", strerror(err), " (", bytes_ + done, " bytes written)")));
        return;
      }
      done += static_cast<size_t>(n);
    }
    bytes_ += static_cast<int64_t>(data.size());
    StartRead(&in_);
  }

  void OnDone() override {
    RemoveStagingFile();
    service_->RecordStream(EmbeddingServiceImpl::kImportTableRpc, code_, rpc_started_);
    delete this;
  }

 private:
  absl::Status CreateStagingFile() {
    std::string dir = service_->options().upload_dir;
    if (dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    std::string name = absl::StrCat(dir, "/embedserve-import-XXXXXX");
    fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd_ < 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot stage the upload in ", dir, ": ", strerror(errno)));
    }
    staged_ = name;
    return absl::OkStatus();
  }

  void RemoveStagingFile() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!staged_.empty()) ::unlink(staged_.c_str());
    staged_.clear();
  }

  void FinishWith(const absl::Status& s) {
    RemoveStagingFile();
    const grpc::Status status = ToGrpcStatus(s);
    code_ = status.error_code();
    Finish(status);
  }

  void Load() {
    if (received_ == 0) {
      FinishWith(absl::InvalidArgumentError("the import stream was empty"));
      return;
    }
    ::close(fd_);
    fd_ = -1;
    request_.set_path(staged_);
    internal::BoundedExecutor& lane = service_->admin_lane();
    const bool queued = lane.TrySubmit([this, &lane](bool stopping) {
      if (stopping) {
        FinishWith(absl::UnavailableError("the server is shutting down; nothing stored"));
        return;
      }
      v1::LoadTableResponse resp;
      absl::Status s = service_->DoLoadTable(
          request_, &resp, [this, &lane] { return ctx_->IsCancelled() || lane.stopping(); },
          /*confined=*/false, display_);
      if (s.ok()) s = SerializeResponse(resp, service_->options().limits, resp_);
      FinishWith(s);
    });
    if (!queued) {
      FinishWith(lane.stopping() ? absl::UnavailableError("the server is shutting down")
                                 : absl::ResourceExhaustedError(
                                       absl::StrCat("the admin queue is full (", lane.max_queue(),
                                                    " calls waiting); retry the upload later")));
    }
  }

  EmbeddingServiceImpl* const service_;
  grpc::CallbackServerContext* const ctx_;
  Raw* const resp_;
  const EmbeddingServiceImpl::Clock::time_point rpc_started_;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  Raw in_;
  v1::LoadTableRequest request_;
  std::string display_, staged_;
  int64_t received_ = 0, bytes_ = 0;
  int fd_ = -1;
};

// ExportTable: the table's rows in chunks, each read when the previous one
// is sent (memory stays one chunk).
class ExportWriter final : public grpc::ServerWriteReactor<Raw> {
 public:
  ExportWriter(EmbeddingServiceImpl* service, std::shared_ptr<EmbeddingTable> table,
               int64_t rows_per_chunk)
      : service_(service),
        rpc_started_(EmbeddingServiceImpl::Clock::now()),
        table_(std::move(table)),
        per_chunk_(rows_per_chunk) {
    TableInfoToProto(*table_, chunk_.mutable_table());
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "export cancelled"));
      return;
    }
    chunk_.clear_table();
    Next();
  }

  void OnDone() override {
    service_->RecordStream(EmbeddingServiceImpl::kExportTableRpc, code_, rpc_started_);
    delete this;
  }

 private:
  void End(const grpc::Status& s) {
    code_ = s.error_code();
    Finish(s);
  }

  void Next() {
    const int64_t n = std::min(per_chunk_, table_->num_rows() - row_);
    if (n <= 0) {
      End(grpc::Status::OK);
      return;
    }
    chunk_.set_first_row(row_);
    chunk_.set_num_rows(n);
    std::string* values = chunk_.mutable_values();
    values->resize(static_cast<size_t>(n * table_->dim()) * sizeof(float));
    const absl::Status s = table_->CopyRows(row_, n, reinterpret_cast<float*>(values->data()));
    if (!s.ok()) {
      End(ToGrpcStatus(s));
      return;
    }
    row_ += n;
    std::string bytes;
    chunk_.SerializeToString(&bytes);
    grpc::Slice slice(std::move(bytes));
    out_ = Raw(&slice, 1);
    StartWrite(&out_);
  }

  EmbeddingServiceImpl* const service_;
  const EmbeddingServiceImpl::Clock::time_point rpc_started_;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  const std::shared_ptr<EmbeddingTable> table_;
  const int64_t per_chunk_;
  int64_t row_ = 0;
  v1::ExportChunk chunk_;
  Raw out_;
};

// A streaming call that fails before it starts.
template <typename Reactor>
class Failed final : public Reactor {
 public:
  Failed(EmbeddingServiceImpl* service, int rpc, const absl::Status& s)
      : service_(service), rpc_(rpc), started_(EmbeddingServiceImpl::Clock::now()) {
    const grpc::Status status = ToGrpcStatus(s);
    code_ = status.error_code();
    this->Finish(status);
  }
  void OnDone() override {
    service_->RecordStream(rpc_, code_, started_);
    delete this;
  }

 private:
  EmbeddingServiceImpl* const service_;
  const int rpc_;
  const EmbeddingServiceImpl::Clock::time_point started_;
  grpc::StatusCode code_;
};

}  // namespace

grpc::ServerBidiReactor<Raw, Raw>* EmbeddingServiceImpl::StreamGradients(
    grpc::CallbackServerContext* ctx) {
  if (absl::Status s = Authorize(ctx, "StreamGradients", Role::kTrainer); !s.ok()) {
    return new Failed<grpc::ServerBidiReactor<Raw, Raw>>(this, kStreamGradientsRpc, s);
  }
  return new GradientStream(this);
}

grpc::ServerReadReactor<Raw>* EmbeddingServiceImpl::ImportTable(grpc::CallbackServerContext* ctx,
                                                                Raw* resp) {
  if (absl::Status s = Authorize(ctx, "ImportTable", Role::kAdmin); !s.ok()) {
    return new Failed<grpc::ServerReadReactor<Raw>>(this, kImportTableRpc, s);
  }
  return new ImportReader(this, ctx, resp);
}

grpc::ServerWriteReactor<Raw>* EmbeddingServiceImpl::ExportTable(grpc::CallbackServerContext* ctx,
                                                                 const Raw* req) {
  if (absl::Status s = Authorize(ctx, "ExportTable", Role::kAdmin); !s.ok()) {
    return new Failed<grpc::ServerWriteReactor<Raw>>(this, kExportTableRpc, s);
  }
  v1::ExportTableRequest request;
  if (absl::Status s = ParseRequest(*req, &request); !s.ok()) {
    return new Failed<grpc::ServerWriteReactor<Raw>>(this, kExportTableRpc, s);
  }
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(request.name());
  if (!table.ok()) {
    return new Failed<grpc::ServerWriteReactor<Raw>>(this, kExportTableRpc, table.status());
  }
  const int64_t per_chunk = request.rows_per_chunk() > 0 ? request.rows_per_chunk() : 4096;
  // Keep each chunk well inside the message and answer limits.
  const int64_t chunk_bytes =
      std::min<int64_t>(int64_t{16} << 20, options_.limits.max_response_bytes);
  const int64_t max_rows =
      std::max<int64_t>(1, chunk_bytes / ((*table)->dim() * static_cast<int64_t>(sizeof(float))));
  return new ExportWriter(this, *std::move(table), std::min(per_chunk, max_rows));
}

}  // namespace embedserve
