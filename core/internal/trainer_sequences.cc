#include "core/internal/trainer_sequences.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace embedserve::internal {

absl::Status TrainerSequences::CheckName(absl::string_view trainer) {
  const bool ok = !trainer.empty() && trainer.size() <= 128 &&
                  std::all_of(trainer.begin(), trainer.end(), [](char c) {
                    return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
                  });
  if (ok) return absl::OkStatus();
  std::string shown;
  for (char c : trainer.substr(0, 64)) shown += absl::ascii_isprint(c) ? c : '?';
  return absl::InvalidArgumentError(
      absl::StrCat("trainer name '", shown, trainer.size() > 64 ? "...'" : "'", " (", trainer.size(),
                   " characters) must be 1 to 128 characters of [A-Za-z0-9_.:-]"));
}

bool TrainerSequences::IsDuplicate(absl::string_view trainer, uint64_t sequence) const {
  auto it = last_.find(trainer);
  return it != last_.end() && sequence <= it->second;
}

absl::Status TrainerSequences::CheckRoom(absl::string_view trainer,
                                         absl::string_view table) const {
  if (last_.size() < kMaxTrainers || last_.contains(trainer)) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("table '", table, "' already remembers ", kMaxTrainers,
                   " trainers' sequence numbers; reuse trainer names"));
}

void TrainerSequences::Applied(absl::string_view trainer, uint64_t sequence) {
  uint64_t& last = last_[trainer];
  last = std::max(last, sequence);
}

uint64_t TrainerSequences::Last(absl::string_view trainer) const {
  auto it = last_.find(trainer);
  return it == last_.end() ? 0 : it->second;
}

std::vector<std::pair<std::string, uint64_t>> TrainerSequences::Entries() const {
  std::vector<std::pair<std::string, uint64_t>> out(last_.begin(), last_.end());
  std::sort(out.begin(), out.end());
  return out;
}

void TrainerSequences::Restore(const std::vector<std::pair<std::string, uint64_t>>& entries) {
  last_.clear();
  for (const auto& [name, seq] : entries) Applied(name, seq);
}

}  // namespace embedserve::internal
