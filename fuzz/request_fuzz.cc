// The service's parse-validate-run path in process, as the gRPC handlers run
// it (EmbeddingServiceImpl::CallForTest). Input: byte 0 picks the unary
// method (mod 10), the rest is the serialized request. Before each input
// the registry is reset to the same four small tables, so that every input
// replays alone:
//   f32      10 x 4  float32, SGD
//   i8       10 x 8  int8 row-wise rows, SGD
//   maxnorm  10 x 4  max_norm 1.0 (lookups renormalise in place)
//   adagrad  10 x 4  Adagrad, padding_idx 0
// Any call may fail with a Status; none may crash, hang or leak. A call that
// succeeds must answer with bytes that parse as its response type.

#include <grpc/grpc.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/table_registry.h"
#include "core/table_spec.h"
#include "embedserve/v1/embedserve.pb.h"
#include "server/embedding_service.h"

namespace {

using embedserve::OptimizerKind;
using embedserve::RowType;
using embedserve::TableSpec;

struct Method {
  const char* name;
  std::unique_ptr<google::protobuf::Message> (*response)();
};

template <typename T>
std::unique_ptr<google::protobuf::Message> Make() {
  return std::make_unique<T>();
}

namespace v1 = embedserve::v1;
const Method kMethods[] = {
    {"Lookup", Make<v1::LookupResponse>},
    {"LookupPooled", Make<v1::PooledResponse>},
    {"CreateTable", Make<v1::CreateTableResponse>},
    {"AssignRows", Make<v1::AssignRowsResponse>},
    {"PushGradients", Make<v1::PushResponse>},
    {"UpdateTable", Make<v1::UpdateTableResponse>},
    {"GetOptimizerState", Make<v1::OptimizerStateResponse>},
    {"DescribeTable", Make<v1::DescribeTableResponse>},
    {"DropTable", Make<v1::DropTableResponse>},
    {"ListTables", Make<v1::ListTablesResponse>},
};
constexpr int kNumMethods = sizeof(kMethods) / sizeof(kMethods[0]);

TableSpec Spec(const char* name, int64_t dim) {
  TableSpec spec;
  spec.name = name;
  spec.num_embeddings = 10;
  spec.embedding_dim = dim;
  spec.initializer.seed = 1;
  return spec;
}

struct Fixture {
  Fixture() {
    grpc_init();
    // 4 MiB for all tables: a CreateTable asking for more is
    // ResourceExhausted, as on a server with a memory limit (and the fuzzer
    // does not spend its time filling big tables).
    registry = std::make_shared<embedserve::TableRegistry>(int64_t{4} << 20);
    service =
        std::make_unique<embedserve::EmbeddingServiceImpl>(registry, embedserve::RequestLimits{});
  }

  void Reset() {
    for (const auto& table : registry->List()) {
      if (!registry->Drop(table->name()).ok()) std::abort();
    }
    std::vector<TableSpec> specs = {Spec("f32", 4), Spec("i8", 8), Spec("maxnorm", 4),
                                    Spec("adagrad", 4)};
    specs[1].row_type = RowType::kInt8Rowwise;
    specs[2].max_norm = 1.0;
    specs[3].optimizer.kind = OptimizerKind::kAdagrad;
    specs[3].padding_idx = 0;
    for (const TableSpec& spec : specs) {
      if (!registry->Create(spec).ok()) std::abort();
    }
  }

  std::shared_ptr<embedserve::TableRegistry> registry;
  std::unique_ptr<embedserve::EmbeddingServiceImpl> service;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();  // lives as long as the process
  if (size < 1) return 0;
  const Method& method = kMethods[data[0] % kNumMethods];
  fixture->Reset();
  absl::StatusOr<std::string> answer = fixture->service->CallForTest(
      method.name, absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  if (answer.ok() && !method.response()->ParseFromString(*answer)) std::abort();
  return 0;
}
