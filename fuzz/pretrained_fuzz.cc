// LoadPretrained on arbitrary files. Input: byte 0 picks the format (mod 5);
// for kRaw, byte 1 is raw_dim when < 0xf0, else the next 8 bytes are
// (little-endian, any int64). The rest is written to one temporary file per
// process and loaded. A load must return (OK or an error), never crash,
// throw or allocate past the sanitizer's limit; a loaded matrix must be
// consistent.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "storage/pretrained.h"

namespace {

// In /dev/shm when there is one: a file per input on a real disk makes the
// fuzzer's speed (and its timeouts) depend on whatever else writes there.
const std::string& TempPath() {
  static const std::string* path = [] {
    struct stat st;
    const char* dir = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    auto* p = new std::string(std::string(dir) + "/embedserve-pretrained-fuzz-" +
                              std::to_string(::getpid()));
    std::atexit([] { ::unlink(TempPath().c_str()); });
    return p;
  }();
  return *path;
}

void WriteFile(const uint8_t* data, size_t size) {
  const int fd = ::open(TempPath().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n <= 0) std::abort();
    data += n;
    size -= static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using embedserve::PretrainedFormat;
  if (size < 1) return 0;
  const auto format = static_cast<PretrainedFormat>(data[0] % 5);
  ++data, --size;
  embedserve::LoadOptions options;
  if (format == PretrainedFormat::kRaw) {
    if (size < 1) return 0;
    if (data[0] < 0xf0) {
      options.raw_dim = data[0];
      ++data, --size;
    } else {
      if (size < 9) return 0;
      uint64_t dim = 0;
      for (int i = 0; i < 8; ++i) dim |= uint64_t{data[1 + i]} << (8 * i);
      options.raw_dim = static_cast<int64_t>(dim);
      data += 9, size -= 9;
    }
  }
  WriteFile(data, size);
  auto m = embedserve::LoadPretrained(TempPath(), format, options);
  if (!m.ok()) {
    // Every error names the file.
    if (std::string(m.status().message()).find(TempPath()) == std::string::npos) std::abort();
    return 0;
  }
  const embedserve::PretrainedMatrix& matrix = **m;
  if (matrix.rows() <= 0 || matrix.dim() <= 0 ||
      static_cast<int64_t>(matrix.values().size()) != matrix.rows() * matrix.dim() ||
      (!matrix.words().empty() && static_cast<int64_t>(matrix.words().size()) != matrix.rows())) {
    std::abort();
  }
  // The loaded values came from the file: never more floats than bytes.
  if (matrix.values().size() > size) std::abort();
  return 0;
}
