// The transport's ceiling: an EmbeddingService whose Lookup answers every
// query with prebuilt bytes of the right size (len(ids) * dim floats) and
// does nothing else. embedbench against it measures gRPC alone.
//
//   echo_server --address=127.0.0.1:0 --dim=64 --port_file=F
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "embedserve/v1/embedserve.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:0", "listen address (loopback)");
ABSL_FLAG(int, dim, 64, "floats per row in the answers");
ABSL_FLAG(std::string, port_file, "", "write the bound port here");

namespace {

class EchoService final : public embedserve::v1::EmbeddingService::CallbackService {
 public:
  explicit EchoService(int dim) : dim_(dim), bytes_(size_t{1} << 26, '\x01') {}

  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
                                   const embedserve::v1::LookupRequest* req,
                                   embedserve::v1::LookupResponse* resp) override {
    for (const auto& q : req->queries()) {
      auto* r = resp->add_results();
      r->add_shape(q.ids_size());
      r->add_shape(dim_);
      r->set_values(bytes_.data(), std::min(bytes_.size(), size_t(q.ids_size()) * dim_ * 4));
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const int dim_;
  const std::string bytes_;  // prebuilt answer bytes
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
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
