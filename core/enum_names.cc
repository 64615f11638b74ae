#include "core/enum_names.h"

namespace embedserve {
namespace {

// Storage's on-disk names (storage/FORMAT.md): never rename one.
constexpr EnumName<OptimizerKind> kOptimizerKinds[] = {
    {OptimizerKind::kSgd, "sgd"},
    {OptimizerKind::kAdagrad, "adagrad"},
    {OptimizerKind::kRowWiseAdagrad, "rowwise_adagrad"},
    {OptimizerKind::kSparseAdam, "sparse_adam"},
};
// Storage's on-disk names (storage/FORMAT.md): never rename one.
constexpr EnumName<InitKind> kInitKinds[] = {
    {InitKind::kNormal, "normal"},
    {InitKind::kUniform, "uniform"},
    {InitKind::kZeros, "zeros"},
    {InitKind::kConstant, "constant"},
    {InitKind::kXavierUniform, "xavier_uniform"},
};
constexpr EnumName<RowType> kRowTypes[] = {
    {RowType::kFloat32, "float32"},
    {RowType::kFloat16, "float16"},
    {RowType::kBFloat16, "bfloat16"},
    {RowType::kInt8Rowwise, "int8_rowwise"},
};
constexpr EnumName<PoolingMode> kPoolingModes[] = {
    {PoolingMode::kSum, "sum"},
    {PoolingMode::kMean, "mean"},
    {PoolingMode::kMax, "max"},
};
constexpr EnumName<SimdLevel> kSimdLevels[] = {
    {SimdLevel::kScalar, "scalar"},
    {SimdLevel::kAvx2, "avx2"},
    {SimdLevel::kAvx512, "avx512"},
};

template <typename Enum>
absl::string_view NameIn(absl::Span<const EnumName<Enum>> names, Enum value) {
  for (const EnumName<Enum>& n : names) {
    if (n.value == value) return n.name;
  }
  return "unknown";
}

template <typename Enum>
std::optional<Enum> ParseIn(absl::Span<const EnumName<Enum>> names, absl::string_view name) {
  for (const EnumName<Enum>& n : names) {
    if (n.name == name) return n.value;
  }
  return std::nullopt;
}

}  // namespace

absl::Span<const EnumName<OptimizerKind>> OptimizerKindNames() { return kOptimizerKinds; }
absl::Span<const EnumName<InitKind>> InitKindNames() { return kInitKinds; }
absl::Span<const EnumName<RowType>> RowTypeNames() { return kRowTypes; }
absl::Span<const EnumName<PoolingMode>> PoolingModeNames() { return kPoolingModes; }
absl::Span<const EnumName<SimdLevel>> SimdLevelNames() { return kSimdLevels; }

absl::string_view Name(OptimizerKind kind) { return NameIn(OptimizerKindNames(), kind); }
absl::string_view Name(InitKind kind) { return NameIn(InitKindNames(), kind); }
absl::string_view Name(RowType type) { return NameIn(RowTypeNames(), type); }
absl::string_view Name(PoolingMode mode) { return NameIn(PoolingModeNames(), mode); }
absl::string_view Name(SimdLevel level) { return NameIn(SimdLevelNames(), level); }

std::optional<OptimizerKind> ParseOptimizerKind(absl::string_view name) {
  return ParseIn(OptimizerKindNames(), name);
}
std::optional<InitKind> ParseInitKind(absl::string_view name) {
  return ParseIn(InitKindNames(), name);
}
std::optional<RowType> ParseRowType(absl::string_view name) {
  return ParseIn(RowTypeNames(), name);
}
std::optional<PoolingMode> ParsePoolingMode(absl::string_view name) {
  return ParseIn(PoolingModeNames(), name);
}
std::optional<SimdLevel> ParseSimdLevel(absl::string_view name) {
  return ParseIn(SimdLevelNames(), name);
}

}  // namespace embedserve
