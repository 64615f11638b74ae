#include "storage/pretrained.h"

#include "base/status_macros.h"
#include "storage/internal/npy_reader.h"
#include "storage/internal/raw_reader.h"
#include "storage/internal/safe_file.h"
#include "storage/internal/text_vectors_reader.h"
#include "storage/internal/word2vec_binary_reader.h"

// The file is opened and checked here, once, by internal::SafeFile; each
// format's reader (storage/internal/*_reader.h) only parses what SafeFile
// hands it.

namespace embedserve {

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(absl::string_view path,
                                                                 PretrainedFormat format,
                                                                 const LoadOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<internal::SafeFile> in, internal::SafeFile::Open(path, options));
  absl::StatusOr<std::unique_ptr<PretrainedMatrix>> m;
  switch (format) {
    case PretrainedFormat::kRaw:
      m = internal::LoadRaw(*in, options.raw_dim);
      break;
    case PretrainedFormat::kNpy:
      m = internal::LoadNpy(*in);
      break;
    case PretrainedFormat::kWord2VecText:
      m = internal::LoadWord2VecText(*in);
      break;
    case PretrainedFormat::kGloveText:
      m = internal::LoadGloveText(*in);
      break;
    case PretrainedFormat::kWord2VecBinary:
      m = internal::LoadWord2VecBinary(*in);
      break;
    default:
      return absl::InvalidArgumentError("unknown format");
  }
  // A file rewritten during the load may have parsed into garbage or
  // failed to parse: either way the true cause is the change.
  const absl::Status changed = in->Finish();
  if (!changed.ok() && !absl::IsCancelled(m.status())) return changed;
  return m;
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(absl::string_view path,
                                                                 PretrainedFormat format,
                                                                 int64_t raw_dim) {
  LoadOptions options;
  options.raw_dim = raw_dim;
  return LoadPretrained(path, format, options);
}

}  // namespace embedserve
