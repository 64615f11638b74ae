// The metadata record of storage/FORMAT.md: the exact text written (records
// on disk must stay readable), round trips, what readers tolerate, and every
// kind of corrupt record.
#include "storage/internal/meta_codec.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/table_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

StoredTable Adam() {
  StoredTable m;
  TableSpec& s = m.spec;
  s.name = "a.b-c";
  s.num_embeddings = 10;
  s.embedding_dim = 3;
  s.padding_idx = 1;
  s.max_norm = 3.5;
  s.frozen = true;
  s.scale_grad_by_freq = true;
  s.num_shards = 4;
  s.initializer.kind = InitKind::kUniform;
  s.initializer.a = -0.1;
  s.initializer.b = 0.1;
  s.initializer.seed = 77;
  s.optimizer.kind = OptimizerKind::kSparseAdam;
  s.optimizer.lr = 0.25;
  s.optimizer.eps = 1e-9;
  s.row_type = RowType::kBFloat16;
  m.version = 12;
  m.step = 5;
  m.floats_per_record = 9;
  return m;
}

// The bytes on disk. A change here is a format change: FORMAT.md's readers
// (earlier servers, offline jobs) must still read what is written.
TEST(MetaCodecTest, EncodesTheDocumentedTextExactly) {
  EXPECT_EQ(EncodeMeta(Adam()),
            "format=1\n"
            "name=a.b-c\n"
            "num_embeddings=10\n"
            "embedding_dim=3\n"
            "padding_idx=1\n"
            "max_norm=3.5\n"
            "norm_type=2\n"
            "frozen=1\n"
            "scale_grad_by_freq=1\n"
            "num_shards=4\n"
            "init=uniform\n"
            "init_mean=0\n"
            "init_std=1\n"
            "init_a=-0.10000000000000001\n"
            "init_b=0.10000000000000001\n"
            "init_value=0\n"
            "init_seed=77\n"
            "optimizer=sparse_adam\n"
            "lr=0.25\n"
            "lr_decay=0\n"
            "initial_accumulator_value=0\n"
            "eps=1.0000000000000001e-09\n"
            "beta1=0.90000000000000002\n"
            "beta2=0.999\n"
            "version=12\n"
            "step=5\n"
            "floats_per_record=9\n"
            "row_type=2\n");
}

// `field=name` is how `kind` is written and read (FORMAT.md's names);
// set(m, kind) puts the kind into a table, get(m) reads it back.
template <typename Kind, typename Set, typename Get>
void ExpectNamed(const std::string& field, Kind kind, const std::string& name, Set set, Get get) {
  StoredTable m = Adam();
  set(m, kind);
  EXPECT_THAT(EncodeMeta(m), HasSubstr("\n" + field + "=" + name + "\n"));
  auto back = DecodeMeta("name=t\n" + field + "=" + name + "\n");
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(get(*back), kind) << name;
}

TEST(MetaCodecTest, EnumsAreWrittenAndReadByTheirDocumentedNames) {
  const auto init = [](const std::string& name, InitKind kind) {
    ExpectNamed(
        "init", kind, name, [](StoredTable& m, InitKind k) { m.spec.initializer.kind = k; },
        [](const StoredTable& m) { return m.spec.initializer.kind; });
  };
  init("normal", InitKind::kNormal);
  init("uniform", InitKind::kUniform);
  init("zeros", InitKind::kZeros);
  init("constant", InitKind::kConstant);
  init("xavier_uniform", InitKind::kXavierUniform);
  const auto optimizer = [](const std::string& name, OptimizerKind kind) {
    ExpectNamed(
        "optimizer", kind, name, [](StoredTable& m, OptimizerKind k) { m.spec.optimizer.kind = k; },
        [](const StoredTable& m) { return m.spec.optimizer.kind; });
  };
  optimizer("sgd", OptimizerKind::kSgd);
  optimizer("adagrad", OptimizerKind::kAdagrad);
  optimizer("rowwise_adagrad", OptimizerKind::kRowWiseAdagrad);
  optimizer("sparse_adam", OptimizerKind::kSparseAdam);
}

TEST(MetaCodecTest, UnsetOptionalFieldsHaveNoLineAndLrIsWrittenAsDefault) {
  StoredTable m;
  m.spec.name = "t";
  m.vocabulary = {"never", "encoded"};
  const std::string text = EncodeMeta(m);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("padding_idx=")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("max_norm=")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("eps=")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("never")));
  EXPECT_THAT(text, HasSubstr("\nlr=0.01\n"));
  auto back = DecodeMeta(text);
  ASSERT_THAT(back, IsOk());
  EXPECT_FALSE(back->spec.padding_idx.has_value());
  EXPECT_FALSE(back->spec.max_norm.has_value());
  EXPECT_FALSE(back->spec.optimizer.eps.has_value());
  EXPECT_EQ(back->spec.optimizer.lr, 0.01);
  EXPECT_TRUE(back->vocabulary.empty());
}

// Every enum value, and doubles that only 17 digits carry exactly.
TEST(MetaCodecTest, RoundTripsEveryKindAndExactDoubles) {
  std::vector<StoredTable> tables;
  for (OptimizerKind o : {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                          OptimizerKind::kRowWiseAdagrad, OptimizerKind::kSparseAdam}) {
    for (InitKind i : {InitKind::kNormal, InitKind::kUniform, InitKind::kZeros, InitKind::kConstant,
                       InitKind::kXavierUniform}) {
      for (RowType r :
           {RowType::kFloat32, RowType::kFloat16, RowType::kBFloat16, RowType::kInt8Rowwise}) {
        StoredTable m = Adam();
        m.spec.optimizer.kind = o;
        m.spec.initializer.kind = i;
        m.spec.row_type = r;
        tables.push_back(m);
      }
    }
  }
  StoredTable odd = Adam();
  odd.spec.max_norm = 0.1 + 0.2;
  odd.spec.norm_type = std::numeric_limits<double>::infinity();
  odd.spec.optimizer.lr = 1e-300;
  odd.spec.optimizer.lr_decay = std::numeric_limits<double>::denorm_min();
  odd.spec.initializer.mean = -1.0 / 3;
  odd.spec.initializer.seed = std::numeric_limits<uint64_t>::max();
  odd.spec.num_shards = std::numeric_limits<int32_t>::max();
  odd.version = std::numeric_limits<int64_t>::max();
  odd.step = std::numeric_limits<int64_t>::min();
  tables.push_back(odd);
  for (const StoredTable& m : tables) {
    const std::string text = EncodeMeta(m);
    auto back = DecodeMeta(text);
    ASSERT_THAT(back, IsOk()) << text;
    EXPECT_EQ(EncodeMeta(*back), text);
    EXPECT_EQ(back->spec.optimizer.kind, m.spec.optimizer.kind);
    EXPECT_EQ(back->spec.initializer.kind, m.spec.initializer.kind);
    EXPECT_EQ(back->spec.row_type, m.spec.row_type);
    EXPECT_EQ(back->spec.max_norm, m.spec.max_norm);  // bit-exact
    EXPECT_EQ(back->spec.norm_type, m.spec.norm_type);
    EXPECT_EQ(back->spec.optimizer.lr, m.spec.optimizer.lr);
    EXPECT_EQ(back->spec.optimizer.lr_decay, m.spec.optimizer.lr_decay);
    EXPECT_EQ(back->spec.initializer.mean, m.spec.initializer.mean);
    EXPECT_EQ(back->spec.initializer.seed, m.spec.initializer.seed);
    EXPECT_EQ(back->spec.num_shards, m.spec.num_shards);
    EXPECT_EQ(back->spec.padding_idx, m.spec.padding_idx);
    EXPECT_EQ(back->spec.frozen, m.spec.frozen);
    EXPECT_EQ(back->version, m.version);
    EXPECT_EQ(back->step, m.step);
    EXPECT_EQ(back->floats_per_record, m.floats_per_record);
  }
}

// FORMAT.md's example, as an offline job writes it: any order, unknown keys,
// blank lines, optional keys absent.
TEST(MetaCodecTest, ReadsWhatAnOfflineJobWrites) {
  auto m = DecodeMeta(
      "lr=0.01\n\nname=item\nformat=1\nsomething_new=ignored\nnum_embeddings=3\n"
      "embedding_dim=4\nfloats_per_record=4\noptimizer=sgd\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->spec.name, "item");
  EXPECT_EQ(m->spec.num_embeddings, 3);
  EXPECT_EQ(m->spec.embedding_dim, 4);
  EXPECT_EQ(m->floats_per_record, 4);
  EXPECT_EQ(m->spec.optimizer.kind, OptimizerKind::kSgd);
  EXPECT_EQ(m->spec.optimizer.lr, 0.01);
  EXPECT_EQ(m->spec.norm_type, 2.0);
  EXPECT_EQ(m->spec.row_type, RowType::kFloat32);
  EXPECT_EQ(m->version, 0);
  EXPECT_EQ(m->step, 0);
  EXPECT_FALSE(m->spec.padding_idx.has_value());
  EXPECT_THAT(NormalizeTableSpec(m->spec), IsOk());
}

TEST(MetaCodecTest, ARepeatedKeyTakesItsLastValue) {
  auto m = DecodeMeta("name=a\nversion=1\nname=b\nversion=2\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->spec.name, "b");
  EXPECT_EQ(m->version, 2);
}

// As earlier readers did: only "1" is true.
TEST(MetaCodecTest, FlagsAreTrueOnlyForOne) {
  auto m = DecodeMeta("name=t\nfrozen=1\nscale_grad_by_freq=1\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_TRUE(m->spec.frozen);
  EXPECT_TRUE(m->spec.scale_grad_by_freq);
  m = DecodeMeta("name=t\nfrozen=true\nscale_grad_by_freq=0\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_FALSE(m->spec.frozen);
  EXPECT_FALSE(m->spec.scale_grad_by_freq);
}

struct Corrupt {
  const char* text;
  const char* names;  // what the message must name
};

TEST(MetaCodecTest, EveryCorruptRecordIsDataLossNamingWhatIsWrong) {
  const Corrupt cases[] = {
      {"", "metadata has no name"},
      {"format=1\nnum_embeddings=3\n", "metadata has no name"},
      {"name=t\njunk\n", "metadata line 'junk' has no '='"},
      {"format=2\nname=t\n", "metadata field format='2' is invalid"},
      {"format=\nname=t\n", "metadata field format='' is invalid"},
      {"name=t\nnum_embeddings=abc\n", "metadata field num_embeddings='abc' is invalid"},
      {"name=t\nembedding_dim=1.5\n", "metadata field embedding_dim='1.5' is invalid"},
      {"name=t\nembedding_dim=99999999999999999999\n", "field embedding_dim="},
      {"name=t\npadding_idx=x\n", "metadata field padding_idx='x' is invalid"},
      {"name=t\nmax_norm=big\n", "metadata field max_norm='big' is invalid"},
      {"name=t\nnorm_type=\n", "metadata field norm_type='' is invalid"},
      {"name=t\nnum_shards=4294967296\n", "metadata field num_shards='4294967296' is invalid"},
      {"name=t\ninit=gaussian\n", "metadata field init='gaussian' is invalid"},
      {"name=t\ninit=Normal\n", "metadata field init='Normal' is invalid"},
      {"name=t\ninit_mean=m\n", "metadata field init_mean='m' is invalid"},
      {"name=t\ninit_std=s\n", "metadata field init_std='s' is invalid"},
      {"name=t\ninit_a=a\n", "metadata field init_a='a' is invalid"},
      {"name=t\ninit_b=b\n", "metadata field init_b='b' is invalid"},
      {"name=t\ninit_value=v\n", "metadata field init_value='v' is invalid"},
      {"name=t\ninit_seed=-1\n", "metadata field init_seed='-1' is invalid"},
      {"name=t\noptimizer=adam\n", "metadata field optimizer='adam' is invalid"},
      {"name=t\nlr=fast\n", "metadata field lr='fast' is invalid"},
      {"name=t\nlr_decay=x\n", "metadata field lr_decay='x' is invalid"},
      {"name=t\ninitial_accumulator_value=x\n", "field initial_accumulator_value='x'"},
      {"name=t\neps=x\n", "metadata field eps='x' is invalid"},
      {"name=t\nbeta1=x\n", "metadata field beta1='x' is invalid"},
      {"name=t\nbeta2=x\n", "metadata field beta2='x' is invalid"},
      {"name=t\nversion=1e3\n", "metadata field version='1e3' is invalid"},
      {"name=t\nstep=x\n", "metadata field step='x' is invalid"},
      {"name=t\nfloats_per_record=\n", "metadata field floats_per_record='' is invalid"},
      {"name=t\nrow_type=4\n", "metadata field row_type='4' is invalid"},
      {"name=t\nrow_type=-1\n", "metadata field row_type='-1' is invalid"},
      {"name=t\nrow_type=float16\n", "metadata field row_type='float16' is invalid"},
  };
  for (const Corrupt& c : cases) {
    EXPECT_THAT(DecodeMeta(c.text), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.names)))
        << c.text;
  }
}

TEST(MetaCodecTest, RecordAddsTheFamilyLineThatDecodeMetaIgnores) {
  const StoredTable m = Adam();
  const std::string record = EncodeMetaRecord(m, "rows/a.b-c#42");
  EXPECT_EQ(record, EncodeMeta(m) + "family=rows/a.b-c#42\n");
  EXPECT_EQ(FamilyOfMetaRecord(record, "a.b-c"), "rows/a.b-c#42");
  auto back = DecodeMeta(record);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(EncodeMeta(*back), EncodeMeta(m));
}

TEST(MetaCodecTest, ARecordWithoutFamilyLineNamesTheDefaultFamily) {
  EXPECT_EQ(FamilyOfMetaRecord(EncodeMeta(Adam()), "a.b-c"), "rows/a.b-c");
  EXPECT_EQ(FamilyOfMetaRecord("", "t"), "rows/t");
  EXPECT_EQ(FamilyOfMetaRecord("name=t\nfamily=rows/t#1\nfamily=rows/t#2\n", "t"), "rows/t#1");
}

// The initializer's generator (core/initializer.h): tables made before the
// field (no line) were filled by generator 1 and must read as 1; from 2 on
// it is written, and read back.
TEST(MetaCodecTest, GeneratorIsWrittenFromTwoOnAndAnAbsentOneReadsAsOne) {
  auto old = DecodeMeta("name=t\ninit=normal\ninit_seed=5\n");
  ASSERT_THAT(old, IsOk());
  EXPECT_EQ(old->spec.initializer.generator, 1u);
  StoredTable m = Adam();
  m.spec.initializer.generator = 1;
  EXPECT_THAT(EncodeMeta(m), Not(HasSubstr("init_generator")));
  m.spec.initializer.generator = 2;
  const std::string text = EncodeMeta(m);
  EXPECT_THAT(text, HasSubstr("\ninit_seed=77\ninit_generator=2\n"));
  auto back = DecodeMeta(text);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->spec.initializer.generator, 2u);
  EXPECT_EQ(EncodeMeta(*back), text);
  EXPECT_THAT(DecodeMeta("name=t\ninit_generator=0\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("init_generator='0'")));
  EXPECT_THAT(DecodeMeta("name=t\ninit_generator=two\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("init_generator")));
}

// A dynamic table's event counters (DescribeTable's rows admitted, evicted,
// ...): written with its snapshot, read back; metadata from before them
// has no line and reads as none.
TEST(MetaCodecTest, DynamicCountersRoundTripAndAreAbsentBefore) {
  StoredTable m = Adam();
  m.spec.dynamic.emplace();
  m.dynamic_rows = 3;
  EXPECT_THAT(EncodeMeta(m), Not(HasSubstr("dynamic_counters")));
  m.dynamic_counters = {10, 4, 3, 0, 7, 1};
  const std::string text = EncodeMeta(m);
  EXPECT_THAT(text, HasSubstr("\ndynamic_counters=10,4,3,0,7,1\n"));
  auto back = DecodeMeta(text);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->dynamic_counters, m.dynamic_counters);
  EXPECT_EQ(EncodeMeta(*back), text);
  auto old = DecodeMeta("name=t\ndynamic=1\ndynamic_rows=0\n");
  ASSERT_THAT(old, IsOk());
  EXPECT_TRUE(old->dynamic_counters.empty());
  EXPECT_THAT(DecodeMeta("name=t\ndynamic=1\ndynamic_counters=1,x\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("dynamic_counters='1,x'")));
  EXPECT_THAT(DecodeMeta("name=t\ndynamic=1\ndynamic_counters=1,-2\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("dynamic_counters")));
}

}  // namespace
}  // namespace embedserve::internal
