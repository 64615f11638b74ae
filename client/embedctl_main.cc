// embedctl: command-line client for embedserve. A thin main: the flags,
// each the field of EmbedctlOptions of its name, then RunEmbedctl
// (client/internal/embedctl.h), where the commands are.
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/internal/embedctl.h"

namespace {
const embedserve::internal::EmbedctlOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, address, kDefaults.address, "server host:port");
ABSL_FLAG(double, timeout, kDefaults.timeout,
          "seconds per call; create, load and checkpoint calls get this plus the table's bytes "
          "at 50 MB/s (load: plus 600 s)");
// Security (README, Security); every call, streams included, uses them.
ABSL_FLAG(std::string, token_file, kDefaults.token_file,
          "file whose first line is the bearer token to send (servers with --tokens_file); "
          "default: the EMBEDSERVE_TOKEN environment variable, if set");
ABSL_FLAG(std::string, tls_ca, kDefaults.tls_ca,
          "PEM CA that signed the server's certificate: connect with TLS");
ABSL_FLAG(std::string, tls_cert, kDefaults.tls_cert,
          "PEM client certificate (with --tls_key) for servers that require one (mutual TLS)");
ABSL_FLAG(std::string, tls_key, kDefaults.tls_key, "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, kDefaults.tls_server_name,
          "verify the server's certificate against this name instead of --address's host");
// lookup, lookup-pooled, assign
ABSL_FLAG(std::string, ids, kDefaults.ids,
          "comma-separated row ids, e.g. 1,2,3 (any int64 for a dynamic table)");
ABSL_FLAG(std::string, shape, kDefaults.shape,
          "lookup: shape of ids, e.g. 2,3; lookup-pooled: bags,bag_size");
ABSL_FLAG(std::string, offsets, kDefaults.offsets, "lookup-pooled: bag starts, e.g. 0,2,5");
ABSL_FLAG(bool, include_last_offset, kDefaults.include_last_offset,
          "lookup-pooled: the last offset ends the last bag");
ABSL_FLAG(std::string, mode, kDefaults.mode, "lookup-pooled: sum, mean or max");
ABSL_FLAG(std::string, weights, kDefaults.weights, "lookup-pooled: per_sample_weights (mode sum)");
ABSL_FLAG(std::string, values, kDefaults.values, "assign: comma-separated floats, len(ids) * dim");
ABSL_FLAG(int32_t, max_values, kDefaults.max_values, "values printed per row (0 = all)");
// create
ABSL_FLAG(int64_t, num, kDefaults.num, "create: num_embeddings");
ABSL_FLAG(int64_t, dim, kDefaults.dim, "create: embedding_dim");
ABSL_FLAG(std::string, padding_idx, kDefaults.padding_idx, "create: padding_idx (may be negative)");
ABSL_FLAG(double, max_norm, kDefaults.max_norm, "create: max_norm (0 = none)");
ABSL_FLAG(double, norm_type, kDefaults.norm_type, "create: norm_type");
ABSL_FLAG(bool, frozen, kDefaults.frozen, "create: freeze the table (from_pretrained freeze=True)");
ABSL_FLAG(std::string, init, kDefaults.init,
          "create: normal, uniform, zeros, constant, xavier_uniform");
ABSL_FLAG(double, mean, kDefaults.mean, "create: normal mean");
ABSL_FLAG(double, std, kDefaults.stddev, "create: normal std");
ABSL_FLAG(double, a, kDefaults.a, "create: uniform lower bound");
ABSL_FLAG(double, b, kDefaults.b, "create: uniform upper bound");
ABSL_FLAG(double, value, kDefaults.value, "create: constant value");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "create: initializer seed");
ABSL_FLAG(int32_t, shards, kDefaults.shards, "create: number of shards (0 = by size)");
ABSL_FLAG(bool, scale_grad_by_freq, kDefaults.scale_grad_by_freq,
          "create: divide pushed gradients by id frequency");
ABSL_FLAG(bool, dynamic, kDefaults.dynamic,
          "create: a dynamic table, keyed by any int64 id (leave --num 0): an id without a row "
          "reads as its initial value, a push makes its row");
ABSL_FLAG(int64_t, max_rows, kDefaults.max_rows,
          "create --dynamic: most rows kept; when full, the least recently updated goes "
          "(0 = no limit)");
ABSL_FLAG(int64_t, ttl_steps, kDefaults.ttl_steps,
          "create --dynamic: a row not updated by the table's last N pushes goes (0 = never)");
ABSL_FLAG(int32_t, admit_after, kDefaults.admit_after,
          "create --dynamic: an id gets a row at its N-th push (0 or 1 = the first; <= 255)");
ABSL_FLAG(bool, unseen_zeros, kDefaults.unseen_zeros,
          "create --dynamic: ids without a row read as zeros, not their initial value");
ABSL_FLAG(std::string, optimizer, kDefaults.optimizer,
          "create: sgd, adagrad, rowwise_adagrad or sparse_adam");
ABSL_FLAG(std::string, lr, kDefaults.lr, "create/update: learning rate");
ABSL_FLAG(std::string, lr_decay, kDefaults.lr_decay, "create/update: Adagrad lr_decay");
ABSL_FLAG(std::string, eps, kDefaults.eps, "create/update: optimizer eps");
ABSL_FLAG(std::string, beta1, kDefaults.beta1, "create/update: SparseAdam beta1");
ABSL_FLAG(std::string, beta2, kDefaults.beta2, "create/update: SparseAdam beta2");
ABSL_FLAG(std::string, initial_accumulator_value, kDefaults.initial_accumulator_value,
          "create: Adagrad initial accumulator");
ABSL_FLAG(std::string, set_frozen, kDefaults.set_frozen, "update: true or false");
ABSL_FLAG(std::string, grads, kDefaults.grads, "push: comma-separated floats, len(ids) * dim");
ABSL_FLAG(std::string, words, kDefaults.words,
          "lookup: comma-separated words (tables loaded from word vectors)");
ABSL_FLAG(std::string, output, kDefaults.output,
          "lookup: float32, or float16 (half the bytes on the wire; printed widened)");
ABSL_FLAG(std::string, path, kDefaults.path,
          "load: file on the server's disk; import, import-rows: a local file");
ABSL_FLAG(std::string, format, kDefaults.format,
          "load: npy, word2vec_text, word2vec_binary, glove_text, raw_f32");
ABSL_FLAG(int64_t, raw_dim, kDefaults.raw_dim, "load: row width of a raw_f32 file");
ABSL_FLAG(bool, replace, kDefaults.replace, "load/import: swap out an existing table of that name");
ABSL_FLAG(std::string, out, kDefaults.out,
          "export: the .npy file of rows to write (a dynamic table's ids go beside it, "
          "in FILE.ids.npy)");
ABSL_FLAG(std::string, ids_path, kDefaults.ids_path,
          "import-rows: int64 .npy of the rows' ids (default: FILE.ids.npy beside --path)");
ABSL_FLAG(std::string, tables, kDefaults.tables,
          "checkpoint restore: comma-separated tables (default all)");
ABSL_FLAG(std::string, from_raw, kDefaults.from_raw,
          "create: initial values from a raw little-endian float32 file (num * dim values)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(embedserve::internal::EmbedctlUsage());
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  embedserve::internal::EmbedctlOptions o;
  o.address = absl::GetFlag(FLAGS_address);
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.token_file = absl::GetFlag(FLAGS_token_file);
  o.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  o.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key = absl::GetFlag(FLAGS_tls_key);
  o.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  o.ids = absl::GetFlag(FLAGS_ids);
  o.shape = absl::GetFlag(FLAGS_shape);
  o.offsets = absl::GetFlag(FLAGS_offsets);
  o.include_last_offset = absl::GetFlag(FLAGS_include_last_offset);
  o.mode = absl::GetFlag(FLAGS_mode);
  o.weights = absl::GetFlag(FLAGS_weights);
  o.values = absl::GetFlag(FLAGS_values);
  o.max_values = absl::GetFlag(FLAGS_max_values);
  o.num = absl::GetFlag(FLAGS_num);
  o.dim = absl::GetFlag(FLAGS_dim);
  o.padding_idx = absl::GetFlag(FLAGS_padding_idx);
  o.max_norm = absl::GetFlag(FLAGS_max_norm);
  o.norm_type = absl::GetFlag(FLAGS_norm_type);
  o.frozen = absl::GetFlag(FLAGS_frozen);
  o.init = absl::GetFlag(FLAGS_init);
  o.mean = absl::GetFlag(FLAGS_mean);
  o.stddev = absl::GetFlag(FLAGS_std);
  o.a = absl::GetFlag(FLAGS_a);
  o.b = absl::GetFlag(FLAGS_b);
  o.value = absl::GetFlag(FLAGS_value);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.shards = absl::GetFlag(FLAGS_shards);
  o.scale_grad_by_freq = absl::GetFlag(FLAGS_scale_grad_by_freq);
  o.dynamic = absl::GetFlag(FLAGS_dynamic);
  o.max_rows = absl::GetFlag(FLAGS_max_rows);
  o.ttl_steps = absl::GetFlag(FLAGS_ttl_steps);
  o.admit_after = absl::GetFlag(FLAGS_admit_after);
  o.unseen_zeros = absl::GetFlag(FLAGS_unseen_zeros);
  o.optimizer = absl::GetFlag(FLAGS_optimizer);
  o.lr = absl::GetFlag(FLAGS_lr);
  o.lr_decay = absl::GetFlag(FLAGS_lr_decay);
  o.eps = absl::GetFlag(FLAGS_eps);
  o.beta1 = absl::GetFlag(FLAGS_beta1);
  o.beta2 = absl::GetFlag(FLAGS_beta2);
  o.initial_accumulator_value = absl::GetFlag(FLAGS_initial_accumulator_value);
  o.set_frozen = absl::GetFlag(FLAGS_set_frozen);
  o.grads = absl::GetFlag(FLAGS_grads);
  o.words = absl::GetFlag(FLAGS_words);
  o.output = absl::GetFlag(FLAGS_output);
  o.path = absl::GetFlag(FLAGS_path);
  o.format = absl::GetFlag(FLAGS_format);
  o.raw_dim = absl::GetFlag(FLAGS_raw_dim);
  o.replace = absl::GetFlag(FLAGS_replace);
  o.out = absl::GetFlag(FLAGS_out);
  o.tables = absl::GetFlag(FLAGS_tables);
  o.ids_path = absl::GetFlag(FLAGS_ids_path);
  o.from_raw = absl::GetFlag(FLAGS_from_raw);
  return embedserve::internal::RunEmbedctl(std::vector<std::string>(args.begin() + 1, args.end()),
                                           o);
}
