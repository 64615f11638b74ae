#ifndef EMBEDSERVE_TESTS_TESTING_TEMP_DIR_H_
#define EMBEDSERVE_TESTS_TESTING_TEMP_DIR_H_

// A fresh directory under /tmp for one test, removed with everything in it
// when the TempDir is destroyed:
//   TempDir dir("npy_test");
//   std::ofstream(dir.Path("out.npy")) << ...;

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace embedserve::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `name` inside the directory.
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_TEMP_DIR_H_
