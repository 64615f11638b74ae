// embedbench: load generator for embedserve (and, side by side, for the
// gRPC echo ceiling and Redis MGET). Loopback only; stops by itself.
//
//   embedbench --target=embedserve --address=127.0.0.1:50051 --connections=2 \
//              --batch=512 --duration=10 [--mode=open --rate=2000]
//
// closed loop: each connection sends its next request when the previous
//   answer arrives. open loop: each connection sends at fixed intervals
//   (rate / connections per second) and latency counts from the intended
//   send time, so a slow answer delays nothing unseen (no coordinated
//   omission).
// Reports rows/s, requests/s, p50/p99/p99.9 latency, and CPU seconds per
// million rows (client, and server with --server_pid).
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/bench_ids.h"
#include "embedserve/v1/embedserve.grpc.pb.h"

ABSL_FLAG(std::string, target, "embedserve", "embedserve, echo or redis");
ABSL_FLAG(std::string, address, "127.0.0.1:50051", "host:port of the target (loopback only)");
ABSL_FLAG(std::string, mode, "closed", "closed or open loop");
ABSL_FLAG(int, connections, 2, "connections, one thread each");
ABSL_FLAG(double, rate, 1000, "open loop: requests per second over all connections");
ABSL_FLAG(int, batch, 512, "ids per request");
ABSL_FLAG(int, dim, 64, "embedding_dim");
ABSL_FLAG(int64_t, rows, 1'000'000, "rows in the table");
ABSL_FLAG(std::string, table, "bench", "table name (embedserve) / key prefix (redis)");
ABSL_FLAG(std::string, dist, "uniform", "id distribution: uniform or zipf");
ABSL_FLAG(double, zipf_s, 1.05, "Zipf exponent");
ABSL_FLAG(std::string, output, "float32", "embedserve: answer values as float32 or float16");
ABSL_FLAG(double, push_fraction, 0, "embedserve: share of requests that push gradients");
ABSL_FLAG(double, duration, 10, "seconds to measure");
ABSL_FLAG(double, warmup, 1, "seconds before measuring");
ABSL_FLAG(bool, setup, false, "create the table (embedserve) or fill Redis, then exit");
ABSL_FLAG(int, server_pid, 0, "measure this process's CPU time too");
ABSL_FLAG(std::string, csv, "", "append one result line to this CSV file");
ABSL_FLAG(std::string, label, "", "label for the CSV line");
// A secured embedserve (README, Security); not for the echo or Redis targets.
ABSL_FLAG(std::string, token_file, "",
          "embedserve: file whose first line is the bearer token (default: $EMBEDSERVE_TOKEN)");
ABSL_FLAG(std::string, tls_ca, "", "embedserve: PEM CA of the server's certificate: use TLS");
ABSL_FLAG(std::string, tls_cert, "", "embedserve: PEM client certificate (mutual TLS)");
ABSL_FLAG(std::string, tls_key, "", "embedserve: PEM private key of --tls_cert");

namespace {

namespace v1 = embedserve::v1;
using Clock = std::chrono::steady_clock;

// How every channel and call of this run is secured, from the flags (the
// same rules as embedserve::ClientOptions; this tool links only the protos,
// so it builds them itself).
struct Security {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string authorization;  // "Bearer <token>", or empty
};
Security& TheSecurity() {
  static Security security;
  return security;
}

// Reads a whole file; false (after a message naming it) if it cannot.
bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "embedbench: cannot read " << path << "\n";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// Fills TheSecurity() from the flags; false (after a message) on a bad one.
bool SetUpSecurity() {
  Security& s = TheSecurity();
  std::string token;
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    std::string text;
    if (!ReadFile(path, &text)) return false;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (!line.empty() && line.front() != '#') {
        token = std::string(line);
        break;
      }
    }
    if (token.empty()) {
      std::cerr << "embedbench: the token file " << path << " holds no token\n";
      return false;
    }
  } else if (const char* env = std::getenv("EMBEDSERVE_TOKEN"); env != nullptr) {
    token = std::string(absl::StripAsciiWhitespace(env));
  }
  if (!token.empty()) s.authorization = absl::StrCat("Bearer ", token);
  const std::string ca = absl::GetFlag(FLAGS_tls_ca), cert = absl::GetFlag(FLAGS_tls_cert),
                    key = absl::GetFlag(FLAGS_tls_key);
  if (cert.empty() != key.empty()) {
    std::cerr << "embedbench: --tls_cert and --tls_key go together\n";
    return false;
  }
  if (ca.empty() && cert.empty()) {
    s.credentials = grpc::InsecureChannelCredentials();
    return true;
  }
  grpc::SslCredentialsOptions ssl;
  if (!ca.empty() && !ReadFile(ca, &ssl.pem_root_certs)) return false;
  if (!cert.empty() &&
      (!ReadFile(cert, &ssl.pem_cert_chain) || !ReadFile(key, &ssl.pem_private_key))) {
    return false;
  }
  s.credentials = grpc::SslCredentials(ssl);
  return true;
}

// Every call's context: the token, if any.
void PrepareContext(grpc::ClientContext* ctx) {
  if (!TheSecurity().authorization.empty()) {
    ctx->AddMetadata("authorization", TheSecurity().authorization);
  }
}

bool Loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address.rfind("localhost:", 0) == 0 ||
         address.rfind("[::1]:", 0) == 0;
}

// Ids of one request.
class IdSource {
 public:
  // Zipf ids are drawn ahead (a binary search in a 1M-entry CDF per id made
  // the client, which shares the machine, the bottleneck); requests then
  // take consecutive slices of that sequence.
  IdSource(uint64_t seed) : rng_(seed) {
    if (absl::GetFlag(FLAGS_dist) != "zipf") return;
    const int64_t n = absl::GetFlag(FLAGS_rows);
    std::vector<double> cdf(n);
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) cdf[k] = (sum += std::pow(k + 1.0, -absl::GetFlag(FLAGS_zipf_s)));
    for (double& c : cdf) c /= sum;
    pool_.resize(kPoolIds);
    for (int64_t& id : pool_) {
      const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
      const uint64_t rank = std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
      id = static_cast<int64_t>((rank * 0x9E3779B97F4A7C15ULL) % n);  // hot rows scattered
    }
  }
  void Fill(std::vector<int64_t>* ids) {
    const uint64_t n = absl::GetFlag(FLAGS_rows);
    for (int64_t& id : *ids) {
      if (pool_.empty()) {
        id = static_cast<int64_t>(rng_() % n);
      } else {
        id = pool_[next_];
        next_ = (next_ + 1) % pool_.size();
      }
    }
  }

 private:
  static constexpr size_t kPoolIds = size_t{1} << 22;  // 4M ids, 32 MiB per connection
  std::mt19937_64 rng_;
  std::vector<int64_t> pool_;
  size_t next_ = 0;
};

// One connection: sends a request, returns false on error.
class Conn {
 public:
  virtual ~Conn() = default;
  virtual bool Send(const std::vector<int64_t>& ids, bool push) = 0;
};

class GrpcConn final : public Conn {
 public:
  explicit GrpcConn(int index) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetInt("embedbench.connection", index);  // a channel (TCP connection) of its own
    stub_ = v1::EmbeddingService::NewStub(
        grpc::CreateCustomChannel(absl::GetFlag(FLAGS_address), TheSecurity().credentials, args));
    grads_.assign(size_t(absl::GetFlag(FLAGS_batch)) * absl::GetFlag(FLAGS_dim), 1e-6f);
  }
  bool Send(const std::vector<int64_t>& ids, bool push) override {
    grpc::ClientContext ctx;
    PrepareContext(&ctx);
    if (push) {
      v1::PushRequest req;
      req.set_table(absl::GetFlag(FLAGS_table));
      req.mutable_ids()->Add(ids.begin(), ids.end());
      req.set_grads(grads_.data(), grads_.size() * sizeof(float));
      v1::PushResponse resp;
      return stub_->PushGradients(&ctx, req, &resp).ok();
    }
    v1::LookupRequest req;
    auto* q = req.add_queries();
    q->set_table(absl::GetFlag(FLAGS_table));
    q->mutable_ids()->Add(ids.begin(), ids.end());
    const bool half = absl::GetFlag(FLAGS_output) == "float16";
    if (half) q->set_output(v1::FLOAT16);
    resp_.Clear();
    const grpc::Status s = stub_->Lookup(&ctx, req, &resp_);
    return s.ok() && resp_.results_size() == 1 &&
           resp_.results(0).values().size() ==
               ids.size() * absl::GetFlag(FLAGS_dim) * (half ? 2 : 4);
  }

 private:
  std::unique_ptr<v1::EmbeddingService::Stub> stub_;
  v1::LookupResponse resp_;
  std::vector<float> grads_;
};

class RedisConn final : public Conn {
 public:
  RedisConn() {
    const std::string a = absl::GetFlag(FLAGS_address);
    const size_t colon = a.rfind(':');
    ctx_ = redisConnect(a.substr(0, colon).c_str(), std::stoi(a.substr(colon + 1)));
    if (ctx_ == nullptr || ctx_->err) {
      std::cerr << "embedbench: cannot connect to Redis at " << a << "\n";
      std::exit(1);
    }
  }
  ~RedisConn() override { redisFree(ctx_); }
  bool Send(const std::vector<int64_t>& ids, bool push) override {
    keys_.resize(ids.size() + 1);
    argv_.resize(ids.size() + 1);
    lens_.resize(ids.size() + 1);
    keys_[0] = "MGET";
    for (size_t i = 0; i < ids.size(); ++i) keys_[i + 1] = Key(ids[i]);
    for (size_t i = 0; i < keys_.size(); ++i) {
      argv_[i] = keys_[i].data();
      lens_[i] = keys_[i].size();
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(argv_.size()), argv_.data(), lens_.data()));
    const bool ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY &&
                    reply->elements == ids.size() && reply->element[0]->type == REDIS_REPLY_STRING &&
                    reply->element[0]->len == size_t(absl::GetFlag(FLAGS_dim)) * 4;
    if (reply) freeReplyObject(reply);
    return ok;
  }
  static std::string Key(int64_t id) { return absl::StrCat(absl::GetFlag(FLAGS_table), ":", id); }
  redisContext* ctx() { return ctx_; }

 private:
  redisContext* ctx_;
  std::vector<std::string> keys_;
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
};

std::unique_ptr<Conn> Connect(int index) {
  if (absl::GetFlag(FLAGS_target) == "redis") return std::make_unique<RedisConn>();
  return std::make_unique<GrpcConn>(index);
}

int Setup() {
  const int64_t rows = absl::GetFlag(FLAGS_rows);
  const int dim = absl::GetFlag(FLAGS_dim);
  if (absl::GetFlag(FLAGS_target) == "redis") {
    RedisConn conn;
    std::vector<float> row(dim);
    for (int64_t r = 0; r < rows; ++r) {
      for (int d = 0; d < dim; ++d) row[d] = static_cast<float>(r) + d * 1e-3f;
      const std::string key = RedisConn::Key(r);
      redisAppendCommand(conn.ctx(), "SET %b %b", key.data(), key.size(), row.data(),
                         row.size() * sizeof(float));
      if ((r + 1) % 1000 == 0 || r + 1 == rows) {
        for (int64_t k = 0; k < (r % 1000) + 1; ++k) {
          void* reply = nullptr;
          if (redisGetReply(conn.ctx(), &reply) != REDIS_OK) return 1;
          freeReplyObject(reply);
        }
      }
    }
    std::cerr << "embedbench: filled Redis with " << rows << " rows\n";
    return 0;
  }
  auto stub = v1::EmbeddingService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_address), TheSecurity().credentials));
  v1::CreateTableRequest req;
  req.mutable_spec()->set_name(absl::GetFlag(FLAGS_table));
  req.mutable_spec()->set_num_embeddings(rows);
  req.mutable_spec()->set_embedding_dim(dim);
  req.mutable_spec()->mutable_initializer()->set_kind(v1::Initializer::UNIFORM);
  v1::CreateTableResponse resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  const grpc::Status s = stub->CreateTable(&ctx, req, &resp);
  if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
    std::cerr << "embedbench: create table: " << s.error_message() << "\n";
    return 1;
  }
  return 0;
}

double ProcessCpuSeconds(int pid) {
  if (pid == 0) {
    rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string field;
  double ticks = 0;
  for (int i = 1; i <= 15 && f >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "embedbench: closed- or open-loop load against embedserve, the gRPC echo ceiling or "
      "Redis MGET, on loopback. --setup creates the table / fills Redis. A secured embedserve: "
      "--token_file (or EMBEDSERVE_TOKEN), --tls_ca, --tls_cert, --tls_key.");
  absl::ParseCommandLine(argc, argv);
  if (!Loopback(absl::GetFlag(FLAGS_address))) {
    std::cerr << "embedbench: refusing " << absl::GetFlag(FLAGS_address)
              << ": only loopback addresses (127.x, localhost, [::1]) are targets\n";
    return 2;
  }
  if (!SetUpSecurity()) return 2;
  if (absl::GetFlag(FLAGS_setup)) return Setup();
  const int conns = absl::GetFlag(FLAGS_connections);
  const int batch = absl::GetFlag(FLAGS_batch);
  const bool open = absl::GetFlag(FLAGS_mode) == "open";
  const double push_fraction = absl::GetFlag(FLAGS_push_fraction);
  // The clock starts once every connection is set up (connected, ids drawn).
  Clock::time_point warm_end, end;
  std::atomic<bool> go{false};
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(conns / std::max(1e-9, absl::GetFlag(FLAGS_rate))));
  std::vector<std::vector<double>> latencies(conns);
  std::atomic<int64_t> errors{0};
  double cpu0 = 0, server_cpu0 = 0;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      auto conn = Connect(c);
      IdSource source(1000 + c);
      std::mt19937_64 mix(7 + c);
      std::vector<int64_t> ids(batch);
      ++ready;
      while (!go.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      auto next = Clock::now();
      for (;;) {
        Clock::time_point intended;
        if (open) {
          std::this_thread::sleep_until(next);
          intended = next;
          next += interval;
        } else {
          intended = Clock::now();
        }
        if (intended >= end) break;
        source.Fill(&ids);
        const bool push = push_fraction > 0 &&
                          std::uniform_real_distribution<double>(0, 1)(mix) < push_fraction;
        const bool ok = conn->Send(ids, push);
        const auto done = Clock::now();
        if (!ok) ++errors;  // in the warm-up too: a refused call is an error whenever it came
        if (intended < warm_end) continue;
        latencies[c].push_back(std::chrono::duration<double, std::micro>(done - intended).count());
      }
    });
  }
  while (ready.load() < conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  warm_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(absl::GetFlag(FLAGS_warmup)));
  end = warm_end + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(absl::GetFlag(FLAGS_duration)));
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_until(warm_end);
  cpu0 = ProcessCpuSeconds(0);
  server_cpu0 = ProcessCpuSeconds(absl::GetFlag(FLAGS_server_pid));
  for (auto& t : threads) t.join();
  const double cpu = ProcessCpuSeconds(0) - cpu0;
  const double server_cpu =
      absl::GetFlag(FLAGS_server_pid) ? ProcessCpuSeconds(absl::GetFlag(FLAGS_server_pid)) - server_cpu0 : 0;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(p / 100 * all.size()))];
  };
  const double secs = absl::GetFlag(FLAGS_duration);
  const double reqs = all.size() / secs, rows = reqs * batch;
  const double mrows = rows * secs / 1e6;
  std::cout << absl::StrFormat(
      "%-10s %-6s conns=%d batch=%d: %10.0f rows/s %8.0f req/s  p50 %7.0f us  p99 %7.0f us  "
      "p99.9 %7.0f us  cpu/Mrows client %.2f s server %.2f s  errors %d\n",
      absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_mode), conns, batch, rows, reqs, pct(50),
      pct(99), pct(99.9), mrows > 0 ? cpu / mrows : 0, mrows > 0 ? server_cpu / mrows : 0,
      errors.load());
  if (const std::string csv = absl::GetFlag(FLAGS_csv); !csv.empty()) {
    std::ofstream out(csv, std::ios::app);
    out << absl::StrFormat("%s,%s,%s,%d,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.3f,%.3f,%d\n",
                           absl::GetFlag(FLAGS_label), absl::GetFlag(FLAGS_target),
                           absl::GetFlag(FLAGS_mode), conns, batch, rows, reqs, pct(50), pct(99),
                           pct(99.9), mrows > 0 ? cpu / mrows : 0, mrows > 0 ? server_cpu / mrows : 0,
                           errors.load());
  }
  if (all.empty()) {
    // Nothing measured (e.g. every call outlasted the window): no figure,
    // and not a success either.
    std::cerr << absl::StrFormat(
        "embedbench: no request completed after the %.2f s warm-up within the %.2f s measured; "
        "raise --duration\n",
        absl::GetFlag(FLAGS_warmup), secs);
    return 1;
  }
  return errors.load() > 0 ? 1 : 0;
}
