#include "storage/internal/meta_codec.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/enum_names.h"
#include "storage/internal/key_layout.h"

namespace embedserve::internal {
namespace {

// FORMAT.md's `init` and `optimizer` values are core/enum_names.h's names.
template <typename Kind>
bool KindOf(std::optional<Kind> parsed, Kind* kind) {
  if (parsed) *kind = *parsed;
  return parsed.has_value();
}

std::string D(double v) { return absl::StrFormat("%.17g", v); }

constexpr absl::string_view kFamilyField = "family=";

}  // namespace

std::string EncodeMeta(const StoredTable& m) {
  const TableSpec& s = m.spec;
  std::string out;
  auto line = [&out](absl::string_view k, absl::string_view v) {
    absl::StrAppend(&out, k, "=", v, "\n");
  };
  line("format", "1");
  line("name", s.name);
  line("num_embeddings", absl::StrCat(s.num_embeddings));
  line("embedding_dim", absl::StrCat(s.embedding_dim));
  if (s.padding_idx) line("padding_idx", absl::StrCat(*s.padding_idx));
  if (s.max_norm) line("max_norm", D(*s.max_norm));
  line("norm_type", D(s.norm_type));
  line("frozen", s.frozen ? "1" : "0");
  line("scale_grad_by_freq", s.scale_grad_by_freq ? "1" : "0");
  line("num_shards", absl::StrCat(s.num_shards));
  line("init", Name(s.initializer.kind));
  line("init_mean", D(s.initializer.mean));
  line("init_std", D(s.initializer.std));
  line("init_a", D(s.initializer.a));
  line("init_b", D(s.initializer.b));
  line("init_value", D(s.initializer.value));
  line("init_seed", absl::StrCat(s.initializer.seed));
  // Written from generator 2 on: a record without it was made by generator
  // 1 (every server before the field), and still encodes as it did.
  if (s.initializer.generator >= 2) line("init_generator", absl::StrCat(s.initializer.generator));
  line("optimizer", Name(s.optimizer.kind));
  line("lr", D(s.optimizer.lr.value_or(0.01)));
  line("lr_decay", D(s.optimizer.lr_decay));
  line("initial_accumulator_value", D(s.optimizer.initial_accumulator_value));
  if (s.optimizer.eps) line("eps", D(*s.optimizer.eps));
  line("beta1", D(s.optimizer.beta1));
  line("beta2", D(s.optimizer.beta2));
  line("version", absl::StrCat(m.version));
  line("step", absl::StrCat(m.step));
  line("floats_per_record", absl::StrCat(m.floats_per_record));
  line("row_type", absl::StrCat(static_cast<int>(s.row_type)));
  if (s.dynamic) {
    line("dynamic", "1");
    line("max_rows", absl::StrCat(s.dynamic->max_rows));
    line("ttl_steps", absl::StrCat(s.dynamic->ttl_steps));
    line("admit_after", absl::StrCat(s.dynamic->admit_after));
    line("unseen_zeros", s.dynamic->unseen_zeros ? "1" : "0");
    line("dynamic_rows", absl::StrCat(m.dynamic_rows));
    if (!m.dynamic_admission.empty()) line("admission", absl::Base64Escape(m.dynamic_admission));
    if (!m.dynamic_counters.empty()) line("dynamic_counters", absl::StrJoin(m.dynamic_counters, ","));
  }
  // The update log's fields (storage/FORMAT.md), only when set, so that a
  // table written without a log encodes as before.
  if (m.rows_per_value > 1) line("rows_per_value", absl::StrCat(m.rows_per_value));
  if (m.generation != 0) line("generation", absl::StrCat(m.generation));
  if (m.log_position != 0) line("log_position", absl::StrCat(m.log_position));
  if (!m.shard_positions.empty()) line("shard_positions", absl::StrJoin(m.shard_positions, ","));
  if (!m.trainer_sequences.empty()) {
    line("trainers", absl::StrJoin(m.trainer_sequences, ",", [](std::string* o, const auto& t) {
           absl::StrAppend(o, t.second, "@", t.first);
         }));
  }
  return out;
}

absl::StatusOr<StoredTable> DecodeMeta(absl::string_view text) {
  StoredTable m;
  TableSpec& s = m.spec;
  bool have_name = false;
  s.initializer.generator = 1;  // written only from generator 2 on
  for (absl::string_view raw : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t eq = raw.find('=');
    if (eq == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("metadata line '", raw, "' has no '='"));
    }
    const absl::string_view k = raw.substr(0, eq), v = raw.substr(eq + 1);
    bool ok = true;
    auto i64 = [&](int64_t* out) { ok = absl::SimpleAtoi(v, out); };
    auto dbl = [&](double* out) { ok = absl::SimpleAtod(v, out); };
    if (k == "format") {
      ok = v == "1";
    } else if (k == "name") {
      s.name = std::string(v);
      have_name = true;
    } else if (k == "num_embeddings") {
      i64(&s.num_embeddings);
    } else if (k == "embedding_dim") {
      i64(&s.embedding_dim);
    } else if (k == "padding_idx") {
      int64_t p = 0;
      i64(&p);
      s.padding_idx = p;
    } else if (k == "max_norm") {
      double x = 0;
      dbl(&x);
      s.max_norm = x;
    } else if (k == "norm_type") {
      dbl(&s.norm_type);
    } else if (k == "frozen") {
      s.frozen = v == "1";
    } else if (k == "scale_grad_by_freq") {
      s.scale_grad_by_freq = v == "1";
    } else if (k == "num_shards") {
      ok = absl::SimpleAtoi(v, &s.num_shards);
    } else if (k == "init") {
      ok = KindOf(ParseInitKind(v), &s.initializer.kind);
    } else if (k == "init_mean") {
      dbl(&s.initializer.mean);
    } else if (k == "init_std") {
      dbl(&s.initializer.std);
    } else if (k == "init_a") {
      dbl(&s.initializer.a);
    } else if (k == "init_b") {
      dbl(&s.initializer.b);
    } else if (k == "init_value") {
      dbl(&s.initializer.value);
    } else if (k == "init_seed") {
      ok = absl::SimpleAtoi(v, &s.initializer.seed);
    } else if (k == "init_generator") {
      ok = absl::SimpleAtoi(v, &s.initializer.generator) && s.initializer.generator >= 1;
    } else if (k == "optimizer") {
      ok = KindOf(ParseOptimizerKind(v), &s.optimizer.kind);
    } else if (k == "lr") {
      double x = 0;
      dbl(&x);
      s.optimizer.lr = x;
    } else if (k == "lr_decay") {
      dbl(&s.optimizer.lr_decay);
    } else if (k == "initial_accumulator_value") {
      dbl(&s.optimizer.initial_accumulator_value);
    } else if (k == "eps") {
      double x = 0;
      dbl(&x);
      s.optimizer.eps = x;
    } else if (k == "beta1") {
      dbl(&s.optimizer.beta1);
    } else if (k == "beta2") {
      dbl(&s.optimizer.beta2);
    } else if (k == "version") {
      i64(&m.version);
    } else if (k == "step") {
      i64(&m.step);
    } else if (k == "floats_per_record") {
      i64(&m.floats_per_record);
    } else if (k == "row_type") {
      int64_t t = 0;
      i64(&t);
      ok = ok && t >= 0 && t <= 3;
      s.row_type = static_cast<RowType>(t);
    } else if (k == "dynamic") {
      if (v == "1" && !s.dynamic) s.dynamic.emplace();
    } else if (k == "max_rows" || k == "ttl_steps" || k == "dynamic_rows") {
      if (!s.dynamic) s.dynamic.emplace();
      i64(k == "max_rows" ? &s.dynamic->max_rows
                          : k == "ttl_steps" ? &s.dynamic->ttl_steps : &m.dynamic_rows);
    } else if (k == "admit_after") {
      if (!s.dynamic) s.dynamic.emplace();
      ok = absl::SimpleAtoi(v, &s.dynamic->admit_after);
    } else if (k == "dynamic_counters") {
      m.dynamic_counters.clear();
      for (absl::string_view c : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        int64_t x = 0;
        ok = ok && absl::SimpleAtoi(c, &x) && x >= 0;
        m.dynamic_counters.push_back(x);
      }
    } else if (k == "admission") {
      ok = absl::Base64Unescape(v, &m.dynamic_admission);
    } else if (k == "unseen_zeros") {
      if (!s.dynamic) s.dynamic.emplace();
      s.dynamic->unseen_zeros = v == "1";
    } else if (k == "rows_per_value") {
      i64(&m.rows_per_value);
      ok = ok && m.rows_per_value >= 1;
    } else if (k == "generation") {
      i64(&m.generation);
    } else if (k == "log_position") {
      ok = absl::SimpleAtoi(v, &m.log_position);
    } else if (k == "shard_positions") {
      m.shard_positions.clear();
      for (absl::string_view p : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        uint64_t x = 0;
        ok = ok && absl::SimpleAtoi(p, &x);
        m.shard_positions.push_back(x);
      }
    } else if (k == "trainers") {
      m.trainer_sequences.clear();
      for (absl::string_view t : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        const size_t at = t.find('@');
        uint64_t seq = 0;
        ok = ok && at != absl::string_view::npos && at + 1 < t.size() &&
             absl::SimpleAtoi(t.substr(0, at), &seq);
        if (ok) m.trainer_sequences.emplace_back(std::string(t.substr(at + 1)), seq);
      }
    }  // unknown keys are ignored: newer writers may add fields
    if (!ok)
      return absl::DataLossError(absl::StrCat("metadata field ", k, "='", v, "' is invalid"));
  }
  if (!have_name) return absl::DataLossError("metadata has no name");
  return m;
}

std::string EncodeMetaRecord(const StoredTable& meta, absl::string_view family) {
  return absl::StrCat(EncodeMeta(meta), kFamilyField, family, "\n");
}

std::string FamilyOfMetaRecord(absl::string_view record, absl::string_view table) {
  for (absl::string_view line : absl::StrSplit(record, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, kFamilyField)) return std::string(line.substr(kFamilyField.size()));
  }
  return RowsFamily(table);
}

}  // namespace embedserve::internal
