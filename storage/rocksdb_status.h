#ifndef EMBEDSERVE_STORAGE_ROCKSDB_STATUS_H_
#define EMBEDSERVE_STORAGE_ROCKSDB_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/status.h"

namespace embedserve {

// rocksdb::Status -> absl::Status, the one place the two meet. `what` says
// what was being done ("write table 'user'"). Corruption -> DataLoss, I/O
// errors -> Unavailable, NotFound -> NotFound, space/limits ->
// ResourceExhausted, anything else -> Internal.
absl::Status FromRocksDb(const rocksdb::Status& status, absl::string_view what);

}  // namespace embedserve

#endif  // EMBEDSERVE_STORAGE_ROCKSDB_STATUS_H_
