// The update log's bytes: segment headers, frames and payloads of every
// record kind round-trip with every field (the spec's included), ids and
// floats are viewed in place when aligned and copied when not, and damaged
// payloads are DataLoss without reading or allocating past their bytes.
#include "storage/internal/log_record_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/internal/crc32c.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

TableSpec FullSpec() {
  TableSpec s;
  s.name = "users.v2-x";
  s.num_embeddings = int64_t{1} << 33;
  s.embedding_dim = 100;
  s.padding_idx = 7;
  s.max_norm = 1.25;
  s.norm_type = std::numeric_limits<double>::infinity();
  s.frozen = true;
  s.scale_grad_by_freq = true;
  s.optimizer.kind = OptimizerKind::kSparseAdam;
  s.optimizer.lr = 0.1;
  s.optimizer.lr_decay = 0.5;
  s.optimizer.initial_accumulator_value = 0.3;
  s.optimizer.eps = 1e-7;
  s.optimizer.beta1 = 0.8;
  s.optimizer.beta2 = 0.99;
  s.row_type = RowType::kBFloat16;
  s.initializer.kind = InitKind::kXavierUniform;
  s.initializer.mean = -0.5;
  s.initializer.std = 0.01;
  s.initializer.a = -3;
  s.initializer.b = 4;
  s.initializer.value = 0.1;
  s.initializer.seed = ~uint64_t{0};
  s.initializer.generator = 2;
  s.num_shards = 17;
  return s;
}

// Every field of TableSpec, compared bit for bit where doubles.
void ExpectSameSpec(const TableSpec& a, const TableSpec& b) {
  auto same = [](double x, double y) { return std::memcmp(&x, &y, sizeof(x)) == 0; };
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.num_embeddings, b.num_embeddings);
  EXPECT_EQ(a.embedding_dim, b.embedding_dim);
  EXPECT_EQ(a.padding_idx, b.padding_idx);
  EXPECT_EQ(a.max_norm.has_value(), b.max_norm.has_value());
  if (a.max_norm && b.max_norm) {
    EXPECT_TRUE(same(*a.max_norm, *b.max_norm));
  }
  EXPECT_TRUE(same(a.norm_type, b.norm_type));
  EXPECT_EQ(a.frozen, b.frozen);
  EXPECT_EQ(a.scale_grad_by_freq, b.scale_grad_by_freq);
  EXPECT_EQ(a.optimizer.kind, b.optimizer.kind);
  EXPECT_EQ(a.optimizer.lr.has_value(), b.optimizer.lr.has_value());
  if (a.optimizer.lr && b.optimizer.lr) {
    EXPECT_TRUE(same(*a.optimizer.lr, *b.optimizer.lr));
  }
  EXPECT_TRUE(same(a.optimizer.lr_decay, b.optimizer.lr_decay));
  EXPECT_TRUE(same(a.optimizer.initial_accumulator_value, b.optimizer.initial_accumulator_value));
  EXPECT_EQ(a.optimizer.eps.has_value(), b.optimizer.eps.has_value());
  if (a.optimizer.eps && b.optimizer.eps) {
    EXPECT_TRUE(same(*a.optimizer.eps, *b.optimizer.eps));
  }
  EXPECT_TRUE(same(a.optimizer.beta1, b.optimizer.beta1));
  EXPECT_TRUE(same(a.optimizer.beta2, b.optimizer.beta2));
  EXPECT_EQ(a.row_type, b.row_type);
  EXPECT_EQ(a.initializer.kind, b.initializer.kind);
  EXPECT_TRUE(same(a.initializer.mean, b.initializer.mean));
  EXPECT_TRUE(same(a.initializer.std, b.initializer.std));
  EXPECT_TRUE(same(a.initializer.a, b.initializer.a));
  EXPECT_TRUE(same(a.initializer.b, b.initializer.b));
  EXPECT_TRUE(same(a.initializer.value, b.initializer.value));
  EXPECT_EQ(a.initializer.seed, b.initializer.seed);
  EXPECT_EQ(a.initializer.generator, b.initializer.generator);
  EXPECT_EQ(a.num_shards, b.num_shards);
}

// The payload of `frame`, copied to an 8-aligned buffer at `shift` bytes
// past alignment.
struct Payload {
  Payload(const std::string& frame, size_t shift) : mem((frame.size() + 16) / 8 + 1) {
    char* base = reinterpret_cast<char*>(mem.data()) + shift;
    std::memcpy(base, frame.data() + kFrameHeaderBytes, frame.size() - kFrameHeaderBytes);
    view = absl::string_view(base, frame.size() - kFrameHeaderBytes);
  }
  std::vector<uint64_t> mem;
  absl::string_view view;
};

TEST(LogRecordCodecTest, SegmentHeaderRoundTripsAndRejectsDamage) {
  const std::string h = EncodeSegmentHeader(123456789012345);
  ASSERT_EQ(h.size(), kSegmentHeaderBytes);
  EXPECT_THAT(DecodeSegmentHeader(h), IsOk());
  EXPECT_EQ(*DecodeSegmentHeader(h), 123456789012345u);
  for (size_t i = 0; i < h.size(); ++i) {
    std::string bad = h;
    bad[i] ^= 0x20;
    EXPECT_THAT(DecodeSegmentHeader(bad), StatusIs(absl::StatusCode::kDataLoss, ::testing::_))
        << "byte " << i;
  }
  EXPECT_THAT(DecodeSegmentHeader(h.substr(0, 23)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("23 bytes")));
  EXPECT_THAT(DecodeSegmentHeader(EncodeSegmentHeader(0)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("position 0")));
}

TEST(LogRecordCodecTest, EveryKindRoundTripsWithEveryField) {
  const TableSpec spec = FullSpec();
  const std::vector<int64_t> ids = {5, -1, int64_t{1} << 40, 0};
  const std::vector<float> floats = {1.5f, -0.0f, std::numeric_limits<float>::infinity(), 3e-38f,
                                     7.f};
  for (auto kind : {UpdateRecord::Kind::kPush, UpdateRecord::Kind::kWriteRecords,
                    UpdateRecord::Kind::kSettings, UpdateRecord::Kind::kCreate,
                    UpdateRecord::Kind::kDrop, UpdateRecord::Kind::kRenorm}) {
    SCOPED_TRACE(static_cast<int>(kind));
    UpdateRecord r;
    r.kind = kind;
    r.table = "users.v2-x";
    r.generation = -3;
    r.version = int64_t{1} << 50;
    r.step = 99;
    r.trainer = "trainer-7";
    r.trainer_sequence = ~uint64_t{0} - 1;
    r.ids = ids;
    r.floats = floats;
    r.spec = &spec;
    std::string frame;
    ASSERT_THAT(EncodeFrame(42, r, &frame), IsOk());
    ASSERT_EQ(frame.size() % 8, 0u);
    const FrameHeader h = DecodeFrameHeader(frame.data());
    ASSERT_EQ(h.payload_bytes, frame.size() - kFrameHeaderBytes);
    for (size_t shift : {0, 4, 1}) {  // aligned: views; not: copies
      Payload p(frame, shift);
      ASSERT_TRUE(PayloadCrcMatches(h, p.view));
      DecodedRecord d;
      ASSERT_THAT(DecodePayload(p.view, &d), IsOk());
      EXPECT_EQ(d.position, 42u);
      EXPECT_EQ(d.record.kind, kind);
      EXPECT_EQ(d.record.table, "users.v2-x");
      EXPECT_EQ(d.record.generation, -3);
      EXPECT_EQ(d.record.version, int64_t{1} << 50);
      EXPECT_EQ(d.record.step, 99);
      EXPECT_EQ(d.record.trainer, "trainer-7");
      EXPECT_EQ(d.record.trainer_sequence, ~uint64_t{0} - 1);
      EXPECT_THAT(d.record.ids, ElementsAreArray(ids));
      ASSERT_EQ(d.record.floats.size(), floats.size());
      EXPECT_EQ(std::memcmp(d.record.floats.data(), floats.data(), floats.size() * 4), 0);
      const bool in_payload = d.record.ids.data() >= reinterpret_cast<const int64_t*>(p.view.data()) &&
                              d.record.ids.data() < reinterpret_cast<const int64_t*>(p.view.data() + p.view.size());
      EXPECT_EQ(in_payload, shift == 0);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(d.record.ids.data()) % 8, 0u);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(d.record.floats.data()) % 4, 0u);
      const bool has_spec =
          kind == UpdateRecord::Kind::kSettings || kind == UpdateRecord::Kind::kCreate;
      ASSERT_EQ(d.record.spec != nullptr, has_spec);
      if (has_spec) ExpectSameSpec(*d.record.spec, spec);
    }
  }
}

TEST(LogRecordCodecTest, SpecWithUnsetOptionalsRoundTrips) {
  TableSpec spec;  // lr, eps, padding_idx, max_norm, generator unset; defaults elsewhere
  spec.name = "t";
  spec.num_embeddings = 3;
  spec.embedding_dim = 2;
  spec.optimizer.kind = OptimizerKind::kSparseAdam;  // an unset lr is not 0.01 here
  UpdateRecord r;
  r.kind = UpdateRecord::Kind::kCreate;
  r.table = "t";
  r.spec = &spec;
  std::string frame;
  ASSERT_THAT(EncodeFrame(1, r, &frame), IsOk());
  Payload p(frame, 0);
  DecodedRecord d;
  ASSERT_THAT(DecodePayload(p.view, &d), IsOk());
  EXPECT_FALSE(d.spec.optimizer.lr.has_value());
  ExpectSameSpec(d.spec, spec);
}

TEST(LogRecordCodecTest, EveryInitializerGeneratorRoundTrips) {
  for (uint32_t generator : {0u, 1u, 2u}) {
    TableSpec spec = FullSpec();
    spec.initializer.generator = generator;
    UpdateRecord r;
    r.kind = UpdateRecord::Kind::kSettings;
    r.spec = &spec;
    std::string frame;
    ASSERT_THAT(EncodeFrame(1, r, &frame), IsOk());
    Payload p(frame, 0);
    DecodedRecord d;
    ASSERT_THAT(DecodePayload(p.view, &d), IsOk());
    EXPECT_EQ(d.spec.initializer.generator, generator);
  }
}

TEST(LogRecordCodecTest, EmptyRecordRoundTrips) {
  UpdateRecord r;
  r.kind = UpdateRecord::Kind::kDrop;
  std::string frame;
  ASSERT_THAT(EncodeFrame(1, r, &frame), IsOk());
  Payload p(frame, 0);
  DecodedRecord d;
  ASSERT_THAT(DecodePayload(p.view, &d), IsOk());
  EXPECT_TRUE(d.record.table.empty());
  EXPECT_TRUE(d.record.ids.empty());
  EXPECT_EQ(d.record.spec, nullptr);
}

TEST(LogRecordCodecTest, UnencodableRecordsAreInvalidArgument) {
  UpdateRecord r;
  std::string frame;
  r.kind = static_cast<UpdateRecord::Kind>(9);
  EXPECT_THAT(EncodeFrame(1, r, &frame),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kind 9")));
  r.kind = UpdateRecord::Kind::kSettings;
  r.table = "t";
  EXPECT_THAT(EncodeFrame(1, r, &frame),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a spec")));
  TableSpec spec;
  spec.name = "a\nb";
  r.spec = &spec;
  EXPECT_THAT(EncodeFrame(1, r, &frame),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("newline")));
  // A span claiming more floats than a frame holds is refused before any
  // byte of it is read.
  r.kind = UpdateRecord::Kind::kPush;
  r.floats = absl::Span<const float>(reinterpret_cast<const float*>(8), size_t{1} << 31);
  EXPECT_THAT(EncodeFrame(1, r, &frame),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record limit")));
}

class DamagedPayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    r_.kind = UpdateRecord::Kind::kPush;
    r_.table = "tbl";
    r_.trainer = "tr";
    r_.ids = ids_;
    r_.floats = floats_;
    ASSERT_THAT(EncodeFrame(3, r_, &frame_), IsOk());
    payload_ = frame_.substr(kFrameHeaderBytes);
  }
  // Overwrites the u64 or u32 at payload offset `at`.
  template <typename T>
  void Set(size_t at, T v) { std::memcpy(payload_.data() + at, &v, sizeof(v)); }
  absl::Status Decode() {
    buf_.assign(payload_.size() / 8 + 1, 0);
    std::memcpy(buf_.data(), payload_.data(), payload_.size());
    return DecodePayload(absl::string_view(reinterpret_cast<char*>(buf_.data()), payload_.size()),
                         &d_);
  }

  std::vector<int64_t> ids_ = {1, 2, 3};
  std::vector<float> floats_ = {1, 2, 3, 4, 5, 6};
  UpdateRecord r_;
  std::string frame_, payload_;
  std::vector<uint64_t> buf_;
  DecodedRecord d_;
};

// Payload offsets: position 0, kind 8, flags 9, table length 12, table 16
// ("tbl"), generation 19, version 27, step 35, trainer length 43, trainer
// 47 ("tr"), sequence 49, spec length 57, id count 61, float count 69.
TEST_F(DamagedPayloadTest, HugeLengthsAreDataLossWithoutAllocating) {
  ASSERT_THAT(Decode(), IsOk());
  Set<uint32_t>(12, 0xFFFFFFF0u);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("table name")));
  SetUp();
  Set<uint64_t>(61, uint64_t{1} << 61);  // would be 2^64 bytes
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("ids")));
  SetUp();
  Set<uint64_t>(69, ~uint64_t{0});
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("floats")));
  SetUp();
  Set<uint32_t>(57, 0x7FFFFFFFu);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("spec")));
}

TEST_F(DamagedPayloadTest, BadKindPaddingAndLeftoversAreDataLoss) {
  payload_[8] = 0;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("kind 0")));
  SetUp();
  Set<uint64_t>(69, 5);  // one float fewer: 4 bytes of nonzero float left
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
  SetUp();
  payload_ += std::string(8, '\0');
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("after its last field")));
  SetUp();
  payload_.resize(payload_.size() - 3);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
}

TEST_F(DamagedPayloadTest, PeekReadsPositionAndTableOnly) {
  payload_.resize(20);  // cut inside everything after the table name
  const std::optional<PayloadHead> head = PeekPayloadHead(payload_);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->position, 3u);
  EXPECT_EQ(head->table, "tbl");
  EXPECT_FALSE(PeekPayloadHead(payload_.substr(0, 17)).has_value());
}

TEST_F(DamagedPayloadTest, AnyFlippedBitFailsTheCrc) {
  const FrameHeader h = DecodeFrameHeader(frame_.data());
  EXPECT_TRUE(PayloadCrcMatches(h, payload_));
  for (size_t i = 0; i < payload_.size(); ++i) {
    std::string bad = payload_;
    bad[i] ^= 1;
    EXPECT_FALSE(PayloadCrcMatches(h, bad)) << "byte " << i;
  }
}

}  // namespace
}  // namespace embedserve::internal
