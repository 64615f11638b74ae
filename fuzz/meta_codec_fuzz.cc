// DecodeMeta (storage/FORMAT.md's metadata record; storage/internal/
// meta_codec.h) on arbitrary bytes. What decodes must round-trip: EncodeMeta
// of it decodes again, and encodes to the same bytes. The decoded spec is also put through
// NormalizeTableSpec, as a restore does, which must not crash whatever the numbers.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "core/table_spec.h"
#include "storage/internal/meta_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<embedserve::StoredTable> meta = embedserve::internal::DecodeMeta(text);
  if (!meta.ok()) return 0;
  const std::string encoded = embedserve::internal::EncodeMeta(*meta);
  absl::StatusOr<embedserve::StoredTable> again = embedserve::internal::DecodeMeta(encoded);
  if (!again.ok()) std::abort();
  if (embedserve::internal::EncodeMeta(*again) != encoded) std::abort();
  (void)embedserve::NormalizeTableSpec(meta->spec);
  return 0;
}
