// EmbeddingServiceImpl's table administration: create, drop, list,
// describe, update, load from a file, and checkpoints. Each converts the
// request, calls the registry (core), and converts the answer back.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "server/conversions.h"
#include "server/embedding_service.h"
#include "server/internal/log.h"
#include "server/internal/service_internals.h"
#include "storage/pretrained.h"

namespace embedserve {

using internal::ParseRequest;
using internal::SerializeResponse;
using Raw = grpc::ByteBuffer;

absl::Status EmbeddingServiceImpl::DoCreateTable(const v1::CreateTableRequest& req,
                                                 v1::CreateTableResponse* resp) {
  ASSIGN_OR_RETURN(TableSpec spec, SpecFromProto(req.spec()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> values,
                   FloatsFromBytes(req.initial_values(), "initial_values", &scratch));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Create(spec, values));
  TableInfoToProto(*table, resp->mutable_table());
  internal::LogInfo(absl::StrCat(
      "created table '", table->name(),
      "': ", table->is_dynamic() ? "dynamic" : absl::StrCat(table->num_rows()), " x ", table->dim(),
      values.empty() ? "" : " (from values)", ", ", table->bytes_used(), " bytes"));
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

absl::Status EmbeddingServiceImpl::DoUpdateTable(const v1::UpdateTableRequest& req,
                                                 v1::UpdateTableResponse* resp) {
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.name()));
  ASSIGN_OR_RETURN(const EmbeddingTable::Settings settings, SettingsFromProto(req));
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
  ASSIGN_OR_RETURN(PretrainedFormat format, PretrainedFormatFromProto(req.format()));
  // Parse what the spec needs first: a bad name or optimizer fails before
  // the file is read.
  ASSIGN_OR_RETURN(TableSpec spec, LoadSpecFromProto(req));
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

absl::Status EmbeddingServiceImpl::DoCreateCheckpoint(const v1::CreateCheckpointRequest& req,
                                                      v1::CreateCheckpointResponse* resp) {
  ASSIGN_OR_RETURN(const CheckpointInfo made, registry_->CreateCheckpoint(req.name()));
  CheckpointToProto(made, resp->mutable_checkpoint());
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

}  // namespace embedserve
