#include "client/internal/text_output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace embedserve::internal {

std::string FormatRow(const float* row, int64_t dim, int64_t max_values) {
  const int64_t n = (max_values <= 0 || max_values >= dim) ? dim : max_values;
  std::string s = "[";
  for (int64_t d = 0; d < n; ++d) absl::StrAppendFormat(&s, "%s%.6g", d ? ", " : "", row[d]);
  if (n < dim) absl::StrAppend(&s, ", ... (", dim - n, " more)");
  return s + "]";
}

void PrintRows(std::ostream& out, const Tensor& t, const std::function<std::string(int64_t)>& label,
               int64_t max_values) {
  out << "shape [" << absl::StrJoin(t.shape, ", ") << "]\n";
  const int64_t dim = t.shape.back();
  const int64_t rows = dim == 0 ? 0 : static_cast<int64_t>(t.values.size()) / dim;
  for (int64_t r = 0; r < rows; ++r) {
    out << label(r) << ": " << FormatRow(t.values.data() + r * dim, dim, max_values) << "\n";
  }
}

namespace {

// A dynamic table's lines (in place of num_embeddings and the shards).
void PrintDynamic(std::ostream& out, const v1::TableInfo& info) {
  const v1::TableSpec& s = info.spec();
  const v1::DynamicStats& d = info.dynamic();
  out << "  dynamic         any int64 id; max_rows "
      << (s.max_rows() > 0 ? absl::StrCat(s.max_rows()) : "none") << ", ttl_steps "
      << (s.ttl_steps() > 0 ? absl::StrCat(s.ttl_steps()) : "none") << ", admit_after "
      << std::max(1, s.admit_after()) << ", unseen ids read "
      << (s.unseen_zeros() ? "zeros" : "their initial value") << "\n"
      << "  rows_stored     " << d.rows_stored() << " (admitted " << d.rows_admitted()
      << ", evicted " << d.rows_evicted() << ", expired " << d.rows_expired() << ")\n"
      << "  pushes dropped  " << d.pushes_not_admitted() << " not admitted, "
      << d.pushes_dropped_full() << " table full\n"
      << "  index_bytes     " << d.index_bytes() << " (sketch " << d.sketch_bytes()
      << ", slot meta " << d.slot_meta_bytes() << ")\n";
}

}  // namespace

void PrintTableInfo(std::ostream& out, const v1::TableInfo& info) {
  const v1::TableSpec& s = info.spec();
  out << "table " << s.name() << "\n";
  if (s.dynamic()) {
    PrintDynamic(out, info);
  } else {
    out << "  num_embeddings  " << s.num_embeddings() << "\n";
  }
  out << "  embedding_dim   " << s.embedding_dim() << "\n"
      << "  padding_idx     " << (s.has_padding_idx() ? absl::StrCat(s.padding_idx()) : "none")
      << "\n"
      << "  max_norm        "
      << (s.has_max_norm() ? absl::StrCat(s.max_norm(), " (norm_type ", s.norm_type(), ")")
                           : "none")
      << "\n"
      << "  frozen          " << (s.frozen() ? "yes" : "no") << "\n"
      << "  initializer     " << v1::Initializer::Kind_Name(s.initializer().kind()) << " (seed "
      << s.initializer().seed() << ")\n"
      << "  optimizer       " << v1::OptimizerSpec::Kind_Name(s.optimizer().kind()) << " (lr "
      << s.optimizer().lr() << ", step " << info.optimizer_step() << ", "
      << info.optimizer_state_bytes() << " state bytes)\n"
      << "  scale_grad_by_freq " << (s.scale_grad_by_freq() ? "yes" : "no") << "\n";
  if (!s.dynamic()) {
    out << "  shards          " << info.num_shards() << " x " << info.rows_per_shard() << " rows\n";
  }
  out << "  bytes_used      " << info.bytes_used() << "\n"
      << "  version         " << info.version() << "\n";
}

void PrintTableList(std::ostream& out, absl::Span<const v1::TableInfo> tables) {
  out << absl::StrFormat("%-24s %14s %6s %8s %14s %8s\n", "TABLE", "ROWS", "DIM", "SHARDS", "BYTES",
                         "VERSION");
  for (const v1::TableInfo& t : tables) {
    out << absl::StrFormat("%-24s %14d %6d %8d %14d %8d", t.spec().name(), t.num_rows(),
                           t.spec().embedding_dim(), t.num_shards(), t.bytes_used(), t.version());
    // ROWS is the rows stored; the rest of its ids read as initial values.
    if (t.spec().dynamic()) {
      out << "  dynamic (max_rows "
          << (t.spec().max_rows() > 0 ? absl::StrCat(t.spec().max_rows()) : "none") << ")";
    }
    out << "\n";
  }
}

void PrintCheckpoint(std::ostream& out, const v1::Checkpoint& c) {
  out << c.name() << "  " << absl::FormatTime(absl::FromUnixMillis(c.created_unix_ms())) << "  "
      << c.bytes() << " bytes  tables: " << absl::StrJoin(c.tables(), ",") << "\n";
}

}  // namespace embedserve::internal
