// EmbeddingTable: what is particular to dynamic tables (TableSpec::dynamic):
// ids without a row, lookups by the Recheck protocol, snapshots keyed by id.
// The shared paths (pushes, assigns, replay) branch into these.

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/embedding_table.h"
#include "core/internal/sharded_row_storage.h"
#include "core/renorm.h"
#include "core/row_codec.h"

namespace embedserve {
namespace {

internal::DynamicRowOptions DynamicOptionsOf(const TableSpec& spec) {
  internal::DynamicRowOptions o;
  o.max_rows = spec.dynamic->max_rows;
  o.ttl_steps = spec.dynamic->ttl_steps;
  o.admit_after = std::max<int>(1, spec.dynamic->admit_after);
  o.seed = spec.initializer.seed;
  return o;
}

// The row as its compact type stores it: encoded, then decoded.
void RoundTrip(const RowFormat& f, float* row) {
  thread_local std::vector<uint8_t> encoded;
  encoded.resize(f.row_bytes);
  EncodeRow(f.type, row, f.dim, encoded.data());
  DecodeRow(f.type, encoded.data(), f.dim, row);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RowStorage>> EmbeddingTable::MakeStorage(const TableSpec& spec) {
  if (!spec.dynamic) {
    ASSIGN_OR_RETURN(std::unique_ptr<internal::ShardedRowStorage> rows,
                     internal::ShardedRowStorage::Create(spec));
    return std::unique_ptr<RowStorage>(std::move(rows));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<internal::DynamicRowStorage> rows,
                   internal::DynamicRowStorage::Create(RowFormat::For(spec), DynamicOptionsOf(spec)));
  return std::unique_ptr<RowStorage>(std::move(rows));
}

int64_t EmbeddingTable::num_rows() const {
  return dynamic_ == nullptr ? spec_.num_embeddings : dynamic_->stats().rows_stored;
}

std::optional<DynamicTableStats> EmbeddingTable::dynamic_stats() const {
  if (dynamic_ == nullptr) return std::nullopt;
  const internal::DynamicRowStats s = dynamic_->stats();
  DynamicTableStats d;
  d.rows_stored = s.rows_stored;
  d.rows_admitted = s.rows_admitted;
  d.rows_evicted = s.rows_evicted;
  d.rows_expired = s.rows_expired;
  d.pushes_not_admitted = s.pushes_not_admitted;
  d.pushes_dropped_full = s.pushes_dropped_full;
  d.index_bytes = s.index_bytes;
  d.sketch_bytes = s.sketch_bytes;
  d.slot_meta_bytes = s.slot_meta_bytes;
  return d;
}

std::vector<int64_t> EmbeddingTable::StoredIds() const {
  std::vector<int64_t> ids;
  if (dynamic_ == nullptr) return ids;
  absl::ReaderMutexLock lock(&mu_);  // writers hold mu_ exclusively
  ids.reserve(dynamic_->stats().rows_stored);
  dynamic_->ForEachRow([&](int64_t id, int64_t, int64_t) { ids.push_back(id); });
  return ids;
}

void EmbeddingTable::UnseenRows(absl::Span<const int64_t> ids, float* out) const {
  const RowFormat& f = rows_->format();
  const int64_t dim = f.dim;
  if (spec_.dynamic->unseen_zeros) {
    std::fill(out, out + ids.size() * dim, 0.0f);
    return;
  }
  initializer_.Fill(ids, out);
  // The row as its type stores it (a compact row reads back rounded, as a
  // dense table's does), and as a max_norm lookup leaves it (torch
  // renormalises the row the trainer saw; a dense table re-encodes it).
  const bool compact = f.type != RowType::kFloat32;
  if (!compact && !spec_.max_norm) return;
  for (size_t u = 0; u < ids.size(); ++u) {
    float* row = out + u * dim;
    if (compact) RoundTrip(f, row);
    if (spec_.max_norm && RenormRow(row, dim, *spec_.max_norm, spec_.norm_type) && compact) {
      RoundTrip(f, row);
    }
  }
}

void EmbeddingTable::InitialRecords(absl::Span<const int64_t> ids, float* out) const {
  const RowFormat& f = rows_->format();
  const int64_t dim = f.dim, rf = f.record_floats();
  // Rows packed at the front, then spread out to their records (back to
  // front, so that nothing is overwritten before it moves).
  UnseenRows(ids, out);
  for (int64_t u = static_cast<int64_t>(ids.size()) - 1; u >= 0; --u) {
    float* record = out + u * rf;
    if (rf != dim) std::memmove(record, out + u * dim, dim * sizeof(float));
    std::fill(record + dim, record + rf, f.initial_state);
  }
}

void EmbeddingTable::GatherDynamic(absl::Span<const int64_t> ids, float* out, bool locked) {
  // The Recheck protocol (DynamicRowStorage::Lookup): stored rows, and the
  // initial rows of ids without one straight into `out`, computed while the
  // index lines of later ids load. A large request in contiguous pieces on
  // the lookup pool, as a dense one (each piece is a lookup of its own: any
  // number of readers may run at once, and with `locked` the caller's mu_
  // keeps writers out for all of them).
  const int64_t dim = spec_.embedding_dim;
  const int64_t n = static_cast<int64_t>(ids.size());
  Split(n, n, [&](int64_t begin, int64_t end) -> int64_t {
    dynamic_->Lookup(ids.subspan(begin, end - begin), ActiveKernels(),
                     locked ? nullptr : &seqlock_, out + begin * dim,
                     [&](absl::Span<const int64_t> unseen, float* rows) {
                       UnseenRows(unseen, rows);
                     });
    return kAllValid;
  });
}

absl::Status EmbeddingTable::LookupDynamic(absl::Span<const int64_t> ids, absl::Span<float> out) {
  if (spec_.max_norm) {
    // The renorm writes stored rows; mu_ keeps other writers out while we
    // read.
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(RenormReferenced(ids));
    GatherDynamic(ids, out.data(), /*locked=*/true);
    return absl::OkStatus();
  }
  GatherDynamic(ids, out.data(), /*locked=*/false);
  return absl::OkStatus();
}

absl::Status EmbeddingTable::ReadStoredRows(absl::Span<const int64_t> ids,
                                            absl::Span<float> out) {
  if (dynamic_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("table '", spec_.name, "' is not dynamic: read its rows by range"));
  }
  GatherDynamic(ids, out.data(), /*locked=*/false);
  return absl::OkStatus();
}

absl::Status EmbeddingTable::LookupPooledDynamic(absl::Span<const int64_t> ids,
                                                 absl::Span<const int64_t> bounds,
                                                 PoolingMode mode, absl::Span<const float> weights,
                                                 absl::Span<float> out) {
  // The rows, consistently (as Lookup gives them), then the pooling kernel
  // over that copy: position i is row i, and padding ids point at one more
  // row that the kernel skips. In runs of whole bags of about 64 MiB of
  // rows, so that a request's copy stays bounded whatever its ids.
  const int64_t dim = spec_.embedding_dim;
  const int64_t num_bags = static_cast<int64_t>(bounds.size()) - 1;
  const int64_t run_ids = std::max<int64_t>(1, (int64_t{64} << 20) / (dim * sizeof(float)));
  // One bag alone may be larger; past 1 GiB of rows it is refused.
  constexpr int64_t kMaxBagBytes = int64_t{1} << 30;
  std::vector<float> rows;
  std::vector<int64_t> positions, run_bounds;
  for (int64_t b0 = 0; b0 < num_bags;) {
    int64_t b1 = b0 + 1;
    while (b1 < num_bags && bounds[b1 + 1] - bounds[b0] <= run_ids) ++b1;
    const int64_t first = bounds[b0], n = bounds[b1] - first;
    if (n * dim * static_cast<int64_t>(sizeof(float)) > kMaxBagBytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "bag ", b0, " of dynamic table '", spec_.name, "' has ", n, " ids x dim ", dim,
          ": over the 1 GiB of rows one bag may pool; split it"));
    }
    rows.assign((n + 1) * dim, 0.0f);
    const absl::Span<const int64_t> run = ids.subspan(first, n);
    RETURN_IF_ERROR(LookupDynamic(run, absl::MakeSpan(rows.data(), n * dim)));
    positions.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      positions[i] = spec_.padding_idx && run[i] == *spec_.padding_idx ? n : i;
    }
    run_bounds.resize(b1 - b0 + 1);
    for (int64_t b = b0; b <= b1; ++b) run_bounds[b - b0] = bounds[b] - first;
    const float* base = rows.data();
    RowView view;
    view.shards = &base;
    view.shard_shift = 62;
    view.num_rows = n + 1;
    view.dim = dim;
    view.stride = dim;
    BagArgs args;
    args.ids = positions.data();
    args.num_ids = n;
    args.bounds = run_bounds.data();
    args.num_bags = b1 - b0;
    args.mode = mode;
    args.weights = weights.empty() ? nullptr : weights.data() + first;
    args.padding_idx = n;
    // Pieces are ranges of the run's bags, as for a dense table.
    Split(args.num_bags, n, [&](int64_t p0, int64_t p1) -> int64_t {
      BagArgs piece = args;
      piece.bounds = args.bounds + p0;
      piece.num_bags = p1 - p0;
      return ActiveKernels().pooled(view, piece, out.data() + (b0 + p0) * dim);
    });
    b0 = b1;
  }
  return absl::OkStatus();
}

// ---- Snapshots and restore ----------------------------------------------------

void EmbeddingTable::DescribeDynamic(StoredTable& meta) const {
  meta.floats_per_record = record_floats() + kDynamicTrailerFloats;
  meta.dynamic_rows = dynamic_->stats().rows_stored;
  meta.dynamic_admission = dynamic_->SaveAdmission();
  const auto counters = dynamic_->Counters();
  meta.dynamic_counters.assign(counters.begin(), counters.end());
}

absl::StatusOr<std::string> EmbeddingTable::StageDynamic(RowStore& store, const StoredTable& meta,
                                                         absl::Mutex* lock) const {
  const int64_t rf = record_floats();
  const int64_t sf = meta.floats_per_record;
  // The copy's rows a piece at a time (under `lock`: pushes wait for one
  // piece, at most kDynamicCopyRows rows, and a small table's copy is 16
  // pieces or so too), in slot order with their orders.
  const int64_t piece_rows = std::clamp<int64_t>(meta.dynamic_rows / 16, 1, kDynamicCopyRows);
  std::vector<float> piece;
  int64_t first = 0, count = 0;
  bool short_copy = false;
  auto copy_piece = [&] {
    piece.clear();
    count = dynamic_->CopyRows(piece_rows, [&](const internal::DynamicRowStorage::CopiedRow& r) {
      const size_t at = piece.size();
      piece.resize(at + sf);
      float* dst = piece.data() + at;
      std::memcpy(dst, r.record, rf * sizeof(float));
      std::memcpy(dst + rf, &r.id, sizeof(int64_t));
      std::memcpy(dst + rf + 2, &r.last_step, sizeof(int64_t));
      std::memcpy(dst + rf + 4, &r.order, sizeof(int64_t));
    });
  };
  auto copy_next = [&] {
    first += count;
    if (lock != nullptr) {
      absl::MutexLock locked(lock);
      copy_piece();
    } else {
      copy_piece();
    }
  };
  absl::StatusOr<std::string> staged = store.StageTable(meta, [&](int64_t k, float* dst) {
    while (!short_copy && k >= first + count) {
      copy_next();
      short_copy = count == 0;
    }
    if (short_copy) {
      std::fill(dst, dst + sf, 0.0f);
      return;
    }
    std::memcpy(dst, piece.data() + (k - first) * sf, sf * sizeof(float));
  });
  if (!staged.ok()) return staged;
  if (!short_copy) {
    copy_next();  // nothing more: the copy had as many rows as meta says
    short_copy = count != 0;
  }
  if (short_copy) {
    store.AbortTable(*staged);
    return absl::InternalError(absl::StrCat("dynamic table '", spec_.name,
                                            "': its copy did not have the ", meta.dynamic_rows,
                                            " rows it started with"));
  }
  return staged;
}

absl::Status EmbeddingTable::LoadDynamic(RowStore& store, const StoredTable& meta,
                                         internal::DynamicRowStorage& rows) {
  const std::string& name = meta.spec.name;
  const int64_t rf = rows.format().record_floats();
  // Records of kDynamicTrailerFloats carry their order; those of 4 (written
  // before it) are in the update order.
  const bool ordered = meta.floats_per_record == rf + kDynamicTrailerFloats;
  if (!ordered && meta.floats_per_record != rf + 4) {
    return absl::DataLossError(absl::StrCat("dynamic table '", name, "' is stored with ",
                                            meta.floats_per_record, " floats per record, expected ",
                                            rf + kDynamicTrailerFloats));
  }
  const int64_t sf = meta.floats_per_record;
  int64_t count = 0;
  RETURN_IF_ERROR(store.ReadRecords(meta, [&](int64_t k, absl::Span<const float> r) {
    if (k != count || static_cast<int64_t>(r.size()) != sf) {
      return absl::DataLossError(
          absl::StrCat("dynamic table '", name, "': bad stored record ", k));
    }
    int64_t id, step, order = k + 1;
    std::memcpy(&id, r.data() + rf, sizeof(id));
    std::memcpy(&step, r.data() + rf + 2, sizeof(step));
    if (ordered) std::memcpy(&order, r.data() + rf + 4, sizeof(order));
    if (absl::Status s = rows.Restore(id, step, order, r.data()); !s.ok()) {
      const std::string what =
          absl::StrCat("dynamic table '", name, "': stored record ", k, ": ", s.message());
      return s.code() == absl::StatusCode::kResourceExhausted ? absl::ResourceExhaustedError(what)
                                                              : absl::DataLossError(what);
    }
    ++count;
    return absl::OkStatus();
  }));
  if (count != meta.dynamic_rows) {
    return absl::DataLossError(absl::StrCat("dynamic table '", name, "' has ", count,
                                            " stored rows, expected ", meta.dynamic_rows));
  }
  if (absl::Status s = rows.FinishRestore(); !s.ok()) {
    return absl::DataLossError(absl::StrCat("dynamic table '", name, "': ", s.message()));
  }
  if (absl::Status s = rows.LoadAdmission(meta.dynamic_admission); !s.ok()) {
    return absl::DataLossError(absl::StrCat("dynamic table '", name, "': ", s.message()));
  }
  if (!meta.dynamic_counters.empty()) {
    if (meta.dynamic_counters.size() != internal::DynamicRowStorage::kCounters) {
      return absl::DataLossError(absl::StrCat("dynamic table '", name, "' has ",
                                              meta.dynamic_counters.size(), " counters, expected ",
                                              internal::DynamicRowStorage::kCounters));
    }
    std::array<int64_t, internal::DynamicRowStorage::kCounters> c;
    std::copy(meta.dynamic_counters.begin(), meta.dynamic_counters.end(), c.begin());
    rows.SetCounters(c);
  }
  return absl::OkStatus();
}

}  // namespace embedserve
