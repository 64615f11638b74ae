#ifndef EMBEDSERVE_CORE_INTERNAL_TRAINER_SEQUENCES_H_
#define EMBEDSERVE_CORE_INTERNAL_TRAINER_SEQUENCES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace embedserve::internal {

// Exactly-once pushes: the last sequence number a table applied for each
// trainer (proto PushRequest.trainer). A push (trainer, s) is new only if s
// is above the trainer's last one, so a trainer that resends after an error
// or a reconnect changes nothing twice. Durable through the update log
// (UpdateRecord::trainer / trainer_sequence) and snapshots
// (StoredTable::trainer_sequences).
//
// Not thread-safe: the table keeps it under its writer lock.
class TrainerSequences {
 public:
  // Trainers a table remembers; a push from one more is ResourceExhausted
  // (a bound on what clients can make the server keep).
  static constexpr size_t kMaxTrainers = 4096;

  // OK for a name of 1 to 128 characters of [A-Za-z0-9_.:-]; else
  // InvalidArgument naming it (truncated) and the rule.
  static absl::Status CheckName(absl::string_view trainer);

  // True if (trainer, sequence) was applied already: sequence <= last.
  bool IsDuplicate(absl::string_view trainer, uint64_t sequence) const;
  // OK if a push of `trainer` can be remembered (known, or room for one
  // more); ResourceExhausted naming the table otherwise.
  absl::Status CheckRoom(absl::string_view trainer, absl::string_view table) const;
  // Records (trainer, sequence) as applied; the last number only grows.
  void Applied(absl::string_view trainer, uint64_t sequence);
  // The trainer's last applied sequence; 0 if none.
  uint64_t Last(absl::string_view trainer) const;

  // Sorted by name, for snapshots; Restore replaces the contents.
  std::vector<std::pair<std::string, uint64_t>> Entries() const;
  void Restore(const std::vector<std::pair<std::string, uint64_t>>& entries);

 private:
  absl::flat_hash_map<std::string, uint64_t> last_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_TRAINER_SEQUENCES_H_
