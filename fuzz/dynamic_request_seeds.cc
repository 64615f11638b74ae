// Writes the seed corpora of dynamic_request_fuzz and dynamic_durable_fuzz
// into the two directories given: call sequences in their format ([method
// byte][u16 length][request]..., fuzz/dynamic_fuzz_common.h) against their
// tables (lru, admit, adam, open, dense), reaching eviction, expiry,
// admission, padding, renorm, compact rows, growth of the id index, and
// some refusals. The durable corpus has each sequence twice more: with a
// Restart at the end, and with a Snapshot and a Restart after its first
// call. Run by hand when the targets' tables or method lists change; not
// part of any test.
//
//   build/fuzz/dynamic_request_seeds fuzz/corpus/dynamic_request_fuzz fuzz/corpus/dynamic_durable_fuzz

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "embedserve/v1/embedserve.pb.h"

namespace {

namespace v1 = embedserve::v1;

// The target's method numbers (its kMethods order).
enum Method : uint8_t {
  kLookup = 0,
  kLookupPooled,
  kPush,
  kAssign,
  kState,
  kUpdate,
  kDescribe,
  kCreate,
  kDrop,
  kList,
  kSnapshot,  // dynamic_durable_fuzz's pseudo-calls
  kRestart,
  kCrash,
  kCheckpoint,
  kRestore,
};

// The calls of a sequence (each [method][u16 length][request]).
std::vector<std::string> Split(const std::string& seq) {
  std::vector<std::string> calls;
  size_t at = 0;
  while (at + 3 <= seq.size()) {
    const size_t n = static_cast<uint8_t>(seq[at + 1]) | size_t{static_cast<uint8_t>(seq[at + 2])} << 8;
    calls.push_back(seq.substr(at, 3 + n));
    at += 3 + n;
  }
  return calls;
}

std::string Pseudo(Method m) { return std::string{static_cast<char>(m), 0, 0}; }
// A Crash whose torn frame is `length` bytes long (modulo the frame).
std::string Crash(uint16_t length) {
  return std::string{static_cast<char>(kCrash), 2, 0, static_cast<char>(length & 0xff),
                     static_cast<char>(length >> 8)};
}

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) std::fprintf(stderr, "cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}

std::string Call(Method m, const google::protobuf::Message& request) {
  const std::string body = request.SerializeAsString();
  if (body.size() > 0xffff) std::abort();
  std::string out;
  out.push_back(static_cast<char>(m));
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.push_back(static_cast<char>(body.size() >> 8));
  return out + body;
}

std::string Floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::string Push(const std::string& table, const std::vector<int64_t>& ids, int64_t dim,
                 float g = 0.25f, const std::string& trainer = "", uint64_t sequence = 0) {
  v1::PushRequest r;
  r.set_table(table);
  for (int64_t id : ids) r.add_ids(id);
  std::vector<float> grads(ids.size() * dim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = g * static_cast<float>(1 + i % 5);
  r.set_grads(Floats(grads));
  r.set_trainer(trainer);
  r.set_sequence(sequence);
  return Call(kPush, r);
}

std::string Lookup(const std::string& table, const std::vector<int64_t>& ids,
                   v1::ValueType output = v1::FLOAT32) {
  v1::LookupRequest r;
  v1::LookupQuery* q = r.add_queries();
  q->set_table(table);
  for (int64_t id : ids) q->add_ids(id);
  q->set_output(output);
  return Call(kLookup, r);
}

std::string Pooled(const std::string& table, const std::vector<int64_t>& ids,
                   const std::vector<int64_t>& offsets, v1::PoolingMode mode,
                   const std::vector<float>& weights = {}) {
  v1::PooledRequest r;
  v1::PooledQuery* q = r.add_queries();
  q->set_table(table);
  for (int64_t id : ids) q->add_ids(id);
  for (int64_t o : offsets) q->add_offsets(o);
  q->set_mode(mode);
  for (float w : weights) q->add_per_sample_weights(w);
  return Call(kLookupPooled, r);
}

std::string Assign(const std::string& table, const std::vector<int64_t>& ids, int64_t dim,
                   float v = 0.5f) {
  v1::AssignRowsRequest r;
  r.set_table(table);
  for (int64_t id : ids) r.add_ids(id);
  std::vector<float> values(ids.size() * dim);
  for (size_t i = 0; i < values.size(); ++i) values[i] = v - 0.125f * static_cast<float>(i % 9);
  r.set_values(Floats(values));
  return Call(kAssign, r);
}

std::string State(const std::string& table, const std::vector<int64_t>& ids) {
  v1::OptimizerStateRequest r;
  r.set_table(table);
  for (int64_t id : ids) r.add_ids(id);
  return Call(kState, r);
}

std::string Named(Method m, const std::string& name) {
  if (m == kDescribe) {
    v1::DescribeTableRequest r;
    r.set_name(name);
    return Call(m, r);
  }
  v1::DropTableRequest r;
  r.set_name(name);
  return Call(m, r);
}

std::string CreateDynamic(const std::string& name, int64_t dim, int64_t max_rows, int64_t ttl,
                          int32_t admit, v1::OptimizerSpec::Kind kind, v1::ValueType type) {
  v1::CreateTableRequest r;
  v1::TableSpec* s = r.mutable_spec();
  s->set_name(name);
  s->set_embedding_dim(dim);
  s->set_dynamic(true);
  s->set_max_rows(max_rows);
  s->set_ttl_steps(ttl);
  s->set_admit_after(admit);
  s->mutable_optimizer()->set_kind(kind);
  s->set_row_type(type);
  s->mutable_initializer()->set_seed(9);
  return Call(kCreate, r);
}

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s REQUEST_CORPUS_DIR DURABLE_CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1], durable_dir = argv[2];
  struct Seed {
    const char* name;
    std::string bytes;
  };
  const std::vector<int64_t> six = {11, -12, 13, kMin, kMax, 16};
  std::vector<Seed> seeds = {
      {"lru_evict", Push("lru", six, 4) + Lookup("lru", six) + Named(kDescribe, "lru")},
      {"lru_expire", Push("lru", {1}, 4) + Push("lru", {2}, 4) + Push("lru", {3}, 4) +
                         Push("lru", {4}, 4) + Lookup("lru", {1, 2, 3, 4})},
      {"lru_padding", Push("lru", {7, 7, 8}, 4) + Lookup("lru", {7, 8}) + State("lru", {7, 8})},
      {"lru_dups", Push("lru", {5, 5, 5, 6, 5}, 4) + Lookup("lru", {5, 6})},
      {"admit_counts", Push("admit", {1, 1, 2}, 4) + Push("admit", {1, 2}, 4) +
                           Push("admit", {1, 2, 3}, 4) + Named(kDescribe, "admit") +
                           Lookup("admit", {1, 2, 3})},
      {"admit_pooled", Assign("admit", {1, 2, 3}, 4, 3.0f) +
                           Pooled("admit", {1, 2, 3, 4}, {0, 2}, v1::SUM, {1, 2, 3, 4}) +
                           Pooled("admit", {1, 2, 3, 4}, {0, 1, 3}, v1::MEAN) +
                           Pooled("admit", {4, 1}, {0}, v1::MAX)},
      {"admit_state", Push("admit", {9, 9, 9}, 4) + Push("admit", {9}, 4) + State("admit", {9, 10})},
      {"adam_int8", Assign("adam", {-1, 1 << 30}, 8) + Push("adam", {-1, 2}, 8, 4.0f) +
                        Lookup("adam", {-1, 2, 3}, v1::FLOAT16) + State("adam", {-1, 2, 3})},
      {"open_growth",
       [] {
         std::vector<int64_t> ids;
         for (int64_t i = 0; i < 600; ++i) ids.push_back(i * 0x9E3779B97F4A7C15LL);
         return Push("open", ids, 4) + Lookup("open", ids) + Named(kDescribe, "open");
       }()},
      {"open_trainer", Push("open", {1, 2}, 4, 0.5f, "t1", 1) + Push("open", {1, 2}, 4, 0.5f, "t1", 1) +
                           Push("open", {3}, 4, 0.5f, "t1", 2)},
      {"mixed_lookup",
       [] {
         v1::LookupRequest r;
         v1::LookupQuery* q = r.add_queries();
         q->set_table("dense");
         q->add_ids(1);
         q->add_ids(9);
         q = r.add_queries();
         q->set_table("lru");
         q->add_ids(kMin);
         q->add_ids(-1);
         q->add_shape(2);
         q->add_shape(1);
         q = r.add_queries();
         q->set_table("adam");
         q->add_ids(5);
         return Push("lru", {-1}, 4) + Call(kLookup, r);
       }()},
      {"bad_push_nan", Push("lru", {1, 2}, 4, std::numeric_limits<float>::quiet_NaN()) +
                           Lookup("lru", {1, 2})},
      {"bad_push_len",
       [] {
         v1::PushRequest r;
         r.set_table("admit");
         r.add_ids(1);
         r.add_ids(2);
         r.set_grads(Floats({1, 2, 3}));
         return Call(kPush, r);
       }()},
      {"update_lr",
       [] {
         v1::UpdateTableRequest r;
         r.set_name("admit");
         r.mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAGRAD);
         r.mutable_optimizer()->set_lr(0.1);
         v1::UpdateTableRequest bad;
         bad.set_name("lru");
         bad.mutable_optimizer()->set_kind(v1::OptimizerSpec::SPARSE_ADAM);
         return Call(kUpdate, r) + Push("admit", {1, 1, 1}, 4) + Call(kUpdate, bad);
       }()},
      {"freeze",
       [] {
         v1::UpdateTableRequest r;
         r.set_name("lru");
         r.set_frozen(true);
         return Call(kUpdate, r) + Push("lru", {1}, 4) + Assign("lru", {1}, 4);
       }()},
      {"recreate", Named(kDrop, "lru") +
                       CreateDynamic("lru", 2, 2, 1, 2, v1::OptimizerSpec::ROWWISE_ADAGRAD,
                                     v1::BFLOAT16) +
                       Push("lru", {1, 2, 3, 1, 2, 3}, 2) + Push("lru", {4}, 2) +
                       Lookup("lru", {1, 2, 3, 4}) + Call(kList, v1::ListTablesRequest())},
      {"create_bad", CreateDynamic("x", 4, -1, 0, 0, v1::OptimizerSpec::SGD, v1::FLOAT32) +
                         CreateDynamic("y", 4, 0, 0, 300, v1::OptimizerSpec::SGD, v1::FLOAT32) +
                         CreateDynamic("z", 4, 1, 1, 1, v1::OptimizerSpec::SPARSE_ADAM, v1::INT8_ROWWISE) +
                         Push("z", {1, 2}, 4) + Lookup("z", {1, 2})},
      {"assign_then_evict", Assign("lru", {1, 2, 3, 4}, 4) + Push("lru", {5, 6}, 4) +
                                Lookup("lru", {1, 2, 3, 4, 5, 6}) + State("lru", {1, 5})},
  };
  seeds.push_back({"restart_twice", Push("lru", {1, 2}, 4) + Pseudo(kRestart) +
                                        Push("lru", {3, 4, 5}, 4) + Pseudo(kSnapshot) +
                                        Push("admit", {1, 1}, 4) + Pseudo(kRestart) +
                                        Push("admit", {1}, 4) + Lookup("lru", {1, 2, 3, 4, 5})});
  seeds.push_back({"crash_then_push", Push("lru", {1, 2}, 4) + Push("admit", {1, 1}, 4) +
                                          Crash(3) + Push("admit", {1}, 4) + Push("lru", {3}, 4) +
                                          Pseudo(kRestart) + Lookup("lru", {1, 2, 3})});
  seeds.push_back({"crash_mid_frame", Push("open", {1, 2, 3}, 4) + Crash(40) +
                                          Pseudo(kSnapshot) + Push("open", {4}, 4) + Crash(9) +
                                          Lookup("open", {1, 2, 3, 4})});
  seeds.push_back({"crash_empty_segment", Pseudo(kSnapshot) + Crash(17) + Push("adam", {5}, 8) +
                                              Pseudo(kRestart)});
  seeds.push_back({"checkpoint_restore", Push("lru", {1, 2}, 4) + Push("admit", {3, 3}, 4) +
                                             Pseudo(kCheckpoint) + Push("lru", {4, 5, 6}, 4) +
                                             Push("admit", {3}, 4) + Pseudo(kRestore) +
                                             Push("admit", {3}, 4) + Pseudo(kRestart)});
  seeds.push_back({"restore_dropped", Assign("adam", {1, 2}, 8) + Pseudo(kCheckpoint) +
                                          Named(kDrop, "adam") + Named(kDrop, "lru") +
                                          CreateDynamic("lru", 2, 2, 1, 2, v1::OptimizerSpec::SGD,
                                                        v1::FLOAT32) +
                                          Pseudo(kRestore) + Push("adam", {1, 3}, 8) +
                                          Pseudo(kRestart)});
  seeds.push_back({"two_checkpoints", Push("open", {1}, 4) + Pseudo(kCheckpoint) +
                                          Push("open", {2}, 4) + Pseudo(kCheckpoint) +
                                          Pseudo(kSnapshot) +
                                          std::string{static_cast<char>(kRestore), 1, 0, 0} +
                                          Crash(5) + Push("open", {1, 2}, 4)});
  int written = 0;
  for (const Seed& s : seeds) {
    const std::string name = s.name;
    const std::vector<std::string> calls = Split(s.bytes);
    std::string mid = calls.empty() ? "" : calls[0] + Pseudo(kSnapshot) + Pseudo(kRestart);
    for (size_t i = 1; i < calls.size(); ++i) mid += calls[i];
    if (!Write(dir + "/" + name, s.bytes) || !Write(durable_dir + "/" + name, s.bytes) ||
        !Write(durable_dir + "/" + name + "_restart", s.bytes + Pseudo(kRestart)) ||
        !Write(durable_dir + "/" + name + "_snapshot_restart", mid)) {
      return 1;
    }
    written += 4;
  }
  std::printf("%d seeds written to %s and %s\n", written, dir.c_str(), durable_dir.c_str());
  return 0;
}
