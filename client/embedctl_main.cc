// embedctl: command-line client for embedserve. Thin main over
// EmbeddingClient; flags live here only.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/embedding_client.h"
#include "proto/grpc_status.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "server host:port");
ABSL_FLAG(double, timeout, 30, "seconds per call");
// Security (README, Security); every call, streams included, uses them.
ABSL_FLAG(std::string, token_file, "",
          "file whose first line is the bearer token to send (servers with --tokens_file); "
          "default: the EMBEDSERVE_TOKEN environment variable, if set");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA that signed the server's certificate: connect with TLS");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate (with --tls_key) for servers that require one (mutual TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "verify the server's certificate against this name instead of --address's host");
// lookup, lookup-pooled, assign
ABSL_FLAG(std::string, ids, "", "comma-separated row ids, e.g. 1,2,3");
ABSL_FLAG(std::string, shape, "", "lookup: shape of ids, e.g. 2,3; lookup-pooled: bags,bag_size");
ABSL_FLAG(std::string, offsets, "", "lookup-pooled: bag starts, e.g. 0,2,5");
ABSL_FLAG(bool, include_last_offset, false, "lookup-pooled: the last offset ends the last bag");
ABSL_FLAG(std::string, mode, "sum", "lookup-pooled: sum, mean or max");
ABSL_FLAG(std::string, weights, "", "lookup-pooled: per_sample_weights (mode sum)");
ABSL_FLAG(std::string, values, "", "assign: comma-separated floats, len(ids) * dim");
ABSL_FLAG(int32_t, max_values, 8, "values printed per row (0 = all)");
// create
ABSL_FLAG(int64_t, num, 0, "create: num_embeddings");
ABSL_FLAG(int64_t, dim, 0, "create: embedding_dim");
ABSL_FLAG(std::string, padding_idx, "", "create: padding_idx (may be negative)");
ABSL_FLAG(double, max_norm, 0, "create: max_norm (0 = none)");
ABSL_FLAG(double, norm_type, 2, "create: norm_type");
ABSL_FLAG(bool, frozen, false, "create: freeze the table (from_pretrained freeze=True)");
ABSL_FLAG(std::string, init, "normal", "create: normal, uniform, zeros, constant, xavier_uniform");
ABSL_FLAG(double, mean, 0, "create: normal mean");
ABSL_FLAG(double, std, 1, "create: normal std");
ABSL_FLAG(double, a, 0, "create: uniform lower bound");
ABSL_FLAG(double, b, 1, "create: uniform upper bound");
ABSL_FLAG(double, value, 0, "create: constant value");
ABSL_FLAG(uint64_t, seed, 0, "create: initializer seed");
ABSL_FLAG(int32_t, shards, 0, "create: number of shards (0 = by size)");
ABSL_FLAG(bool, scale_grad_by_freq, false, "create: divide pushed gradients by id frequency");
ABSL_FLAG(std::string, optimizer, "sgd", "create: sgd, adagrad, rowwise_adagrad or sparse_adam");
ABSL_FLAG(std::string, lr, "", "create/update: learning rate");
ABSL_FLAG(std::string, lr_decay, "", "create/update: Adagrad lr_decay");
ABSL_FLAG(std::string, eps, "", "create/update: optimizer eps");
ABSL_FLAG(std::string, beta1, "", "create/update: SparseAdam beta1");
ABSL_FLAG(std::string, beta2, "", "create/update: SparseAdam beta2");
ABSL_FLAG(std::string, initial_accumulator_value, "", "create: Adagrad initial accumulator");
ABSL_FLAG(std::string, set_frozen, "", "update: true or false");
ABSL_FLAG(std::string, grads, "", "push: comma-separated floats, len(ids) * dim");
ABSL_FLAG(std::string, words, "",
          "lookup: comma-separated words (tables loaded from word vectors)");
ABSL_FLAG(std::string, output, "float32",
          "lookup: float32, or float16 (half the bytes on the wire; printed widened)");
ABSL_FLAG(std::string, path, "", "load: file on the server's disk");
ABSL_FLAG(std::string, format, "npy",
          "load: npy, word2vec_text, word2vec_binary, glove_text, raw_f32");
ABSL_FLAG(int64_t, raw_dim, 0, "load: row width of a raw_f32 file");
ABSL_FLAG(bool, replace, false, "load/import: swap out an existing table of that name");
ABSL_FLAG(std::string, out, "", "export: the .npy file to write");
ABSL_FLAG(std::string, tables, "", "checkpoint restore: comma-separated tables (default all)");
ABSL_FLAG(std::string, from_raw, "",
          "create: initial values from a raw little-endian float32 file (num * dim values)");

namespace {

using embedserve::EmbeddingClient;
using embedserve::Tensor;
namespace v1 = embedserve::v1;

constexpr char kUsage[] =
    "embedctl: talk to an embedserve server.\n"
    "\n"
    "  embedctl [--address=HOST:PORT] COMMAND [ARGS] [FLAGS]\n"
    "\n"
    "secured servers (README, Security):\n"
    "  --token_file=FILE (or EMBEDSERVE_TOKEN=...)   bearer token of a reader, trainer or admin\n"
    "  --tls_ca=CA.pem [--tls_cert=CLIENT.pem --tls_key=CLIENT.key] [--tls_server_name=NAME]\n"
    "\n"
    "commands:\n"
    "  health [SERVICE]                  grpc.health.v1 status; exit 0 if SERVING\n"
    "  list                              tables and their sizes\n"
    "  describe TABLE                    spec, rows, bytes, version\n"
    "  create TABLE --num=N --dim=D [--padding_idx=I] [--max_norm=M --norm_type=P]\n"
    "         [--frozen] [--init=normal|uniform|zeros|constant|xavier_uniform]\n"
    "         [--mean --std --a --b --value --seed] [--shards=S] [--from_raw=FILE]\n"
    "         [--optimizer=sgd|adagrad|rowwise_adagrad|sparse_adam --lr=... ]\n"
    "         [--scale_grad_by_freq]\n"
    "  drop TABLE\n"
    "  lookup TABLE --ids=1,2,3 [--shape=3]   or   --words=king,queen\n"
    "  load TABLE --path=FILE [--format=npy|word2vec_text|word2vec_binary|glove_text|raw_f32]\n"
    "         [--raw_dim=D] [--frozen] [--padding_idx=I] [--replace]   (from_pretrained;\n"
    "         FILE is on the server, relative to its --load_dir)\n"
    "  lookup-pooled TABLE --ids=1,2,3,4 (--offsets=0,2 | --shape=2,2)\n"
    "         [--mode=sum|mean|max] [--weights=...] [--include_last_offset]\n"
    "  import TABLE --path=LOCAL_FILE [--format=...] [--raw_dim --frozen --padding_idx --replace]\n"
    "                                    upload a file and load it (progress on stderr)\n"
    "  export TABLE --out=FILE.npy       download the rows as float32 .npy (progress on stderr;\n"
    "                                    FILE.npy is replaced only by a complete export)\n"
    "  checkpoint create NAME | checkpoint list | checkpoint restore NAME [--tables=a,b]\n"
    "  assign TABLE --ids=0 --values=v1,v2,...   set whole rows\n"
    "  push TABLE --ids=1,1 --grads=g1,g2,...    apply one gradient push\n"
    "  update TABLE [--set_frozen=true|false] [--lr --lr_decay --eps --beta1 --beta2]\n"
    "  state TABLE --ids=1,2                     optimizer state of rows\n"
    "\n"
    "Exit status: 0 on success, 1 on a server error (printed with its gRPC code),\n"
    "2 on a usage error (including a token or TLS file that cannot be read).";

template <typename T>
bool ParseList(const std::string& text, std::vector<T>* out, const char* flag) {
  out->clear();
  if (text.empty()) return true;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    T v;
    bool ok;
    if constexpr (std::is_same_v<T, float>) {
      ok = absl::SimpleAtof(absl::StripAsciiWhitespace(part), &v);
    } else {
      ok = absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v);
    }
    if (!ok) {
      std::cerr << "embedctl: --" << flag << ": '" << part << "' is not a number\n";
      return false;
    }
    out->push_back(v);
  }
  return true;
}

int Fail(const absl::Status& s) {
  std::cerr << "embedctl: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return 1;
}

int Usage(const std::string& message) {
  std::cerr << "embedctl: " << message << "\n(embedctl --help for usage)\n";
  return 2;
}

std::string FormatRow(const float* row, int64_t dim) {
  const int64_t max = absl::GetFlag(FLAGS_max_values);
  const int64_t n = (max <= 0 || max >= dim) ? dim : max;
  std::string s = "[";
  for (int64_t d = 0; d < n; ++d) absl::StrAppendFormat(&s, "%s%.6g", d ? ", " : "", row[d]);
  if (n < dim) absl::StrAppend(&s, ", ... (", dim - n, " more)");
  return s + "]";
}

void PrintTensor(const Tensor& t, const std::vector<int64_t>* ids, const char* row_label) {
  std::cout << "shape [" << absl::StrJoin(t.shape, ", ") << "]\n";
  const int64_t dim = t.shape.back();
  const int64_t rows = dim == 0 ? 0 : static_cast<int64_t>(t.values.size()) / dim;
  for (int64_t r = 0; r < rows; ++r) {
    std::cout << row_label << " " << r;
    if (ids != nullptr) std::cout << " (id " << (*ids)[r] << ")";
    std::cout << ": " << FormatRow(t.values.data() + r * dim, dim) << "\n";
  }
}

void PrintInfo(const v1::TableInfo& info) {
  const v1::TableSpec& s = info.spec();
  std::cout << "table " << s.name() << "\n"
            << "  num_embeddings  " << s.num_embeddings() << "\n"
            << "  embedding_dim   " << s.embedding_dim() << "\n"
            << "  padding_idx     "
            << (s.has_padding_idx() ? absl::StrCat(s.padding_idx()) : "none") << "\n"
            << "  max_norm        "
            << (s.has_max_norm() ? absl::StrCat(s.max_norm(), " (norm_type ", s.norm_type(), ")")
                                 : "none")
            << "\n"
            << "  frozen          " << (s.frozen() ? "yes" : "no") << "\n"
            << "  initializer     " << v1::Initializer::Kind_Name(s.initializer().kind())
            << " (seed " << s.initializer().seed() << ")\n"
            << "  optimizer       " << v1::OptimizerSpec::Kind_Name(s.optimizer().kind()) << " (lr "
            << s.optimizer().lr() << ", step " << info.optimizer_step() << ", "
            << info.optimizer_state_bytes() << " state bytes)\n"
            << "  scale_grad_by_freq " << (s.scale_grad_by_freq() ? "yes" : "no") << "\n"
            << "  shards          " << info.num_shards() << " x " << info.rows_per_shard()
            << " rows\n"
            << "  bytes_used      " << info.bytes_used() << "\n"
            << "  version         " << info.version() << "\n";
}

// Copies the optimizer flags that are set into `o`; false on a bad number.
bool OptimizerFlags(v1::OptimizerSpec* o, bool creating) {
  struct Field {
    const absl::Flag<std::string>* flag;
    const char* name;
    void (v1::OptimizerSpec::*set)(double);
  };
  const Field fields[] = {
      {&FLAGS_lr, "lr", &v1::OptimizerSpec::set_lr},
      {&FLAGS_lr_decay, "lr_decay", &v1::OptimizerSpec::set_lr_decay},
      {&FLAGS_eps, "eps", &v1::OptimizerSpec::set_eps},
      {&FLAGS_beta1, "beta1", &v1::OptimizerSpec::set_beta1},
      {&FLAGS_beta2, "beta2", &v1::OptimizerSpec::set_beta2},
      {&FLAGS_initial_accumulator_value, "initial_accumulator_value",
       &v1::OptimizerSpec::set_initial_accumulator_value},
  };
  for (const Field& f : fields) {
    const std::string text = absl::GetFlag(*f.flag);
    if (text.empty()) continue;
    double v;
    if (!absl::SimpleAtod(text, &v)) {
      std::cerr << "embedctl: --" << f.name << " must be a number\n";
      return false;
    }
    (o->*f.set)(v);
  }
  if (creating) {
    v1::OptimizerSpec::Kind kind;
    const std::string name = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_optimizer));
    if (!v1::OptimizerSpec::Kind_Parse(name, &kind)) {
      std::cerr << "embedctl: unknown --optimizer " << name << "\n";
      return false;
    }
    o->set_kind(kind);
  }
  return true;
}

// Progress of a transfer on stderr: a bar with rows/s and ETA on a terminal,
// a plain line every 2 seconds otherwise (logs, CI).
class Progress {
 public:
  Progress(std::string label, int64_t total, const char* unit)
      : label_(std::move(label)),
        total_(total),
        unit_(unit),
        tty_(isatty(STDERR_FILENO)),
        start_(absl::Now()),
        last_(start_) {}
  void Update(int64_t done) {
    const absl::Time now = absl::Now();
    if (now - last_ < (tty_ ? absl::Milliseconds(100) : absl::Seconds(2))) return;
    last_ = now;
    const double secs = std::max(1e-6, absl::ToDoubleSeconds(now - start_));
    const double rate = static_cast<double>(done) / secs;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1;
    if (tty_) {
      const int width = 30, filled = static_cast<int>(frac * width);
      std::cerr << absl::StrFormat("\r%s [%s%s] %3.0f%% %.3g %s/s ETA %.0fs ", label_,
                                   std::string(filled, '#'), std::string(width - filled, ' '),
                                   100 * frac, rate, unit_, eta)
                << std::flush;
    } else {
      std::cerr << absl::StrFormat("%s: %d/%d %s (%.0f%%), %.3g %s/s, ETA %.0fs\n", label_, done,
                                   total_, unit_, 100 * frac, rate, unit_, eta);
    }
  }
  void Done(int64_t done) {
    last_ = absl::InfinitePast();
    Update(done);
    if (tty_) std::cerr << "\n";
  }

 private:
  const std::string label_;
  const int64_t total_;
  const char* unit_;
  const bool tty_;
  const absl::Time start_;
  absl::Time last_;
};

// Copies --padding_idx into `set` when given; false (after a message) if it
// is not an integer.
template <typename Setter>
bool PaddingIdxFlag(Setter set) {
  const std::string p = absl::GetFlag(FLAGS_padding_idx);
  if (p.empty()) return true;
  int64_t idx;
  if (!absl::SimpleAtoi(p, &idx)) {
    std::cerr << "embedctl: --padding_idx must be an integer\n";
    return false;
  }
  set(idx);
  return true;
}

int Import(EmbeddingClient& client, const std::string& table) {
  const std::string path = absl::GetFlag(FLAGS_path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Usage("cannot open --path=" + path);
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  in.seekg(0);
  v1::ImportChunk first;
  v1::LoadTableRequest* req = first.mutable_request();
  req->set_name(table);
  req->set_path(path);
  v1::FileFormat format;
  if (!v1::FileFormat_Parse(absl::AsciiStrToUpper(absl::GetFlag(FLAGS_format)), &format)) {
    return Usage("unknown --format " + absl::GetFlag(FLAGS_format));
  }
  req->set_format(format);
  req->set_raw_dim(absl::GetFlag(FLAGS_raw_dim));
  req->set_freeze(absl::GetFlag(FLAGS_frozen));
  req->set_replace(absl::GetFlag(FLAGS_replace));
  if (!PaddingIdxFlag([&](int64_t i) { req->set_padding_idx(i); })) return 2;
  grpc::ClientContext ctx;
  client.PrepareContext(&ctx, /*deadline=*/false);  // a large upload may take long
  v1::LoadTableResponse resp;
  auto writer = client.stub()->ImportTable(&ctx, &resp);
  bool ok = writer->Write(first);
  Progress progress("import " + path, size, "bytes");
  std::vector<char> buffer(1 << 20);
  int64_t sent = 0;
  while (ok && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    v1::ImportChunk chunk;
    chunk.set_data(buffer.data(), static_cast<size_t>(n));
    ok = writer->Write(chunk);
    sent += n;
    progress.Update(sent);
  }
  progress.Done(sent);
  writer->WritesDone();
  const absl::Status s = embedserve::FromGrpcStatus(writer->Finish());
  if (!s.ok()) return Fail(s);
  std::cout << "imported ";
  PrintInfo(resp.table());
  return 0;
}

int Export(EmbeddingClient& client, const std::string& table) {
  const std::string out_path = absl::GetFlag(FLAGS_out);
  if (out_path.empty()) return Usage("export needs --out=FILE.npy");
  // Written beside --out and renamed over it once complete, so that a
  // refused or broken export leaves an existing file as it was.
  const std::string part_path = out_path + ".part";
  std::ofstream out(part_path, std::ios::binary);
  if (!out) return Usage("cannot write " + part_path);
  grpc::ClientContext ctx;
  client.PrepareContext(&ctx, /*deadline=*/false);  // a large download may take long
  v1::ExportTableRequest req;
  req.set_name(table);
  auto reader = client.stub()->ExportTable(&ctx, req);
  v1::ExportChunk chunk;
  std::unique_ptr<Progress> progress;
  int64_t rows = 0, total = 0;
  while (reader->Read(&chunk)) {
    if (chunk.has_table()) {
      total = chunk.table().num_rows();
      const int64_t dim = chunk.table().spec().embedding_dim();
      // .npy v1 header, padded so that the data starts on a 64-byte boundary.
      std::string header = absl::StrFormat(
          "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", total, dim);
      const size_t unpadded = 10 + header.size() + 1;
      header.append((64 - unpadded % 64) % 64, ' ');
      header.push_back('\n');
      out.write("\x93NUMPY\x01\x00", 8);
      const uint16_t len = static_cast<uint16_t>(header.size());
      out.put(static_cast<char>(len & 0xff));
      out.put(static_cast<char>(len >> 8));
      out << header;
      progress = std::make_unique<Progress>("export " + table, total, "rows");
    }
    out.write(chunk.values().data(), static_cast<std::streamsize>(chunk.values().size()));
    rows += chunk.num_rows();
    if (progress) progress->Update(rows);
  }
  if (progress) progress->Done(rows);
  absl::Status s = embedserve::FromGrpcStatus(reader->Finish());
  if (s.ok() && !out.flush()) s = absl::UnavailableError("cannot write " + part_path);
  out.close();
  if (s.ok() && std::rename(part_path.c_str(), out_path.c_str()) != 0) {
    s = absl::UnavailableError("cannot rename " + part_path + " to " + out_path);
  }
  if (!s.ok()) {
    std::remove(part_path.c_str());
    return Fail(s);
  }
  std::cout << "exported " << rows << " rows of " << table << " to " << out_path << "\n";
  return 0;
}

int Checkpoint(EmbeddingClient& client, const std::string& action, const std::string& name) {
  if (action == "list") {
    auto resp =
        client.Unary(&v1::EmbeddingService::Stub::ListCheckpoints, v1::ListCheckpointsRequest());
    if (!resp.ok()) return Fail(resp.status());
    for (const auto& c : resp->checkpoints()) {
      std::cout << c.name() << "  " << absl::FormatTime(absl::FromUnixMillis(c.created_unix_ms()))
                << "  " << c.bytes() << " bytes  tables: " << absl::StrJoin(c.tables(), ",")
                << "\n";
    }
    return 0;
  }
  if (name.empty()) return Usage("checkpoint " + action + " needs a NAME");
  if (action == "create") {
    v1::CreateCheckpointRequest req;
    req.set_name(name);
    auto resp = client.Unary(&v1::EmbeddingService::Stub::CreateCheckpoint, req);
    if (!resp.ok()) return Fail(resp.status());
    std::cout << "created checkpoint " << name << " (" << resp->checkpoint().bytes()
              << " bytes, tables: " << absl::StrJoin(resp->checkpoint().tables(), ",") << ")\n";
    return 0;
  }
  if (action == "restore") {
    v1::RestoreCheckpointRequest req;
    req.set_name(name);
    if (const std::string t = absl::GetFlag(FLAGS_tables); !t.empty()) {
      for (absl::string_view part : absl::StrSplit(t, ',')) req.add_tables(std::string(part));
    }
    auto resp = client.Unary(&v1::EmbeddingService::Stub::RestoreCheckpoint, req);
    if (!resp.ok()) return Fail(resp.status());
    for (const auto& t : resp->tables()) {
      std::cout << "restored " << t.spec().name() << " (version " << t.version() << ")\n";
    }
    return 0;
  }
  return Usage("checkpoint actions are create, list and restore");
}

int Create(EmbeddingClient& client, const std::string& name) {
  v1::TableSpec spec;
  spec.set_name(name);
  spec.set_num_embeddings(absl::GetFlag(FLAGS_num));
  spec.set_embedding_dim(absl::GetFlag(FLAGS_dim));
  if (!PaddingIdxFlag([&](int64_t i) { spec.set_padding_idx(i); })) return 2;
  if (absl::GetFlag(FLAGS_max_norm) != 0) spec.set_max_norm(absl::GetFlag(FLAGS_max_norm));
  spec.set_norm_type(absl::GetFlag(FLAGS_norm_type));
  spec.set_frozen(absl::GetFlag(FLAGS_frozen));
  spec.set_num_shards(absl::GetFlag(FLAGS_shards));
  spec.set_scale_grad_by_freq(absl::GetFlag(FLAGS_scale_grad_by_freq));
  if (!OptimizerFlags(spec.mutable_optimizer(), /*creating=*/true)) return 2;
  v1::Initializer* init = spec.mutable_initializer();
  std::string kind = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_init));
  v1::Initializer::Kind k;
  if (!v1::Initializer::Kind_Parse(kind, &k)) return Usage("unknown --init " + kind);
  init->set_kind(k);
  init->set_mean(absl::GetFlag(FLAGS_mean));
  init->set_std(absl::GetFlag(FLAGS_std));
  init->set_a(absl::GetFlag(FLAGS_a));
  init->set_b(absl::GetFlag(FLAGS_b));
  init->set_value(absl::GetFlag(FLAGS_value));
  init->set_seed(absl::GetFlag(FLAGS_seed));
  std::vector<float> values;
  if (const std::string path = absl::GetFlag(FLAGS_from_raw); !path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Usage("cannot open --from_raw file " + path);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() % 4 != 0) return Usage(path + " is not a whole number of float32 values");
    values.resize(bytes.size() / 4);
    std::memcpy(values.data(), bytes.data(), bytes.size());
  }
  auto info = client.CreateTable(spec, values);
  if (!info.ok()) return Fail(info.status());
  std::cout << "created ";
  PrintInfo(*info);
  return 0;
}

// The one client of this run, from --address, --timeout and the security
// flags; null (after a message) if they are unusable.
std::unique_ptr<EmbeddingClient> MakeClient() {
  embedserve::ClientOptions options;
  options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout));
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    absl::StatusOr<std::string> token = embedserve::ReadTokenFile(path);
    if (!token.ok()) {
      std::cerr << "embedctl: " << token.status().message() << "\n";
      return nullptr;
    }
    options.token = *std::move(token);
  } else if (const char* env = std::getenv("EMBEDSERVE_TOKEN"); env != nullptr) {
    options.token = std::string(absl::StripAsciiWhitespace(env));
  }
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  auto client = EmbeddingClient::Connect(absl::GetFlag(FLAGS_address), options);
  if (!client.ok()) {
    std::cerr << "embedctl: " << client.status().message() << "\n";
    return nullptr;
  }
  return *std::move(client);
}

int Run(const std::vector<char*>& args) {
  if (args.size() < 2) return Usage("missing COMMAND");
  const std::string cmd = args[1];
  const std::string table = args.size() > 2 ? args[2] : "";
  if (cmd == "checkpoint") {
    auto client = MakeClient();
    if (client == nullptr) return 2;
    return Checkpoint(*client, table, args.size() > 3 ? args[3] : "");
  }
  if (args.size() > 3) return Usage("unexpected argument '" + std::string(args[3]) + "'");
  if (cmd != "list" && cmd != "health" && table.empty()) {
    return Usage(cmd + " needs a TABLE name");
  }
  if (cmd != "list" && cmd != "health" && cmd != "describe" && cmd != "create" && cmd != "drop" &&
      cmd != "lookup" && cmd != "lookup-pooled" && cmd != "assign" && cmd != "push" &&
      cmd != "update" && cmd != "state" && cmd != "load" && cmd != "import" && cmd != "export") {
    return Usage("unknown command '" + cmd + "'");
  }
  std::vector<int64_t> ids, shape, offsets;
  std::vector<float> weights, values, grads;
  if (!ParseList(absl::GetFlag(FLAGS_ids), &ids, "ids") ||
      !ParseList(absl::GetFlag(FLAGS_shape), &shape, "shape") ||
      !ParseList(absl::GetFlag(FLAGS_offsets), &offsets, "offsets") ||
      !ParseList(absl::GetFlag(FLAGS_weights), &weights, "weights") ||
      !ParseList(absl::GetFlag(FLAGS_values), &values, "values") ||
      !ParseList(absl::GetFlag(FLAGS_grads), &grads, "grads")) {
    return 2;
  }
  auto client = MakeClient();
  if (client == nullptr) return 2;
  if (cmd == "health") {
    auto health = client->CheckHealth(table);
    if (!health.ok()) return Fail(health.status());
    std::cout << *health << "\n";
    return *health == "SERVING" ? 0 : 1;
  }
  if (cmd == "list") {
    auto tables = client->ListTables();
    if (!tables.ok()) return Fail(tables.status());
    absl::PrintF("%-24s %14s %6s %8s %14s %8s\n", "TABLE", "ROWS", "DIM", "SHARDS", "BYTES",
                 "VERSION");
    for (const auto& t : *tables) {
      absl::PrintF("%-24s %14d %6d %8d %14d %8d\n", t.spec().name(), t.num_rows(),
                   t.spec().embedding_dim(), t.num_shards(), t.bytes_used(), t.version());
    }
    return 0;
  }
  if (cmd == "describe") {
    auto info = client->DescribeTable(table);
    if (!info.ok()) return Fail(info.status());
    PrintInfo(*info);
    return 0;
  }
  if (cmd == "create") return Create(*client, table);
  if (cmd == "drop") {
    absl::Status s = client->DropTable(table);
    if (!s.ok()) return Fail(s);
    std::cout << "dropped " << table << "\n";
    return 0;
  }
  v1::ValueType output = v1::FLOAT32;
  if (cmd == "lookup") {
    const std::string name = absl::GetFlag(FLAGS_output);
    if (name == "float16") {
      output = v1::FLOAT16;
    } else if (name != "float32") {
      return Usage("--output must be float32 or float16, got " + name);
    }
  }
  if (cmd == "lookup" && !absl::GetFlag(FLAGS_words).empty()) {
    const std::vector<std::string> words = absl::StrSplit(absl::GetFlag(FLAGS_words), ',');
    v1::LookupRequest req;
    auto* q = req.add_queries();
    q->set_table(table);
    for (const auto& w : words) q->add_words(w);
    q->set_output(output);
    auto resp = client->Lookup(req);
    if (!resp.ok()) return Fail(resp.status());
    auto t = embedserve::TensorFromResult(resp->results(0));
    if (!t.ok()) return Fail(t.status());
    std::cout << "shape [" << absl::StrJoin(t->shape, ", ") << "]\n";
    for (size_t r = 0; r < words.size(); ++r) {
      std::cout << words[r] << ": "
                << FormatRow(t->values.data() + r * t->shape.back(), t->shape.back()) << "\n";
    }
    return 0;
  }
  if (cmd == "lookup") {
    auto t = client->Lookup(table, ids, shape, output);
    if (!t.ok()) return Fail(t.status());
    PrintTensor(*t, &ids, "row");
    return 0;
  }
  if (cmd == "import") return Import(*client, table);
  if (cmd == "export") return Export(*client, table);
  if (cmd == "load") {
    v1::LoadTableRequest req;
    req.set_name(table);
    req.set_path(absl::GetFlag(FLAGS_path));
    v1::FileFormat format;
    if (!v1::FileFormat_Parse(absl::AsciiStrToUpper(absl::GetFlag(FLAGS_format)), &format)) {
      return Usage("unknown --format " + absl::GetFlag(FLAGS_format));
    }
    req.set_format(format);
    req.set_raw_dim(absl::GetFlag(FLAGS_raw_dim));
    req.set_freeze(absl::GetFlag(FLAGS_frozen));
    req.set_replace(absl::GetFlag(FLAGS_replace));
    if (!PaddingIdxFlag([&](int64_t i) { req.set_padding_idx(i); })) return 2;
    if (!OptimizerFlags(req.mutable_optimizer(), /*creating=*/true)) return 2;
    auto resp = client->Unary(&v1::EmbeddingService::Stub::LoadTable, req);
    if (!resp.ok()) return Fail(resp.status());
    std::cout << "loaded ";
    PrintInfo(resp->table());
    return 0;
  }
  if (cmd == "lookup-pooled") {
    embedserve::BagQuery q;
    q.table = table;
    q.ids = ids;
    q.offsets = offsets;
    q.shape = shape;
    q.include_last_offset = absl::GetFlag(FLAGS_include_last_offset);
    q.per_sample_weights = weights;
    const std::string mode = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_mode));
    if (!v1::PoolingMode_Parse(mode, &q.mode)) return Usage("unknown --mode " + mode);
    auto t = client->LookupPooled(q);
    if (!t.ok()) return Fail(t.status());
    PrintTensor(*t, nullptr, "bag");
    return 0;
  }
  if (cmd == "push") {
    auto resp = client->PushGradients(table, ids, grads);
    if (!resp.ok()) return Fail(resp.status());
    std::cout << "applied " << resp->rows_applied() << " rows to " << table << "; version "
              << resp->version() << "\n";
    return 0;
  }
  if (cmd == "update") {
    v1::UpdateTableRequest req;
    req.set_name(table);
    if (const std::string f = absl::GetFlag(FLAGS_set_frozen); !f.empty()) {
      if (f != "true" && f != "false") return Usage("--set_frozen must be true or false");
      req.set_frozen(f == "true");
    }
    if (!OptimizerFlags(req.mutable_optimizer(), /*creating=*/false)) return 2;
    auto info = client->UpdateTable(req);
    if (!info.ok()) return Fail(info.status());
    std::cout << "updated ";
    PrintInfo(*info);
    return 0;
  }
  if (cmd == "state") {
    auto state = client->GetOptimizerState(table, ids);
    if (!state.ok()) return Fail(state.status());
    std::cout << "step " << state->step() << "\n";
    for (const auto& slot : state->slots()) {
      v1::LookupResult as_result;
      as_result.mutable_shape()->CopyFrom(slot.shape());
      if (slot.shape_size() == 1) as_result.add_shape(1);
      as_result.set_values(slot.values());
      auto t = embedserve::TensorFromResult(as_result);
      if (!t.ok()) return Fail(t.status());
      std::cout << slot.name() << " ";
      PrintTensor(*t, &ids, "row");
    }
    return 0;
  }
  auto version = client->AssignRows(table, ids, values);  // assign
  if (!version.ok()) return Fail(version.status());
  std::cout << "assigned " << ids.size() << " rows of " << table << "; version " << *version
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  return Run(args);
}
