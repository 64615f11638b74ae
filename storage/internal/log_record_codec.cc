#include "storage/internal/log_record_codec.h"

#include <bit>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/row_store.h"
#include "storage/internal/crc32c.h"
#include "storage/internal/meta_codec.h"

namespace embedserve::internal {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the update log's codec copies little-endian fields as they are in memory");

constexpr absl::string_view kMagic = "ESUPDLOG";
constexpr uint8_t kFlagLrUnset = 1;
constexpr uint8_t kFlagGeneratorUnset = 2;  // the text reads a missing generator as 1

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
void PutString(std::string* out, absl::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}
void PadTo8(std::string* out, size_t base) {
  out->append((8 - (out->size() - base) % 8) % 8, '\0');
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

bool KnownKind(uint8_t k) {
  return k >= static_cast<uint8_t>(UpdateRecord::Kind::kPush) &&
         k <= static_cast<uint8_t>(UpdateRecord::Kind::kRenorm);
}
bool HasSpec(UpdateRecord::Kind k) {
  return k == UpdateRecord::Kind::kSettings || k == UpdateRecord::Kind::kCreate;
}

// Sequential, bounds-checked reads from a payload; the first failure sticks
// and names the field.
class PayloadReader {
 public:
  explicit PayloadReader(absl::string_view p) : p_(p) {}
  template <typename T>
  T Read(absl::string_view field) {
    if (!Have(sizeof(T), field)) return T{};
    T v = Get<T>(p_.data() + at_);
    at_ += sizeof(T);
    return v;
  }
  absl::string_view Bytes(uint64_t n, absl::string_view field) {
    if (!Have(n, field)) return {};
    absl::string_view s = p_.substr(at_, n);
    at_ += n;
    return s;
  }
  absl::string_view String(absl::string_view field) {
    const uint32_t n = Read<uint32_t>(field);
    return Bytes(n, field);
  }
  // Skips zeros up to the next multiple of 8.
  void Pad(absl::string_view field) {
    const size_t n = (8 - at_ % 8) % 8;
    absl::string_view z = Bytes(n, field);
    for (char c : z) {
      if (c != 0 && error_.empty()) error_ = absl::StrCat(field, " padding is not zero");
    }
  }
  size_t left() const { return p_.size() - at_; }
  const std::string& error() const { return error_; }

 private:
  bool Have(uint64_t n, absl::string_view field) {
    if (!error_.empty()) return false;
    if (n > left()) {
      error_ = absl::StrCat(field, " (", n, " bytes at payload offset ", at_,
                            ") runs past the end of the ", p_.size(), "-byte payload");
      return false;
    }
    return true;
  }

  absl::string_view p_;
  size_t at_ = 0;
  std::string error_;
};

// An array of `count` T at `bytes` as a span: in place when aligned, else
// copied into *copy.
template <typename T>
absl::Span<const T> View(absl::string_view bytes, uint64_t count, std::vector<T>* copy) {
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(T) == 0) {
    return absl::Span<const T>(reinterpret_cast<const T*>(bytes.data()), count);
  }
  copy->resize(count);
  // (memcpy of nothing to an empty vector's null data() is undefined.)
  if (count > 0) std::memcpy(copy->data(), bytes.data(), count * sizeof(T));
  return absl::Span<const T>(*copy);
}

}  // namespace

std::string EncodeSegmentHeader(LogPosition first) {
  std::string h(kMagic);
  Put<uint32_t>(&h, kLogFormatVersion);
  Put<uint64_t>(&h, first);
  Put<uint32_t>(&h, MaskCrc32c(Crc32c(h)));
  return h;
}

absl::StatusOr<LogPosition> DecodeSegmentHeader(absl::string_view h) {
  if (h.size() < kSegmentHeaderBytes) {
    return absl::DataLossError(absl::StrCat("segment header is ", h.size(), " bytes, not ",
                                            kSegmentHeaderBytes));
  }
  if (h.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("segment header has the wrong magic (not an update log segment)");
  }
  if (UnmaskCrc32c(Get<uint32_t>(h.data() + 20)) != Crc32c(h.substr(0, 20))) {
    return absl::DataLossError("segment header fails its checksum");
  }
  const uint32_t version = Get<uint32_t>(h.data() + 8);
  if (version != kLogFormatVersion) {
    return absl::DataLossError(absl::StrCat("segment format version ", version, " is not ",
                                            kLogFormatVersion));
  }
  const LogPosition first = Get<uint64_t>(h.data() + 12);
  if (first == 0) return absl::DataLossError("segment header gives first position 0");
  return first;
}

absl::Status EncodeFrame(LogPosition position, const UpdateRecord& r, std::string* frame) {
  const uint8_t kind = static_cast<uint8_t>(r.kind);
  if (!KnownKind(kind)) {
    return absl::InvalidArgumentError(absl::StrCat("update record kind ", kind, " is unknown"));
  }
  std::string spec_text;
  uint8_t flags = 0;
  if (HasSpec(r.kind)) {
    if (r.spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("update record of table '", r.table, "' needs a spec (kind ", kind, ")"));
    }
    if (r.spec->name.find('\n') != std::string::npos) {
      return absl::InvalidArgumentError("a spec's table name cannot hold a newline");
    }
    StoredTable meta;
    meta.spec = *r.spec;
    spec_text = EncodeMeta(meta);
    if (!r.spec->optimizer.lr.has_value()) flags |= kFlagLrUnset;
    if (r.spec->initializer.generator == 0) flags |= kFlagGeneratorUnset;
  }
  // Everything but the arrays, padded: well under 2^32 unless the strings
  // are huge, which the size check below catches.
  const uint64_t fixed = 8 + 4 + 4 + r.table.size() + 24 + 4 + r.trainer.size() + 8 + 4 +
                         spec_text.size() + 16 + 8;
  constexpr uint64_t kMax = kMaxPayloadBytes;
  if (r.ids.size() > kMax / 8 || r.floats.size() > kMax / 4 ||
      fixed + r.ids.size() * 8 + r.floats.size() * 4 + 8 > kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("update record of table '", r.table, "' with ", r.ids.size(), " ids and ",
                     r.floats.size(), " floats exceeds the ", kMax, "-byte record limit"));
  }
  frame->clear();
  frame->append(kFrameHeaderBytes, '\0');
  Put<uint64_t>(frame, position);
  Put<uint8_t>(frame, kind);
  Put<uint8_t>(frame, flags);
  Put<uint16_t>(frame, 0);
  PutString(frame, r.table);
  Put<int64_t>(frame, r.generation);
  Put<int64_t>(frame, r.version);
  Put<int64_t>(frame, r.step);
  PutString(frame, r.trainer);
  Put<uint64_t>(frame, r.trainer_sequence);
  PutString(frame, spec_text);
  Put<uint64_t>(frame, r.ids.size());
  Put<uint64_t>(frame, r.floats.size());
  PadTo8(frame, 0);
  frame->append(reinterpret_cast<const char*>(r.ids.data()), r.ids.size() * sizeof(int64_t));
  frame->append(reinterpret_cast<const char*>(r.floats.data()), r.floats.size() * sizeof(float));
  PadTo8(frame, 0);
  const absl::string_view payload = absl::string_view(*frame).substr(kFrameHeaderBytes);
  const uint32_t header[2] = {static_cast<uint32_t>(payload.size()),
                              MaskCrc32c(Crc32c(payload))};
  std::memcpy(frame->data(), header, sizeof(header));
  return absl::OkStatus();
}

FrameHeader DecodeFrameHeader(const char* bytes) {
  return FrameHeader{Get<uint32_t>(bytes), Get<uint32_t>(bytes + 4)};
}

bool PayloadCrcMatches(const FrameHeader& header, absl::string_view payload) {
  return UnmaskCrc32c(header.masked_crc) == Crc32c(payload);
}

absl::Status DecodePayload(absl::string_view payload, DecodedRecord* out) {
  PayloadReader in(payload);
  UpdateRecord& r = out->record;
  r = UpdateRecord();
  out->position = in.Read<uint64_t>("position");
  const uint8_t kind = in.Read<uint8_t>("kind");
  const uint8_t flags = in.Read<uint8_t>("flags");
  in.Read<uint16_t>("reserved");
  r.table = in.String("table name");
  r.generation = in.Read<int64_t>("generation");
  r.version = in.Read<int64_t>("version");
  r.step = in.Read<int64_t>("step");
  r.trainer = in.String("trainer");
  r.trainer_sequence = in.Read<uint64_t>("trainer sequence");
  const absl::string_view spec_text = in.String("spec");
  const uint64_t num_ids = in.Read<uint64_t>("id count");
  const uint64_t num_floats = in.Read<uint64_t>("float count");
  in.Pad("header");
  // The counts are bounded by the bytes left before they are multiplied.
  const absl::string_view ids =
      in.Bytes(num_ids <= in.left() / 8 ? num_ids * 8 : in.left() + 1, "ids");
  const absl::string_view floats =
      in.Bytes(num_floats <= in.left() / 4 ? num_floats * 4 : in.left() + 1, "floats");
  in.Pad("trailing");
  if (!in.error().empty()) return absl::DataLossError(absl::StrCat("record payload: ", in.error()));
  if (in.left() != 0) {
    return absl::DataLossError(
        absl::StrCat("record payload has ", in.left(), " bytes after its last field"));
  }
  if (!KnownKind(kind)) {
    return absl::DataLossError(absl::StrCat("record kind ", kind, " is unknown"));
  }
  r.kind = static_cast<UpdateRecord::Kind>(kind);
  if (HasSpec(r.kind)) {
    absl::StatusOr<StoredTable> meta = DecodeMeta(spec_text);
    if (!meta.ok()) {
      return absl::DataLossError(absl::StrCat("record spec: ", meta.status().message()));
    }
    out->spec = std::move(meta->spec);
    if (flags & kFlagLrUnset) out->spec.optimizer.lr.reset();
    if (flags & kFlagGeneratorUnset) out->spec.initializer.generator = 0;
    r.spec = &out->spec;
  } else if (!spec_text.empty()) {
    return absl::DataLossError(absl::StrCat("record kind ", kind, " has a spec"));
  }
  r.ids = View<int64_t>(ids, num_ids, &out->ids_copy);
  r.floats = View<float>(floats, num_floats, &out->floats_copy);
  return absl::OkStatus();
}

std::optional<PayloadHead> PeekPayloadHead(absl::string_view payload) {
  PayloadReader in(payload);
  PayloadHead head;
  head.position = in.Read<uint64_t>("position");
  in.Read<uint32_t>("kind and flags");
  head.table = std::string(in.String("table name"));
  if (!in.error().empty()) return std::nullopt;
  return head;
}

}  // namespace embedserve::internal
