// Prints core/enum_names.h's tables, one "<enum> <name>" line per value in
// declaration order, for tests in other languages (the Python client's names
// are checked against this output by tests/client/python_enum_names_test.py).

#include <iostream>

#include "absl/types/span.h"
#include "core/enum_names.h"

namespace {

template <typename Enum>
void Print(const char* what, absl::Span<const embedserve::EnumName<Enum>> names) {
  for (const auto& n : names) std::cout << what << " " << n.name << "\n";
}

}  // namespace

int main() {
  Print("optimizer", embedserve::OptimizerKindNames());
  Print("init", embedserve::InitKindNames());
  Print("row_type", embedserve::RowTypeNames());
  Print("pooling_mode", embedserve::PoolingModeNames());
  Print("simd_level", embedserve::SimdLevelNames());
  return 0;
}
