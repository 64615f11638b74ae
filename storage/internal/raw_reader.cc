#include "storage/internal/raw_reader.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/table_spec.h"

namespace embedserve::internal {

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadRaw(SafeFile& in, int64_t raw_dim) {
  if (raw_dim <= 0 || raw_dim > kMaxEmbeddingDim) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": raw_dim must be in [1, ", kMaxEmbeddingDim, "] for a raw file"));
  }
  const int64_t row_bytes = raw_dim * static_cast<int64_t>(sizeof(float));
  if (in.size() == 0 || in.size() % row_bytes != 0) {
    return absl::DataLossError(
        absl::StrCat(in.path(), ": ", in.size(), " bytes is not a whole number of ", raw_dim,
                     "-float rows (byte offset ", in.size() - in.size() % row_bytes, ")"));
  }
  const int64_t rows = in.size() / row_bytes;
  ASSIGN_OR_RETURN(const int64_t bytes, CheckedMatrixBytes(in.path(), 0, "rows", rows, "raw_dim",
                                                           raw_dim, sizeof(float), in.size()));
  std::vector<float> values(bytes / sizeof(float));
  RETURN_IF_ERROR(in.Read(values.data(), bytes, "the values"));
  return std::make_unique<PretrainedMatrix>(rows, raw_dim, std::move(values),
                                            std::vector<std::string>());
}

}  // namespace embedserve::internal
