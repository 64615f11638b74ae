// The wire API's enum names are core's names upper-cased, and the server's
// conversions map each wire value to the core value of the same name. The CLI
// parses names through the wire enums (embedctl does not link the engine), so
// this test keeps the CLI, the wire and storage on one set of names.

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "core/enum_names.h"
#include "embedserve/v1/embedserve.pb.h"
#include "gtest/gtest.h"
#include "server/conversions.h"

namespace embedserve {
namespace {

std::string Upper(absl::string_view name) { return absl::AsciiStrToUpper(name); }

TEST(EnumNamesWireTest, OptimizerKinds) {
  EXPECT_EQ(v1::OptimizerSpec::Kind_ARRAYSIZE, static_cast<int>(OptimizerKindNames().size()));
  for (const auto& n : OptimizerKindNames()) {
    v1::OptimizerSpec::Kind wire;
    ASSERT_TRUE(v1::OptimizerSpec::Kind_Parse(Upper(n.name), &wire)) << n.name;
    v1::TableSpec proto;
    proto.mutable_optimizer()->set_kind(wire);
    absl::StatusOr<TableSpec> spec = SpecFromProto(proto);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->optimizer.kind, n.value) << n.name;
    v1::TableSpec back;
    SpecToProto(*spec, &back);
    EXPECT_EQ(back.optimizer().kind(), wire) << n.name;
  }
}

TEST(EnumNamesWireTest, InitKinds) {
  EXPECT_EQ(v1::Initializer::Kind_ARRAYSIZE, static_cast<int>(InitKindNames().size()));
  for (const auto& n : InitKindNames()) {
    v1::Initializer::Kind wire;
    ASSERT_TRUE(v1::Initializer::Kind_Parse(Upper(n.name), &wire)) << n.name;
    v1::TableSpec proto;
    proto.mutable_initializer()->set_kind(wire);
    absl::StatusOr<TableSpec> spec = SpecFromProto(proto);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->initializer.kind, n.value) << n.name;
  }
}

TEST(EnumNamesWireTest, RowTypes) {
  EXPECT_EQ(v1::ValueType_ARRAYSIZE, static_cast<int>(RowTypeNames().size()));
  for (const auto& n : RowTypeNames()) {
    v1::ValueType wire;
    ASSERT_TRUE(v1::ValueType_Parse(Upper(n.name), &wire)) << n.name;
    v1::TableSpec proto;
    proto.set_row_type(wire);
    absl::StatusOr<TableSpec> spec = SpecFromProto(proto);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->row_type, n.value) << n.name;
  }
}

TEST(EnumNamesWireTest, PoolingModes) {
  EXPECT_EQ(v1::PoolingMode_ARRAYSIZE, static_cast<int>(PoolingModeNames().size()));
  for (const auto& n : PoolingModeNames()) {
    v1::PoolingMode wire;
    ASSERT_TRUE(v1::PoolingMode_Parse(Upper(n.name), &wire)) << n.name;
    absl::StatusOr<PoolingMode> mode = PoolingModeFromProto(wire);
    ASSERT_TRUE(mode.ok()) << mode.status();
    EXPECT_EQ(*mode, n.value) << n.name;
  }
}

}  // namespace
}  // namespace embedserve
