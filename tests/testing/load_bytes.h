#ifndef EMBEDSERVE_TESTS_TESTING_LOAD_BYTES_H_
#define EMBEDSERVE_TESTS_TESTING_LOAD_BYTES_H_

// Runs one pretrained-file reader (storage/internal/*_reader.h) on bytes:
// writes them to `name` in a TempDir, opens it with SafeFile and calls the
// reader, as LoadPretrained does (without its final Finish check).
//   TempDir dir("npy_reader_test");
//   auto m = LoadBytes(dir, internal::LoadNpy, npy_bytes);

#include <fstream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/internal/safe_file.h"
#include "storage/pretrained.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::testing {

using PretrainedReader = absl::StatusOr<std::unique_ptr<PretrainedMatrix>> (*)(internal::SafeFile&);

inline absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadBytes(
    const TempDir& dir, PretrainedReader reader, const std::string& bytes,
    const std::string& name = "file") {
  const std::string path = dir.Path(name);
  std::ofstream(path, std::ios::binary) << bytes;
  const LoadOptions options;
  auto in = internal::SafeFile::Open(path, options);
  if (!in.ok()) return in.status();
  return reader(**in);
}

}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_LOAD_BYTES_H_
