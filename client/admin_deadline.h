#ifndef EMBEDSERVE_CLIENT_ADMIN_DEADLINE_H_
#define EMBEDSERVE_CLIENT_ADMIN_DEADLINE_H_

// Deadlines of admin calls that fit their size. A call that writes or reads
// a whole table (CreateTable, LoadTable, CreateCheckpoint,
// RestoreCheckpoint) takes time in proportion to its bytes: a durable
// create of 20 M x 64 with Adagrad (10 GB with its state) runs for minutes
// on a small machine, far past a 30 s per-call deadline. Such a call gets
// the client's per-call timeout plus the time its bytes take at
// kAdminBytesPerSecond, a rate below what a server on 2 shared cores does,
// so the deadline only cuts off a call that is stuck. The Python client
// (embedserve_client/deadlines.py) uses the same rule.

#include <cstdint>

#include "absl/time/time.h"
#include "embedserve/v1/embedserve.pb.h"

namespace embedserve {

inline constexpr double kAdminBytesPerSecond = 50e6;

// The extra time of a LoadTable, whose file (on the server) has a size the
// client cannot know: 30 GB at kAdminBytesPerSecond.
inline constexpr absl::Duration kLoadExtraTimeout = absl::Minutes(10);

// base + bytes at kAdminBytesPerSecond (bytes < 0 count as 0); an infinite
// base stays infinite.
absl::Duration AdminTimeout(int64_t bytes, absl::Duration base);

// The bytes a table of `spec` holds as float32 rows plus its optimizer
// state (an upper bound for the narrower row types); saturates at
// INT64_MAX instead of overflowing.
int64_t TableBytes(const v1::TableSpec& spec);

}  // namespace embedserve

#endif  // EMBEDSERVE_CLIENT_ADMIN_DEADLINE_H_
