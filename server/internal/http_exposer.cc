#include "server/internal/http_exposer.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/metrics.h"

namespace embedserve::internal {
namespace {

// After the answer is sent, what the peer still sends is read and dropped
// for at most this long (and this much) before the socket is closed: closing
// with unread bytes would reset the connection and could destroy the answer
// in the peer's receive buffer.
constexpr absl::Duration kLinger = absl::Seconds(1);
constexpr size_t kLingerBytes = 64 << 10;

std::string Response(int code, absl::string_view reason, absl::string_view content_type,
                     absl::string_view body, bool head_only, absl::string_view extra = "") {
  std::string out =
      absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                   "\r\nContent-Length: ", body.size(), "\r\n", extra, "Connection: close\r\n\r\n");
  if (!head_only) out.append(body.data(), body.size());
  return out;
}

std::string Error(int code, absl::string_view reason, absl::string_view extra = "") {
  return Response(code, reason, "text/plain; charset=utf-8", absl::StrCat(reason, "\n"),
                  /*head_only=*/false, extra);
}

// A request method or header name: RFC 9110 token characters.
bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::strchr("!#$%&'*+-.^_`|~", c) == nullptr) {
      return false;
    }
  }
  return true;
}

bool IsVisible(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return !s.empty();
}

void CloseFd(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

struct HttpExposer::Connection {
  enum class State { kReading, kWriting, kLingering };
  int fd = -1;
  State state = State::kReading;
  std::string in;
  std::string out;
  size_t written = 0;
  size_t dropped = 0;  // bytes read and dropped while lingering
  absl::Time deadline;
};

absl::StatusOr<std::unique_ptr<HttpExposer>> HttpExposer::Start(absl::string_view address,
                                                                std::function<std::string()> render,
                                                                const Options& options) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' is not host:port"));
  }
  std::string host(address.substr(0, colon));
  const std::string port(address.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port_number = -1;
  if (port.empty() || port.size() > 5 || !absl::SimpleAtoi(port, &port_number) || port_number < 0 ||
      port_number > 65535 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': the port must be a number 0-65535"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int err =
          getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      err != 0) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "': ", gai_strerror(err)));
  }
  std::unique_ptr<HttpExposer> exposer(new HttpExposer());
  std::string last_error = "no address";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
      last_error = strerror(errno);
      ::close(fd);
      continue;
    }
    exposer->listen_fd_ = fd;
    break;
  }
  freeaddrinfo(found);
  if (exposer->listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", last_error));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(exposer->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return absl::UnavailableError(absl::StrCat("getsockname: ", strerror(errno)));
  }
  exposer->port_ =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  exposer->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (exposer->wake_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("eventfd: ", strerror(errno)));
  }
  exposer->render_ = std::move(render);
  exposer->options_ = options;
  exposer->options_.max_connections = std::max(1, options.max_connections);
  HttpExposer* self = exposer.get();
  exposer->thread_ = std::thread([self] { self->Serve(); });
  return exposer;
}

HttpExposer::~HttpExposer() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  CloseFd(listen_fd_);
  CloseFd(wake_fd_);
}

void HttpExposer::Serve() {
  std::vector<std::unique_ptr<Connection>> conns;
  absl::Time accept_paused_until = absl::InfinitePast();
  std::vector<pollfd> fds;
  for (;;) {
    const absl::Time now = absl::Now();
    const bool accepting =
        static_cast<int>(conns.size()) < options_.max_connections && now >= accept_paused_until;
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});  // -1: ignored by poll
    absl::Time wake_at = accepting ? absl::InfiniteFuture() : accept_paused_until;
    if (static_cast<int>(conns.size()) >= options_.max_connections) {
      wake_at = absl::InfiniteFuture();  // a connection closing wakes the loop
    }
    for (const auto& c : conns) {
      fds.push_back({c->fd,
                     static_cast<short>(c->state == Connection::State::kWriting ? POLLOUT : POLLIN),
                     0});
      wake_at = std::min(wake_at, c->deadline);
    }
    int timeout_ms = -1;
    if (wake_at != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(
          std::clamp<int64_t>(absl::ToInt64Milliseconds(wake_at - now) + 1, 0, 60'000));
    }
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) break;  // cannot happen with valid fds; stop serving
    if (fds[0].revents != 0) break;          // the destructor asks us to stop
    if (fds[1].revents != 0) {
      while (static_cast<int>(conns.size()) < options_.max_connections) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // Out of descriptors or memory: the pending connection stays in
            // the backlog; try again shortly rather than spin.
            accept_paused_until = absl::Now() + absl::Milliseconds(100);
          }
          if (errno == ECONNABORTED || errno == EINTR) continue;
          break;
        }
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        c->deadline = absl::Now() + options_.io_timeout;
        conns.push_back(std::move(c));
      }
    }
    // fds[2 + i] belongs to conns[i] (new connections were appended after).
    const absl::Time after = absl::Now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = *conns[i];
      bool keep = true;
      const short revents = i + 2 < fds.size() ? fds[i + 2].revents : 0;
      if (revents != 0) {
        keep = c.state == Connection::State::kWriting ? OnWritable(c) : OnReadable(c);
      }
      if (keep && after >= c.deadline) keep = false;
      if (!keep) {
        ::close(c.fd);
        c.fd = -1;
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->fd < 0; }),
                conns.end());
  }
  for (const auto& c : conns) ::close(c->fd);
}

bool HttpExposer::OnReadable(Connection& c) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;  // the peer closed (before a complete head, or while lingering)
    if (c.state == Connection::State::kLingering) {
      c.dropped += static_cast<size_t>(n);
      if (c.dropped > kLingerBytes) return false;
      continue;
    }
    c.in.append(buf, static_cast<size_t>(n));
    // The head ends with an empty line (CRLF CRLF; a bare LF is accepted).
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) end = c.in.find("\n\n");
    if (end != std::string::npos && end <= options_.max_request_bytes) {
      c.out = Answer(absl::string_view(c.in).substr(0, end));
    } else if (c.in.size() > options_.max_request_bytes) {
      c.out = Error(431, "Request Header Fields Too Large");
    } else {
      continue;
    }
    c.in.clear();
    c.in.shrink_to_fit();
    c.state = Connection::State::kWriting;
    return OnWritable(c);
  }
}

bool HttpExposer::OnWritable(Connection& c) {
  while (c.written < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    c.written += static_cast<size_t>(n);
  }
  // Sent: tell the peer we are done, then drop what it still sends until it
  // closes (or the linger ends).
  ::shutdown(c.fd, SHUT_WR);
  c.state = Connection::State::kLingering;
  c.out.clear();
  c.out.shrink_to_fit();
  c.deadline = std::min(c.deadline, absl::Now() + kLinger);
  return true;
}

std::string HttpExposer::Answer(absl::string_view head) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, '\n');
  for (absl::string_view& line : lines) line = absl::StripSuffix(line, "\r");
  const std::vector<absl::string_view> request = absl::StrSplit(lines[0], ' ');
  if (request.size() != 3 || !IsToken(request[0]) || !IsVisible(request[1]) ||
      request[1][0] != '/' || (request[2] != "HTTP/1.1" && request[2] != "HTTP/1.0")) {
    return Error(400, "Bad Request");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos || !IsToken(lines[i].substr(0, colon))) {
      return Error(400, "Bad Request");
    }
    for (char ch : lines[i]) {
      if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f) {
        return Error(400, "Bad Request");
      }
    }
  }
  const absl::string_view method = request[0];
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return Error(405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
  }
  const absl::string_view target = request[1];
  const absl::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") return Error(404, "Not Found");
  return Response(200, "OK", kMetricsContentType, render_(), head_only);
}

}  // namespace embedserve::internal
