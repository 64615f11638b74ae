// Checkpoint directories on a real file system: names, paths, and what a
// listing reports.
#include "storage/internal/checkpoint_dir.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

TEST(CheckpointDirTest, NamesAreTableNamesThatAreNotDotDirectories) {
  const std::vector<std::string> good = {"a", "nightly-2024.01_x", "...", ".hidden",
                                         std::string(128, 'c')};
  for (const std::string& name : good) EXPECT_TRUE(ValidCheckpointName(name)) << name;
  const std::vector<std::string> bad = {
      "",    ".",    "..",          std::string(129, 'c'), "a/b", "../x", "/abs",
      "a b", "a\\b", "caf\xc3\xa9", std::string("a\0b", 3)};
  for (const std::string& name : bad) EXPECT_FALSE(ValidCheckpointName(name)) << name;
}

TEST(CheckpointDirTest, CheckpointsLiveUnderTheDataDirectory) {
  EXPECT_EQ(CheckpointsDir("/srv/data"), fs::path("/srv/data/checkpoints"));
  EXPECT_EQ(CheckpointDir("/srv/data", "nightly"), fs::path("/srv/data/checkpoints/nightly"));
  EXPECT_EQ(CheckpointDir("rel", "x"), fs::path("rel/checkpoints/x"));
}

class CheckpointDirScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/checkpoint_dir_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void WriteFile(const fs::path& path, int bytes) {
    std::ofstream(path) << std::string(bytes, 'x');
  }
  std::string dir_;
};

TEST_F(CheckpointDirScanTest, NoCheckpointsDirectoryIsNoCheckpoints) {
  EXPECT_THAT(ScanCheckpointDirs(dir_), IsEmpty());
  fs::create_directories(CheckpointsDir(dir_));
  EXPECT_THAT(ScanCheckpointDirs(dir_), IsEmpty());
}

TEST_F(CheckpointDirScanTest, ListsDirectoriesByNameWithTheirBytesAndTime) {
  const fs::path b = CheckpointDir(dir_, "b"), a = CheckpointDir(dir_, "a");
  fs::create_directories(b);
  fs::create_directories(a / "sub");
  WriteFile(a / "000012.sst", 3);
  WriteFile(a / "MANIFEST-000001", 5);
  WriteFile(a / "sub" / "not_counted", 1000);         // only files directly inside
  WriteFile(CheckpointsDir(dir_) / "stray_file", 7);  // not a checkpoint
  const auto at = [](int64_t unix_ms) {
    return std::chrono::file_clock::from_sys(
        std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(unix_ms)));
  };
  fs::last_write_time(a, at(1700000000123));
  fs::last_write_time(b, at(1600000000000));

  const std::vector<CheckpointInfo> infos = ScanCheckpointDirs(dir_);
  ASSERT_THAT(infos,
              ElementsAre(Field(&CheckpointInfo::name, "a"), Field(&CheckpointInfo::name, "b")));
  EXPECT_EQ(infos[0].bytes, 8);
  EXPECT_EQ(infos[0].created_unix_ms, 1700000000123);
  EXPECT_THAT(infos[0].tables, IsEmpty());
  EXPECT_EQ(infos[1].bytes, 0);
  EXPECT_EQ(infos[1].created_unix_ms, 1600000000000);
}

}  // namespace
}  // namespace embedserve::internal
