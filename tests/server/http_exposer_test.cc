#include "server/internal/http_exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A blocking client socket connected to 127.0.0.1:port, with a receive
// timeout so that no test can hang.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early (e.g. after a 431)
    done += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes (or 10 s pass).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string Exchange(int port, const std::string& request) {
  const int fd = Connect(port);
  SendAll(fd, request);
  std::string answer = ReadAll(fd);
  ::close(fd);
  return answer;
}

class HttpExposerTest : public ::testing::Test {
 protected:
  void Start(HttpExposer::Options options = {}) {
    auto exposer = HttpExposer::Start(
        "127.0.0.1:0",
        [this] {
          ++renders_;
          return std::string("demo_total 1\n");
        },
        options);
    ASSERT_TRUE(exposer.ok()) << exposer.status();
    exposer_ = *std::move(exposer);
    ASSERT_GT(exposer_->port(), 0);
  }
  int port() const { return exposer_->port(); }

  std::atomic<int> renders_{0};
  std::unique_ptr<HttpExposer> exposer_;
};

TEST_F(HttpExposerTest, GetMetricsAnswersTheDocument) {
  Start();
  const std::string answer = Exchange(port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: 13\r\n"));
  EXPECT_TRUE(absl::EndsWith(answer, "\r\n\r\ndemo_total 1\n")) << answer;
  // A query string is allowed (Prometheus may send params); HEAD has no body.
  EXPECT_THAT(Exchange(port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n"), StartsWith("HTTP/1.1 200"));
  const std::string head = Exchange(port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_TRUE(absl::EndsWith(head, "\r\n\r\n")) << head;
  EXPECT_EQ(renders_, 3);
}

TEST_F(HttpExposerTest, AnythingElseIsAnErrorAndTheServerStaysUp) {
  Start();
  EXPECT_THAT(Exchange(port(), "GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Exchange(port(), "GET /metricsX HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Exchange(port(), "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
              StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(Exchange(port(), "garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Exchange(port(), "GET /metrics SMTP/1.0\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Exchange(port(), "GET metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Exchange(port(), "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Exchange(port(), std::string("GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n", 33)),
              StartsWith("HTTP/1.1 400"));
  // A head that never ends: refused once it passes the bound.
  EXPECT_THAT(Exchange(port(), std::string(20000, 'A')), StartsWith("HTTP/1.1 431"));
  EXPECT_THAT(Exchange(port(), absl::StrCat("GET /metrics HTTP/1.1\r\nX: ", std::string(9000, 'b'),
                                            "\r\n\r\n")),
              StartsWith("HTTP/1.1 431"));
  // A client that connects and leaves, or sends half a request and leaves.
  ::close(Connect(port()));
  {
    const int fd = Connect(port());
    SendAll(fd, "GET /met");
    ::close(fd);
  }
  EXPECT_EQ(renders_, 0);
  EXPECT_THAT(Exchange(port(), "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200"));
}

TEST_F(HttpExposerTest, SlowClientsDoNotBlockOthers) {
  HttpExposer::Options options;
  options.io_timeout = absl::Seconds(60);  // longer than the client's 10 s recv timeout
  Start(options);
  // A client that sends a byte and goes silent, and one that trickles.
  const int silent = Connect(port());
  SendAll(silent, "G");
  const int trickle = Connect(port());
  SendAll(trickle, "GET /me");
  // Were the server waiting on either, this answer would not come before
  // the recv timeout and the exchange would read nothing.
  EXPECT_THAT(Exchange(port(), "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200"));
  SendAll(trickle, "trics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadAll(trickle), StartsWith("HTTP/1.1 200"));
  ::close(silent);
  ::close(trickle);
}

// 0 if the server closed the connection (EOF), -1 if recv timed out (10 s).
ssize_t RecvUntilClosed(int fd) {
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
  }
  return n;
}

TEST_F(HttpExposerTest, SilentClientsAreCutOffAtTheirDeadline) {
  HttpExposer::Options options;
  options.io_timeout = absl::Milliseconds(300);
  Start(options);
  const int silent = Connect(port());
  const int half = Connect(port());
  SendAll(half, "GET /metrics HTTP/1.1\r\n");
  EXPECT_EQ(RecvUntilClosed(silent), 0);
  EXPECT_EQ(RecvUntilClosed(half), 0);
  ::close(silent);
  ::close(half);
  EXPECT_EQ(renders_, 0);
}

TEST_F(HttpExposerTest, ConnectionsPastTheLimitWaitTheirTurn) {
  HttpExposer::Options options;
  options.max_connections = 2;
  options.io_timeout = absl::Milliseconds(300);
  Start(options);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect(port()));  // in the backlog past 2
  // Once the idle ones time out, a real request is served.
  EXPECT_THAT(Exchange(port(), "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200"));
  for (int fd : idle) ::close(fd);
}

TEST(HttpExposerStartTest, BadAddressesAreRefused) {
  auto render = [] { return std::string(); };
  EXPECT_EQ(HttpExposer::Start("no-port", render, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpExposer::Start("127.0.0.1:http", render, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpExposer::Start("127.0.0.1:70000", render, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = HttpExposer::Start("127.0.0.1:0", render, {});
  ASSERT_TRUE(first.ok());
  // The port is taken: Unavailable, not a second listener.
  EXPECT_EQ(
      HttpExposer::Start(absl::StrCat("127.0.0.1:", (*first)->port()), render, {}).status().code(),
      absl::StatusCode::kUnavailable);
  auto v6 = HttpExposer::Start("[::1]:0", render, {});
  if (v6.ok()) {  // hosts without IPv6 cannot bind ::1
    EXPECT_GT((*v6)->port(), 0);
  }
}

}  // namespace
}  // namespace embedserve::internal
