// Dynamic tables (issue 15) through the service's parse-validate-run path
// (EmbeddingServiceImpl::CallForTest), a sequence of calls per input, so
// that admission counts, eviction by max_rows, expiry by ttl_steps and the
// id index's growth are reached (request_fuzz runs one call on fresh dense
// tables). Before each input the registry is reset to:
//   lru     dynamic, dim 4, SGD lr 0.5, max_rows 4, ttl_steps 3, padding id 7
//   admit   dynamic, dim 4, Adagrad, admit_after 3, max_rows 16, max_norm 1,
//           scale_grad_by_freq
//   adam    dynamic, dim 8, SparseAdam, int8 rows, unseen_zeros, max_rows 64
//   open    dynamic, dim 4, float16 rows, row-wise Adagrad, max_rows 4096
//           (room for the id index to grow through several rebuilds)
// (A server with a table memory limit, 4 MiB here, takes dynamic tables
// only with max_rows.)
//   dense   10 x 4 float32, SGD (for lookups that mix both kinds)
//
// Input: up to kMaxCalls calls, each [method byte][u16 length, little
// endian][that many bytes of serialized request]; a short last call takes
// what is left.
//
// EMBEDSERVE_FUZZ_VERBOSE=1 prints each call and its status.
//
// Properties (a failure aborts with a line on stderr):
//  - no crash, hang, leak or undefined behaviour (the fuzz build's
//    sanitizers);
//  - an answer that is OK parses as the method's response type;
//  - a call that fails changes nothing: the same tables, each with the
//    same version and rows stored ("bad input changes nothing");
//  - a lookup (plain or pooled, OK or not) never adds or removes a row of a
//    dynamic table (issue 15: "a lookup never grows the table");
//  - after every call each dynamic table describes itself consistently:
//    num_rows == rows stored, at most max_rows when set, and rows stored ==
//    rows admitted - evicted - expired;
//  - the input run twice (tables reset each time) answers the same bytes
//    and leaves the same ids, in the same eviction order, with the same
//    rows: nothing depends on timing, addresses or uninitialised memory.

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

namespace {

using embedserve::DynamicSpec;
using embedserve::OptimizerKind;
using embedserve::RowType;
using embedserve::TableSpec;
namespace v1 = embedserve::v1;

constexpr int kMaxCalls = 8;

struct Method {
  const char* name;
  std::unique_ptr<google::protobuf::Message> (*response)();
  bool lookup;
};

template <typename T>
std::unique_ptr<google::protobuf::Message> Make() {
  return std::make_unique<T>();
}

const Method kMethods[] = {
    {"Lookup", Make<v1::LookupResponse>, true},
    {"LookupPooled", Make<v1::PooledResponse>, true},
    {"PushGradients", Make<v1::PushResponse>, false},
    {"AssignRows", Make<v1::AssignRowsResponse>, false},
    {"GetOptimizerState", Make<v1::OptimizerStateResponse>, false},
    {"UpdateTable", Make<v1::UpdateTableResponse>, false},
    {"DescribeTable", Make<v1::DescribeTableResponse>, false},
    {"CreateTable", Make<v1::CreateTableResponse>, false},
    {"DropTable", Make<v1::DropTableResponse>, false},
    {"ListTables", Make<v1::ListTablesResponse>, false},
};
constexpr int kNumMethods = sizeof(kMethods) / sizeof(kMethods[0]);

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "dynamic_request_fuzz: property failed: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

TableSpec Dynamic(const char* name, int64_t dim, DynamicSpec d) {
  TableSpec spec;
  spec.name = name;
  spec.embedding_dim = dim;
  spec.initializer.seed = 3;
  spec.dynamic = d;
  return spec;
}

// What a call may change, per table.
struct Seen {
  int64_t version = 0;
  int64_t rows = 0;
  bool dynamic = false;
};

struct Fixture {
  Fixture() {
    grpc_init();
    registry = std::make_shared<embedserve::TableRegistry>(int64_t{4} << 20);
    service =
        std::make_unique<embedserve::EmbeddingServiceImpl>(registry, embedserve::RequestLimits{});
  }

  void Reset() {
    for (const auto& table : registry->List()) {
      if (!registry->Drop(table->name()).ok()) Fail("cannot drop " + table->name());
    }
    std::vector<TableSpec> specs;
    {
      TableSpec s = Dynamic("lru", 4, DynamicSpec{.max_rows = 4, .ttl_steps = 3});
      s.optimizer.lr = 0.5;
      s.padding_idx = 7;
      specs.push_back(s);
    }
    {
      TableSpec s = Dynamic("admit", 4, DynamicSpec{.max_rows = 16, .admit_after = 3});
      s.optimizer.kind = OptimizerKind::kAdagrad;
      s.max_norm = 1.0;
      s.scale_grad_by_freq = true;
      specs.push_back(s);
    }
    {
      TableSpec s = Dynamic("adam", 8, DynamicSpec{.max_rows = 64, .unseen_zeros = true});
      s.optimizer.kind = OptimizerKind::kSparseAdam;
      s.row_type = RowType::kInt8Rowwise;
      specs.push_back(s);
    }
    {
      TableSpec s = Dynamic("open", 4, DynamicSpec{.max_rows = 4096});
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
    for (const TableSpec& spec : specs) {
      const absl::Status st = registry->Create(spec).status();
      if (!st.ok()) Fail("cannot create " + spec.name + ": " + st.ToString());
    }
  }

  // Every table's version and rows, through ListTables (as a client sees
  // them); checks each dynamic table's description on the way.
  std::map<std::string, Seen> Tables() {
    absl::StatusOr<std::string> answer = service->CallForTest("ListTables", "");
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
      if (d.rows_stored() < 0 || (t.spec().max_rows() > 0 && d.rows_stored() > t.spec().max_rows())) {
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

  std::shared_ptr<embedserve::TableRegistry> registry;
  std::unique_ptr<embedserve::EmbeddingServiceImpl> service;
  // EMBEDSERVE_FUZZ_VERBOSE=1: each call and its status on stderr (to read
  // what an input does).
  const bool verbose = std::getenv("EMBEDSERVE_FUZZ_VERBOSE") != nullptr;
};

}  // namespace

namespace {

// Runs the input's calls on freshly reset tables, checking the properties
// after each; returns a transcript of what the calls answered and of the
// tables' final state (each dynamic table's ids, least recently updated
// first, and their rows as stored).
std::string Run(Fixture& fixture, const uint8_t* data, size_t size) {
  fixture.Reset();
  std::string transcript;
  std::map<std::string, Seen> before = fixture.Tables();
  size_t at = 0;
  for (int call = 0; call < kMaxCalls && at < size; ++call) {
    const Method& method = kMethods[data[at] % kNumMethods];
    size_t length = 0;
    if (at + 3 <= size) length = data[at + 1] | size_t{data[at + 2]} << 8;
    at = std::min(size, at + 3);
    length = std::min(length, size - at);
    const absl::string_view request(reinterpret_cast<const char*>(data + at), length);
    at += length;
    absl::StatusOr<std::string> answer = fixture.service->CallForTest(method.name, request);
    if (fixture.verbose) {
      std::fprintf(stderr, "call %d: %s (%zu bytes): %s\n", call, method.name, length,
                   answer.ok() ? "OK" : answer.status().ToString().c_str());
    }
    if (answer.ok() && !method.response()->ParseFromString(*answer)) {
      Fail(std::string(method.name) + " answered bytes that do not parse");
    }
    transcript += "\n#" + std::to_string(call) + " ";
    transcript += answer.ok() ? *answer : answer.status().ToString();
    std::map<std::string, Seen> after = fixture.Tables();
    const std::string what = std::string(method.name) + " (call " + std::to_string(call) + ")";
    if (!answer.ok() && after.size() != before.size()) {
      Fail(what + " failed (" + answer.status().ToString() + ") but changed the tables");
    }
    for (const auto& [name, b] : before) {
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
        Fail(what + " changed the rows stored of " + name + ": " + std::to_string(b.rows) + " -> " +
             std::to_string(a.rows));
      }
    }
    before = std::move(after);
  }
  for (const auto& table : fixture.registry->List()) {
    if (!table->is_dynamic()) continue;
    const std::vector<int64_t> ids = table->StoredIds();
    std::vector<float> rows(ids.size() * static_cast<size_t>(table->dim()));
    const absl::Status st = table->ReadStoredRows(ids, absl::MakeSpan(rows));
    if (!st.ok()) Fail("cannot read the rows of " + table->name() + ": " + st.ToString());
    transcript += "\n" + table->name() + " ";
    transcript.append(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int64_t));
    transcript.append(reinterpret_cast<const char*>(rows.data()), rows.size() * sizeof(float));
  }
  return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();  // lives as long as the process
  // The same calls on the same tables must answer the same bytes and leave
  // the same rows (replicas that apply the same updates stay identical).
  const std::string first = Run(*fixture, data, size);
  const std::string second = Run(*fixture, data, size);
  if (first != second) {
    size_t i = 0;
    while (i < first.size() && i < second.size() && first[i] == second[i]) ++i;
    Fail("the same input answered differently the second time (first difference at byte " +
         std::to_string(i) + " of the transcript)");
  }
  return 0;
}
