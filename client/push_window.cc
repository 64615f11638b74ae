#include "client/push_window.h"

#include <unistd.h>

#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace embedserve {

// One StreamGradients call. Written by the pushing thread, read by the
// reader thread; Finish (after the last Read) and the writes are kept apart
// by write_mu, since a sync stream takes no Write concurrent with Finish.
struct PushWindow::Stream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::PushRequest, v1::PushResponse>> rw;
  absl::Mutex write_mu;
  bool finished ABSL_GUARDED_BY(write_mu) = false;
  bool writes_done ABSL_GUARDED_BY(write_mu) = false;
};

std::string DefaultTrainerName() {
  char host[64] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    absl::SNPrintF(host, sizeof(host), "host");
  }
  std::string name;
  for (const char* c = host; *c != '\0'; ++c) {
    const bool ok = absl::ascii_isalnum(*c) || *c == '_' || *c == '.' || *c == ':' || *c == '-';
    name.push_back(ok ? *c : '_');
  }
  std::random_device random;
  const uint64_t r = (static_cast<uint64_t>(random()) << 32) ^ random();
  return absl::StrFormat("%s-%d-%012x", name, getpid(), r & 0xffffffffffffULL);
}

absl::StatusOr<std::unique_ptr<PushWindow>> PushWindow::Create(EmbeddingClient* client,
                                                               PushWindowOptions options) {
  if (options.window < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a push window holds at least one push, not ", options.window));
  }
  if (options.trainer.empty()) options.trainer = DefaultTrainerName();
  return std::unique_ptr<PushWindow>(new PushWindow(client, std::move(options)));
}

PushWindow::PushWindow(EmbeddingClient* client, PushWindowOptions options)
    : client_(client), window_(options.window), trainer_(std::move(options.trainer)) {}

PushWindow::~PushWindow() { Close().IgnoreError(); }

absl::Status PushWindow::TakeErrorLocked() {
  absl::Status s = std::move(error_);
  error_ = absl::OkStatus();
  return s;
}

void PushWindow::Answered(uint64_t sequence, const std::string& table, const absl::Status& s) {
  auto it = last_sent_.find(table);
  if (it != last_sent_.end() && --it->second.second == 0) last_sent_.erase(it);
  if (!s.ok() && error_.ok()) {
    error_ = absl::Status(s.code(), absl::StrCat("push ", sequence, " to table '", table,
                                                 "' failed: ", s.message()));
  }
}

absl::StatusOr<uint64_t> PushWindow::Push(absl::string_view table, absl::Span<const int64_t> ids,
                                          absl::Span<const float> grads) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::FailedPreconditionError("the push window is closed");
    RETURN_IF_ERROR(TakeErrorLocked());
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(pending_.size()) < window_ || !error_.ok();
    };
    mu_.Await(absl::Condition(&room));
    RETURN_IF_ERROR(TakeErrorLocked());
    sequence = next_sequence_++;
    pending_.emplace_back(sequence, std::string(table));
    auto& last = last_sent_[table];
    last.first = sequence;
    ++last.second;
  }
  if (stream_ != nullptr) {
    bool finished;
    {
      absl::MutexLock lock(&stream_->write_mu);
      finished = stream_->finished;
    }
    // The last stream broke (its pushes were reported): open another.
    if (finished) EndStream();
  }
  if (stream_ == nullptr) {
    stream_ = std::make_unique<Stream>();
    client_->PrepareContext(&stream_->ctx, /*deadline=*/false);
    stream_->rw = client_->stub()->StreamGradients(&stream_->ctx);
    reader_ = std::thread([this, stream = stream_.get()] { ReadAnswers(stream); });
  }
  v1::PushRequest request;
  request.set_table(std::string(table));
  request.mutable_ids()->Add(ids.begin(), ids.end());
  request.set_grads(reinterpret_cast<const char*>(grads.data()), grads.size() * sizeof(float));
  request.set_sequence(sequence);
  request.set_trainer(trainer_);
  absl::MutexLock lock(&stream_->write_mu);
  // A failed write means the stream is over: the reader reports this push
  // with the others still unanswered.
  if (!stream_->finished) stream_->rw->Write(request);
  return sequence;
}

void PushWindow::ReadAnswers(Stream* stream) {
  v1::PushResponse response;
  while (stream->rw->Read(&response)) {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) break;  // the server answered what was never sent
    auto [sequence, table] = std::move(pending_.front());
    pending_.pop_front();
    absl::Status s;
    if (response.sequence() != sequence) {
      s = absl::InternalError(absl::StrCat("the answer for push ", response.sequence(),
                                           " came when ", sequence, " was due"));
    } else if (response.code() != 0) {
      s = absl::Status(static_cast<absl::StatusCode>(response.code()), response.error());
    }
    Answered(sequence, table, s);
  }
  absl::Status end;
  {
    absl::MutexLock lock(&stream->write_mu);
    stream->finished = true;
    end = FromGrpcStatus(stream->rw->Finish());
  }
  absl::MutexLock lock(&mu_);
  if (end.ok()) end = absl::UnavailableError("the push stream ended with pushes unanswered");
  // Unanswered pushes are in an unknown state: the first is reported (a
  // resend with the same trainer and sequence would apply at most once).
  while (!pending_.empty()) {
    auto [sequence, table] = std::move(pending_.front());
    pending_.pop_front();
    Answered(sequence, table, end);
  }
}

void PushWindow::EndStream() {
  if (stream_ == nullptr) return;
  {
    absl::MutexLock lock(&stream_->write_mu);
    if (!stream_->finished && !stream_->writes_done) {
      stream_->writes_done = true;
      stream_->rw->WritesDone();
    }
  }
  reader_.join();
  stream_.reset();
}

uint64_t PushWindow::PendingSequence(absl::string_view table) const {
  absl::MutexLock lock(&mu_);
  auto it = last_sent_.find(table);
  return it == last_sent_.end() ? 0 : it->second.first;
}

int PushWindow::InFlight() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

absl::StatusOr<v1::LookupResponse> PushWindow::Lookup(v1::LookupRequest request) {
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(TakeErrorLocked());
    for (v1::LookupQuery& q : *request.mutable_queries()) {
      auto it = last_sent_.find(q.table());
      q.set_trainer(trainer_);
      if (it != last_sent_.end()) q.set_min_sequence(it->second.first);
    }
  }
  absl::StatusOr<v1::LookupResponse> response = client_->Lookup(request);
  if (!response.ok()) {
    // A push that failed says more than the lookup that waited for it.
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(TakeErrorLocked());
  }
  return response;
}

absl::Status PushWindow::Flush() {
  absl::MutexLock lock(&mu_);
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_.empty() || !error_.ok();
  };
  mu_.Await(absl::Condition(&settled));
  return TakeErrorLocked();
}

absl::Status PushWindow::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::OkStatus();
  }
  absl::Status s = Flush();
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  EndStream();
  return s;
}

}  // namespace embedserve
