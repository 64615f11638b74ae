#ifndef EMBEDSERVE_FUZZ_DYNAMIC_FUZZ_COMMON_H_
#define EMBEDSERVE_FUZZ_DYNAMIC_FUZZ_COMMON_H_

// What dynamic_request_fuzz and dynamic_durable_fuzz share: their tables,
// their input format (a sequence of calls) and the properties checked after
// each call.
//
// Tables (Reset makes them, the same every time):
//   lru     dynamic, dim 4, SGD lr 0.5, max_rows 4, ttl_steps 3, padding id 7
//   admit   dynamic, dim 4, Adagrad, admit_after 3, max_rows 16, max_norm 1,
//           scale_grad_by_freq
//   adam    dynamic, dim 8, SparseAdam, int8 rows, unseen_zeros, max_rows 64
//   open    dynamic, dim 4, float16 rows, row-wise Adagrad, max_rows 4096
//           (room for the id index to grow through several rebuilds)
//   dense   10 x 4 float32, SGD (for lookups that mix both kinds)
// (A server with a table memory limit, 4 MiB here, takes dynamic tables
// only with max_rows.)
//
// Input: up to kMaxCalls calls, each [method byte][u16 length, little
// endian][that many bytes of serialized request]; a short last call takes
// what is left. The method byte picks, modulo the target's method count,
// one of kMethods (then the target's own pseudo-calls, if any).
//
// Properties after each call (CallChecker; a failure aborts with a line on
// stderr; EMBEDSERVE_FUZZ_VERBOSE=1 prints each call and its status):
//  - an answer that is OK parses as the method's response type;
//  - a call that fails changes nothing: the same tables, each with the
//    same version and rows stored ("bad input changes nothing");
//  - a lookup (plain or pooled, OK or not) never adds or removes a row of a
//    dynamic table (issue 15: "a lookup never grows the table");
//  - each dynamic table describes itself consistently: num_rows == rows
//    stored, at most max_rows when set, and rows stored == rows admitted -
//    evicted - expired.

#include <grpc/grpc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/embedding_table.h"
#include "core/table_registry.h"
#include "core/table_spec.h"
#include "embedserve/v1/embedserve.pb.h"
#include "server/embedding_service.h"

namespace embedserve::fuzz {

namespace v1 = embedserve::v1;

inline constexpr int kMaxCalls = 8;
// The registry's table memory limit.
inline constexpr int64_t kTableBytes = int64_t{4} << 20;

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "property failed: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline bool Verbose() {
  static const bool verbose = std::getenv("EMBEDSERVE_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

struct Method {
  const char* name;
  std::unique_ptr<google::protobuf::Message> (*response)();
  bool lookup;
};

template <typename T>
std::unique_ptr<google::protobuf::Message> MakeMessage() {
  return std::make_unique<T>();
}

inline const Method kMethods[] = {
    {"Lookup", MakeMessage<v1::LookupResponse>, true},
    {"LookupPooled", MakeMessage<v1::PooledResponse>, true},
    {"PushGradients", MakeMessage<v1::PushResponse>, false},
    {"AssignRows", MakeMessage<v1::AssignRowsResponse>, false},
    {"GetOptimizerState", MakeMessage<v1::OptimizerStateResponse>, false},
    {"UpdateTable", MakeMessage<v1::UpdateTableResponse>, false},
    {"DescribeTable", MakeMessage<v1::DescribeTableResponse>, false},
    {"CreateTable", MakeMessage<v1::CreateTableResponse>, false},
    {"DropTable", MakeMessage<v1::DropTableResponse>, false},
    {"ListTables", MakeMessage<v1::ListTablesResponse>, false},
};
inline constexpr int kNumMethods = sizeof(kMethods) / sizeof(kMethods[0]);

// One call of an input.
struct CallInput {
  uint8_t method;  // the raw byte
  absl::string_view request;
};

inline std::vector<CallInput> SplitCalls(const uint8_t* data, size_t size) {
  std::vector<CallInput> calls;
  size_t at = 0;
  while (static_cast<int>(calls.size()) < kMaxCalls && at < size) {
    const uint8_t method = data[at];
    size_t length = 0;
    if (at + 3 <= size) length = data[at + 1] | size_t{data[at + 2]} << 8;
    at = std::min(size, at + 3);
    length = std::min(length, size - at);
    calls.push_back({method, absl::string_view(reinterpret_cast<const char*>(data + at), length)});
    at += length;
  }
  return calls;
}

// The fixture's tables, in creation order.
inline std::vector<TableSpec> Tables() {
  auto dynamic = [](const char* name, int64_t dim, DynamicSpec d) {
    TableSpec spec;
    spec.name = name;
    spec.embedding_dim = dim;
    spec.initializer.seed = 3;
    spec.dynamic = d;
    return spec;
  };
  std::vector<TableSpec> specs;
  {
    TableSpec s = dynamic("lru", 4, DynamicSpec{.max_rows = 4, .ttl_steps = 3});
    s.optimizer.lr = 0.5;
    s.padding_idx = 7;
    specs.push_back(s);
  }
  {
    TableSpec s = dynamic("admit", 4, DynamicSpec{.max_rows = 16, .admit_after = 3});
    s.optimizer.kind = OptimizerKind::kAdagrad;
    s.max_norm = 1.0;
    s.scale_grad_by_freq = true;
    specs.push_back(s);
  }
  {
    TableSpec s = dynamic("adam", 8, DynamicSpec{.max_rows = 64, .unseen_zeros = true});
    s.optimizer.kind = OptimizerKind::kSparseAdam;
    s.row_type = RowType::kInt8Rowwise;
    specs.push_back(s);
  }
  {
    TableSpec s = dynamic("open", 4, DynamicSpec{.max_rows = 4096});
    s.optimizer.kind = OptimizerKind::kRowWiseAdagrad;
    s.row_type = RowType::kFloat16;
    specs.push_back(s);
  }
  {
    TableSpec s;
    s.name = "dense";
    s.num_embeddings = 10;
    s.embedding_dim = 4;
    s.initializer.seed = 1;
    specs.push_back(s);
  }
  return specs;
}

// Drops every table of `registry` and creates Tables().
inline void Reset(TableRegistry& registry) {
  for (const auto& table : registry.List()) {
    if (!registry.Drop(table->name()).ok()) Fail("cannot drop " + table->name());
  }
  for (const TableSpec& spec : Tables()) {
    const absl::Status st = registry.Create(spec).status();
    if (!st.ok()) Fail("cannot create " + spec.name + ": " + st.ToString());
  }
}

// Runs calls through a service and checks the properties above after each.
class CallChecker {
 public:
  // Starts from the tables `service` holds now.
  explicit CallChecker(EmbeddingServiceImpl& service) { before_ = Describe(service); }

  // Runs one call; returns what it answered (its bytes, or its status) for
  // a transcript.
  std::string Call(EmbeddingServiceImpl& service, const Method& method, absl::string_view request,
                   int index) {
    absl::StatusOr<std::string> answer = service.CallForTest(method.name, request);
    if (Verbose()) {
      std::fprintf(stderr, "call %d: %s (%zu bytes): %s\n", index, method.name, request.size(),
                   answer.ok() ? "OK" : answer.status().ToString().c_str());
    }
    if (answer.ok() && !method.response()->ParseFromString(*answer)) {
      Fail(std::string(method.name) + " answered bytes that do not parse");
    }
    std::map<std::string, Seen> after = Describe(service);
    const std::string what = std::string(method.name) + " (call " + std::to_string(index) + ")";
    if (!answer.ok() && after.size() != before_.size()) {
      Fail(what + " failed (" + answer.status().ToString() + ") but changed the tables");
    }
    for (const auto& [name, b] : before_) {
      const auto it = after.find(name);
      if (it == after.end()) {
        if (!answer.ok()) Fail(what + " failed but dropped " + name);
        continue;
      }
      const Seen& a = it->second;
      if (!answer.ok() && (a.version != b.version || a.rows != b.rows)) {
        Fail(what + " failed (" + answer.status().ToString() + ") but changed " + name +
             ": version " + std::to_string(b.version) + " -> " + std::to_string(a.version) +
             ", rows " + std::to_string(b.rows) + " -> " + std::to_string(a.rows));
      }
      if (method.lookup && b.dynamic && a.rows != b.rows) {
        Fail(what + " changed the rows stored of " + name + ": " + std::to_string(b.rows) +
             " -> " + std::to_string(a.rows));
      }
    }
    before_ = std::move(after);
    return answer.ok() ? *answer : answer.status().ToString();
  }

 private:
  // What a call may change, per table.
  struct Seen {
    int64_t version = 0;
    int64_t rows = 0;
    bool dynamic = false;
  };

  // Every table's version and rows, through ListTables (as a client sees
  // them); checks each dynamic table's description on the way.
  static std::map<std::string, Seen> Describe(EmbeddingServiceImpl& service) {
    absl::StatusOr<std::string> answer = service.CallForTest("ListTables", "");
    if (!answer.ok()) Fail("ListTables failed: " + answer.status().ToString());
    v1::ListTablesResponse list;
    if (!list.ParseFromString(*answer)) Fail("ListTables answer does not parse");
    std::map<std::string, Seen> seen;
    for (const v1::TableInfo& t : list.tables()) {
      Seen& s = seen[t.spec().name()];
      s.version = t.version();
      s.rows = t.num_rows();
      s.dynamic = t.spec().dynamic();
      if (!s.dynamic) continue;
      const v1::DynamicStats& d = t.dynamic();
      const std::string name = t.spec().name();
      if (t.num_rows() != d.rows_stored()) {
        Fail(name + ": num_rows " + std::to_string(t.num_rows()) + " != rows_stored " +
             std::to_string(d.rows_stored()));
      }
      if (d.rows_stored() < 0 ||
          (t.spec().max_rows() > 0 && d.rows_stored() > t.spec().max_rows())) {
        Fail(name + ": rows_stored " + std::to_string(d.rows_stored()) + " outside [0, max_rows " +
             std::to_string(t.spec().max_rows()) + "]");
      }
      if (d.rows_stored() != d.rows_admitted() - d.rows_evicted() - d.rows_expired()) {
        Fail(name + ": rows_stored " + std::to_string(d.rows_stored()) + " != admitted " +
             std::to_string(d.rows_admitted()) + " - evicted " + std::to_string(d.rows_evicted()) +
             " - expired " + std::to_string(d.rows_expired()));
      }
    }
    return seen;
  }

  std::map<std::string, Seen> before_;
};

// One table's contents as bytes to compare: its description without its
// version and byte counts (a restored table may size its id index
// differently), its ids (a dynamic table's, least recently updated first;
// a dense table's first 1024) with their rows as stored, and its optimizer
// state for those ids (GetOptimizerState's answer).
inline std::string TableImage(EmbeddingServiceImpl& service, EmbeddingTable& table) {
  v1::DescribeTableRequest describe;
  describe.set_name(table.name());
  absl::StatusOr<std::string> answer =
      service.CallForTest("DescribeTable", describe.SerializeAsString());
  if (!answer.ok()) Fail("DescribeTable failed: " + answer.status().ToString());
  v1::DescribeTableResponse described;
  if (!described.ParseFromString(*answer)) Fail("DescribeTable answer does not parse");
  v1::TableInfo& info = *described.mutable_table();
  info.clear_version();
  info.clear_bytes_used();
  info.clear_optimizer_state_bytes();
  info.mutable_dynamic()->clear_index_bytes();
  info.mutable_dynamic()->clear_sketch_bytes();
  info.mutable_dynamic()->clear_slot_meta_bytes();
  std::string image = info.SerializeAsString();
  std::vector<int64_t> ids;
  if (table.is_dynamic()) {
    ids = table.StoredIds();
  } else {
    for (int64_t i = 0; i < std::min<int64_t>(table.num_rows(), 1024); ++i) ids.push_back(i);
  }
  std::vector<float> rows(ids.size() * static_cast<size_t>(table.dim()));
  const absl::Status st =
      table.is_dynamic() ? table.ReadStoredRows(ids, absl::MakeSpan(rows))
                         : table.CopyRows(0, static_cast<int64_t>(ids.size()), rows.data());
  if (!st.ok()) Fail("cannot read the rows of " + table.name() + ": " + st.ToString());
  image.append(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int64_t));
  image.append(reinterpret_cast<const char*>(rows.data()), rows.size() * sizeof(float));
  v1::OptimizerStateRequest state;
  state.set_table(table.name());
  for (int64_t id : ids) state.add_ids(id);
  answer = service.CallForTest("GetOptimizerState", state.SerializeAsString());
  image += answer.ok() ? *answer : answer.status().ToString();
  return image;
}

// The state of every table of `registry`, as bytes to compare: ListTables'
// answer (versions included), then each table's TableImage.
inline std::string FinalState(EmbeddingServiceImpl& service, TableRegistry& registry) {
  absl::StatusOr<std::string> list = service.CallForTest("ListTables", "");
  if (!list.ok()) Fail("ListTables failed: " + list.status().ToString());
  std::string state = *list;
  for (const auto& table : registry.List()) {
    state += "\n" + table->name() + " " + TableImage(service, *table);
  }
  return state;
}

// Fails naming `what` and the first differing byte when a != b.
inline void ExpectSame(const std::string& a, const std::string& b, const std::string& what) {
  if (a == b) return;
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  Fail(what + " (first difference at byte " + std::to_string(i) + " of the transcript)");
}

}  // namespace embedserve::fuzz

#endif  // EMBEDSERVE_FUZZ_DYNAMIC_FUZZ_COMMON_H_
