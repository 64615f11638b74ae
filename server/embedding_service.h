#ifndef EMBEDSERVE_SERVER_EMBEDDING_SERVICE_H_
#define EMBEDSERVE_SERVER_EMBEDDING_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/lookup_plan.h"
#include "core/table_registry.h"
#include "embedserve/v1/embedserve.grpc.pb.h"
#include "server/auth.h"
#include "server/internal/bounded_executor.h"
#include "server/results_writer.h"

namespace embedserve {

class ServiceMetrics;

// Per-request limits; a request over one gets RESOURCE_EXHAUSTED before
// anything is allocated for its answer.
struct RequestLimits {
  int64_t max_ids_per_request = 4'000'000;  // ids over all queries
  // Bytes of any one answer: lookup values, optimizer state, table lists.
  int64_t max_response_bytes = int64_t{256} << 20;
  // Bytes of one ImportTable upload.
  int64_t max_upload_bytes = int64_t{4} << 30;
};

struct ServiceOptions {
  RequestLimits limits;
  // Who may call what (see server/auth.h). Null: no tokens are asked for and
  // every caller may do everything (only allowed on loopback, or with
  // --insecure: see ServerOptions).
  std::shared_ptr<const TokenAuthorizer> authorizer;
  // LoadTable reads files only beneath this directory (paths relative to it,
  // no symbolic links). Empty: LoadTable is off (ImportTable uploads still
  // work).
  std::string load_dir;
  // Where ImportTable stages uploads (a file per upload, removed when the
  // call ends, whatever the outcome). Empty: $TMPDIR or /tmp.
  std::string upload_dir;
  // The admin lane: loads, imports, creates, drops, checkpoints and
  // restores run here, never on gRPC's threads, at lower CPU priority.
  // A call that finds the queue full is RESOURCE_EXHAUSTED.
  int admin_threads = 1;
  int admin_queue = 16;
  // The push lane: pushes and assigns run on these threads at nice
  // push_nice, so that lookups (on gRPC's threads, nice 0) come first when
  // both want the CPU. push_threads 0 = one per core.
  int push_threads = 0;
  int push_queue = 4096;
  int push_nice = 10;
  // While lookups are coming in (one in the last 20 ms), a push stream
  // reads its next push only after a pause that keeps it busy at most this
  // share of the time; HTTP/2 flow control then slows the trainer. 1 = no
  // pause (pushes compete with lookups as equals).
  double push_share_under_lookups = 0.5;
  // The longest a lookup with a trainer's min_sequence (LookupQuery) waits
  // for that push to be applied (and never past the call's deadline); then
  // DEADLINE_EXCEEDED. The wait holds no thread (see lookup_calls.cc).
  absl::Duration max_sequence_wait = absl::Seconds(10);
  // Count calls (per method and status, with latency) and rows looked up
  // and pushed per table (see ServiceMetrics and metrics()). Off: the hot
  // path pays one null check.
  bool enable_metrics = false;
};

// embedserve.v1.EmbeddingService on gRPC's callback API. Every method is raw
// (bytes in, bytes out): requests are parsed here, so that a malformed one
// is INVALID_ARGUMENT naming the message type (gRPC's own parse failure
// answers UNIMPLEMENTED with no message), and lookups gather straight into
// the bytes gRPC sends (ResultsWriter).
//
// Where each call runs:
//  * lookups, describe, list: inline on the gRPC thread that got them
//    (short, memory-bound; a thread hop would cost more than it saves);
//  * pushes and assigns: the push lane (see ServiceOptions);
//  * everything slow: the admin lane. Long work there polls for the call's
//    cancellation and for Shutdown.
// A multi-query request is validated whole (tables, shapes, ids, offsets,
// weights, answer size) before any query runs, so that a failed request
// changes nothing.
//
// Thread-safe; the registry must outlive the service.
namespace internal {

// Stacks gRPC's per-method mixins on a base: Mixins<A, B>::Of<Base> is
// A<B<Base>>.
template <template <class> class... Mixins>
struct Stack;
template <>
struct Stack<> {
  template <class Base>
  using Of = Base;
};
template <template <class> class First, template <class> class... Rest>
struct Stack<First, Rest...> {
  template <class Base>
  using Of = First<typename Stack<Rest...>::template Of<Base>>;
};

using Service = v1::EmbeddingService;
// Every method of the service in its raw (ByteBuffer) form.
using RawEmbeddingService = Stack<
    Service::WithRawCallbackMethod_CreateTable, Service::WithRawCallbackMethod_DropTable,
    Service::WithRawCallbackMethod_ListTables, Service::WithRawCallbackMethod_DescribeTable,
    Service::WithRawCallbackMethod_Lookup, Service::WithRawCallbackMethod_LookupPooled,
    Service::WithRawCallbackMethod_AssignRows, Service::WithRawCallbackMethod_PushGradients,
    Service::WithRawCallbackMethod_StreamGradients, Service::WithRawCallbackMethod_UpdateTable,
    Service::WithRawCallbackMethod_GetOptimizerState, Service::WithRawCallbackMethod_LoadTable,
    Service::WithRawCallbackMethod_ImportTable, Service::WithRawCallbackMethod_ExportTable,
    Service::WithRawCallbackMethod_CreateCheckpoint, Service::WithRawCallbackMethod_ListCheckpoints,
    Service::WithRawCallbackMethod_RestoreCheckpoint>::Of<Service::Service>;

}  // namespace internal

class EmbeddingServiceImpl final : public internal::RawEmbeddingService {
 public:
  // Starts the admin and push lanes.
  EmbeddingServiceImpl(std::shared_ptr<TableRegistry> registry, ServiceOptions options = {});
  EmbeddingServiceImpl(std::shared_ptr<TableRegistry> registry, RequestLimits limits);
  ~EmbeddingServiceImpl() override;

  using Raw = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* CreateTable(grpc::CallbackServerContext* ctx, const Raw* req,
                                        Raw* resp) override;
  grpc::ServerUnaryReactor* DropTable(grpc::CallbackServerContext* ctx, const Raw* req,
                                      Raw* resp) override;
  grpc::ServerUnaryReactor* ListTables(grpc::CallbackServerContext* ctx, const Raw* req,
                                       Raw* resp) override;
  grpc::ServerUnaryReactor* DescribeTable(grpc::CallbackServerContext* ctx, const Raw* req,
                                          Raw* resp) override;
  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx, const Raw* req,
                                   Raw* resp) override;
  grpc::ServerUnaryReactor* LookupPooled(grpc::CallbackServerContext* ctx, const Raw* req,
                                         Raw* resp) override;
  grpc::ServerUnaryReactor* AssignRows(grpc::CallbackServerContext* ctx, const Raw* req,
                                       Raw* resp) override;
  grpc::ServerUnaryReactor* PushGradients(grpc::CallbackServerContext* ctx, const Raw* req,
                                          Raw* resp) override;
  // Pushes are applied and answered one at a time, in order; a failed push
  // (including one that does not parse) is answered with its code and
  // message and the stream goes on.
  grpc::ServerBidiReactor<Raw, Raw>* StreamGradients(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* UpdateTable(grpc::CallbackServerContext* ctx, const Raw* req,
                                        Raw* resp) override;
  grpc::ServerUnaryReactor* GetOptimizerState(grpc::CallbackServerContext* ctx, const Raw* req,
                                              Raw* resp) override;
  grpc::ServerUnaryReactor* LoadTable(grpc::CallbackServerContext* ctx, const Raw* req,
                                      Raw* resp) override;
  // The upload is staged in ServiceOptions::upload_dir (at most
  // max_upload_bytes), then loaded on the admin lane. A cancelled upload
  // stores nothing; the staged file is removed in every case.
  grpc::ServerReadReactor<Raw>* ImportTable(grpc::CallbackServerContext* ctx, Raw* resp) override;
  grpc::ServerWriteReactor<Raw>* ExportTable(grpc::CallbackServerContext* ctx,
                                             const Raw* req) override;
  grpc::ServerUnaryReactor* CreateCheckpoint(grpc::CallbackServerContext* ctx, const Raw* req,
                                             Raw* resp) override;
  grpc::ServerUnaryReactor* ListCheckpoints(grpc::CallbackServerContext* ctx, const Raw* req,
                                            Raw* resp) override;
  grpc::ServerUnaryReactor* RestoreCheckpoint(grpc::CallbackServerContext* ctx, const Raw* req,
                                              Raw* resp) override;

  // Runs one unary method ("Lookup", "CreateTable", ...: the names of the
  // proto's unary rpcs) on serialized request bytes exactly as its gRPC
  // handler does (parse, validate, run), synchronously on the calling
  // thread, and returns the serialized response. For fuzzing and tests.
  // Unimplemented for an unknown method name.
  absl::StatusOr<std::string> CallForTest(absl::string_view method, absl::string_view request);

  // Stops both lanes: queued calls are answered UNAVAILABLE, running loads
  // give up at their next check, and later calls are UNAVAILABLE. Call
  // before grpc::Server::Shutdown. Idempotent.
  void Shutdown();

  // True if the call should stop: the client cancelled or the server stops.
  using Cancelled = std::function<bool()>;
  // A unary handler: parses `in`, runs, serializes into `out`.
  using Handler = absl::Status (EmbeddingServiceImpl::*)(const Raw& in, Raw* out,
                                                         const Cancelled& cancelled);
  enum class Lane { kInline, kPush, kAdmin };

  // Loads a pretrained file (LoadTable, and ImportTable once uploaded);
  // error messages name `display_path` instead of the path read.
  // `confined`: the path comes from the client and is read beneath
  // ServiceOptions::load_dir; false for a file the server staged itself.
  absl::Status DoLoadTable(const v1::LoadTableRequest& req, v1::LoadTableResponse* resp,
                           const Cancelled& cancelled, bool confined,
                           const std::string& display_path = "");
  // One push (shared by the unary and the streaming RPC).
  absl::Status ApplyPush(const v1::PushRequest& req, v1::PushResponse* resp);

  const ServiceOptions& options() const { return options_; }
  // The service's counters; null unless ServiceOptions::enable_metrics.
  const ServiceMetrics* metrics() const { return metrics_.get(); }
  // The names the counters are kept under, indexed by RPC number: the unary
  // methods (as in kUnaryMethods), then the streams (kStreamRpcs).
  static std::vector<std::string> RpcNames();
  enum StreamRpc { kStreamGradientsRpc = 14, kImportTableRpc, kExportTableRpc };
  using Clock = std::chrono::steady_clock;
  // A stream of RPC number `rpc`, started at `started`, ended with `code`
  // (when metrics are on; else nothing).
  void RecordStream(int rpc, grpc::StatusCode code, Clock::time_point started);
  internal::BoundedExecutor& push_lane() { return push_lane_; }
  internal::BoundedExecutor& admin_lane() { return admin_lane_; }
  // How long a push stream whose last push took `push_took` (read to
  // answer) waits before reading the next one (see push_share_under_lookups).
  absl::Duration PushPause(absl::Duration push_took) const;

 private:
  struct UnaryMethod {
    const char* name;
    Lane lane;
    Role role;  // the least role that may call it
    Handler handler;
  };
  // OK if the call's token (when tokens are configured) has at least `need`;
  // Unauthenticated (no or unknown token) or PermissionDenied naming the
  // role and the call otherwise. The one place where calls are authorized.
  absl::Status Authorize(grpc::CallbackServerContext* ctx, absl::string_view method,
                         Role need) const;
  // Every unary method (defined in the .cc; indexed by its enum there).
  static const UnaryMethod kUnaryMethods[];
  // Answers a unary call: inline, or queued on the method's lane.
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, const Raw* in, Raw* out,
                                   const UnaryMethod& method);
  // Counts the call (with metrics on), then answers it with `s`.
  void FinishUnary(grpc::ServerUnaryReactor* reactor, int rpc, Clock::time_point started,
                   const absl::Status& s);
  // A Handler made of a proto Do* method.
  template <typename Req, typename Resp,
            absl::Status (EmbeddingServiceImpl::*Do)(const Req&, Resp*)>
  absl::Status Proto(const Raw& in, Raw* out, const Cancelled& cancelled);

  absl::Status HandleLookup(const Raw& in, Raw* out, const Cancelled& cancelled);
  absl::Status HandleLookupPooled(const Raw& in, Raw* out, const Cancelled& cancelled);
  // Lookup and LookupPooled: as Answer, and a request whose queries name a
  // trainer's min_sequence waits (on a grpc::Alarm, no thread held) until
  // the tables applied those pushes. Defined in lookup_calls.cc.
  struct PendingRead;
  grpc::ServerUnaryReactor* AnswerRead(grpc::CallbackServerContext* ctx, const Raw* in, Raw* out,
                                       const UnaryMethod& method);
  // Runs `read` if its sequences are applied, or answers it if its time is
  // up, or polls again later.
  void RunOrWait(std::unique_ptr<PendingRead> read);
  absl::Status HandleLoadTable(const Raw& in, Raw* out, const Cancelled& cancelled);
  absl::Status LoadTableFrom(const v1::LoadTableRequest& req, v1::LoadTableResponse* resp,
                             const Cancelled& cancelled, bool confined);

  absl::Status DoCreateTable(const v1::CreateTableRequest& req, v1::CreateTableResponse* resp);
  absl::Status DoDropTable(const v1::DropTableRequest& req, v1::DropTableResponse* resp);
  absl::Status DoListTables(const v1::ListTablesRequest& req, v1::ListTablesResponse* resp);
  absl::Status DoDescribeTable(const v1::DescribeTableRequest& req,
                               v1::DescribeTableResponse* resp);
  absl::Status DoLookup(const v1::LookupRequest& req, ResultsWriter* out);
  absl::Status DoLookupPooled(const v1::PooledRequest& req, ResultsWriter* out);
  // Sizes the answer of a validated plan, then runs it into the answer's bytes.
  absl::Status AnswerPlan(const LookupPlan& plan, ResultsWriter* out);
  absl::Status DoAssignRows(const v1::AssignRowsRequest& req, v1::AssignRowsResponse* resp);
  absl::Status DoUpdateTable(const v1::UpdateTableRequest& req, v1::UpdateTableResponse* resp);
  absl::Status DoGetOptimizerState(const v1::OptimizerStateRequest& req,
                                   v1::OptimizerStateResponse* resp);
  absl::Status DoCreateCheckpoint(const v1::CreateCheckpointRequest& req,
                                  v1::CreateCheckpointResponse* resp);
  absl::Status DoListCheckpoints(const v1::ListCheckpointsRequest& req,
                                 v1::ListCheckpointsResponse* resp);
  absl::Status DoRestoreCheckpoint(const v1::RestoreCheckpointRequest& req,
                                   v1::RestoreCheckpointResponse* resp);

  void NoteLookup();  // a lookup came in now

  const std::shared_ptr<TableRegistry> registry_;
  const ServiceOptions options_;
  const std::unique_ptr<ServiceMetrics> metrics_;  // null: metrics off

  std::atomic<int64_t> last_lookup_ns_{0};  // absl::GetCurrentTimeNanos of the last lookup
  internal::BoundedExecutor push_lane_;
  internal::BoundedExecutor admin_lane_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_EMBEDDING_SERVICE_H_
