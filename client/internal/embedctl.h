#ifndef EMBEDSERVE_CLIENT_INTERNAL_EMBEDCTL_H_
#define EMBEDSERVE_CLIENT_INTERNAL_EMBEDCTL_H_

// embedctl, the command-line client, as a library that reads no flags:
// client/embedctl_main.cc turns its flags into EmbedctlOptions and calls
// RunEmbedctl. The commands are one table (embedctl.cc) from which the
// help, the checks of positional arguments and the dispatch all come.

#include <cstdint>
#include <string>

#include "absl/types/span.h"

namespace embedserve::internal {

// One field per embedctl flag, with the flag's name and default (the flags
// take their defaults from here). Lists are comma-separated text, parsed by
// the commands; "" leaves an optional setting unset.
struct EmbedctlOptions {
  // The server, and security (README, Security); every call uses them.
  std::string address = "127.0.0.1:50051";
  double timeout = 30;     // seconds per call (not the import/export streams)
  std::string token_file;  // "" = $EMBEDSERVE_TOKEN, if set
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  // lookup, lookup-pooled, assign, push, state.
  std::string ids, shape, offsets, weights, values, grads, words;
  bool include_last_offset = false;
  std::string mode = "sum";
  std::string output = "float32";
  int32_t max_values = 8;  // values printed per row (0 = all)
  // create (and frozen, padding_idx: load, import).
  int64_t num = 0, dim = 0;
  std::string padding_idx;
  double max_norm = 0, norm_type = 2;  // max_norm 0 = none
  bool frozen = false;
  std::string init = "normal";
  double mean = 0, stddev = 1, a = 0, b = 1, value = 0;  // stddev: --std
  uint64_t seed = 0;
  int32_t shards = 0;
  bool scale_grad_by_freq = false;
  std::string from_raw;
  // create: a dynamic table (any int64 id; README, Dynamic tables).
  bool dynamic = false;
  int64_t max_rows = 0, ttl_steps = 0;  // 0: no limit, rows never expire
  int32_t admit_after = 0;
  bool unseen_zeros = false;
  // Optimizer (create, load; update without optimizer).
  std::string optimizer = "sgd";
  std::string lr, lr_decay, eps, beta1, beta2, initial_accumulator_value;
  std::string set_frozen;  // update: "true" or "false"
  // load, import, export, checkpoint restore.
  std::string path, format = "npy";
  int64_t raw_dim = 0;
  bool replace = false;
  std::string out, tables;
  // import-rows: the ids of --path's rows ("": FILE.ids.npy beside it).
  std::string ids_path;
};

// The program's help (absl prefixes "embedctl: "): synopsis, every command
// of the table with its arguments, exit statuses.
std::string EmbedctlUsage();

// Runs the command that `words` (the command line after its flags, program
// name removed) names, as `options` say: answers on stdout, errors and
// progress on stderr. Returns the exit status: 0 on success, 1 on a server
// error (printed with its gRPC code), 2 on a usage error (including a
// token or TLS file that cannot be read).
int RunEmbedctl(absl::Span<const std::string> words, const EmbedctlOptions& options);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_EMBEDCTL_H_
