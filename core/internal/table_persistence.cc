#include "core/internal/table_persistence.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace embedserve::internal {

absl::StatusOr<std::string> TablePersistence::Stage(RowStore& store, const StoredTable& meta,
                                                    const RowStorage& rows) {
  return store.StageTable(
      meta, [&rows](int64_t id, float* dst) { rows.ReadRecord(rows.SlotOf(id), dst); });
}

absl::Status TablePersistence::Commit(RowStore& store, const StoredTable& meta,
                                      const std::string& staged) {
  RETURN_IF_ERROR(store.CommitTable(meta, staged));
  store_ = &store;
  return absl::OkStatus();
}

absl::Status TablePersistence::PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                                          absl::Span<const float> packed) {
  if (store_ == nullptr) return absl::OkStatus();
  return store_->PutRecords(meta, ids, packed);
}

absl::StatusOr<LogPosition> TablePersistence::Append(UpdateRecord record) {
  record.generation = generation_;
  ASSIGN_OR_RETURN(const LogPosition position, log_->Append(record));
  last_position_ = position;
  return position;
}

absl::Status TablePersistence::PutMeta(const StoredTable& meta) {
  if (store_ == nullptr) return absl::OkStatus();
  return store_->PutMeta(meta);
}

absl::Status TablePersistence::Load(RowStore& store, const StoredTable& meta, RowStorage& rows) {
  const std::string& name = meta.spec.name;
  const int64_t record_floats = rows.format().record_floats();
  if (meta.floats_per_record != record_floats) {
    return absl::DataLossError(absl::StrCat("table '", name, "' is stored with ",
                                            meta.floats_per_record, " floats per record, expected ",
                                            record_floats));
  }
  // Disjoint id ranges on several threads (start-up: nothing else runs on
  // the table yet, and each slot is written once). Ranges are whole runs of
  // records (rows_per_value); the last one is open-ended, so that a record
  // past the table's end is still seen, and refused.
  const int64_t n = rows.num_slots();
  const int64_t align = std::max<int64_t>(1, meta.rows_per_value);
  const int64_t bytes = n * record_floats * static_cast<int64_t>(sizeof(float));
  const int pieces =
      bytes < (int64_t{64} << 20)
          ? 1
          : static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8));
  const int64_t per_piece = ((n + pieces - 1) / pieces + align - 1) / align * align;
  std::atomic<int64_t> records{0};
  std::vector<absl::Status> status(pieces);
  auto read = [&](int k) {
    const int64_t first = k * per_piece;
    const int64_t end =
        k + 1 == pieces ? std::numeric_limits<int64_t>::max() : (k + 1) * per_piece;
    int64_t mine = 0;  // counted apart: one shared counter per row bounced between cores
    status[k] = store.ReadRecordRange(meta, first, end,
                                      [&](int64_t id, absl::Span<const float> record) {
      const int64_t slot = rows.SlotOf(id);
      if (slot < 0 || slot >= rows.num_slots() ||
          static_cast<int64_t>(record.size()) != record_floats) {
        return absl::DataLossError(absl::StrCat("table '", name, "': bad record for row ", id));
      }
      rows.WriteRecord(slot, record.data());
      ++mine;
      return absl::OkStatus();
    });
    records.fetch_add(mine, std::memory_order_relaxed);
  };
  std::vector<std::thread> threads;
  for (int k = 1; k < pieces; ++k) threads.emplace_back(read, k);
  read(0);
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  if (records.load() != rows.num_slots()) {
    return absl::DataLossError(absl::StrCat("table '", name, "' has ", records.load(),
                                            " stored rows, expected ", rows.num_slots()));
  }
  return absl::OkStatus();
}

}  // namespace embedserve::internal
