#ifndef EMBEDSERVE_BASE_STATUS_MACROS_H_
#define EMBEDSERVE_BASE_STATUS_MACROS_H_

// Debian 12's Abseil (20220623) has no public status macros; these are ours.
//
//   RETURN_IF_ERROR(DoThing());              // returns the Status if not OK
//   ASSIGN_OR_RETURN(auto x, MakeThing());   // unwraps a StatusOr or returns

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define EMBEDSERVE_CONCAT_INNER_(a, b) a##b
#define EMBEDSERVE_CONCAT_(a, b) EMBEDSERVE_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                \
  do {                                                       \
    ::absl::Status embedserve_status_ = (expr);              \
    if (!embedserve_status_.ok()) return embedserve_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  EMBEDSERVE_ASSIGN_OR_RETURN_IMPL_(EMBEDSERVE_CONCAT_(statusor_, __LINE__), lhs, expr)

#define EMBEDSERVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                      \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = *std::move(statusor)

#endif  // EMBEDSERVE_BASE_STATUS_MACROS_H_
