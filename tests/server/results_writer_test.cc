// ResultsWriter's bytes must parse as the protobuf messages they stand for.
#include "server/results_writer.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace embedserve {
namespace {

std::string Flatten(grpc::ByteBuffer buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed) & 0xff);
  return s;
}

TEST(ResultsWriterTest, ParsesAsLookupResponse) {
  // Sizes chosen so the length varints take 1, 2 and 3 bytes.
  const std::vector<std::vector<int64_t>> shapes = {{2, 3}, {5, 7, 64}, {1024, 64}, {0, 8}};
  const std::vector<v1::ValueType> dtypes = {v1::FLOAT32, v1::FLOAT16, v1::FLOAT32, v1::FLOAT32};
  const std::vector<size_t> sizes = {24, 5 * 7 * 64 * 2, 1024 * 64 * 4, 0};
  ResultsWriter writer;
  for (size_t i = 0; i < shapes.size(); ++i) writer.Add(shapes[i], dtypes[i], sizes[i]);
  writer.Allocate();
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string p = Pattern(sizes[i], static_cast<int>(i));
    std::memcpy(writer.values(static_cast<int>(i)), p.data(), p.size());
  }
  v1::LookupResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(Flatten(writer.Release())));
  ASSERT_EQ(parsed.results_size(), 4);
  for (int i = 0; i < 4; ++i) {
    const v1::LookupResult& r = parsed.results(i);
    EXPECT_EQ(std::vector<int64_t>(r.shape().begin(), r.shape().end()), shapes[i]) << i;
    EXPECT_EQ(r.dtype(), dtypes[i]) << i;
    EXPECT_EQ(r.values(), Pattern(sizes[i], i)) << i;
  }
}

TEST(ResultsWriterTest, SameBytesAsProtobufForOneResult) {
  ResultsWriter writer;
  writer.Add({2, 4}, v1::FLOAT32, 32);
  writer.Allocate();
  const std::string p = Pattern(32, 9);
  std::memcpy(writer.values(0), p.data(), p.size());
  v1::PooledResponse expected;
  v1::LookupResult* r = expected.add_results();
  r->add_shape(2);
  r->add_shape(4);
  r->set_values(p);
  // protobuf writes fields in number order (shape, values, dtype); dtype
  // FLOAT32 is the default and not written, so the bytes are identical.
  EXPECT_EQ(Flatten(writer.Release()), expected.SerializeAsString());
}

// The code that fills an answer writes floats and float16s through typed
// pointers: every result's values must be aligned, whatever the headers
// before them (shapes and sizes that give every residue mod 4), and the
// padding that aligns them must parse away.
TEST(ResultsWriterTest, EveryResultsValuesAreAligned) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<size_t> sizes;
  for (int64_t a = 0; a < 40; ++a) {
    // Shape entries of 1 to 3 varint bytes and value sizes over the length
    // varints' boundaries (127/128, 16383/16384 bytes).
    shapes.push_back({a, a * 37 + 1, a % 3 == 0 ? int64_t{20000} : a});
    sizes.push_back(static_cast<size_t>(a % 5 == 0 ? 16380 + a : 110 + a * 2));
  }
  ResultsWriter writer;
  for (size_t i = 0; i < shapes.size(); ++i) writer.Add(shapes[i], v1::FLOAT16, sizes[i]);
  writer.Allocate();
  for (size_t i = 0; i < shapes.size(); ++i) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(writer.values(static_cast<int>(i)));
    EXPECT_EQ(at % ResultsWriter::kValuesAlignment, 0u) << "result " << i;
    const std::string p = Pattern(sizes[i], static_cast<int>(i));
    std::memcpy(writer.values(static_cast<int>(i)), p.data(), p.size());
  }
  v1::LookupResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(Flatten(writer.Release())));
  ASSERT_EQ(parsed.results_size(), static_cast<int>(shapes.size()));
  int padded = 0;
  for (int i = 0; i < parsed.results_size(); ++i) {
    const v1::LookupResult& r = parsed.results(i);
    EXPECT_EQ(std::vector<int64_t>(r.shape().begin(), r.shape().end()), shapes[i]) << i;
    EXPECT_EQ(r.values(), Pattern(sizes[i], i)) << i;
    // Only the padding field is unknown; re-serialised without it, the
    // entry is protobuf's own bytes.
    v1::LookupResult clean = r;
    if (!clean.GetReflection()->GetUnknownFields(clean).empty()) ++padded;
    clean.GetReflection()->MutableUnknownFields(&clean)->Clear();
    v1::LookupResult expected;
    expected.mutable_shape()->Assign(shapes[i].begin(), shapes[i].end());
    expected.set_values(Pattern(sizes[i], i));
    expected.set_dtype(v1::FLOAT16);
    EXPECT_EQ(clean.SerializeAsString(), expected.SerializeAsString()) << i;
  }
  EXPECT_GT(padded, 0) << "no entry needed padding: the test does not test it";
}

TEST(ResultsWriterTest, EmptyAnswerIsAnEmptyMessage) {
  ResultsWriter writer;
  writer.Allocate();
  EXPECT_EQ(Flatten(writer.Release()), "");
}

}  // namespace
}  // namespace embedserve
