// Dynamic tables (issue 15) through the service's parse-validate-run path
// (EmbeddingServiceImpl::CallForTest), a sequence of calls per input, so
// that admission counts, eviction by max_rows, expiry by ttl_steps and the
// id index's growth are reached (request_fuzz runs one call on fresh dense
// tables). Tables, input format and the properties checked after each call:
// fuzz/dynamic_fuzz_common.h. Besides those:
//  - no crash, hang, leak or undefined behaviour (the fuzz build's
//    sanitizers);
//  - the input run twice (tables reset each time) answers the same bytes
//    and leaves the same ids, in the same eviction order, with the same
//    rows: nothing depends on timing, addresses or uninitialised memory.

#include <cstdint>
#include <memory>
#include <string>

#include "fuzz/dynamic_fuzz_common.h"

namespace {

namespace fz = embedserve::fuzz;

struct Fixture {
  Fixture() {
    grpc_init();
    registry = std::make_shared<embedserve::TableRegistry>(fz::kTableBytes);
    service =
        std::make_unique<embedserve::EmbeddingServiceImpl>(registry, embedserve::RequestLimits{});
  }
  std::shared_ptr<embedserve::TableRegistry> registry;
  std::unique_ptr<embedserve::EmbeddingServiceImpl> service;
};

// Runs the input's calls on freshly reset tables, checking the properties
// after each; returns a transcript of the answers and the final state.
std::string Run(Fixture& fixture, const uint8_t* data, size_t size) {
  fz::Reset(*fixture.registry);
  fz::CallChecker checker(*fixture.service);
  std::string transcript;
  int index = 0;
  for (const fz::CallInput& call : fz::SplitCalls(data, size)) {
    const fz::Method& method = fz::kMethods[call.method % fz::kNumMethods];
    transcript += "\n#" + std::to_string(index) + " ";
    transcript += checker.Call(*fixture.service, method, call.request, index);
    ++index;
  }
  return transcript + fz::FinalState(*fixture.service, *fixture.registry);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();  // lives as long as the process
  // The same calls on the same tables must answer the same bytes and leave
  // the same rows (replicas that apply the same updates stay identical).
  const std::string first = Run(*fixture, data, size);
  const std::string second = Run(*fixture, data, size);
  fz::ExpectSame(first, second, "the same input answered differently the second time");
  return 0;
}
