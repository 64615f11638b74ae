#ifndef EMBEDSERVE_TESTS_TESTING_EMBEDCTL_FIXTURE_H_
#define EMBEDSERVE_TESTS_TESTING_EMBEDCTL_FIXTURE_H_

// A real memory-only server on 127.0.0.1 (a 16 MiB table limit) for
// embedctl's tests: o_ points at it, dir_ is a temporary directory named
// after the test file. Shut down by TearDown.

#include <memory>
#include <string>

#include "client/internal/embedctl.h"
#include "core/table_registry.h"
#include "gtest/gtest.h"
#include "server/embedding_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::testing {

class EmbedctlServerTest : public ::testing::Test {
 protected:
  explicit EmbedctlServerTest(const std::string& dir_prefix) : dir_(dir_prefix) {}
  void SetUp() override {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(1 << 24));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    o_.address = server_->address();
    o_.timeout = 10;
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  TempDir dir_;
  std::unique_ptr<EmbeddingServer> server_;
  internal::EmbedctlOptions o_;
};

}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_EMBEDCTL_FIXTURE_H_
