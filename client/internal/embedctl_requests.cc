#include "client/internal/embedctl_requests.h"

#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace embedserve::internal {
namespace {

template <typename T>
bool ParseList(const std::string& text, const char* flag, std::vector<T>* out) {
  if (text.empty()) return true;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    T v;
    bool ok;
    if constexpr (std::is_same_v<T, float>) {
      ok = absl::SimpleAtof(absl::StripAsciiWhitespace(part), &v);
    } else {
      ok = absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v);
    }
    if (!ok) {
      std::cerr << "embedctl: --" << flag << ": '" << part << "' is not a number\n";
      return false;
    }
    out->push_back(v);
  }
  return true;
}

// A usage error: printed, and false.
bool Refuse(absl::string_view message) {
  UsageError(message);
  return false;
}

// Calls `set` with --padding_idx when given; false if it is not an integer.
template <typename Setter>
bool SetPaddingIdx(const EmbedctlOptions& o, Setter set) {
  if (o.padding_idx.empty()) return true;
  int64_t idx;
  if (!absl::SimpleAtoi(o.padding_idx, &idx)) {
    std::cerr << "embedctl: --padding_idx must be an integer\n";
    return false;
  }
  set(idx);
  return true;
}

}  // namespace

int UsageError(absl::string_view message) {
  std::cerr << "embedctl: " << message << "\n(embedctl --help for usage)\n";
  return 2;
}

bool ParseRowLists(const EmbedctlOptions& o, RowLists* lists) {
  return ParseList(o.ids, "ids", &lists->ids) && ParseList(o.shape, "shape", &lists->shape) &&
         ParseList(o.offsets, "offsets", &lists->offsets) &&
         ParseList(o.weights, "weights", &lists->weights) &&
         ParseList(o.values, "values", &lists->values) &&
         ParseList(o.grads, "grads", &lists->grads);
}

bool MakeTableSpec(const EmbedctlOptions& o, const std::string& name, v1::TableSpec* spec,
                   std::vector<float>* initial_values) {
  spec->set_name(name);
  spec->set_num_embeddings(o.num);
  spec->set_embedding_dim(o.dim);
  if (!SetPaddingIdx(o, [&](int64_t i) { spec->set_padding_idx(i); })) return false;
  if (o.max_norm != 0) spec->set_max_norm(o.max_norm);
  spec->set_norm_type(o.norm_type);
  spec->set_frozen(o.frozen);
  spec->set_num_shards(o.shards);
  spec->set_scale_grad_by_freq(o.scale_grad_by_freq);
  // As given: the server refuses --num with --dynamic, or --max_rows and
  // the others without it, naming the field.
  spec->set_dynamic(o.dynamic);
  spec->set_max_rows(o.max_rows);
  spec->set_ttl_steps(o.ttl_steps);
  spec->set_admit_after(o.admit_after);
  spec->set_unseen_zeros(o.unseen_zeros);
  if (!SetOptimizer(o, /*creating=*/true, spec->mutable_optimizer())) return false;
  v1::Initializer* init = spec->mutable_initializer();
  const std::string kind = absl::AsciiStrToUpper(o.init);
  v1::Initializer::Kind k;
  if (!v1::Initializer::Kind_Parse(kind, &k)) return Refuse("unknown --init " + kind);
  init->set_kind(k);
  init->set_mean(o.mean);
  init->set_std(o.stddev);
  init->set_a(o.a);
  init->set_b(o.b);
  init->set_value(o.value);
  init->set_seed(o.seed);
  if (o.from_raw.empty()) return true;
  std::ifstream in(o.from_raw, std::ios::binary);
  if (!in) return Refuse("cannot open --from_raw file " + o.from_raw);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() % 4 != 0) {
    return Refuse(o.from_raw + " is not a whole number of float32 values");
  }
  initial_values->resize(bytes.size() / 4);
  std::memcpy(initial_values->data(), bytes.data(), bytes.size());
  return true;
}

bool MakeLoadRequest(const EmbedctlOptions& o, const std::string& name, v1::LoadTableRequest* req) {
  req->set_name(name);
  req->set_path(o.path);
  v1::FileFormat format;
  if (!v1::FileFormat_Parse(absl::AsciiStrToUpper(o.format), &format)) {
    return Refuse("unknown --format " + o.format);
  }
  req->set_format(format);
  req->set_raw_dim(o.raw_dim);
  req->set_freeze(o.frozen);
  req->set_replace(o.replace);
  return SetPaddingIdx(o, [&](int64_t i) { req->set_padding_idx(i); });
}

bool SetOptimizer(const EmbedctlOptions& o, bool creating, v1::OptimizerSpec* spec) {
  struct Field {
    std::string EmbedctlOptions::*text;
    const char* name;
    void (v1::OptimizerSpec::*set)(double);
  };
  static constexpr Field kFields[] = {
      {&EmbedctlOptions::lr, "lr", &v1::OptimizerSpec::set_lr},
      {&EmbedctlOptions::lr_decay, "lr_decay", &v1::OptimizerSpec::set_lr_decay},
      {&EmbedctlOptions::eps, "eps", &v1::OptimizerSpec::set_eps},
      {&EmbedctlOptions::beta1, "beta1", &v1::OptimizerSpec::set_beta1},
      {&EmbedctlOptions::beta2, "beta2", &v1::OptimizerSpec::set_beta2},
      {&EmbedctlOptions::initial_accumulator_value, "initial_accumulator_value",
       &v1::OptimizerSpec::set_initial_accumulator_value},
  };
  for (const Field& f : kFields) {
    const std::string& text = o.*f.text;
    if (text.empty()) continue;
    double v;
    if (!absl::SimpleAtod(text, &v)) {
      std::cerr << "embedctl: --" << f.name << " must be a number\n";
      return false;
    }
    (spec->*f.set)(v);
  }
  if (!creating) return true;
  v1::OptimizerSpec::Kind kind;
  const std::string name = absl::AsciiStrToUpper(o.optimizer);
  if (!v1::OptimizerSpec::Kind_Parse(name, &kind)) {
    std::cerr << "embedctl: unknown --optimizer " << name << "\n";
    return false;
  }
  spec->set_kind(kind);
  return true;
}

bool MakeUpdateRequest(const EmbedctlOptions& o, const std::string& name,
                       v1::UpdateTableRequest* req) {
  req->set_name(name);
  if (!o.set_frozen.empty()) {
    if (o.set_frozen != "true" && o.set_frozen != "false") {
      return Refuse("--set_frozen must be true or false");
    }
    req->set_frozen(o.set_frozen == "true");
  }
  return SetOptimizer(o, /*creating=*/false, req->mutable_optimizer());
}

}  // namespace embedserve::internal
