#include "core/internal/table_persistence.h"

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
  int64_t records = 0;
  RETURN_IF_ERROR(store.ReadRecords(meta, [&](int64_t id, absl::Span<const float> record) {
    const int64_t slot = rows.SlotOf(id);
    if (slot < 0 || slot >= rows.num_slots() ||
        static_cast<int64_t>(record.size()) != record_floats) {
      return absl::DataLossError(absl::StrCat("table '", name, "': bad record for row ", id));
    }
    rows.WriteRecord(slot, record.data());
    ++records;
    return absl::OkStatus();
  }));
  if (records != rows.num_slots()) {
    return absl::DataLossError(absl::StrCat("table '", name, "' has ", records,
                                            " stored rows, expected ", rows.num_slots()));
  }
  return absl::OkStatus();
}

}  // namespace embedserve::internal
