#include "core/internal/admission_sketch.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace embedserve::internal {
namespace {

inline uint64_t Mix(uint64_t x) {  // SplitMix64's finaliser
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

AdmissionSketch::AdmissionSketch(uint64_t seed, int64_t width, int64_t window)
    : seed_(Mix(seed + 0x9e3779b97f4a7c15ULL)) {
  const uint64_t w = std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(width, 64)));
  mask_ = static_cast<int64_t>(w - 1);
  window_ = window > 0 ? window : 16 * static_cast<int64_t>(w);
  counters_.assign(kDepth * w, 0);
}

void AdmissionSketch::Positions(int64_t id, uint64_t pos[kDepth]) const {
  // Two independent 64-bit hashes, combined (Kirsch-Mitzenmacher).
  const uint64_t h1 = Mix(static_cast<uint64_t>(id) ^ seed_);
  const uint64_t h2 = Mix(h1 + 0x9e3779b97f4a7c15ULL) | 1;
  const uint64_t w = static_cast<uint64_t>(mask_) + 1;
  for (int r = 0; r < kDepth; ++r) {
    pos[r] = r * w + ((h1 + r * h2) & static_cast<uint64_t>(mask_));
  }
}

int AdmissionSketch::Estimate(int64_t id) const {
  uint64_t pos[kDepth];
  Positions(id, pos);
  int m = 255;
  for (int r = 0; r < kDepth; ++r) m = std::min<int>(m, counters_[pos[r]]);
  return m;
}

int AdmissionSketch::Add(int64_t id) {
  uint64_t pos[kDepth];
  Positions(id, pos);
  int m = 255;
  for (int r = 0; r < kDepth; ++r) m = std::min<int>(m, counters_[pos[r]]);
  const int estimate = std::min(m + 1, 255);
  // Conservative update: no counter below the new estimate, none raised past it.
  for (int r = 0; r < kDepth; ++r) {
    if (counters_[pos[r]] < estimate) counters_[pos[r]] = static_cast<uint8_t>(estimate);
  }
  if (++adds_ >= window_) {
    for (uint8_t& c : counters_) c >>= 1;
    adds_ = 0;
    ++agings_;
  }
  return estimate;
}

std::string AdmissionSketch::Save() const {
  std::string out(2 * sizeof(int64_t) + counters_.size(), '\0');
  std::memcpy(out.data(), &adds_, sizeof(adds_));
  std::memcpy(out.data() + sizeof(adds_), &agings_, sizeof(agings_));
  std::memcpy(out.data() + 2 * sizeof(int64_t), counters_.data(), counters_.size());
  return out;
}

bool AdmissionSketch::Load(std::string_view saved) {
  if (saved.size() != 2 * sizeof(int64_t) + counters_.size()) return false;
  int64_t adds, agings;
  std::memcpy(&adds, saved.data(), sizeof(adds));
  std::memcpy(&agings, saved.data() + sizeof(adds), sizeof(agings));
  if (adds < 0 || adds >= window_ || agings < 0) return false;
  adds_ = adds;
  agings_ = agings;
  std::memcpy(counters_.data(), saved.data() + 2 * sizeof(int64_t), counters_.size());
  return true;
}

}  // namespace embedserve::internal
