#ifndef EMBEDSERVE_SERVER_INTERNAL_HTTP_EXPOSER_H_
#define EMBEDSERVE_SERVER_INTERNAL_HTTP_EXPOSER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace embedserve::internal {

// A minimal HTTP/1.1 server for one document: GET (or HEAD) /metrics
// answers 200 with what `render` returns; any other path is 404, any other
// method 405, a request line or header that is not HTTP is 400, a request
// head over max_request_bytes is 431. Every answer closes the connection.
// It reads nothing but the request head (a body is never read).
//
// One thread polls the listening socket and every connection, all
// non-blocking, so a slow or silent client holds only its own connection,
// and only until its deadline (io_timeout from its accept); at most
// max_connections are open at once (more wait in the kernel's backlog).
// `render` runs on that thread, one request at a time.
//
// Thread-safe to destroy from any thread but the serving one; destroying it
// stops serving and joins the thread.
class HttpExposer {
 public:
  struct Options {
    size_t max_request_bytes = 8192;
    absl::Duration io_timeout = absl::Seconds(10);  // read the request and write the answer
    int max_connections = 32;
  };

  // Binds `address` (host:port; IPv6 hosts in brackets; port 0 picks a free
  // one) and starts serving. InvalidArgument for a malformed address,
  // Unavailable if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpExposer>> Start(absl::string_view address,
                                                            std::function<std::string()> render,
                                                            const Options& options);
  ~HttpExposer();

  // The bound port.
  int port() const { return port_; }

 private:
  struct Connection;
  HttpExposer() = default;
  void Serve();
  // Reads what the peer sent; sets the answer once the head is complete (or
  // cannot be). False: close now.
  bool OnReadable(Connection& c);
  // Writes what it can of the answer. False: close now (done or failed).
  bool OnWritable(Connection& c);
  std::string Answer(absl::string_view head);

  std::function<std::string()> render_;
  Options options_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the destructor wakes the loop
  int port_ = 0;
  std::thread thread_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_SERVER_INTERNAL_HTTP_EXPOSER_H_
