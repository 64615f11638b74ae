#include "core/table_spec.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace embedserve {
namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A dynamic table's own rules (the fields every table has are checked by
// the caller).
absl::Status CheckDynamic(const TableSpec& spec) {
  const DynamicSpec& d = *spec.dynamic;
  if (spec.num_embeddings != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a dynamic table takes any int64 id and has no num_embeddings; got ",
                     spec.num_embeddings, " (leave it 0)"));
  }
  if (spec.embedding_dim <= 0 || spec.embedding_dim > kMaxEmbeddingDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "embedding_dim must be in [1, ", kMaxEmbeddingDim, "], got ", spec.embedding_dim));
  }
  if (spec.num_shards != 0) {
    return absl::InvalidArgumentError("a dynamic table has no shards by id range; leave num_shards 0");
  }
  if (d.max_rows < 0 || d.max_rows > kMaxDynamicRows) {
    return absl::InvalidArgumentError(absl::StrCat("max_rows must be in [0, ", kMaxDynamicRows,
                                                   "] (0: no limit), got ", d.max_rows));
  }
  if (d.ttl_steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl_steps must be >= 0 (0: rows never expire), got ", d.ttl_steps));
  }
  if (d.admit_after < 0 || d.admit_after > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("admit_after must be in [0, 255], got ", d.admit_after));
  }
  if (spec.initializer.kind == InitKind::kXavierUniform) {
    return absl::InvalidArgumentError(
        "xavier_uniform needs num_embeddings (its fan-out), which a dynamic table does not have");
  }
  if (spec.initializer.generator == 1) {
    return absl::InvalidArgumentError(
        "a dynamic table needs initializer generator 2 (rows keyed by 64-bit ids)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TableSpec> NormalizeTableSpec(TableSpec spec) {
  if (!ValidName(spec.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("table name '", spec.name, "' must be 1-128 characters of [A-Za-z0-9_.-]"));
  }
  if (spec.dynamic.has_value()) {
    RETURN_IF_ERROR(CheckDynamic(spec));
  } else {
    if (spec.num_embeddings <= 0 || spec.num_embeddings > kMaxNumEmbeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "num_embeddings must be in [1, ", kMaxNumEmbeddings, "], got ", spec.num_embeddings));
    }
    if (spec.embedding_dim <= 0 || spec.embedding_dim > kMaxEmbeddingDim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "embedding_dim must be in [1, ", kMaxEmbeddingDim, "], got ", spec.embedding_dim));
    }
    if (spec.padding_idx.has_value()) {
      const int64_t p = *spec.padding_idx;
      if (p < -spec.num_embeddings || p >= spec.num_embeddings) {
        return absl::InvalidArgumentError(
            absl::StrCat("padding_idx ", p, " must be within num_embeddings ", spec.num_embeddings,
                         " (in [", -spec.num_embeddings, ", ", spec.num_embeddings, "))"));
      }
      if (p < 0) spec.padding_idx = p + spec.num_embeddings;
    }
  }
  if (spec.max_norm.has_value() && !(*spec.max_norm > 0 && std::isfinite(*spec.max_norm))) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_norm must be finite and > 0, got ", *spec.max_norm));
  }
  if (!(spec.norm_type > 0)) {  // also rejects NaN
    return absl::InvalidArgumentError(absl::StrCat("norm_type must be > 0, got ", spec.norm_type));
  }
  if (spec.num_shards < 0 || spec.num_shards > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_shards must be in [0, ", kMaxShards, "], got ", spec.num_shards));
  }
  absl::StatusOr<OptimizerSpec> optimizer = NormalizeOptimizerSpec(spec.optimizer);
  if (!optimizer.ok()) return optimizer.status();
  spec.optimizer = *optimizer;
  if (spec.initializer.generator == 0) spec.initializer.generator = kCurrentInitGenerator;
  if (spec.initializer.generator > kCurrentInitGenerator) {
    return absl::InvalidArgumentError(absl::StrCat("initializer generator ",
                                                   spec.initializer.generator,
                                                   " is unknown (1 .. ", kCurrentInitGenerator,
                                                   ", or 0 for the current one)"));
  }
  // The initializer's arguments, as torch.nn.init: every one must convert to
  // float32 (torch: "value cannot be converted to type float without
  // overflow"), std >= 0, a <= b.
  const InitializerSpec& init = spec.initializer;
  auto fits = [](double v) { return std::fabs(v) <= std::numeric_limits<float>::max(); };
  auto bad = [](absl::string_view what, double v) {
    return absl::InvalidArgumentError(
        absl::StrCat("initializer ", what, " must be a finite float32, got ", v));
  };
  switch (init.kind) {
    case InitKind::kNormal:
      if (!fits(init.mean)) return bad("mean", init.mean);
      if (!fits(init.std)) return bad("std", init.std);
      if (init.std < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("normal initializer needs std >= 0, got ", init.std));
      }
      break;
    case InitKind::kUniform:
      if (!fits(init.a)) return bad("a", init.a);
      if (!fits(init.b)) return bad("b", init.b);
      if (init.a > init.b) {
        return absl::InvalidArgumentError(
            absl::StrCat("uniform initializer needs a <= b, got a ", init.a, " b ", init.b));
      }
      break;
    case InitKind::kConstant:
      if (!fits(init.value)) return bad("value", init.value);
      break;
    case InitKind::kZeros:
    case InitKind::kXavierUniform:
      break;
  }
  return spec;
}

}  // namespace embedserve
