// EmbeddingClient's file and checkpoint calls (declared in
// embedding_client.h): LoadTable, the ImportTable and ExportTable streams,
// and checkpoints.
#include <grpcpp/client_context.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "client/admin_deadline.h"
#include "client/embedding_client.h"
#include "base/status_macros.h"
#include "proto/grpc_status.h"

namespace embedserve {
namespace {

constexpr size_t kUploadMessageBytes = 1 << 20;

// The bytes `data` has left, or -1 if it cannot seek.
int64_t RemainingBytes(std::istream& data) {
  const std::streampos here = data.tellg();
  if (here < 0 || !data.seekg(0, std::ios::end)) {
    data.clear();
    return -1;
  }
  const int64_t size = data.tellg() - here;
  data.seekg(here);
  return size;
}

}  // namespace

absl::StatusOr<v1::TableInfo> EmbeddingClient::LoadTable(const v1::LoadTableRequest& request,
                                                         std::optional<absl::Duration> timeout) {
  ASSIGN_OR_RETURN(v1::LoadTableResponse resp,
                   Unary(&v1::EmbeddingService::Stub::LoadTable, request,
                         timeout.value_or(timeout_ + kLoadExtraTimeout)));
  return resp.table();
}

absl::StatusOr<v1::TableInfo> EmbeddingClient::ImportTable(const v1::LoadTableRequest& request,
                                                           std::istream& data,
                                                           const TransferProgress& progress) {
  const int64_t total = RemainingBytes(data);
  grpc::ClientContext ctx;
  PrepareContext(&ctx, /*deadline=*/false);
  v1::LoadTableResponse resp;
  auto writer = stub_->ImportTable(&ctx, &resp);
  v1::ImportChunk chunk;
  *chunk.mutable_request() = request;
  // A failed Write means the server has ended the call; Finish says why.
  bool open = writer->Write(chunk);
  std::vector<char> buffer(kUploadMessageBytes);
  int64_t sent = 0;
  while (open && data) {
    data.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = data.gcount();
    if (n <= 0) break;
    chunk.Clear();
    chunk.set_data(buffer.data(), static_cast<size_t>(n));
    open = writer->Write(chunk);
    sent += n;
    if (progress) progress(sent, total);
  }
  if (data.bad()) {
    // Half a file must not become a table: the server stores nothing for a
    // cancelled upload.
    ctx.TryCancel();
    writer->Finish().ok();
    return absl::DataLossError(
        absl::StrCat("reading ", request.path(), " failed after ", sent, " bytes; nothing stored"));
  }
  writer->WritesDone();
  RETURN_IF_ERROR(FromGrpcStatus(writer->Finish()));
  return resp.table();
}

absl::Status EmbeddingClient::ExportTable(absl::string_view name, ExportSink& sink,
                                          const TransferProgress& progress) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, /*deadline=*/false);
  v1::ExportTableRequest req;
  req.set_name(std::string(name));
  auto reader = stub_->ExportTable(&ctx, req);
  v1::ExportChunk chunk;
  absl::Status stopped;  // why the client ended the call, if it did
  bool begun = false, dynamic = false;
  int64_t rows = 0, total = 0, row_bytes = 0;
  while (stopped.ok() && reader->Read(&chunk)) {
    if (chunk.has_table()) {
      begun = true;
      dynamic = chunk.table().spec().dynamic();
      total = chunk.table().num_rows();
      row_bytes = chunk.table().spec().embedding_dim() * int64_t{sizeof(float)};
      stopped = sink.Begin(chunk.table());
    }
    if (!stopped.ok() || (chunk.num_rows() == 0 && chunk.values().empty())) continue;
    if (!begun) {
      stopped = absl::DataLossError("the export sent rows before the table's info");
    } else if (chunk.num_rows() < 0 || chunk.num_rows() > total - rows ||
               static_cast<int64_t>(chunk.values().size()) != chunk.num_rows() * row_bytes) {
      stopped = absl::DataLossError(absl::StrCat("an export chunk has ", chunk.values().size(),
                                                 " bytes for ", chunk.num_rows(), " rows (", rows,
                                                 " of ", total, " received)"));
    } else if (chunk.ids_size() != (dynamic ? chunk.num_rows() : 0)) {
      stopped = absl::DataLossError(
          absl::StrCat("an export chunk of a ", dynamic ? "dynamic" : "dense", " table has ",
                       chunk.ids_size(), " ids for ", chunk.num_rows(), " rows"));
    } else {
      if (dynamic) stopped = sink.Ids(chunk.first_row(), chunk.ids());
      if (stopped.ok()) stopped = sink.Rows(chunk.first_row(), chunk.num_rows(), chunk.values());
      rows += chunk.num_rows();
      if (stopped.ok() && progress) progress(rows, total);
    }
  }
  if (!stopped.ok()) {
    ctx.TryCancel();
    reader->Finish().ok();
    return stopped;
  }
  RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  if (!begun) return absl::DataLossError("the export ended without the table's info");
  if (rows != total) {
    return absl::DataLossError(
        absl::StrCat("the export ended after ", rows, " of its ", total, " rows"));
  }
  return absl::OkStatus();
}

absl::Status ExportSink::Ids(int64_t, absl::Span<const int64_t>) {
  return absl::UnimplementedError(
      "this export sink keeps no ids, and a dynamic table's rows need theirs");
}

absl::StatusOr<v1::Checkpoint> EmbeddingClient::CreateCheckpoint(
    absl::string_view name, std::optional<absl::Duration> timeout) {
  v1::CreateCheckpointRequest req;
  req.set_name(std::string(name));
  if (!timeout.has_value()) {
    ASSIGN_OR_RETURN(std::vector<v1::TableInfo> tables, ListTables());
    int64_t bytes = 0;
    for (const v1::TableInfo& t : tables) bytes += t.bytes_used() + t.optimizer_state_bytes();
    timeout = AdminTimeout(bytes, timeout_);
  }
  ASSIGN_OR_RETURN(v1::CreateCheckpointResponse resp,
                   Unary(&v1::EmbeddingService::Stub::CreateCheckpoint, req, timeout));
  return resp.checkpoint();
}

absl::StatusOr<std::vector<v1::Checkpoint>> EmbeddingClient::ListCheckpoints() {
  ASSIGN_OR_RETURN(
      v1::ListCheckpointsResponse resp,
      Unary(&v1::EmbeddingService::Stub::ListCheckpoints, v1::ListCheckpointsRequest()));
  return std::vector<v1::Checkpoint>(resp.checkpoints().begin(), resp.checkpoints().end());
}

absl::StatusOr<std::vector<v1::TableInfo>> EmbeddingClient::RestoreCheckpoint(
    absl::string_view name, absl::Span<const std::string> tables,
    std::optional<absl::Duration> timeout) {
  v1::RestoreCheckpointRequest req;
  req.set_name(std::string(name));
  for (const std::string& t : tables) req.add_tables(t);
  if (!timeout.has_value()) {
    ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> all, ListCheckpoints());
    int64_t bytes = 0;
    for (const v1::Checkpoint& c : all) {
      if (c.name() == name) bytes = c.bytes();
    }
    timeout = AdminTimeout(bytes, timeout_);
  }
  ASSIGN_OR_RETURN(v1::RestoreCheckpointResponse resp,
                   Unary(&v1::EmbeddingService::Stub::RestoreCheckpoint, req, timeout));
  return std::vector<v1::TableInfo>(resp.tables().begin(), resp.tables().end());
}

}  // namespace embedserve
