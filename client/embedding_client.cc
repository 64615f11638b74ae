#include "client/embedding_client.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/float16.h"
#include "client/admin_deadline.h"
#include "base/status_macros.h"
#include "proto/grpc_status.h"

namespace embedserve {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path, what));
  if (pem.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a PEM file"));
  }
  return pem;
}

grpc::ChannelArguments BaseChannelArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // the server enforces its own limits
  args.SetMaxSendMessageSize(-1);
  return args;
}

// The tensor of a one-query answer.
template <typename Response>
absl::StatusOr<Tensor> OneTensor(const absl::StatusOr<Response>& resp) {
  if (!resp.ok()) return resp.status();
  if (resp->results_size() != 1) return absl::DataLossError("expected one result");
  return TensorFromResult(resp->results(0));
}

}  // namespace

EmbeddingClient::EmbeddingClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : channel_(std::move(channel)),
      stub_(v1::EmbeddingService::NewStub(channel_)),
      timeout_(timeout) {}

std::unique_ptr<EmbeddingClient> EmbeddingClient::Connect(const std::string& address,
                                                          absl::Duration timeout) {
  return std::make_unique<EmbeddingClient>(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                BaseChannelArguments()),
      timeout);
}

absl::StatusOr<std::unique_ptr<EmbeddingClient>> EmbeddingClient::Connect(
    const std::string& address, const ClientOptions& options) {
  for (const char c : options.token) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          "the token must be printable ASCII without spaces (check the token file)");
    }
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs both its certificate and its key (--tls_cert, --tls_key)");
  }
  grpc::ChannelArguments args = BaseChannelArguments();
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca_file.empty() && options.tls_cert_file.empty() &&
      options.tls_server_name.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_ca_file, "the TLS CA file"));
    }
    if (!options.tls_cert_file.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                       ReadPem(options.tls_cert_file, "the TLS client certificate"));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(options.tls_key_file, "the TLS client key"));
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  auto client = std::make_unique<EmbeddingClient>(
      grpc::CreateCustomChannel(address, credentials, args), options.timeout);
  if (!options.token.empty()) client->authorization_ = absl::StrCat("Bearer ", options.token);
  return client;
}

void EmbeddingClient::PrepareContext(grpc::ClientContext* ctx, bool deadline) const {
  if (deadline) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!authorization_.empty()) ctx->AddMetadata("authorization", authorization_);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, "the token file"));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line.front() != '#') return std::string(line);
  }
  return absl::InvalidArgumentError(absl::StrCat("the token file ", path, " holds no token"));
}

absl::Status EmbeddingClient::WaitForReady(absl::Duration timeout) {
  if (channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("could not connect within ", absl::FormatDuration(timeout)));
}

absl::StatusOr<std::string> EmbeddingClient::CheckHealth(absl::string_view service) {
  // The two grpc.health.v1 messages are tiny and Debian ships no generated
  // code for them, so they are encoded by hand:
  //   HealthCheckRequest  { string service = 1; }
  //   HealthCheckResponse { ServingStatus status = 1; }
  std::string request;
  if (!service.empty()) {
    request.push_back('\x0a');
    google::protobuf::io::StringOutputStream raw(&request);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.WriteVarint32(static_cast<uint32_t>(service.size()));
    out.WriteRaw(service.data(), static_cast<int>(service.size()));
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1), resp;
  grpc::GenericStub stub(channel_);
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&resp, &status, nullptr);
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (resp.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  uint32_t value = 0;  // UNKNOWN when absent
  while (uint32_t tag_field = in.ReadTag()) {
    if (tag_field == 0x08) {
      if (!in.ReadVarint32(&value)) break;
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag_field)) {
      return absl::DataLossError("malformed HealthCheckResponse");
    }
  }
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  return std::string(value < 4 ? kNames[value] : "UNKNOWN");
}

absl::StatusOr<v1::TableInfo> EmbeddingClient::CreateTable(const v1::TableSpec& spec,
                                                           absl::Span<const float> values,
                                                           std::optional<absl::Duration> timeout) {
  v1::CreateTableRequest req;
  *req.mutable_spec() = spec;
  req.set_initial_values(values.data(), values.size() * sizeof(float));
  ASSIGN_OR_RETURN(v1::CreateTableResponse resp,
                   Unary(&v1::EmbeddingService::Stub::CreateTable, req,
                         timeout.value_or(AdminTimeout(TableBytes(spec), timeout_))));
  return resp.table();
}

absl::Status EmbeddingClient::DropTable(absl::string_view name) {
  v1::DropTableRequest req;
  req.set_name(std::string(name));
  return Unary(&v1::EmbeddingService::Stub::DropTable, req).status();
}

absl::StatusOr<std::vector<v1::TableInfo>> EmbeddingClient::ListTables() {
  ASSIGN_OR_RETURN(v1::ListTablesResponse resp,
                   Unary(&v1::EmbeddingService::Stub::ListTables, v1::ListTablesRequest()));
  return std::vector<v1::TableInfo>(resp.tables().begin(), resp.tables().end());
}

absl::StatusOr<v1::TableInfo> EmbeddingClient::DescribeTable(absl::string_view name) {
  v1::DescribeTableRequest req;
  req.set_name(std::string(name));
  ASSIGN_OR_RETURN(v1::DescribeTableResponse resp,
                   Unary(&v1::EmbeddingService::Stub::DescribeTable, req));
  return resp.table();
}

absl::StatusOr<Tensor> TensorFromResult(const v1::LookupResult& result) {
  Tensor t;
  t.shape.assign(result.shape().begin(), result.shape().end());
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  if (result.dtype() != v1::FLOAT32 && result.dtype() != v1::FLOAT16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "answer has dtype ", v1::ValueType_Name(result.dtype()), "; expected FLOAT32 or FLOAT16"));
  }
  const int64_t width = result.dtype() == v1::FLOAT16 ? 2 : 4;
  if (static_cast<int64_t>(result.values().size()) != n * width) {
    return absl::DataLossError(absl::StrCat("answer has ", result.values().size(), " bytes for ", n,
                                            " values of ", width, " bytes"));
  }
  t.values.resize(n);
  if (width == 4) {
    // (An empty answer: no memcpy to the empty vector's null data().)
    if (n > 0) std::memcpy(t.values.data(), result.values().data(), result.values().size());
    return t;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, result.values().data() + 2 * i, 2);
    t.values[i] = HalfToFloat(h);
  }
  return t;
}

absl::StatusOr<v1::LookupResponse> EmbeddingClient::Lookup(const v1::LookupRequest& req) {
  return Unary(&v1::EmbeddingService::Stub::Lookup, req);
}

absl::StatusOr<v1::PooledResponse> EmbeddingClient::LookupPooled(const v1::PooledRequest& req) {
  return Unary(&v1::EmbeddingService::Stub::LookupPooled, req);
}

absl::StatusOr<Tensor> EmbeddingClient::Lookup(absl::string_view table,
                                               absl::Span<const int64_t> ids,
                                               absl::Span<const int64_t> shape,
                                               v1::ValueType output) {
  v1::LookupRequest req;
  v1::LookupQuery* q = req.add_queries();
  q->set_table(std::string(table));
  q->mutable_ids()->Add(ids.begin(), ids.end());
  q->mutable_shape()->Add(shape.begin(), shape.end());
  q->set_output(output);
  return OneTensor(Lookup(req));
}

absl::StatusOr<Tensor> EmbeddingClient::LookupWords(absl::string_view table,
                                                    absl::Span<const std::string> words,
                                                    v1::ValueType output) {
  v1::LookupRequest req;
  v1::LookupQuery* q = req.add_queries();
  q->set_table(std::string(table));
  q->mutable_words()->Add(words.begin(), words.end());
  q->set_output(output);
  return OneTensor(Lookup(req));
}

absl::StatusOr<Tensor> EmbeddingClient::LookupPooled(const BagQuery& query) {
  v1::PooledRequest req;
  v1::PooledQuery* q = req.add_queries();
  q->set_table(query.table);
  q->mutable_ids()->Add(query.ids.begin(), query.ids.end());
  q->mutable_offsets()->Add(query.offsets.begin(), query.offsets.end());
  q->mutable_shape()->Add(query.shape.begin(), query.shape.end());
  q->set_include_last_offset(query.include_last_offset);
  q->set_mode(query.mode);
  q->mutable_per_sample_weights()->Add(query.per_sample_weights.begin(),
                                       query.per_sample_weights.end());
  return OneTensor(LookupPooled(req));
}

absl::StatusOr<int64_t> EmbeddingClient::AssignRows(absl::string_view table,
                                                    absl::Span<const int64_t> ids,
                                                    absl::Span<const float> values) {
  v1::AssignRowsRequest req;
  req.set_table(std::string(table));
  req.mutable_ids()->Add(ids.begin(), ids.end());
  req.set_values(values.data(), values.size() * sizeof(float));
  ASSIGN_OR_RETURN(v1::AssignRowsResponse resp,
                   Unary(&v1::EmbeddingService::Stub::AssignRows, req));
  return resp.version();
}

absl::StatusOr<v1::PushResponse> EmbeddingClient::PushGradients(absl::string_view table,
                                                                absl::Span<const int64_t> ids,
                                                                absl::Span<const float> grads) {
  v1::PushRequest req;
  req.set_table(std::string(table));
  req.mutable_ids()->Add(ids.begin(), ids.end());
  req.set_grads(grads.data(), grads.size() * sizeof(float));
  return Unary(&v1::EmbeddingService::Stub::PushGradients, req);
}

absl::StatusOr<v1::TableInfo> EmbeddingClient::UpdateTable(const v1::UpdateTableRequest& req) {
  ASSIGN_OR_RETURN(v1::UpdateTableResponse resp,
                   Unary(&v1::EmbeddingService::Stub::UpdateTable, req));
  return resp.table();
}

absl::StatusOr<v1::OptimizerStateResponse> EmbeddingClient::GetOptimizerState(
    absl::string_view table, absl::Span<const int64_t> ids) {
  v1::OptimizerStateRequest req;
  req.set_table(std::string(table));
  req.mutable_ids()->Add(ids.begin(), ids.end());
  return Unary(&v1::EmbeddingService::Stub::GetOptimizerState, req);
}

}  // namespace embedserve
