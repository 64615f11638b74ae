#ifndef EMBEDSERVE_CORE_UPDATE_LOG_H_
#define EMBEDSERVE_CORE_UPDATE_LOG_H_

// The update log: the port through which table changes are made durable as
// commands (what was asked: the coalesced gradients of a push, the values of
// an assign) instead of the values they produce. core/ defines it and writes
// through it; storage/ implements it (storage/update_log.h, segment files of
// CRC-framed records, see storage/FORMAT.md).
//
// A change is appended before it is applied in memory and acknowledged;
// applying a record is a pure function of the table's rows, optimizer state
// and the record (core/internal/table_replay.h), so replaying the log after
// a snapshot of the rows (RowStore) gives exactly the rows the server had.
// This is also the shape of a replicated shard: one ordered log of updates
// that every replica applies identically.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/table_spec.h"

namespace embedserve {

// One change of one table. A view: the spans and strings point into the
// caller's memory (Append) or the log's read buffer (Read's visit), valid
// for the duration of that call only, unless `pin` is set.
struct UpdateRecord {
  enum class Kind : uint8_t {
    // A push: `ids` are the distinct non-padding ids of the push (coalesced,
    // core/coalesce.h), `floats` their summed (and, with
    // scale_grad_by_freq, scaled) gradients, dim floats each; `step` is the
    // optimizer step the push applied with (core/optimizer.h).
    kPush = 1,
    // Records written whole: `ids` distinct, `floats` their new records
    // (RowFormat::record_floats each: the row, then its optimizer state).
    // An assign (and, in logs written before kRenorm, the renorm of a
    // max_norm lookup).
    kWriteRecords = 2,
    // New settings: `spec` holds the table's frozen flag and optimizer as
    // set (the rest of the spec is unchanged).
    kSettings = 3,
    // A table made from its initializer: `spec` (seed included); its rows
    // are a pure function of the spec (core/initializer.h).
    kCreate = 4,
    // The table `table` of `generation` is gone.
    kDrop = 5,
    // The in-place renorm of a max_norm lookup: as kWriteRecords, of rows
    // the table has, but not an update (a read made it): a dynamic table's
    // LRU order and row steps do not move.
    kRenorm = 6,
  };

  Kind kind = Kind::kPush;
  absl::string_view table;
  // Which incarnation of the name the record is for: a table dropped and
  // made again under the same name gets a new generation, and replay skips
  // records of other generations.
  int64_t generation = 0;
  int64_t version = 0;  // the table's version after the record
  int64_t step = 0;     // the table's optimizer step after the record
  // The trainer that sent a push and its number for it (empty and 0: none);
  // replay restores each trainer's last applied number from them.
  absl::string_view trainer;
  uint64_t trainer_sequence = 0;
  absl::Span<const int64_t> ids;
  absl::Span<const float> floats;
  const TableSpec* spec = nullptr;  // kSettings and kCreate only
  // Set by Read's visit where `ids` and `floats` lie in memory that lives
  // as long as a copy of this pointer (a mapped segment): a consumer may
  // keep the spans past the visit by keeping a copy (parallel replay
  // queues pushes without copying them). Null: valid for the call only.
  // The memory is read-only; the strings and `spec` are never pinned.
  std::shared_ptr<const void> pin;
};

// Record positions: 1, 2, 3, ... in append order, over the life of the log
// (never reused, also after DropThrough). 0 means "before every record".
using LogPosition = uint64_t;

struct UpdateLogStats {
  LogPosition first_position = 0;  // oldest record kept (0: none)
  LogPosition last_position = 0;   // newest record (0: none)
  int64_t bytes = 0;               // on disk, all segments
  int64_t segments = 0;
  int64_t syncs = 0;               // fsyncs so far (group commit shares them)
  int64_t appends = 0;             // records appended since open
};

// Thread-safe. Records of one table are appended under that table's writer
// lock, so a table's records are in the order they were applied.
class UpdateLog {
 public:
  virtual ~UpdateLog() = default;

  // Appends `record` after every record appended before it and returns its
  // position. On OK the record has reached the operating system (a process
  // crash keeps it). On error nothing was appended: ResourceExhausted for a
  // full disk (naming the figures), InvalidArgument for a record that cannot
  // be encoded. After a failed write to the file the log fails closed: every
  // later Append and WaitDurable returns FailedPrecondition with the first
  // error, so that nothing is acknowledged after a gap.
  virtual absl::StatusOr<LogPosition> Append(const UpdateRecord& record) = 0;

  // Returns once the record at `position` (and every one before it) is as
  // durable as the log promises: in a sync log, on stable storage (one
  // fdatasync shared by every caller waiting at that moment: group commit);
  // in an async log at once. Call it after releasing the table's lock, so
  // that concurrent writers share a sync.
  virtual absl::Status WaitDurable(LogPosition position) = 0;

  // Drops records at or before `position` that no snapshot needs any more.
  // The log removes whole segment files only, so it may keep some.
  virtual absl::Status DropThrough(LogPosition position) = 0;

  // Calls visit(position, record) for every record after `after`, in order;
  // stops at the first error visit returns and returns it. DataLoss if a
  // record before the end is corrupt (naming the segment, the position and,
  // where it can still be read, the table); a torn last record, which a
  // crash mid-append leaves, was already cut off when the log was opened.
  // FailedPrecondition if records after `after` were already dropped.
  virtual absl::Status Read(
      LogPosition after,
      const std::function<absl::Status(LogPosition, const UpdateRecord&)>& visit) = 0;

  // Closes the segment being written and hard-links every segment (or
  // copies, where links fail) into `dir` (created; must not exist), so that
  // `dir` holds a log that reads as this one did up to the returned
  // position, whatever is appended later. For checkpoints.
  virtual absl::StatusOr<LogPosition> CopyTo(absl::string_view dir) = 0;

  virtual LogPosition last_position() const = 0;
  virtual UpdateLogStats Stats() const = 0;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_UPDATE_LOG_H_
