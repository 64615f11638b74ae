// Writes update_log_fuzz's seed corpus (fuzz/corpus/update_log_fuzz/) into
// the directory given: inputs in that target's format (flags byte, then
// u16-length payloads) whose payloads are real records made by EncodeFrame,
// so that the fuzzer starts from frames that decode and replay. Run by hand
// when the record format changes; not part of any test.
//
//   build/fuzz/update_log_seeds fuzz/corpus/update_log_fuzz

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/table_spec.h"
#include "core/update_log.h"
#include "storage/internal/log_record_codec.h"

namespace {

using embedserve::LogPosition;
using embedserve::TableSpec;
using embedserve::UpdateRecord;
using Kind = UpdateRecord::Kind;

struct Rec {
  Kind kind;
  std::vector<int64_t> ids;
  std::vector<float> floats;
  std::string trainer;
  const TableSpec* spec;
};

// The input: flags, then each record's payload behind its u16 length, then
// `tail` as it is.
std::string Input(uint8_t flags, LogPosition first, const std::vector<Rec>& recs,
                  const std::string& tail = "") {
  std::string in(1, static_cast<char>(flags));
  LogPosition p = first;
  int64_t step = 0;
  for (const Rec& rec : recs) {
    UpdateRecord r;
    r.kind = rec.kind;
    r.table = "t";
    r.generation = 1;
    r.version = static_cast<int64_t>(p);
    r.step = rec.kind == Kind::kPush ? ++step : step;
    r.trainer = rec.trainer;
    r.trainer_sequence = rec.trainer.empty() ? 0 : p;
    r.ids = rec.ids;
    r.floats = rec.floats;
    r.spec = rec.spec;
    std::string frame;
    if (!embedserve::internal::EncodeFrame(p++, r, &frame).ok()) std::abort();
    const std::string payload = frame.substr(embedserve::internal::kFrameHeaderBytes);
    in.push_back(static_cast<char>(payload.size() & 0xff));
    in.push_back(static_cast<char>(payload.size() >> 8));
    in += payload;
  }
  return in + tail;
}

std::vector<float> Floats(size_t n, float base) {
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = base + 0.25f * static_cast<float>(i);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  TableSpec settings;
  settings.name = "t";
  settings.num_embeddings = 16;
  settings.embedding_dim = 4;
  settings.optimizer.lr = 0.5;
  // Settings that name another optimizer than the table's: a replay must
  // refuse them (the table's state has no room for another optimizer's).
  TableSpec adagrad = settings;
  adagrad.optimizer.kind = embedserve::OptimizerKind::kAdagrad;
  TableSpec create = settings;
  create.name = "u";
  create.initializer.seed = 3;

  const std::vector<Rec> mixed = {
      {Kind::kPush, {0, 1, 3}, Floats(12, -1.0f), "trainer-a", nullptr},
      {Kind::kWriteRecords, {5}, Floats(4, 2.0f), "", nullptr},
      {Kind::kRenorm, {5}, Floats(4, 0.1f), "", nullptr},
      {Kind::kSettings, {}, {}, "", &settings},
      {Kind::kPush, {2, 15}, Floats(8, 0.5f), "trainer-a", nullptr},
      {Kind::kCreate, {}, {}, "", &create},
      {Kind::kDrop, {}, {}, "", nullptr},
  };
  std::vector<Rec> evicting;  // a dynamic table of max_rows 8: evictions
  for (int64_t k = 0; k < 12; ++k) {
    evicting.push_back(
        {Kind::kPush, {100 + k, -3, 7}, Floats(12, static_cast<float>(k)), "", nullptr});
  }
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"mixed_last", Input(0x05, 10, mixed)},
      {"mixed_adam", Input(0x07, 10, mixed)},
      {"mixed_earlier_segment", Input(0x04, 10, mixed)},
      {"torn_tail", Input(0x05, 10, mixed, std::string("\x18\x00\x00\x00\x01\x02", 6))},
      {"evicting", Input(0x05, 1, evicting)},
      {"out_of_range", Input(0x05, 1, {{Kind::kPush, {1LL << 40}, Floats(4, 0.0f), "", nullptr}})},
      {"no_replay", Input(0x01, 10, mixed)},
      {"crash_settings_other_optimizer",
       Input(0x05, 1,
             {{Kind::kSettings, {}, {}, "", &adagrad},
              {Kind::kPush, {1, 4, 7}, Floats(12, 3.0f), "", nullptr},
              {Kind::kWriteRecords, {6}, Floats(8, 1.0f), "", nullptr}})},
      // Records of 8 floats: the dynamic (Adagrad) table's row and state.
      {"dynamic_write",
       Input(0x05, 1,
             {{Kind::kWriteRecords, {-5, 9, 1LL << 62}, Floats(24, -2.0f), "", nullptr},
              {Kind::kRenorm, {9}, Floats(8, 0.0f), "", nullptr}})},
  };
  for (const auto& [name, bytes] : seeds) {
    std::ofstream(std::string(argv[1]) + "/" + name, std::ios::binary) << bytes;
  }
  return 0;
}
