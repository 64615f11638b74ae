#ifndef EMBEDSERVE_CLIENT_EMBEDDING_CLIENT_H_
#define EMBEDSERVE_CLIENT_EMBEDDING_CLIENT_H_

// C++ client for embedserve.v1.EmbeddingService. Every call returns the
// server's status unchanged (code and message) as an absl::Status.
//
// Thread-safe: one client may be shared by many threads (gRPC channels are).
//
// Security (README, Security): ClientOptions carries the bearer token and
// the TLS files. Every call this client makes, streams and the health check
// included, gets its grpc::ClientContext from PrepareContext, the one place
// where the token is attached.

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "embedserve/v1/embedserve.grpc.pb.h"
#include "proto/grpc_status.h"

namespace embedserve {

// A dense float32 tensor, row-major.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// One nn.EmbeddingBag query (see PooledQuery in proto/embedserve.proto).
struct BagQuery {
  std::string table;
  std::vector<int64_t> ids;
  std::vector<int64_t> offsets;  // bag starts; or use shape
  std::vector<int64_t> shape;    // [bags, bag_size] instead of offsets
  bool include_last_offset = false;
  v1::PoolingMode mode = v1::SUM;
  std::vector<float> per_sample_weights;
};

// How a client reaches a server. Plain struct; the defaults give a
// plaintext channel without a token (a loopback server without
// --tokens_file).
struct ClientOptions {
  // Deadline of each call (not of streams prepared with deadline = false).
  absl::Duration timeout = absl::Seconds(30);
  // Sent as "authorization: Bearer <token>" metadata on every call, for a
  // server started with --tokens_file. Empty: no token. Printable ASCII
  // without spaces (gRPC refuses other metadata values).
  std::string token;
  // TLS is used when any of the four tls_* fields is set.
  // PEM file of the CA(s) to verify the server's certificate with; empty
  // with TLS: gRPC's default roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, else
  // its bundled list).
  std::string tls_ca_file;
  // PEM files of this client's certificate chain and private key, for a
  // server that asks for client certificates (--tls_client_ca, mutual TLS).
  // Both or neither.
  std::string tls_cert_file, tls_key_file;
  // Verify the server's certificate against this name instead of the
  // address's host (tests; a server reached by an address its certificate
  // does not name).
  std::string tls_server_name;
};

// Told how a long transfer (ImportTable, ExportTable) proceeds, after each
// message, on the calling thread: `done` units so far of `total` (bytes of
// an import, rows of an export; total -1 when unknown).
using TransferProgress = std::function<void(int64_t done, int64_t total)>;

// Where ExportTable puts a table: Begin once with the table's info
// (table.num_rows() rows follow), then Rows with every row in order; for a
// dynamic table (table.spec().dynamic()) each Rows is preceded by Ids with
// the id of each of its rows. An error from any ends the export (the call
// is cancelled) and ExportTable returns that error unchanged.
class ExportSink {
 public:
  virtual ~ExportSink() = default;
  virtual absl::Status Begin(const v1::TableInfo& table) = 0;
  // Rows [first_row, first_row + num_rows): num_rows * embedding_dim
  // little-endian float32 values, row-major.
  virtual absl::Status Rows(int64_t first_row, int64_t num_rows, absl::string_view values) = 0;
  // A dynamic table's ids of rows [first_row, first_row + ids.size()), in
  // order (least recently updated first). The default refuses them
  // (Unimplemented): a sink that keeps rows only would lose which id each
  // row is.
  virtual absl::Status Ids(int64_t first_row, absl::Span<const int64_t> ids);
};

class EmbeddingClient {
 public:
  // `timeout` applies to each call; no token (see Connect with
  // ClientOptions for one).
  explicit EmbeddingClient(std::shared_ptr<grpc::Channel> channel,
                           absl::Duration timeout = absl::Seconds(30));
  // A plaintext channel to host:port without a token: for a server on
  // loopback without --tokens_file (tests, benchmarks, the demo).
  static std::unique_ptr<EmbeddingClient> Connect(const std::string& address,
                                                  absl::Duration timeout = absl::Seconds(30));
  // A channel to host:port as `options` say (TLS, client certificate,
  // token). Connects lazily: a server that refuses the handshake shows as
  // Unavailable on the first call (or WaitForReady). NotFound if a TLS file
  // cannot be read, InvalidArgument if one is not PEM, if only one of
  // tls_cert_file and tls_key_file is given, or if the token is malformed.
  static absl::StatusOr<std::unique_ptr<EmbeddingClient>> Connect(const std::string& address,
                                                                  const ClientOptions& options);

  // Waits until the channel is connected; Unavailable after `timeout`.
  absl::Status WaitForReady(absl::Duration timeout);

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  // Returns the serving status name: "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> CheckHealth(absl::string_view service = "");

  // `initial_values`: empty, or num_embeddings * embedding_dim floats.
  // `timeout`: the call's deadline; unset, the client's timeout plus the
  // table's bytes at 50 MB/s (AdminTimeout(TableBytes(spec)),
  // client/admin_deadline.h), as for every admin call below.
  absl::StatusOr<v1::TableInfo> CreateTable(const v1::TableSpec& spec,
                                            absl::Span<const float> initial_values = {},
                                            std::optional<absl::Duration> timeout = std::nullopt);
  absl::Status DropTable(absl::string_view name);
  absl::StatusOr<std::vector<v1::TableInfo>> ListTables();
  absl::StatusOr<v1::TableInfo> DescribeTable(absl::string_view name);

  // F.embedding: shape (ids' shape) + [dim]; `shape` empty means [len(ids)].
  // `output` FLOAT16 asks for float16 values on the wire (half the bytes);
  // the Tensor holds them widened back to float32.
  absl::StatusOr<Tensor> Lookup(absl::string_view table, absl::Span<const int64_t> ids,
                                absl::Span<const int64_t> shape = {},
                                v1::ValueType output = v1::FLOAT32);
  // Rows by word, for tables loaded from word vectors: [len(words), dim].
  // NotFound names a word the table does not have; `output` as in Lookup.
  absl::StatusOr<Tensor> LookupWords(absl::string_view table, absl::Span<const std::string> words,
                                     v1::ValueType output = v1::FLOAT32);
  // F.embedding_bag: [bags, dim].
  absl::StatusOr<Tensor> LookupPooled(const BagQuery& query);
  // Returns the table's version after the assignment.
  absl::StatusOr<int64_t> AssignRows(absl::string_view table, absl::Span<const int64_t> ids,
                                     absl::Span<const float> values);

  // One push of sparse gradients (len(ids) * dim floats). Returns the
  // table's version and the rows applied.
  absl::StatusOr<v1::PushResponse> PushGradients(absl::string_view table,
                                                 absl::Span<const int64_t> ids,
                                                 absl::Span<const float> grads);
  // Changes frozen and/or optimizer hyper-parameters (unset fields stay).
  absl::StatusOr<v1::TableInfo> UpdateTable(const v1::UpdateTableRequest& request);
  absl::StatusOr<v1::OptimizerStateResponse> GetOptimizerState(absl::string_view table,
                                                               absl::Span<const int64_t> ids);

  // --- Files and checkpoints (the admin role on a server with tokens).

  // nn.Embedding.from_pretrained from a file on the server's disk
  // (request.path, beneath its --load_dir). OK: the new table's info.
  // FailedPrecondition if the server has no --load_dir; AlreadyExists if the
  // name is taken and !request.replace(); NotFound, DataLoss or
  // InvalidArgument if the file is missing, corrupt or not request.format.
  // `timeout` unset: the client's timeout plus kLoadExtraTimeout (the
  // file's size is not known here).
  absl::StatusOr<v1::TableInfo> LoadTable(const v1::LoadTableRequest& request,
                                          std::optional<absl::Duration> timeout = std::nullopt);
  // As LoadTable, from a file of this machine: uploads `data` to its end in
  // 1 MiB messages, without the per-call deadline (an upload may take
  // long); request.path only names the upload in the server's messages.
  // `progress` counts bytes, of the size `data` has left if it can seek.
  // OK: the new table's info. Errors as LoadTable's, and ResourceExhausted
  // for an upload over the server's limit; DataLoss if reading `data` fails
  // before its end (the upload is cancelled: the server stores nothing).
  absl::StatusOr<v1::TableInfo> ImportTable(const v1::LoadTableRequest& request, std::istream& data,
                                            const TransferProgress& progress = nullptr);
  // Downloads table `name` into `sink`, without the per-call deadline.
  // `progress` counts rows. OK: every row reached the sink. NotFound for an
  // unknown table; the sink's error; DataLoss if the answer is malformed
  // (rows before the table's info, a chunk whose bytes do not match its
  // rows, a dynamic table's chunk without an id per row, ids from a dense
  // table, more or fewer rows than the info said, an answer without the
  // info). Importing a dynamic table's export: AssignRows of its ids and
  // rows into a new dynamic table of the same spec.
  absl::Status ExportTable(absl::string_view name, ExportSink& sink,
                           const TransferProgress& progress = nullptr);
  // A consistent point-in-time copy of every table (rows, optimizer state,
  // version) named `name`. OK: the checkpoint. FailedPrecondition if the
  // server has no --data_dir; AlreadyExists if the name is taken;
  // InvalidArgument if it is not a plain file name. `timeout` unset: the
  // client's timeout plus the bytes of every table (ListTables: rows and
  // optimizer state) at 50 MB/s.
  absl::StatusOr<v1::Checkpoint> CreateCheckpoint(
      absl::string_view name, std::optional<absl::Duration> timeout = std::nullopt);
  // Every checkpoint (none on a server without --data_dir).
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpoints();
  // Puts tables back as checkpoint `name` holds them (all of its tables
  // when `tables` is empty), each swapped in atomically; other tables are
  // left alone. OK: the restored tables' infos. NotFound names a missing
  // checkpoint or table; FailedPrecondition without a --data_dir.
  // `timeout` unset: the client's timeout plus the checkpoint's bytes
  // (ListCheckpoints) at 50 MB/s.
  absl::StatusOr<std::vector<v1::TableInfo>> RestoreCheckpoint(
      absl::string_view name, absl::Span<const std::string> tables = {},
      std::optional<absl::Duration> timeout = std::nullopt);

  // The stub, for calls without a typed method (StreamGradients). Prepare
  // each call's context with PrepareContext, or the server will not see the
  // token.
  v1::EmbeddingService::Stub* stub() { return stub_.get(); }

  // Readies `ctx` for one call on this client's channel: the bearer token
  // (if any) and, when `deadline` is true, the client's per-call timeout.
  // Long transfers (imports, exports, gradient streams) pass false.
  // REQUIRES: `ctx` has not been used for a call yet.
  void PrepareContext(grpc::ClientContext* ctx, bool deadline = true) const;

  // Raw multi-query calls, answers unparsed.
  absl::StatusOr<v1::LookupResponse> Lookup(const v1::LookupRequest& request);
  absl::StatusOr<v1::PooledResponse> LookupPooled(const v1::PooledRequest& request);

  // One unary call with the client's deadline, its answer unparsed (e.g.
  // Unary(&v1::EmbeddingService::Stub::LoadTable, request)); the typed
  // methods above are built on it.
  // `timeout` replaces the client's deadline for this call.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Unary(
      grpc::Status (v1::EmbeddingService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
      const Req& request, std::optional<absl::Duration> timeout = std::nullopt) {
    Resp response;
    grpc::ClientContext ctx;
    PrepareContext(&ctx, /*deadline=*/!timeout.has_value());
    if (timeout.has_value()) ctx.set_deadline(absl::ToChronoTime(absl::Now() + *timeout));
    const absl::Status status = FromGrpcStatus((stub_.get()->*method)(&ctx, request, &response));
    if (!status.ok()) return status;
    return response;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EmbeddingService::Stub> stub_;
  absl::Duration timeout_;
  // "Bearer <token>", or empty for no authorization metadata.
  std::string authorization_;
};

// The token of a client token file, for the CLIs' --token_file: the first
// line that is neither blank nor a '#' comment, without surrounding
// whitespace. NotFound if the file cannot be read, InvalidArgument if it
// holds no token. Messages name the file, never its contents.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Decodes a LookupResult (little-endian float32, or float16 when its dtype
// says so) into a float32 Tensor. DataLoss if the byte count does not match
// the shape, InvalidArgument for another dtype.
absl::StatusOr<Tensor> TensorFromResult(const v1::LookupResult& result);

}  // namespace embedserve

#endif  // EMBEDSERVE_CLIENT_EMBEDDING_CLIENT_H_
