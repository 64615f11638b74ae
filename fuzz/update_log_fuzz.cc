// The update log's read side on arbitrary bytes: DecodePayload, ScanSegment
// over a whole segment, and EmbeddingTable::Replay of what it yields (what a
// restart does with a data directory's log: storage/FORMAT.md, "The update
// log"). Frames need a CRC32C of their payload, which a fuzzer does not
// guess, so this target computes them: the input describes payloads, and the
// target frames them.
//
// Input: byte 0 is flags (bit 0: the segment is the last one, where a bad
// last frame may be a torn tail; bit 1: the dense table is a SparseAdam one,
// else SGD; bit 2: replay into the tables). Then payloads, each a u16
// (little-endian) length and that many bytes, zero-padded to a multiple of 8
// in its frame. Whatever is left when a length does not fit is appended to
// the file as it is (a torn or damaged tail). The segment header's first
// position is the first payload's own (its first 8 bytes), or 1.
//
// What must hold:
//  - a payload that decodes re-encodes (EncodeFrame) to a payload that
//    decodes and encodes to the same bytes again;
//  - a scan returns (OK or an error), never crashes, and reads to the end
//    unless it stops at a torn tail (and says why) or after its last
//    position; a scan of the segment as the last one that found no torn
//    tail gives the same answer as a scan of it as an earlier segment, and
//    one that found a torn tail means the earlier-segment scan fails (only
//    the last segment may be torn);
//  - replaying the records into a small dense table and a small dynamic one
//    (errors allowed: a record of another table's shape) and looking rows up
//    afterwards never crashes.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/embedding_table.h"
#include "core/table_spec.h"
#include "core/update_log.h"
#include "storage/internal/crc32c.h"
#include "storage/internal/log_record_codec.h"
#include "storage/internal/log_segment.h"

namespace {

using embedserve::EmbeddingTable;
using embedserve::LogPosition;
using embedserve::TableSpec;
using embedserve::UpdateRecord;
namespace internal = embedserve::internal;

// Aborts (a finding) naming the property that failed.
#define CHECK_HOLDS(cond)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "update_log_fuzz: %s does not hold\n", #cond); \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void Append32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }

// The frame's payload bytes (after its 8-byte header).
absl::string_view PayloadOf(const std::string& frame) {
  return absl::string_view(frame).substr(internal::kFrameHeaderBytes);
}

void CheckRoundTrip(absl::string_view payload) {
  internal::DecodedRecord decoded;
  if (!internal::DecodePayload(payload, &decoded).ok()) return;
  std::string frame;
  CHECK_HOLDS(internal::EncodeFrame(decoded.position, decoded.record, &frame).ok());
  internal::DecodedRecord again;
  CHECK_HOLDS(internal::DecodePayload(PayloadOf(frame), &again).ok());
  CHECK_HOLDS(again.position == decoded.position);
  std::string frame2;
  CHECK_HOLDS(internal::EncodeFrame(again.position, again.record, &frame2).ok());
  CHECK_HOLDS(frame2 == frame);
}

std::unique_ptr<EmbeddingTable> MakeTable(bool dynamic, bool adam) {
  TableSpec spec;
  spec.name = "t";
  spec.embedding_dim = 4;
  spec.initializer.seed = 7;
  if (dynamic) {
    spec.dynamic.emplace();
    spec.dynamic->max_rows = 8;
    spec.dynamic->ttl_steps = 5;
    spec.padding_idx = -3;
    spec.optimizer.kind = embedserve::OptimizerKind::kAdagrad;
  } else {
    spec.num_embeddings = 16;
    spec.padding_idx = 2;
    spec.max_norm = 1.0;
    spec.optimizer.kind =
        adam ? embedserve::OptimizerKind::kSparseAdam : embedserve::OptimizerKind::kSgd;
  }
  absl::StatusOr<std::unique_ptr<EmbeddingTable>> t = EmbeddingTable::Create(spec);
  CHECK_HOLDS(t.ok());
  return std::move(*t);
}

// Looks up every id a replayed record named (and a few fixed ones): the
// rows after any replay must read.
void LookUp(EmbeddingTable& table, const std::vector<int64_t>& ids) {
  std::vector<float> out(ids.size() * 4);
  (void)table.Lookup(ids, absl::MakeSpan(out));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* in = reinterpret_cast<const char*>(data);
  const uint8_t flags = data[0];
  size_t at = 1;
  std::vector<absl::string_view> payloads;
  while (size - at >= 2) {
    const size_t n = static_cast<size_t>(data[at]) | static_cast<size_t>(data[at + 1]) << 8;
    if (size - at - 2 < n) break;
    payloads.emplace_back(in + at + 2, n);
    at += 2 + n;
  }
  const absl::string_view tail(in + at, size - at);

  LogPosition first = 1;
  if (!payloads.empty() && payloads[0].size() >= 8) first = Load64(payloads[0].data());
  if (first == 0) first = 1;
  std::string file = internal::EncodeSegmentHeader(first);
  for (const absl::string_view p : payloads) {
    CheckRoundTrip(p);
    std::string padded(p);
    padded.resize((padded.size() + 7) / 8 * 8, '\0');
    Append32(&file, static_cast<uint32_t>(padded.size()));
    Append32(&file, internal::MaskCrc32c(internal::Crc32c(padded)));
    file += padded;
  }
  file.append(tail.data(), tail.size());

  const int fd = ::memfd_create("update_log_fuzz", MFD_CLOEXEC);
  CHECK_HOLDS(fd >= 0);
  CHECK_HOLDS(::write(fd, file.data(), file.size()) == static_cast<ssize_t>(file.size()));

  std::unique_ptr<EmbeddingTable> dense, dynamic;
  std::vector<int64_t> named = {0, 2, 15, -3, 1};
  std::function<absl::Status(LogPosition, const UpdateRecord&)> visit =
      [&](LogPosition position, const UpdateRecord& r) {
        for (size_t i = 0; i < r.ids.size() && named.size() < 64; ++i) named.push_back(r.ids[i]);
        (void)dense->Replay(position, r);
        (void)dynamic->Replay(position, r);
        return absl::OkStatus();
      };
  internal::ScanOptions o;
  o.path = "fuzz";
  o.end = static_cast<int64_t>(file.size());
  o.last_segment = (flags & 1) != 0;
  if ((flags & 4) != 0) {
    dense = MakeTable(false, (flags & 2) != 0);
    dynamic = MakeTable(true, false);
    o.visit = &visit;
  }
  const absl::StatusOr<internal::SegmentScan> scan = internal::ScanSegment(fd, o);
  if (scan.ok()) {
    CHECK_HOLDS(scan->good_bytes <= o.end);
    // Read to the end, or stopped at a torn tail that says why, or after
    // `through` (the largest position: a header that starts at 2^64 - 1).
    if (!scan->torn.empty()) CHECK_HOLDS(scan->good_bytes < o.end);
    if (scan->torn.empty()) CHECK_HOLDS(scan->good_bytes == o.end || scan->next == o.through + 1);
  }
  if (dense != nullptr) {
    LookUp(*dense, named);
    LookUp(*dynamic, named);
  }
  if (o.last_segment && scan.ok()) {
    // The same bytes as an earlier segment: torn is not allowed there.
    internal::ScanOptions earlier = o;
    earlier.last_segment = false;
    earlier.visit = nullptr;
    const absl::StatusOr<internal::SegmentScan> again = internal::ScanSegment(fd, earlier);
    if (scan->torn.empty()) {
      CHECK_HOLDS(again.ok() && again->next == scan->next);
    } else {
      CHECK_HOLDS(!again.ok());
    }
  }
  ::close(fd);
  return 0;
}
