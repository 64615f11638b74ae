#include "server/embedding_service.h"

#include <grpcpp/support/proto_buffer_reader.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "core/gather.h"
#include "core/status_macros.h"
#include "proto/grpc_status.h"
#include "server/conversions.h"
#include "server/internal/log.h"
#include "storage/pretrained.h"

namespace embedserve {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

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

absl::Status AddResponseBytes(int64_t rows, int64_t dim, const RequestLimits& limits,
                              int64_t* total) {
  *total += rows * dim * static_cast<int64_t>(sizeof(float));
  if (*total > limits.max_response_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("the answer would take more than ",
                                                     limits.max_response_bytes,
                                                     " bytes (the response limit)"));
  }
  return absl::OkStatus();
}

// Parses a raw method's request bytes.
template <typename Message>
absl::Status ParseRequest(const grpc::ByteBuffer& bytes, Message* msg) {
  grpc::ByteBuffer shared(bytes);  // shares the slices
  grpc::ProtoBufferReader reader(&shared);
  if (!msg->ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is not a valid ", Message::descriptor()->full_name()));
  }
  return absl::OkStatus();
}

// Answers a raw lookup method: parse, run, and on success hand the answer over.
template <typename Message, typename Fn>
grpc::ServerUnaryReactor* FinishRaw(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* req_bytes, grpc::ByteBuffer* resp,
                                    Fn run) {
  Message req;
  absl::Status s = ParseRequest(*req_bytes, &req);
  ResultsWriter out;
  if (s.ok()) s = run(req, &out);
  if (s.ok()) *resp = out.Release();
  return Finish(ctx, s);
}

}  // namespace

grpc::ServerUnaryReactor* EmbeddingServiceImpl::CreateTable(grpc::CallbackServerContext* ctx,
                                                            const v1::CreateTableRequest* req,
                                                            v1::CreateTableResponse* resp) {
  return Finish(ctx, DoCreateTable(*req, resp));
}

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

grpc::ServerUnaryReactor* EmbeddingServiceImpl::DropTable(grpc::CallbackServerContext* ctx,
                                                          const v1::DropTableRequest* req,
                                                          v1::DropTableResponse* resp) {
  absl::Status s = registry_->Drop(req->name());
  if (s.ok()) internal::LogInfo(absl::StrCat("dropped table '", req->name(), "'"));
  return Finish(ctx, s);
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::ListTables(grpc::CallbackServerContext* ctx,
                                                           const v1::ListTablesRequest* req,
                                                           v1::ListTablesResponse* resp) {
  for (const auto& table : registry_->List()) TableInfoToProto(*table, resp->add_tables());
  return Finish(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::DescribeTable(grpc::CallbackServerContext* ctx,
                                                              const v1::DescribeTableRequest* req,
                                                              v1::DescribeTableResponse* resp) {
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(req->name());
  if (table.ok()) TableInfoToProto(**table, resp->mutable_table());
  return Finish(ctx, table.status());
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::Lookup(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* req,
                                                       grpc::ByteBuffer* resp) {
  return FinishRaw<v1::LookupRequest>(
      ctx, req, resp,
      [this](const v1::LookupRequest& r, ResultsWriter* out) { return DoLookup(r, out); });
}

absl::Status EmbeddingServiceImpl::DoLookup(const v1::LookupRequest& req, ResultsWriter* out) {
  int64_t total_ids = 0;
  for (const auto& q : req.queries()) total_ids += q.ids_size();
  RETURN_IF_ERROR(CheckTotalIds(total_ids, limits_));
  // Validate everything first: a failed request must change nothing.
  std::vector<std::shared_ptr<EmbeddingTable>> tables;
  // Queries by word, resolved to ids.
  std::vector<std::vector<int64_t>> word_ids(req.queries_size());
  int64_t response_bytes = 0;
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::LookupQuery& query = req.queries(q);
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(query.table());
    RETURN_IF_ERROR(WithQueryContext(table.status(), q, query.table()));
    if (query.words_size() > 0) {
      if (query.ids_size() > 0) {
        return WithQueryContext(absl::InvalidArgumentError("give ids or words, not both"), q,
                                query.table());
      }
      RETURN_IF_ERROR(CheckTotalIds(total_ids + query.words_size(), limits_));
      absl::StatusOr<std::vector<int64_t>> ids = (*table)->IdsForWords(
          std::vector<std::string>(query.words().begin(), query.words().end()));
      RETURN_IF_ERROR(WithQueryContext(ids.status(), q, query.table()));
      word_ids[q] = *std::move(ids);
    }
    const absl::Span<const int64_t> query_ids =
        query.words_size() > 0 ? absl::MakeConstSpan(word_ids[q]) : IdSpan(query.ids());
    if (query.shape_size() > 0) {
      int64_t product = 1;
      for (int64_t d : query.shape()) {
        if (d < 0 || __builtin_mul_overflow(product, d, &product)) {
          product = -1;
          break;
        }
      }
      if (product != static_cast<int64_t>(query_ids.size())) {
        return WithQueryContext(
            absl::InvalidArgumentError(absl::StrCat("shape [", absl::StrJoin(query.shape(), ", "),
                                                    "] does not match ", query_ids.size(), " ids")),
            q, query.table());
      }
    }
    if (query.output() != v1::FLOAT32 && query.output() != v1::FLOAT16) {
      return WithQueryContext(absl::InvalidArgumentError("output must be FLOAT32 or FLOAT16"), q,
                              query.table());
    }
    RETURN_IF_ERROR(WithQueryContext((*table)->CheckIds(query_ids), q, query.table()));
    RETURN_IF_ERROR(AddResponseBytes(static_cast<int64_t>(query_ids.size()), (*table)->dim(),
                                     limits_, &response_bytes));
    tables.push_back(*std::move(table));
  }
  auto ids_of = [&](int q) {
    const v1::LookupQuery& query = req.queries(q);
    return query.words_size() > 0 ? absl::MakeConstSpan(word_ids[q]) : IdSpan(query.ids());
  };
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::LookupQuery& query = req.queries(q);
    const int64_t num_ids = static_cast<int64_t>(ids_of(q).size());
    std::vector<int64_t> shape(query.shape().begin(), query.shape().end());
    if (shape.empty()) shape.push_back(num_ids);
    shape.push_back(tables[q]->dim());
    const bool half = query.output() == v1::FLOAT16;
    out->Add(shape, half ? v1::FLOAT16 : v1::FLOAT32,
             static_cast<size_t>(num_ids * tables[q]->dim()) * (half ? 2 : sizeof(float)));
  }
  out->Allocate();
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::LookupQuery& query = req.queries(q);
    const absl::Span<const int64_t> query_ids = ids_of(q);
    EmbeddingTable& table = *tables[q];
    const int64_t n = static_cast<int64_t>(query_ids.size()) * table.dim();
    if (query.output() == v1::FLOAT16) {
      // Gathered in float32, sent as float16.
      std::vector<float> rows(n);
      RETURN_IF_ERROR(
          WithQueryContext(table.Lookup(query_ids, absl::MakeSpan(rows)), q, query.table()));
      ActiveKernels().to_half(rows.data(), n, reinterpret_cast<uint16_t*>(out->values(q)));
      continue;
    }
    // The kernel writes straight into the answer's bytes.
    float* values = reinterpret_cast<float*>(out->values(q));
    RETURN_IF_ERROR(
        WithQueryContext(table.Lookup(query_ids, absl::MakeSpan(values, n)), q, query.table()));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::LookupPooled(grpc::CallbackServerContext* ctx,
                                                             const grpc::ByteBuffer* req,
                                                             grpc::ByteBuffer* resp) {
  return FinishRaw<v1::PooledRequest>(
      ctx, req, resp,
      [this](const v1::PooledRequest& r, ResultsWriter* out) { return DoLookupPooled(r, out); });
}

absl::Status EmbeddingServiceImpl::DoLookupPooled(const v1::PooledRequest& req,
                                                  ResultsWriter* out) {
  int64_t total_ids = 0;
  for (const auto& q : req.queries()) total_ids += q.ids_size();
  RETURN_IF_ERROR(CheckTotalIds(total_ids, limits_));
  struct Plan {
    std::shared_ptr<EmbeddingTable> table;
    std::vector<int64_t> bounds;
    PoolingMode mode;
  };
  std::vector<Plan> plans;
  int64_t response_bytes = 0;
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::PooledQuery& query = req.queries(q);
    auto ctx = [&](const absl::Status& s) { return WithQueryContext(s, q, query.table()); };
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(query.table());
    RETURN_IF_ERROR(ctx(table.status()));
    absl::StatusOr<PoolingMode> mode = PoolingModeFromProto(query.mode());
    RETURN_IF_ERROR(ctx(mode.status()));
    absl::StatusOr<std::vector<int64_t>> bounds =
        BagBounds(query.ids_size(), IdSpan(query.offsets()), query.include_last_offset(),
                  IdSpan(query.shape()));
    RETURN_IF_ERROR(ctx(bounds.status()));
    RETURN_IF_ERROR(ctx(EmbeddingTable::CheckBagWeights(
        query.ids_size(), *mode,
        absl::MakeConstSpan(query.per_sample_weights().data(), query.per_sample_weights_size()))));
    RETURN_IF_ERROR(ctx((*table)->CheckIds(IdSpan(query.ids()))));
    RETURN_IF_ERROR(AddResponseBytes(static_cast<int64_t>(bounds->size()) - 1, (*table)->dim(),
                                     limits_, &response_bytes));
    plans.push_back({*std::move(table), *std::move(bounds), *mode});
  }
  for (const Plan& plan : plans) {
    const int64_t bags = static_cast<int64_t>(plan.bounds.size()) - 1;
    out->Add({bags, plan.table->dim()}, v1::FLOAT32,
             static_cast<size_t>(bags * plan.table->dim()) * sizeof(float));
  }
  out->Allocate();
  for (int q = 0; q < req.queries_size(); ++q) {
    const v1::PooledQuery& query = req.queries(q);
    Plan& plan = plans[q];
    const int64_t n = (static_cast<int64_t>(plan.bounds.size()) - 1) * plan.table->dim();
    float* values = reinterpret_cast<float*>(out->values(q));
    RETURN_IF_ERROR(WithQueryContext(
        plan.table->LookupPooled(
            IdSpan(query.ids()), plan.bounds, plan.mode,
            absl::MakeConstSpan(query.per_sample_weights().data(), query.per_sample_weights_size()),
            absl::MakeSpan(values, n)),
        q, query.table()));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::AssignRows(grpc::CallbackServerContext* ctx,
                                                           const v1::AssignRowsRequest* req,
                                                           v1::AssignRowsResponse* resp) {
  return Finish(ctx, DoAssignRows(*req, resp));
}

absl::Status EmbeddingServiceImpl::DoAssignRows(const v1::AssignRowsRequest& req,
                                                v1::AssignRowsResponse* resp) {
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), limits_));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> values,
                   FloatsFromBytes(req.values(), "values", &scratch));
  ASSIGN_OR_RETURN(int64_t version, table->AssignRows(IdSpan(req.ids()), values));
  resp->set_version(version);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::PushGradients(grpc::CallbackServerContext* ctx,
                                                              const v1::PushRequest* req,
                                                              v1::PushResponse* resp) {
  return Finish(ctx, ApplyPush(*req, resp));
}

absl::Status EmbeddingServiceImpl::ApplyPush(const v1::PushRequest& req, v1::PushResponse* resp) {
  resp->set_sequence(req.sequence());
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), limits_));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
  std::vector<float> scratch;
  ASSIGN_OR_RETURN(absl::Span<const float> grads, FloatsFromBytes(req.grads(), "grads", &scratch));
  ASSIGN_OR_RETURN(EmbeddingTable::PushResult result,
                   table->ApplyGradients(IdSpan(req.ids()), grads));
  resp->set_version(result.version);
  resp->set_rows_applied(result.rows_applied);
  return absl::OkStatus();
}

namespace {

class GradientStream final : public grpc::ServerBidiReactor<v1::PushRequest, v1::PushResponse> {
 public:
  explicit GradientStream(EmbeddingServiceImpl* service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side: every push has been answered
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    const absl::Status s = service_->ApplyPush(request_, &response_);
    if (!s.ok()) {
      response_.set_code(static_cast<int>(s.code()));
      response_.set_error(std::string(s.message()));
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed while answering"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  EmbeddingServiceImpl* const service_;
  v1::PushRequest request_;
  v1::PushResponse response_;
};

}  // namespace

grpc::ServerBidiReactor<v1::PushRequest, v1::PushResponse>* EmbeddingServiceImpl::StreamGradients(
    grpc::CallbackServerContext* ctx) {
  return new GradientStream(this);
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::UpdateTable(grpc::CallbackServerContext* ctx,
                                                            const v1::UpdateTableRequest* req,
                                                            v1::UpdateTableResponse* resp) {
  return Finish(ctx, DoUpdateTable(*req, resp));
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

grpc::ServerUnaryReactor* EmbeddingServiceImpl::GetOptimizerState(
    grpc::CallbackServerContext* ctx, const v1::OptimizerStateRequest* req,
    v1::OptimizerStateResponse* resp) {
  return Finish(ctx, DoGetOptimizerState(*req, resp));
}

absl::Status EmbeddingServiceImpl::DoGetOptimizerState(const v1::OptimizerStateRequest& req,
                                                       v1::OptimizerStateResponse* resp) {
  RETURN_IF_ERROR(CheckTotalIds(req.ids_size(), limits_));
  ASSIGN_OR_RETURN(std::shared_ptr<EmbeddingTable> table, registry_->Get(req.table()));
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

grpc::ServerUnaryReactor* EmbeddingServiceImpl::LoadTable(grpc::CallbackServerContext* ctx,
                                                          const v1::LoadTableRequest* req,
                                                          v1::LoadTableResponse* resp) {
  return Finish(ctx, DoLoadTable(*req, resp));
}

absl::Status EmbeddingServiceImpl::DoLoadTable(const v1::LoadTableRequest& req,
                                               v1::LoadTableResponse* resp,
                                               const std::string& display_path) {
  absl::Status s = LoadTableFrom(req, resp);
  if (s.ok() || display_path.empty()) return s;
  return absl::Status(s.code(), absl::StrReplaceAll(s.message(), {{req.path(), display_path}}));
}

absl::Status EmbeddingServiceImpl::LoadTableFrom(const v1::LoadTableRequest& req,
                                                 v1::LoadTableResponse* resp) {
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
  ASSIGN_OR_RETURN(std::unique_ptr<PretrainedMatrix> matrix,
                   LoadPretrained(req.path(), format, req.raw_dim()));
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

namespace {

// Receives an uploaded file into a temporary file, then loads it.
class ImportReader final : public grpc::ServerReadReactor<v1::ImportChunk> {
 public:
  ImportReader(EmbeddingServiceImpl* service, v1::LoadTableResponse* resp)
      : service_(service), resp_(resp) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // upload complete
      Done();
      return;
    }
    if (first_) {
      first_ = false;
      request_ = chunk_.request();
      display_ = request_.path().empty() ? "upload" : request_.path();
      char name[] = "/tmp/embedserve-import-XXXXXX";
      fd_ = ::mkstemp(name);
      if (fd_ < 0) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot create a temporary file"));
        return;
      }
      temp_ = name;
    }
    const std::string& data = chunk_.data();
    for (size_t done = 0; done < data.size();) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n <= 0) {
        Cleanup();
        Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "cannot store the upload (disk full?)"));
        return;
      }
      done += static_cast<size_t>(n);
    }
    StartRead(&chunk_);
  }

  void OnDone() override {
    Cleanup();
    delete this;
  }

 private:
  void Done() {
    if (first_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the import stream was empty"));
      return;
    }
    ::close(fd_);
    fd_ = -1;
    request_.set_path(temp_);
    Finish(ToGrpcStatus(service_->DoLoadTable(request_, resp_, display_)));
  }
  void Cleanup() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
  }

  EmbeddingServiceImpl* const service_;
  v1::LoadTableResponse* const resp_;
  v1::ImportChunk chunk_;
  v1::LoadTableRequest request_;
  std::string display_, temp_;
  bool first_ = true;
  int fd_ = -1;
};

// Streams a table's rows in chunks.
class ExportWriter final : public grpc::ServerWriteReactor<v1::ExportChunk> {
 public:
  ExportWriter(std::shared_ptr<EmbeddingTable> table, int64_t rows_per_chunk)
      : table_(std::move(table)), per_chunk_(rows_per_chunk) {
    TableInfoToProto(*table_, chunk_.mutable_table());
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "export cancelled"));
      return;
    }
    chunk_.clear_table();
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    const int64_t n = std::min(per_chunk_, table_->num_rows() - row_);
    if (n <= 0) {
      Finish(grpc::Status::OK);
      return;
    }
    chunk_.set_first_row(row_);
    chunk_.set_num_rows(n);
    std::string* values = chunk_.mutable_values();
    values->resize(static_cast<size_t>(n * table_->dim()) * sizeof(float));
    const absl::Status s = table_->CopyRows(row_, n, reinterpret_cast<float*>(values->data()));
    if (!s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    row_ += n;
    StartWrite(&chunk_);
  }

  const std::shared_ptr<EmbeddingTable> table_;
  const int64_t per_chunk_;
  int64_t row_ = 0;
  v1::ExportChunk chunk_;
};

void CheckpointToProto(const CheckpointInfo& info, v1::Checkpoint* p) {
  p->set_name(info.name);
  p->set_created_unix_ms(info.created_unix_ms);
  p->set_bytes(info.bytes);
  for (const auto& t : info.tables) p->add_tables(t);
}

}  // namespace

grpc::ServerReadReactor<v1::ImportChunk>* EmbeddingServiceImpl::ImportTable(
    grpc::CallbackServerContext* ctx, v1::LoadTableResponse* resp) {
  return new ImportReader(this, resp);
}

grpc::ServerWriteReactor<v1::ExportChunk>* EmbeddingServiceImpl::ExportTable(
    grpc::CallbackServerContext* ctx, const v1::ExportTableRequest* req) {
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry_->Get(req->name());
  if (!table.ok()) {
    class Failed final : public grpc::ServerWriteReactor<v1::ExportChunk> {
     public:
      explicit Failed(const absl::Status& s) { Finish(ToGrpcStatus(s)); }
      void OnDone() override { delete this; }
    };
    return new Failed(table.status());
  }
  const int64_t per_chunk = req->rows_per_chunk() > 0 ? req->rows_per_chunk() : 4096;
  // Keep each chunk well inside the message limit.
  const int64_t max_rows = std::max<int64_t>(
      1, (int64_t{16} << 20) / ((*table)->dim() * static_cast<int64_t>(sizeof(float))));
  return new ExportWriter(*std::move(table), std::min(per_chunk, max_rows));
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::CreateCheckpoint(
    grpc::CallbackServerContext* ctx, const v1::CreateCheckpointRequest* req,
    v1::CreateCheckpointResponse* resp) {
  absl::Status s = registry_->CreateCheckpoint(req->name());
  if (s.ok()) {
    auto all = registry_->ListCheckpoints();
    if (all.ok()) {
      for (const auto& c : *all) {
        if (c.name == req->name()) CheckpointToProto(c, resp->mutable_checkpoint());
      }
    }
    internal::LogInfo(absl::StrCat("created checkpoint '", req->name(), "'"));
  }
  return Finish(ctx, s);
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::ListCheckpoints(
    grpc::CallbackServerContext* ctx, const v1::ListCheckpointsRequest* req,
    v1::ListCheckpointsResponse* resp) {
  auto all = registry_->ListCheckpoints();
  if (all.ok()) {
    for (const auto& c : *all) CheckpointToProto(c, resp->add_checkpoints());
  }
  return Finish(ctx, all.status());
}

grpc::ServerUnaryReactor* EmbeddingServiceImpl::RestoreCheckpoint(
    grpc::CallbackServerContext* ctx, const v1::RestoreCheckpointRequest* req,
    v1::RestoreCheckpointResponse* resp) {
  std::vector<std::string> names(req->tables().begin(), req->tables().end());
  auto restored = registry_->RestoreCheckpoint(req->name(), names);
  if (restored.ok()) {
    for (const auto& t : *restored) TableInfoToProto(*t, resp->add_tables());
    internal::LogInfo(
        absl::StrCat("restored ", restored->size(), " tables from checkpoint '", req->name(), "'"));
  }
  return Finish(ctx, restored.status());
}

}  // namespace embedserve
