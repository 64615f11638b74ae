#ifndef EMBEDSERVE_STORAGE_INTERNAL_META_CODEC_H_
#define EMBEDSERVE_STORAGE_INTERNAL_META_CODEC_H_

// The metadata record of storage/FORMAT.md (format 1): a table's
// StoredTable as UTF-8 text, one `key=value` line per field. Offline jobs
// write this text too, so decoding follows FORMAT.md's leniencies (any line
// order, unknown keys ignored, optional keys defaulted) and encoding must
// stay readable by every earlier reader. Pure functions, thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/row_store.h"

namespace embedserve::internal {

// Every field of `meta` but the vocabulary (stored under its own key,
// storage/internal/key_layout.h) and the rows family, one line each, ending
// in '\n'; doubles with 17 significant digits, so they decode to the same
// bits. An optional spec field that is unset (padding_idx, max_norm, eps)
// has no line, but an unset optimizer lr is written as 0.01. DecodeMeta of
// the text gives the same fields back (an unset lr as 0.01), and encoding
// that again gives the same text.
std::string EncodeMeta(const StoredTable& meta);

// The StoredTable that `text` describes (vocabulary empty). Lines are
// separated by '\n', empty ones skipped; a key repeated takes its last value.
// Every error is DataLoss (the record is corrupt), its message naming the
// line or the field:
// - a line without '=' ("metadata line '...' has no '='");
// - a field whose value does not parse ("metadata field <key>='<value>' is
//   invalid"): `format` other than 1, an integer or double that does not
//   parse, an `init` or `optimizer` name FORMAT.md does not list, a
//   `row_type` outside 0..3;
// - no `name` line ("metadata has no name").
// Not errors (as earlier readers accepted them): `frozen` and
// `scale_grad_by_freq` are true for "1" and false for any other value; the
// numbers are not range-checked (num_embeddings 0 when absent): a restore
// puts the spec through NormalizeTableSpec, which rejects what is out of
// range.
absl::StatusOr<StoredTable> DecodeMeta(absl::string_view text);

// The value stored under MetaKey(table): EncodeMeta(meta) followed by the
// line `family=<family>` naming the table's rows family.
std::string EncodeMetaRecord(const StoredTable& meta, absl::string_view family);

// The rows family a metadata record names: its first `family` line, or
// RowsFamily(table) when it has none (records an offline job wrote, or
// written before the line existed). Never fails: DecodeMeta judges the rest
// of the record.
std::string FamilyOfMetaRecord(absl::string_view record, absl::string_view table);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_META_CODEC_H_
