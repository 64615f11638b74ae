#include "storage/rocksdb_store.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/transaction_log.h"
#include "rocksdb/write_batch.h"
#include "storage/internal/key_layout.h"
#include "storage/internal/meta_codec.h"
#include "storage/internal/sst_ingest.h"
#include "storage/rocksdb_status.h"

namespace embedserve {

namespace {

using internal::MetaKey;
using internal::VocabKey;

rocksdb::ColumnFamilyOptions FamilyOptions(const rocksdb::Options& base) {
  rocksdb::ColumnFamilyOptions o(base);
  o.compression = rocksdb::kNoCompression;
  // 64 MiB memtables, up to 3: writes go on into a fresh one while a full
  // one is flushed, and a restart replays at most ~192 MiB of WAL.
  o.write_buffer_size = 64 << 20;
  o.max_write_buffer_number = 3;
  // Rows are overwritten at random: universal compaction rewrites them less
  // often than levelled compaction.
  o.compaction_style = rocksdb::kCompactionStyleUniversal;
  // Row families are only written (and scanned at start-up), never read by
  // key: an append-only vector memtable, sorted at flush, beats a skiplist.
  o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  rocksdb::BlockBasedTableOptions table;
  // Block checksums stay RocksDB's default, XXH3: kCRC32c restored a 1 GiB
  // table 1.3x slower here, because Debian's librocksdb is built portable,
  // without the SSE4.2 CRC instruction (no crc32q in it): table-driven.
  // Scans read each block with its own pread straight into the block's
  // buffer: no prefetch buffer that every block would be copied out of
  // once more (the restore is one sequential pass over the page cache,
  // which the kernel reads ahead by itself).
  table.max_auto_readahead_size = 0;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const StoreOptions& options) {
  std::unique_ptr<RocksDbStore> store(new RocksDbStore());
  store->options_ = options;
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  // Rows are float bytes: compression costs CPU and saves almost nothing.
  db_options.compression = rocksdb::kNoCompression;
  db_options.write_buffer_size = 128 << 20;
  db_options.allow_concurrent_memtable_write = false;  // required by VectorRep
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, options.path, &names);
  if (!s.ok()) names = {rocksdb::kDefaultColumnFamilyName};  // a new database
  // Row families open without automatic compaction (SetUpdateLog in
  // rocksdb_store.h): DB::Open would otherwise start compacting a freshly
  // ingested snapshot at once, beside the restore, before a SetOptions after
  // Open could stop it. PutRecords turns it on before a family's first write.
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    descriptors.emplace_back(name, FamilyOptions(db_options));
    if (internal::IsRowsFamily(name)) descriptors.back().options.disable_auto_compactions = true;
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(
      FromRocksDb(rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &db),
                  absl::StrCat("open RocksDB at ", options.path)));
  store->db_.reset(db);
  std::vector<rocksdb::ColumnFamilyHandle*> orphans;
  {
    absl::MutexLock lock(&store->mu_);
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      const std::string& name = h->GetName();
      if (name == rocksdb::kDefaultColumnFamilyName) {
        store->default_family_ = h;
        continue;
      }
      if (!internal::IsRowsFamily(name)) {
        db->DestroyColumnFamilyHandle(h);
        continue;
      }
      const std::string table = internal::TableOfRowsFamily(name);
      std::string meta;
      if (db->Get(rocksdb::ReadOptions(), MetaKey(table), &meta).IsNotFound() ||
          internal::FamilyOfMetaRecord(meta, table) != name) {
        // A create or drop that did not finish, a staged table never
        // committed, or the old copy of a replaced one.
        orphans.push_back(h);
      } else {
        store->families_[table] = h;
        store->uncompacted_.insert(name);
      }
    }
  }
  for (rocksdb::ColumnFamilyHandle* h : orphans) {
    if (!options.read_only) db->DropColumnFamily(h);
    db->DestroyColumnFamilyHandle(h);
  }
  if (!options.read_only) {
    // SST staging folders of loads that a kill interrupted (their families
    // were orphans above): nothing refers to them any more.
    internal::RemoveStagingDirs(options.path);
  }
  return store;
}

StoreStats RocksDbStore::Stats() const {
  StoreStats stats;
  rocksdb::DB* db = db_.get();
  if (db == nullptr) return stats;
  auto db_wide = [db](const std::string& property) -> int64_t {
    uint64_t v = 0;
    return db->GetIntProperty(property, &v) ? static_cast<int64_t>(v) : 0;
  };
  // Per column family figures, summed over all of them (one per table).
  auto all_families = [db](const std::string& property) -> int64_t {
    uint64_t v = 0;
    return db->GetAggregatedIntProperty(property, &v) ? static_cast<int64_t>(v) : 0;
  };
  using P = rocksdb::DB::Properties;
  stats.delayed_write_rate = db_wide(P::kActualDelayedWriteRate);
  stats.write_stopped = db_wide(P::kIsWriteStopped) != 0;
  stats.running_compactions = db_wide(P::kNumRunningCompactions);
  stats.running_flushes = db_wide(P::kNumRunningFlushes);
  stats.background_errors = db_wide(P::kBackgroundErrors);
  stats.compactions_pending = all_families(P::kCompactionPending);
  stats.pending_compaction_bytes = all_families(P::kEstimatePendingCompactionBytes);
  stats.sst_files_bytes = all_families(P::kTotalSstFilesSize);
  stats.memtable_bytes = all_families(P::kCurSizeAllMemTables);
  // The DB-wide cumulative counters (rocksdb.dbstats as a map).
  std::map<std::string, std::string> db_stats;
  if (db->GetMapProperty(P::kDBStats, &db_stats)) {
    auto counter = [&db_stats](const char* key) -> int64_t {
      const auto it = db_stats.find(key);
      int64_t v = 0;
      return it != db_stats.end() && absl::SimpleAtoi(it->second, &v) ? v : 0;
    };
    stats.write_stall_micros = counter("db.user_write_stall_micros");
    stats.wal_bytes_written = counter("db.wal_bytes_written");
    stats.wal_syncs = counter("db.wal_syncs");
  }
  rocksdb::VectorLogPtr wal_files;
  if (db->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) {
      if (f->Type() != rocksdb::kAliveLogFile) continue;
      ++stats.wal_files;
      stats.wal_files_bytes += static_cast<int64_t>(f->SizeFileBytes());
    }
  }
  return stats;
}

RocksDbStore::~RocksDbStore() {
  if (db_ == nullptr) return;
  DropReplaced();
  absl::MutexLock lock(&mu_);
  for (auto& [name, h] : families_) db_->DestroyColumnFamilyHandle(h);
  families_.clear();
  for (auto& [name, h] : staged_) db_->DestroyColumnFamilyHandle(h);  // dropped at next Open
  staged_.clear();
  if (default_family_ != nullptr) db_->DestroyColumnFamilyHandle(default_family_);
  db_->Close();
}

absl::StatusOr<std::string> RocksDbStore::MetaValue(const StoredTable& meta) {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(meta.spec.name));
  return internal::EncodeMetaRecord(meta, h->GetName());
}

absl::StatusOr<rocksdb::ColumnFamilyHandle*> RocksDbStore::Family(absl::string_view table) {
  absl::MutexLock lock(&mu_);
  auto it = families_.find(table);
  if (it == families_.end()) {
    return absl::NotFoundError(absl::StrCat("no stored table named '", table, "'"));
  }
  return it->second;
}

absl::Status RocksDbStore::CheckSpace(int64_t bytes, absl::string_view what) {
  struct statvfs fs;
  if (::statvfs(options_.path.c_str(), &fs) != 0) return absl::OkStatus();  // cannot tell
  const int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  const int64_t total = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
  // Memtables not yet flushed become SST files: they need room too.
  uint64_t memtables = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables);
  const int64_t reserve = std::clamp<int64_t>(total / 16, int64_t{1} << 20, int64_t{256} << 20);
  const int64_t need = bytes + static_cast<int64_t>(memtables) + reserve;
  if (free_bytes < need) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": the data directory ", options_.path, " has ", free_bytes,
                     " bytes free; this write needs about ", bytes, " plus ", memtables,
                     " for unflushed writes and a reserve of ", reserve,
                     " (RocksDB cannot recover from a full disk, so writes stop before it)"));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStore::CreateTable(const StoredTable& meta,
                                       const std::function<void(int64_t, float*)>& record) {
  ASSIGN_OR_RETURN(std::string staged, StageTable(meta, record));
  absl::Status committed = CommitTable(meta, staged);
  DropReplaced();
  return committed;
}

absl::StatusOr<std::string> RocksDbStore::StageTable(
    const StoredTable& meta, const std::function<void(int64_t, float*)>& record) {
  const std::string& name = meta.spec.name;
  if (options_.read_only) {
    return absl::FailedPreconditionError(
        absl::StrCat("create table '", name, "': the store is read-only"));
  }
  // SST files: the records, plus keys and block overhead (~5%).
  RETURN_IF_ERROR(CheckSpace(
      meta.num_records() * (meta.floats_per_record * 4 + 16) / 20 * 21 + (64 << 10),
      absl::StrCat("store table '", name, "'")));
  // With a log, row families only ever receive snapshots: this stages a
  // whole new family of sorted, disjoint SST files, CommitTable drops the
  // old one, and pushes go to the log, not PutRecords (EmbeddingTable::
  // Commit). Universal compaction would still rewrite each ingested table
  // once (its files land in L0 as separate sorted runs: "size
  // amplification"), for nothing: the family is read by one scan at
  // start-up and replaced whole by the next snapshot. Leaving it out is
  // safe: compaction never changes what a family holds, only its files;
  // RocksDB skips L0-count write stalls for such a family, and should a
  // PutRecords come anyway, it turns compaction on first. Checkpoints
  // hard-link the same files and open read-only; --import_rocksdb reads
  // its source read-only and re-stages its tables here (with this rule).
  rocksdb::ColumnFamilyOptions family_options = FamilyOptions(rocksdb::Options());
  family_options.disable_auto_compactions = log_ != nullptr;
  std::string family;
  {
    absl::MutexLock lock(&mu_);
    if (next_generation_ == 0) {  // unique across restarts without being stored
      next_generation_ = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    }
    family = internal::StagedRowsFamily(name, next_generation_++);
  }
  rocksdb::ColumnFamilyHandle* h = nullptr;
  RETURN_IF_ERROR(FromRocksDb(db_->CreateColumnFamily(family_options, family, &h),
                              absl::StrCat("create storage for table '", name, "'")));
  // Bulk load (storage/internal/sst_ingest.h): no WAL, memtable or compaction.
  if (absl::Status s = internal::IngestRows(*db_, h, family_options, meta, record,
                                            internal::StagingDir(options_.path, family),
                                            options_.ingest_file_bytes);
      !s.ok()) {
    db_->DropColumnFamily(h);
    db_->DestroyColumnFamilyHandle(h);
    return s;
  }
  absl::MutexLock lock(&mu_);
  staged_[family] = h;
  if (family_options.disable_auto_compactions) uncompacted_.insert(family);
  return family;
}

absl::Status RocksDbStore::CommitTable(const StoredTable& meta, const std::string& staged) {
  DropReplaced();  // a caller's that were not (normally none)
  const std::string& name = meta.spec.name;
  rocksdb::ColumnFamilyHandle* h = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto it = staged_.find(staged);
    if (it == staged_.end() || internal::TableOfRowsFamily(staged) != name) {
      return absl::InternalError(
          absl::StrCat("commit table '", name, "': no staged copy '", staged, "'"));
    }
    h = it->second;
  }
  // One write switches the table to the staged family; until it lands, the
  // old copy (if any) is the table, after it the new one.
  rocksdb::WriteBatch batch;
  if (!meta.vocabulary.empty()) batch.Put(VocabKey(name), absl::StrJoin(meta.vocabulary, "\n"));
  batch.Put(MetaKey(name), internal::EncodeMetaRecord(meta, staged));
  rocksdb::WriteOptions final_write;
  final_write.sync = options_.sync;
  if (rocksdb::Status s = db_->Write(final_write, &batch); !s.ok()) {
    AbortTable(staged);
    return FromRocksDb(s, absl::StrCat("write table '", name, "'"));
  }
  {
    absl::MutexLock lock(&mu_);
    staged_.erase(staged);
    auto it = families_.find(name);
    if (it != families_.end()) {
      uncompacted_.erase(it->second->GetName());
      replaced_.push_back(it->second);  // dropped by DropReplaced
    }
    families_[name] = h;
  }
  return absl::OkStatus();
}

void RocksDbStore::DropReplaced() {
  std::vector<rocksdb::ColumnFamilyHandle*> replaced;
  {
    absl::MutexLock lock(&mu_);
    replaced.swap(replaced_);
  }
  for (rocksdb::ColumnFamilyHandle* h : replaced) {
    db_->DropColumnFamily(h);  // if this fails, Open drops it later (unreferenced)
    db_->DestroyColumnFamilyHandle(h);
  }
}

void RocksDbStore::AbortTable(const std::string& staged) {
  rocksdb::ColumnFamilyHandle* h = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto it = staged_.find(staged);
    if (it == staged_.end()) return;
    h = it->second;
    staged_.erase(it);
    uncompacted_.erase(staged);
  }
  db_->DropColumnFamily(h);
  db_->DestroyColumnFamilyHandle(h);
}

absl::Status RocksDbStore::DropTable(absl::string_view name) {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(name));
  rocksdb::WriteOptions w;
  w.sync = options_.sync;
  RETURN_IF_ERROR(
      FromRocksDb(db_->Delete(w, MetaKey(name)), absl::StrCat("drop table '", name, "'")));
  {
    absl::MutexLock lock(&mu_);
    families_.erase(std::string(name));
    uncompacted_.erase(h->GetName());
  }
  db_->DropColumnFamily(h);  // if this fails, Open drops the orphan later
  db_->DestroyColumnFamilyHandle(h);
  return absl::OkStatus();
}

absl::Status RocksDbStore::PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                                      absl::Span<const float> packed) {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(meta.spec.name));
  const int64_t rf = meta.floats_per_record;
  // The WAL record now and the SST a flush writes later.
  RETURN_IF_ERROR(CheckSpace(2 * static_cast<int64_t>(ids.size()) * (rf * 4 + 16) + 4096,
                             absl::StrCat("write table '", meta.spec.name, "'")));
  bool compacted;
  {
    absl::MutexLock lock(&mu_);
    compacted = !uncompacted_.contains(h->GetName());
  }
  if (!compacted) {
    // Overwritten rows pile up in flushed files: this family needs
    // automatic compaction (and its write stalls) from now on.
    RETURN_IF_ERROR(FromRocksDb(db_->SetOptions(h, {{"disable_auto_compactions", "false"}}),
                                absl::StrCat("write table '", meta.spec.name, "'")));
    absl::MutexLock lock(&mu_);
    uncompacted_.erase(h->GetName());
  }
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.Put(
        h, internal::RowKey(ids[i]),
        rocksdb::Slice(reinterpret_cast<const char*>(packed.data() + i * rf), rf * sizeof(float)));
  }
  ASSIGN_OR_RETURN(std::string meta_value, MetaValue(meta));
  batch.Put(MetaKey(meta.spec.name), meta_value);
  rocksdb::WriteOptions w;
  w.sync = options_.sync;
  return FromRocksDb(db_->Write(w, &batch), absl::StrCat("write table '", meta.spec.name, "'"));
}

absl::Status RocksDbStore::PutMeta(const StoredTable& meta) {
  rocksdb::WriteOptions w;
  w.sync = options_.sync;
  ASSIGN_OR_RETURN(std::string meta_value, MetaValue(meta));
  RETURN_IF_ERROR(CheckSpace(4096, absl::StrCat("write table '", meta.spec.name, "' metadata")));
  return FromRocksDb(db_->Put(w, MetaKey(meta.spec.name), meta_value),
                     absl::StrCat("write table '", meta.spec.name, "' metadata"));
}

absl::StatusOr<std::vector<StoredTable>> RocksDbStore::ListTables() {
  std::vector<StoredTable> tables;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice prefix(internal::kMetaKeyPrefix.data(), internal::kMetaKeyPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::StatusOr<StoredTable> meta = internal::DecodeMeta(it->value().ToString());
    if (!meta.ok()) {
      return absl::DataLossError(
          absl::StrCat("key '", it->key().ToString(), "': ", meta.status().message()));
    }
    std::string vocab;
    if (db_->Get(rocksdb::ReadOptions(), VocabKey(meta->spec.name), &vocab).ok()) {
      meta->vocabulary = absl::StrSplit(vocab, '\n');
    }
    tables.push_back(*std::move(meta));
  }
  RETURN_IF_ERROR(FromRocksDb(it->status(), "list tables"));
  return tables;
}

absl::Status RocksDbStore::ReadRecords(
    const StoredTable& meta,
    const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) {
  return ReadRecordRange(meta, 0, std::numeric_limits<int64_t>::max(), visit);
}

absl::Status RocksDbStore::ReadRecordRange(
    const StoredTable& meta, int64_t first_id, int64_t end_id,
    const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) {
  ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(meta.spec.name));
  const size_t bytes = meta.floats_per_record * sizeof(float);
  const size_t per_value = static_cast<size_t>(std::max<int64_t>(1, meta.rows_per_value));
  std::vector<float> record(meta.floats_per_record * per_value);
  // One sequential pass: keep the blocks out of the block cache (they
  // would only evict each other). No readahead_size: its prefetch buffer
  // costs one more copy of every block (FamilyOptions).
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  // Ids are non-negative, so their big-endian keys sort as the ids do.
  const std::string lower = internal::RowKey(std::max<int64_t>(0, first_id));
  const std::string upper = internal::RowKey(end_id);
  const rocksdb::Slice upper_slice(upper);
  if (end_id != std::numeric_limits<int64_t>::max()) scan.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, h));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const size_t size = it->value().size();
    if (it->key().size() != internal::kRowKeyBytes || size == 0 || size % bytes != 0 ||
        size / bytes > per_value) {
      return absl::DataLossError(absl::StrCat(
          "table '", meta.spec.name, "': record with a ", it->key().size(), "-byte key and ",
          size, " bytes, expected 8 and ", bytes,
          per_value > 1 ? absl::StrCat(" times 1 to ", per_value) : std::string()));
    }
    std::memcpy(record.data(), it->value().data(), size);
    const int64_t first =
        internal::DecodeRowKey(absl::string_view(it->key().data(), it->key().size()));
    for (size_t i = 0; i < size / bytes; ++i) {
      RETURN_IF_ERROR(visit(first + static_cast<int64_t>(i),
                            absl::MakeConstSpan(record).subspan(i * meta.floats_per_record,
                                                                meta.floats_per_record)));
    }
  }
  return FromRocksDb(it->status(), absl::StrCat("read table '", meta.spec.name, "'"));
}

}  // namespace embedserve
