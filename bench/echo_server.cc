// The transport's ceiling: an EmbeddingService whose Lookup parses the
// request and answers every query with prebuilt bytes of the right size
// (len(ids) * dim float32), and does nothing else. embedbench against it
// measures gRPC alone.
//
// It gets every transport advantage embedserve has, so that the ceiling is
// not a straw man: the same raw method and request parsing, the same malloc
// tuning, and answers whose values are a static slice of prebuilt bytes
// (not even copied, where embedserve's kernel writes its rows).
//
//   echo_server --address=127.0.0.1:0 --dim=64 --port_file=F
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "embedserve/v1/embedserve.grpc.pb.h"
#include "server/results_writer.h"
#include "server/startup.h"

ABSL_FLAG(std::string, address, "127.0.0.1:0", "listen address (loopback)");
ABSL_FLAG(int, dim, 64, "floats per row in the answers");
ABSL_FLAG(std::string, port_file, "", "write the bound port here");

namespace {

namespace v1 = embedserve::v1;

class EchoService final : public v1::EmbeddingService::WithRawCallbackMethod_Lookup<
                              v1::EmbeddingService::CallbackService> {
 public:
  explicit EchoService(int dim) : dim_(dim), bytes_(size_t{1} << 26, '\x01') {}

  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* req_bytes,
                                   grpc::ByteBuffer* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    grpc::ByteBuffer shared(*req_bytes);
    grpc::ProtoBufferReader reader(&shared);
    v1::LookupRequest req;
    if (!req.ParseFromZeroCopyStream(&reader)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request"));
      return reactor;
    }
    std::vector<grpc::Slice> slices;
    for (const auto& q : req.queries()) {
      const int64_t rows = q.ids_size();
      const size_t n = std::min(bytes_.size(), static_cast<size_t>(rows) * dim_ * 4);
      const std::string header =
          embedserve::ResultsWriter::Header({rows, int64_t{dim_}}, v1::FLOAT32, n);
      slices.emplace_back(header);
      slices.emplace_back(bytes_.data(), n, grpc::Slice::STATIC_SLICE);
    }
    *resp = grpc::ByteBuffer(slices.data(), slices.size());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const int dim_;
  const std::string bytes_;  // prebuilt answer bytes, referenced, never copied
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  embedserve::TuneMallocForServing();
  EchoService service(absl::GetFlag(FLAGS_dim));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_address), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxSendMessageSize(-1);
  builder.SetMaxReceiveMessageSize(-1);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  if (const std::string f = absl::GetFlag(FLAGS_port_file); !f.empty()) {
    std::ofstream(f + ".tmp") << port << "\n";
    std::rename((f + ".tmp").c_str(), f.c_str());
  }
  server->Wait();
}
