#ifndef EMBEDSERVE_CLIENT_INTERNAL_EMBEDCTL_REQUESTS_H_
#define EMBEDSERVE_CLIENT_INTERNAL_EMBEDCTL_REQUESTS_H_

// embedctl's requests from its options. Each function returns false after
// printing why on stderr, as embedctl prints usage errors (exit status 2).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "client/internal/embedctl.h"
#include "embedserve/v1/embedserve.pb.h"

namespace embedserve::internal {

// Prints "embedctl: <message>" and the --help hint on stderr; returns 2.
int UsageError(absl::string_view message);

// The comma-separated lists of the options, parsed.
struct RowLists {
  std::vector<int64_t> ids, shape, offsets;
  std::vector<float> weights, values, grads;
};
// False if a part of a list is not a number ("--ids: 'x' is not a number").
bool ParseRowLists(const EmbedctlOptions& o, RowLists* lists);

// create: table `name` as the options say (initializer, optimizer, shards,
// ...), and its initial values read from --from_raw if given.
bool MakeTableSpec(const EmbedctlOptions& o, const std::string& name, v1::TableSpec* spec,
                   std::vector<float>* initial_values);

// load and import: table `name` from --path as --format says, with
// --raw_dim, --frozen, --replace and --padding_idx.
bool MakeLoadRequest(const EmbedctlOptions& o, const std::string& name, v1::LoadTableRequest* req);

// The optimizer settings that are set (lr, eps, ...) and, if `creating`,
// the kind (--optimizer).
bool SetOptimizer(const EmbedctlOptions& o, bool creating, v1::OptimizerSpec* spec);

// update: --set_frozen and the optimizer settings that are set.
bool MakeUpdateRequest(const EmbedctlOptions& o, const std::string& name,
                       v1::UpdateTableRequest* req);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_EMBEDCTL_REQUESTS_H_
