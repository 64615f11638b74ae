#ifndef EMBEDSERVE_SERVER_INTERNAL_LOG_H_
#define EMBEDSERVE_SERVER_INTERNAL_LOG_H_

// Minimal operator log: one timestamped line on stderr. Debian 12's Abseil
// predates absl/log. Thread-safe (one write per line).

#include "absl/strings/string_view.h"

namespace embedserve::internal {

void LogInfo(absl::string_view message);
void LogWarning(absl::string_view message);
void LogError(absl::string_view message);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_SERVER_INTERNAL_LOG_H_
