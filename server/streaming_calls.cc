// The streaming calls: StreamGradients (bidi), ImportTable (client stream,
// staged to a file) and ExportTable (server stream). Each is a reactor that
// owns its call and deletes itself in OnDone, after counting the call.

#include <fcntl.h>
#include <grpcpp/alarm.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "core/answer_budget.h"
#include "proto/grpc_status.h"
#include "server/conversions.h"
#include "server/embedding_service.h"
#include "server/internal/service_internals.h"

namespace embedserve {
namespace {

using Raw = grpc::ByteBuffer;
using internal::ParseRequest;
using internal::SerializeResponse;
using internal::ToByteBuffer;

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
    out_ = ToByteBuffer(response_);
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
// is sent (memory stays one chunk). A dense table's rows are copied by range
// (CopyRows); a dynamic table's ids with a row are taken once at the start
// (StoredIds, least recently updated first) and each chunk carries its ids
// and their rows, read by ReadStoredRows (as stored: a max_norm table's
// rows are not renormalised by their export; an id evicted meanwhile reads
// as its initial value, as any lookup of it would).
class ExportWriter final : public grpc::ServerWriteReactor<Raw> {
 public:
  ExportWriter(EmbeddingServiceImpl* service, std::shared_ptr<EmbeddingTable> table,
               int64_t rows_per_chunk)
      : service_(service),
        rpc_started_(EmbeddingServiceImpl::Clock::now()),
        table_(std::move(table)),
        per_chunk_(rows_per_chunk) {
    if (table_->is_dynamic()) ids_ = table_->StoredIds();
    TableInfoToProto(*table_, chunk_.mutable_table());
    // The info's row count is the rows that follow (a client sizes its
    // file by it), even if a push changed the table since StoredIds.
    total_ = table_->is_dynamic() ? static_cast<int64_t>(ids_.size()) : table_->num_rows();
    chunk_.mutable_table()->set_num_rows(total_);
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
    const int64_t n = std::max<int64_t>(0, std::min(per_chunk_, total_ - row_));
    // The first message carries the table's info even when no row follows
    // (a dynamic table without rows).
    if (n == 0 && !chunk_.has_table()) {
      End(grpc::Status::OK);
      return;
    }
    chunk_.set_first_row(row_);
    chunk_.set_num_rows(n);
    std::string* values = chunk_.mutable_values();
    values->resize(static_cast<size_t>(n * table_->dim()) * sizeof(float));
    float* out = reinterpret_cast<float*>(values->data());
    absl::Status s;
    if (table_->is_dynamic()) {
      const absl::Span<const int64_t> ids(ids_.data() + row_, static_cast<size_t>(n));
      chunk_.mutable_ids()->Assign(ids.begin(), ids.end());
      s = table_->ReadStoredRows(ids,
                                 absl::MakeSpan(out, static_cast<size_t>(n * table_->dim())));
    } else {
      s = table_->CopyRows(row_, n, out);
    }
    if (!s.ok()) {
      End(ToGrpcStatus(s));
      return;
    }
    row_ += n;
    out_ = ToByteBuffer(chunk_);
    StartWrite(&out_);
  }

  EmbeddingServiceImpl* const service_;
  const EmbeddingServiceImpl::Clock::time_point rpc_started_;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  const std::shared_ptr<EmbeddingTable> table_;
  const int64_t per_chunk_;
  std::vector<int64_t> ids_;  // dynamic tables: the ids to export, in order
  int64_t total_ = 0;
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
  // A dynamic table's chunk also carries an id per row: at most 10 bytes
  // as a varint, counted as 3 more floats.
  const int64_t per_chunk = ExportRowsPerChunk(request.rows_per_chunk(),
                                               (*table)->dim() + ((*table)->is_dynamic() ? 3 : 0),
                                               options_.limits.max_response_bytes);
  return new ExportWriter(this, *std::move(table), per_chunk);
}

}  // namespace embedserve
