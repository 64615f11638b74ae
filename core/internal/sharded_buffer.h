#ifndef EMBEDSERVE_CORE_INTERNAL_SHARDED_BUFFER_H_
#define EMBEDSERVE_CORE_INTERNAL_SHARDED_BUFFER_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedserve::internal {

// `rows` rows of `stride` floats, split into shards of 2^shard_shift rows,
// each shard one zero-filled allocation: 64-byte aligned, and 2 MiB-aligned
// with transparent huge pages requested when it is at least 2 MiB (random
// row reads otherwise miss the TLB on almost every row).
//
// Not thread-safe by itself; EmbeddingTable guards it.
class ShardedBuffer {
 public:
  ShardedBuffer() = default;
  // ResourceExhausted (naming `what`) if memory cannot be had.
  static absl::StatusOr<ShardedBuffer> Allocate(int64_t rows, int64_t stride, int shard_shift,
                                                absl::string_view what);

  float* Row(int64_t r) { return shards_[r >> shift_].get() + (r & mask_) * stride_; }
  const float* Row(int64_t r) const { return shards_[r >> shift_].get() + (r & mask_) * stride_; }
  const float* const* shard_ptrs() const { return ptrs_.data(); }
  int num_shards() const { return static_cast<int>(shards_.size()); }
  int64_t bytes() const { return bytes_; }
  bool empty() const { return shards_.empty(); }

 private:
  // Huge shards are mapped (munmap of `mapped` bytes), small ones malloc'ed.
  struct FreeDeleter {
    int64_t mapped = 0;
    void operator()(float* p) const;
  };
  int shift_ = 0;
  int64_t mask_ = 0;
  int64_t stride_ = 0;
  int64_t bytes_ = 0;
  std::vector<std::unique_ptr<float, FreeDeleter>> shards_;
  std::vector<const float*> ptrs_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_SHARDED_BUFFER_H_
