#include "storage/pretrained.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/row_codec.h"
#include "core/status_macros.h"

namespace embedserve {
namespace {

// A parse error at a byte offset (and, for text, a line).
absl::Status At(const std::string& path, size_t offset, absl::string_view what, int64_t line = 0) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " (byte offset ", offset,
                                                 line > 0 ? absl::StrCat(", line ", line) : "",
                                                 ")"));
}

}  // namespace

PretrainedMatrix::~PretrainedMatrix() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(const std::string& path,
                                                                 PretrainedFormat format,
                                                                 int64_t raw_dim) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  struct stat st;
  ::fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  auto m = std::unique_ptr<PretrainedMatrix>(new PretrainedMatrix());
  if (size > 0) {
    m->map_ = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map_ == MAP_FAILED) {
      m->map_ = nullptr;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("cannot map ", path, ": ", strerror(errno)));
    }
    m->map_bytes_ = size;
  }
  ::close(fd);
  const char* data = static_cast<const char*>(m->map_);

  switch (format) {
    case PretrainedFormat::kRaw: {
      if (raw_dim <= 0) return absl::InvalidArgumentError("a raw file needs its dim (> 0)");
      const size_t row_bytes = static_cast<size_t>(raw_dim) * sizeof(float);
      if (size == 0 || size % row_bytes != 0) {
        return absl::DataLossError(
            absl::StrCat(path, ": ", size, " bytes is not a whole number of ", raw_dim,
                         "-float rows (byte offset ", size - size % row_bytes, ")"));
      }
      m->rows_ = static_cast<int64_t>(size / row_bytes);
      m->dim_ = raw_dim;
      m->values_ = absl::MakeConstSpan(reinterpret_cast<const float*>(data), size / sizeof(float));
      return m;
    }
    case PretrainedFormat::kNpy: {
      if (size < 10 || std::memcmp(data, "\x93NUMPY", 6) != 0) {
        return At(path, 0, "not a .npy file (no \\x93NUMPY magic)");
      }
      const int major = static_cast<uint8_t>(data[6]);
      size_t header_len, header_start;
      if (major == 1) {
        header_len = static_cast<uint8_t>(data[8]) | (static_cast<uint8_t>(data[9]) << 8);
        header_start = 10;
      } else if (major == 2 || major == 3) {
        if (size < 12) return absl::DataLossError(absl::StrCat(path, ": truncated header"));
        header_len = 0;
        for (int i = 0; i < 4; ++i)
          header_len |= static_cast<size_t>(static_cast<uint8_t>(data[8 + i])) << (8 * i);
        header_start = 12;
      } else {
        return At(path, 6, absl::StrCat("unsupported .npy version ", major));
      }
      if (header_start + header_len > size) {
        return absl::DataLossError(
            absl::StrCat(path, ": header runs past the end of the file (byte offset ", size, ")"));
      }
      const std::string header(data + header_start, header_len);
      // The header is a Python dict literal, e.g.
      // {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
      auto field = [&](absl::string_view key) -> std::string {
        const size_t at = header.find(absl::StrCat("'", key, "'"));
        if (at == std::string::npos) return "";
        const size_t colon = header.find(':', at);
        if (colon == std::string::npos) return "";
        size_t end;
        if (key == "shape") {
          const size_t open = header.find('(', colon), close = header.find(')', colon);
          if (open == std::string::npos || close == std::string::npos) return "";
          return header.substr(open, close - open + 1);
        }
        end = header.find_first_of(",}", colon);
        return std::string(absl::StripAsciiWhitespace(header.substr(colon + 1, end - colon - 1)));
      };
      const std::string descr = field("descr"), fortran = field("fortran_order"),
                        shape = field("shape");
      if (fortran != "False") {
        return At(path, header_start, "Fortran-order arrays are not supported; save with C order");
      }
      size_t item;
      if (descr == "'<f4'" || descr == "'=f4'")
        item = 4;
      else if (descr == "'<f2'" || descr == "'=f2'")
        item = 2;
      else if (descr == "'<f8'" || descr == "'=f8'")
        item = 8;
      else
        return At(
            path, header_start,
            absl::StrCat("dtype ", descr, " is not float32, float16 or float64 (little-endian)"));
      std::vector<int64_t> dims;
      for (absl::string_view part : absl::StrSplit(
               absl::StripAsciiWhitespace(absl::string_view(shape).substr(1, shape.size() - 2)),
               ',', absl::SkipWhitespace())) {
        int64_t d;
        if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d))
          return At(path, header_start, "bad shape " + shape);
        dims.push_back(d);
      }
      if (dims.size() != 2 || dims[0] <= 0 || dims[1] <= 0) {
        return At(path, header_start,
                  absl::StrCat("shape ", shape, " is not a non-empty 2-D matrix"));
      }
      const size_t offset = header_start + header_len;
      const size_t need = static_cast<size_t>(dims[0] * dims[1]) * item;
      if (size < offset + need) {
        return absl::DataLossError(absl::StrCat(path, ": truncated: ", dims[0], " x ", dims[1],
                                                " values need ", need, " bytes from byte offset ",
                                                offset, ", the file ends at ", size));
      }
      m->rows_ = dims[0];
      m->dim_ = dims[1];
      const size_t n = static_cast<size_t>(dims[0] * dims[1]);
      if (item == 4 && offset % alignof(float) == 0) {
        m->values_ = absl::MakeConstSpan(reinterpret_cast<const float*>(data + offset), n);
        return m;
      }
      m->owned_.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const char* p = data + offset + i * item;
        if (item == 2) {
          uint16_t h;
          std::memcpy(&h, p, 2);
          m->owned_[i] = HalfToFloat(h);
        } else if (item == 8) {
          double d;
          std::memcpy(&d, p, 8);
          m->owned_[i] = static_cast<float>(d);
        } else {
          std::memcpy(&m->owned_[i], p, 4);
        }
      }
      m->values_ = m->owned_;
      return m;
    }
    case PretrainedFormat::kWord2VecText:
    case PretrainedFormat::kGloveText: {
      const bool header = format == PretrainedFormat::kWord2VecText;
      size_t pos = 0;
      int64_t line_no = 0, expect_rows = -1;
      while (pos < size) {
        const size_t line_start = pos;
        size_t end = pos;
        while (end < size && data[end] != '\n') ++end;
        absl::string_view line(data + pos, end - pos);
        pos = end + 1;
        ++line_no;
        line = absl::StripTrailingAsciiWhitespace(line);
        if (line.empty()) continue;
        std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
        if (header && expect_rows < 0) {
          if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &expect_rows) ||
              !absl::SimpleAtoi(parts[1], &m->dim_) || expect_rows <= 0 || m->dim_ <= 0) {
            return At(path, line_start, "expected a word2vec header 'rows dim'", line_no);
          }
          continue;
        }
        if (m->dim_ == 0) m->dim_ = static_cast<int64_t>(parts.size()) - 1;
        if (static_cast<int64_t>(parts.size()) != m->dim_ + 1 || m->dim_ <= 0) {
          return At(path, line_start,
                    absl::StrCat("expected a word and ", m->dim_, " numbers, got ", parts.size(),
                                 " fields"),
                    line_no);
        }
        m->words_.emplace_back(parts[0]);
        for (int64_t d = 0; d < m->dim_; ++d) {
          float v;
          if (!absl::SimpleAtof(parts[d + 1], &v)) {
            return At(path, static_cast<size_t>(parts[d + 1].data() - data),
                      absl::StrCat("'", parts[d + 1], "' is not a number"), line_no);
          }
          m->owned_.push_back(v);
        }
      }
      m->rows_ = static_cast<int64_t>(m->words_.size());
      if (header && m->rows_ != expect_rows) {
        return absl::DataLossError(absl::StrCat(path, ": the header promises ", expect_rows,
                                                " rows, the file has ", m->rows_, " (byte offset ",
                                                size, ")"));
      }
      if (m->rows_ == 0) return At(path, 0, "no vectors");
      m->values_ = m->owned_;
      return m;
    }
    case PretrainedFormat::kWord2VecBinary: {
      size_t pos = 0;
      while (pos < size && data[pos] != '\n') ++pos;
      std::vector<absl::string_view> parts =
          absl::StrSplit(absl::string_view(data, pos), ' ', absl::SkipEmpty());
      int64_t rows;
      if (pos >= size || parts.size() != 2 || !absl::SimpleAtoi(parts[0], &rows) ||
          !absl::SimpleAtoi(parts[1], &m->dim_) || rows <= 0 || m->dim_ <= 0) {
        return At(path, 0, "expected a word2vec header 'rows dim'");
      }
      ++pos;
      m->owned_.resize(static_cast<size_t>(rows * m->dim_));
      for (int64_t r = 0; r < rows; ++r) {
        while (pos < size && (data[pos] == '\n' || data[pos] == ' ')) ++pos;
        const size_t word_start = pos;
        while (pos < size && data[pos] != ' ') ++pos;
        const size_t need = static_cast<size_t>(m->dim_) * sizeof(float);
        if (pos >= size || pos + 1 + need > size) {
          return absl::DataLossError(absl::StrCat(path, ": truncated in row ", r, " (byte offset ",
                                                  word_start, "): ", rows, " rows promised"));
        }
        m->words_.emplace_back(data + word_start, pos - word_start);
        ++pos;
        std::memcpy(m->owned_.data() + r * m->dim_, data + pos, need);
        pos += need;
      }
      m->rows_ = rows;
      m->values_ = m->owned_;
      return m;
    }
  }
  return absl::InvalidArgumentError("unknown format");
}

}  // namespace embedserve
