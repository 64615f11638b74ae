#include "server/table_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "embedserve/v1/embedserve.pb.h"
#include "server/conversions.h"

namespace embedserve {
namespace {

class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty())
      error_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

absl::StatusOr<std::vector<TableSpec>> LoadTableConfig(absl::string_view path) {
  std::ifstream in{std::string(path)};
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open config file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  v1::ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text.str(), &config)) {
    return absl::InvalidArgumentError(absl::StrCat("config file '", path, "': ", errors.error()));
  }
  std::vector<TableSpec> specs;
  for (const v1::TableSpec& proto : config.tables()) {
    absl::StatusOr<TableSpec> spec = SpecFromProto(proto);
    if (spec.ok()) spec = NormalizeTableSpec(*spec);
    if (!spec.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config file '", path, "', table '",
                                                     proto.name(), "': ", spec.status().message()));
    }
    specs.push_back(*std::move(spec));
  }
  return specs;
}

}  // namespace embedserve
