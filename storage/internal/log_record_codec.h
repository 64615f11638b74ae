#ifndef EMBEDSERVE_STORAGE_INTERNAL_LOG_RECORD_CODEC_H_
#define EMBEDSERVE_STORAGE_INTERNAL_LOG_RECORD_CODEC_H_

// The bytes of the update log (storage/FORMAT.md, "The update log"): the
// segment header, the record frame and the record payload. Pure functions,
// thread-safe; every length read from the bytes is checked against the bytes
// there are before anything is allocated or viewed.
//
// Segment header, 24 bytes:
//   "ESUPDLOG" | u32 format version (1) | u64 first position |
//   u32 masked CRC32C of the 20 bytes before it
// Frame (starts at a multiple of 8 in the file):
//   u32 payload length (a multiple of 8) | u32 masked CRC32C of the payload |
//   payload
// Payload, little-endian:
//   u64 position | u8 kind | u8 flags | u16 0 | u32 table length | table |
//   i64 generation | i64 version | i64 step | u32 trainer length | trainer |
//   u64 trainer sequence | u32 spec length | spec | u64 id count |
//   u64 float count | zeros to a multiple of 8 | ids (i64 each) |
//   floats (f32 each) | zeros to a multiple of 8
// `spec` is the metadata text of storage/internal/meta_codec.h (EncodeMeta of
// a StoredTable holding the spec) for kSettings and kCreate, empty for the
// other kinds; flags bit 0 says the spec's optimizer lr was unset, bit 1
// that its initializer generator was 0 ("current"): the text has no way to
// say either. So ids and floats lie aligned in the payload, and
// in the file whenever the frame does.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/table_spec.h"
#include "core/update_log.h"

namespace embedserve::internal {

inline constexpr size_t kSegmentHeaderBytes = 24;
inline constexpr size_t kFrameHeaderBytes = 8;
// The largest payload a frame holds (its length is a u32 multiple of 8).
inline constexpr uint64_t kMaxPayloadBytes = 0xFFFFFFF8u;
inline constexpr uint32_t kLogFormatVersion = 1;

std::string EncodeSegmentHeader(LogPosition first);
// The first position of a segment header. DataLoss naming what is wrong
// (too short, magic, version, checksum); callers add the file name.
absl::StatusOr<LogPosition> DecodeSegmentHeader(absl::string_view header);

// Replaces *frame by the frame of `record` at `position` (reusing its
// capacity). InvalidArgument, *frame unspecified, for a record that cannot
// be encoded: a kind outside UpdateRecord::Kind, a kSettings or kCreate
// record without a spec, a spec whose name holds '\n', a payload over
// kMaxPayloadBytes.
absl::Status EncodeFrame(LogPosition position, const UpdateRecord& record, std::string* frame);

struct FrameHeader {
  uint32_t payload_bytes = 0;
  uint32_t masked_crc = 0;
};
// REQUIRES: `bytes` holds kFrameHeaderBytes.
FrameHeader DecodeFrameHeader(const char* bytes);
bool PayloadCrcMatches(const FrameHeader& header, absl::string_view payload);

// A record decoded from a payload: `record` views the payload where its ids
// and floats lie aligned, else the copies held here. Not movable: `record`
// points into it.
struct DecodedRecord {
  DecodedRecord() = default;
  DecodedRecord(const DecodedRecord&) = delete;
  DecodedRecord& operator=(const DecodedRecord&) = delete;

  LogPosition position = 0;
  UpdateRecord record;
  TableSpec spec;  // record.spec points here when set
  std::vector<int64_t> ids_copy;
  std::vector<float> floats_copy;
};

// Decodes a payload whose CRC matched. DataLoss naming the field that is
// out of bounds or invalid (an unknown kind, a spec that does not decode,
// nonzero padding, bytes left over). `record` views `payload`: valid while
// `payload` is.
absl::Status DecodePayload(absl::string_view payload, DecodedRecord* out);

// What the first fields of a payload say, unchecked by any CRC: for the
// message about a corrupt frame ("if its header still decodes").
struct PayloadHead {
  LogPosition position = 0;
  std::string table;
};
std::optional<PayloadHead> PeekPayloadHead(absl::string_view payload);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_LOG_RECORD_CODEC_H_
