#ifndef EMBEDSERVE_CLIENT_PUSH_WINDOW_H_
#define EMBEDSERVE_CLIENT_PUSH_WINDOW_H_

// PushWindow: a trainer's gradient pushes sent without waiting for their
// answers (issue 14, item 7), the C++ twin of the Python client's
// embedserve_client.push_window.
//
// Pushes go over one StreamGradients stream (the server applies them in the
// order sent), each with this window's trainer name and an increasing
// sequence number (PushRequest.trainer: applied at most once). Push()
// returns once the push is written; at most `window` pushes are unanswered
// (the next Push waits for the oldest answer). Lookup() fills each query's
// trainer and min_sequence for tables with pushes in flight, so the server
// answers only after applying them: read-your-writes without waiting for
// the answers here.
//
// Errors: a push the server refused, or a stream that broke, is returned by
// the next Push, Lookup, Flush or Close (once), with the table and the
// sequence number in the message and the server's code.
//
// Thread-safety: one thread pushes at a time (the sequence numbers are one
// trainer's order; two threads use two windows); PendingSequence and
// Lookup may be called from any thread. The client must outlive the window.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "client/embedding_client.h"

namespace embedserve {

struct PushWindowOptions {
  // Unanswered pushes at most; >= 1.
  int window = 4;
  // The name sent with every push ([A-Za-z0-9_.:-], 1 to 128 characters).
  // Empty: host-pid-random (DefaultTrainerName).
  std::string trainer;
};

// A name unique to this process and call: "<host>-<pid>-<12 hex digits>".
std::string DefaultTrainerName();

class PushWindow {
 public:
  // InvalidArgument if options.window < 1. The stream opens on the first
  // Push.
  static absl::StatusOr<std::unique_ptr<PushWindow>> Create(EmbeddingClient* client,
                                                            PushWindowOptions options = {});
  // Close(), its error dropped.
  ~PushWindow();

  PushWindow(const PushWindow&) = delete;
  PushWindow& operator=(const PushWindow&) = delete;

  const std::string& trainer() const { return trainer_; }

  // Sends one push (len(ids) * dim floats of gradient) and returns its
  // sequence number without waiting for the answer. First returns an
  // earlier push's error, if one is in (this push is then not sent).
  // FailedPrecondition after Close.
  absl::StatusOr<uint64_t> Push(absl::string_view table, absl::Span<const int64_t> ids,
                                absl::Span<const float> grads);

  // The sequence a lookup of `table` must wait for: the last push sent to
  // it if one is unanswered, else 0.
  uint64_t PendingSequence(absl::string_view table) const;

  // EmbeddingClient::Lookup with read-your-writes: every query of a table
  // with pushes in flight gets this trainer and min_sequence. An earlier
  // push's error is returned first.
  absl::StatusOr<v1::LookupResponse> Lookup(v1::LookupRequest request);

  // Waits until every push sent is answered; the first error not returned
  // yet, else OK.
  absl::Status Flush();

  // Flush, then ends the stream. Idempotent.
  absl::Status Close();

  // Pushes sent and not answered yet.
  int InFlight() const;

 private:
  struct Stream;
  PushWindow(EmbeddingClient* client, PushWindowOptions options);
  absl::Status TakeErrorLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Answered(uint64_t sequence, const std::string& table, const absl::Status& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReadAnswers(Stream* stream);
  void EndStream();

  EmbeddingClient* const client_;
  const int window_;
  const std::string trainer_;

  mutable absl::Mutex mu_;
  std::deque<std::pair<uint64_t, std::string>> pending_ ABSL_GUARDED_BY(mu_);
  // table -> (last sequence sent, unanswered pushes to it).
  absl::flat_hash_map<std::string, std::pair<uint64_t, int>> last_sent_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // The open stream (written by the pushing thread, read by reader_), or
  // null; replaced after it breaks.
  std::unique_ptr<Stream> stream_;
  std::thread reader_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CLIENT_PUSH_WINDOW_H_
