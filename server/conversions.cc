#include "server/conversions.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/row_codec.h"

namespace embedserve {

static_assert(static_cast<int>(RowType::kFloat16) == v1::FLOAT16 &&
                  static_cast<int>(RowType::kBFloat16) == v1::BFLOAT16 &&
                  static_cast<int>(RowType::kInt8Rowwise) == v1::INT8_ROWWISE,
              "RowType and ValueType must agree");
static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian float32; add byte swapping for this host");

std::optional<OptimizerKind> OptimizerKindFromProto(int kind) {
  switch (kind) {
    case v1::OptimizerSpec::SGD:
      return OptimizerKind::kSgd;
    case v1::OptimizerSpec::ADAGRAD:
      return OptimizerKind::kAdagrad;
    case v1::OptimizerSpec::ROWWISE_ADAGRAD:
      return OptimizerKind::kRowWiseAdagrad;
    case v1::OptimizerSpec::SPARSE_ADAM:
      return OptimizerKind::kSparseAdam;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<TableSpec> SpecFromProto(const v1::TableSpec& p) {
  TableSpec s;
  s.name = p.name();
  s.num_embeddings = p.num_embeddings();
  s.embedding_dim = p.embedding_dim();
  if (p.has_padding_idx()) s.padding_idx = p.padding_idx();
  if (p.has_max_norm()) s.max_norm = p.max_norm();
  if (p.has_norm_type()) s.norm_type = p.norm_type();
  s.frozen = p.frozen();
  s.num_shards = p.num_shards();
  const v1::Initializer& i = p.initializer();
  switch (i.kind()) {
    case v1::Initializer::NORMAL:
      s.initializer.kind = InitKind::kNormal;
      break;
    case v1::Initializer::UNIFORM:
      s.initializer.kind = InitKind::kUniform;
      break;
    case v1::Initializer::ZEROS:
      s.initializer.kind = InitKind::kZeros;
      break;
    case v1::Initializer::CONSTANT:
      s.initializer.kind = InitKind::kConstant;
      break;
    case v1::Initializer::XAVIER_UNIFORM:
      s.initializer.kind = InitKind::kXavierUniform;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown initializer kind ", static_cast<int>(i.kind())));
  }
  s.scale_grad_by_freq = p.scale_grad_by_freq();
  switch (p.row_type()) {
    case v1::FLOAT32:
      s.row_type = RowType::kFloat32;
      break;
    case v1::FLOAT16:
      s.row_type = RowType::kFloat16;
      break;
    case v1::BFLOAT16:
      s.row_type = RowType::kBFloat16;
      break;
    case v1::INT8_ROWWISE:
      s.row_type = RowType::kInt8Rowwise;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown row_type ", static_cast<int>(p.row_type())));
  }
  const v1::OptimizerSpec& o = p.optimizer();
  const std::optional<OptimizerKind> kind = OptimizerKindFromProto(o.kind());
  if (!kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown optimizer kind ", static_cast<int>(o.kind())));
  }
  s.optimizer.kind = *kind;
  if (o.has_lr()) s.optimizer.lr = o.lr();
  if (o.has_lr_decay()) s.optimizer.lr_decay = o.lr_decay();
  if (o.has_initial_accumulator_value()) {
    s.optimizer.initial_accumulator_value = o.initial_accumulator_value();
  }
  if (o.has_eps()) s.optimizer.eps = o.eps();
  if (o.has_beta1()) s.optimizer.beta1 = o.beta1();
  if (o.has_beta2()) s.optimizer.beta2 = o.beta2();
  if (i.has_mean()) s.initializer.mean = i.mean();
  if (i.has_std()) s.initializer.std = i.std();
  if (i.has_a()) s.initializer.a = i.a();
  if (i.has_b()) s.initializer.b = i.b();
  s.initializer.value = i.value();
  s.initializer.seed = i.seed();
  s.initializer.generator = i.generator();
  if (p.dynamic()) {
    s.dynamic = DynamicSpec{p.max_rows(), p.ttl_steps(), p.admit_after(), p.unseen_zeros()};
  } else {
    const char* field = p.max_rows() != 0      ? "max_rows"
                        : p.ttl_steps() != 0   ? "ttl_steps"
                        : p.admit_after() != 0 ? "admit_after"
                        : p.unseen_zeros()     ? "unseen_zeros"
                                               : nullptr;
    if (field != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " is only for dynamic tables (set dynamic, or leave ", field, " unset)"));
    }
  }
  return s;
}

void SpecToProto(const TableSpec& s, v1::TableSpec* p) {
  p->set_name(s.name);
  p->set_num_embeddings(s.num_embeddings);
  p->set_embedding_dim(s.embedding_dim);
  if (s.padding_idx) p->set_padding_idx(*s.padding_idx);
  if (s.max_norm) p->set_max_norm(*s.max_norm);
  p->set_norm_type(s.norm_type);
  p->set_frozen(s.frozen);
  p->set_num_shards(s.num_shards);
  p->set_scale_grad_by_freq(s.scale_grad_by_freq);
  p->set_row_type(static_cast<v1::ValueType>(static_cast<int>(s.row_type)));
  v1::OptimizerSpec* o = p->mutable_optimizer();
  switch (s.optimizer.kind) {
    case OptimizerKind::kSgd:
      o->set_kind(v1::OptimizerSpec::SGD);
      break;
    case OptimizerKind::kAdagrad:
      o->set_kind(v1::OptimizerSpec::ADAGRAD);
      break;
    case OptimizerKind::kRowWiseAdagrad:
      o->set_kind(v1::OptimizerSpec::ROWWISE_ADAGRAD);
      break;
    case OptimizerKind::kSparseAdam:
      o->set_kind(v1::OptimizerSpec::SPARSE_ADAM);
      break;
  }
  if (s.optimizer.lr) o->set_lr(*s.optimizer.lr);
  o->set_lr_decay(s.optimizer.lr_decay);
  o->set_initial_accumulator_value(s.optimizer.initial_accumulator_value);
  if (s.optimizer.eps) o->set_eps(*s.optimizer.eps);
  o->set_beta1(s.optimizer.beta1);
  o->set_beta2(s.optimizer.beta2);
  v1::Initializer* i = p->mutable_initializer();
  switch (s.initializer.kind) {
    case InitKind::kNormal:
      i->set_kind(v1::Initializer::NORMAL);
      break;
    case InitKind::kUniform:
      i->set_kind(v1::Initializer::UNIFORM);
      break;
    case InitKind::kZeros:
      i->set_kind(v1::Initializer::ZEROS);
      break;
    case InitKind::kConstant:
      i->set_kind(v1::Initializer::CONSTANT);
      break;
    case InitKind::kXavierUniform:
      i->set_kind(v1::Initializer::XAVIER_UNIFORM);
      break;
  }
  i->set_mean(s.initializer.mean);
  i->set_std(s.initializer.std);
  i->set_a(s.initializer.a);
  i->set_b(s.initializer.b);
  i->set_value(s.initializer.value);
  i->set_seed(s.initializer.seed);
  i->set_generator(s.initializer.generator);
  if (s.dynamic) {
    p->set_dynamic(true);
    p->set_max_rows(s.dynamic->max_rows);
    p->set_ttl_steps(s.dynamic->ttl_steps);
    p->set_admit_after(s.dynamic->admit_after);
    p->set_unseen_zeros(s.dynamic->unseen_zeros);
  }
}

void TableInfoToProto(const EmbeddingTable& t, v1::TableInfo* p) {
  SpecToProto(t.spec(), p->mutable_spec());
  p->set_num_rows(t.num_rows());
  p->set_bytes_used(t.bytes_used());
  p->set_version(t.version());
  p->set_num_shards(t.num_shards());
  p->set_rows_per_shard(t.rows_per_shard());
  p->set_optimizer_state_bytes(t.optimizer_state_bytes());
  p->set_optimizer_step(t.optimizer_step());
  p->set_has_vocabulary(t.has_vocabulary());
  p->set_bytes_per_row(CompactRowStride(t.spec().row_type, t.dim()));
  if (const std::optional<DynamicTableStats> d = t.dynamic_stats()) {
    v1::DynamicStats* ds = p->mutable_dynamic();
    ds->set_rows_stored(d->rows_stored);
    ds->set_rows_admitted(d->rows_admitted);
    ds->set_rows_evicted(d->rows_evicted);
    ds->set_rows_expired(d->rows_expired);
    ds->set_pushes_not_admitted(d->pushes_not_admitted);
    ds->set_pushes_dropped_full(d->pushes_dropped_full);
    ds->set_index_bytes(d->index_bytes);
    ds->set_sketch_bytes(d->sketch_bytes);
    ds->set_slot_meta_bytes(d->slot_meta_bytes);
  }
}

absl::StatusOr<PoolingMode> PoolingModeFromProto(v1::PoolingMode mode) {
  switch (mode) {
    case v1::SUM:
      return PoolingMode::kSum;
    case v1::MEAN:
      return PoolingMode::kMean;
    case v1::MAX:
      return PoolingMode::kMax;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown pooling mode ", static_cast<int>(mode)));
  }
}

absl::StatusOr<absl::Span<const float>> FloatsFromBytes(const std::string& bytes,
                                                        absl::string_view field,
                                                        std::vector<float>* scratch) {
  if (bytes.size() % sizeof(float) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " has ", bytes.size(), " bytes, not a whole number of float32 values"));
  }
  const size_t n = bytes.size() / sizeof(float);
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0) {
    return absl::MakeConstSpan(reinterpret_cast<const float*>(bytes.data()), n);
  }
  scratch->resize(n);
  std::memcpy(scratch->data(), bytes.data(), bytes.size());
  return absl::MakeConstSpan(*scratch);
}

absl::StatusOr<OutputType> OutputTypeFromProto(v1::ValueType type) {
  switch (type) {
    case v1::FLOAT32:
      return OutputType::kFloat32;
    case v1::FLOAT16:
      return OutputType::kFloat16;
    default:
      return absl::InvalidArgumentError("output must be FLOAT32 or FLOAT16");
  }
}

v1::ValueType OutputTypeToProto(OutputType type) {
  return type == OutputType::kFloat16 ? v1::FLOAT16 : v1::FLOAT32;
}

absl::StatusOr<PlainLookup> PlainLookupFromProto(const v1::LookupQuery& query,
                                                 absl::Span<const int64_t> ids) {
  PlainLookup lookup;
  ASSIGN_OR_RETURN(lookup.output, OutputTypeFromProto(query.output()));
  lookup.ids = ids;
  lookup.shape = IdSpan(query.shape());
  lookup.scalar = query.scalar();
  return lookup;
}

absl::StatusOr<PooledLookup> PooledLookupFromProto(const v1::PooledQuery& query) {
  PooledLookup lookup;
  ASSIGN_OR_RETURN(lookup.mode, PoolingModeFromProto(query.mode()));
  lookup.ids = IdSpan(query.ids());
  lookup.offsets = IdSpan(query.offsets());
  lookup.include_last_offset = query.include_last_offset();
  lookup.shape = IdSpan(query.shape());
  lookup.weights =
      absl::MakeConstSpan(query.per_sample_weights().data(), query.per_sample_weights_size());
  return lookup;
}

absl::StatusOr<EmbeddingTable::Settings> SettingsFromProto(const v1::UpdateTableRequest& req) {
  const v1::OptimizerSpec& o = req.optimizer();
  EmbeddingTable::Settings settings;
  // SGD is the field's default: "unset" on the wire.
  if (o.kind() != v1::OptimizerSpec::SGD) {
    settings.kind = OptimizerKindFromProto(o.kind());
    if (!settings.kind) return absl::InvalidArgumentError("the optimizer kind is fixed at creation");
  }
  if (o.has_initial_accumulator_value()) {
    settings.initial_accumulator_value = o.initial_accumulator_value();
  }
  if (req.has_frozen()) settings.frozen = req.frozen();
  if (o.has_lr()) settings.lr = o.lr();
  if (o.has_lr_decay()) settings.lr_decay = o.lr_decay();
  if (o.has_eps()) settings.eps = o.eps();
  if (o.has_beta1()) settings.beta1 = o.beta1();
  if (o.has_beta2()) settings.beta2 = o.beta2();
  return settings;
}

absl::StatusOr<TableSpec> LoadSpecFromProto(const v1::LoadTableRequest& req) {
  v1::TableSpec proto;
  proto.set_name(req.name());
  proto.set_num_embeddings(1);
  proto.set_embedding_dim(1);
  *proto.mutable_optimizer() = req.optimizer();
  ASSIGN_OR_RETURN(TableSpec spec, SpecFromProto(proto));
  spec.frozen = req.freeze();
  if (req.has_padding_idx()) spec.padding_idx = req.padding_idx();
  if (req.has_max_norm()) spec.max_norm = req.max_norm();
  return spec;
}

absl::StatusOr<PretrainedFormat> PretrainedFormatFromProto(v1::FileFormat format) {
  switch (format) {
    case v1::NPY:
      return PretrainedFormat::kNpy;
    case v1::WORD2VEC_TEXT:
      return PretrainedFormat::kWord2VecText;
    case v1::WORD2VEC_BINARY:
      return PretrainedFormat::kWord2VecBinary;
    case v1::GLOVE_TEXT:
      return PretrainedFormat::kGloveText;
    case v1::RAW_F32:
      return PretrainedFormat::kRaw;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown file format ", format));
  }
}

void CheckpointToProto(const CheckpointInfo& info, v1::Checkpoint* p) {
  p->set_name(info.name);
  p->set_created_unix_ms(info.created_unix_ms);
  p->set_bytes(info.bytes);
  for (const auto& t : info.tables) p->add_tables(t);
}

void StateSlotsToProto(absl::Span<const EmbeddingTable::StateSlot> slots, int64_t num_ids,
                       v1::OptimizerStateResponse* proto) {
  for (const auto& slot : slots) {
    auto* out = proto->add_slots();
    out->set_name(slot.name);
    out->add_shape(num_ids);
    if (slot.width != 1) out->add_shape(slot.width);
    out->set_values(slot.values.data(), slot.values.size() * sizeof(float));
  }
}

}  // namespace embedserve
