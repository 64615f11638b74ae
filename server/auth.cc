#include "server/auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace embedserve {
namespace {

constexpr size_t kMinTokenLength = 16, kMaxTokenLength = 256;

// Equal contents, in time that depends only on the lengths' maximum.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kTrainer:
      return "trainer";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<std::shared_ptr<const TokenAuthorizer>> TokenAuthorizer::FromFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the tokens file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return FromText(text.str(), path);
}

absl::StatusOr<std::shared_ptr<const TokenAuthorizer>> TokenAuthorizer::FromText(
    absl::string_view text, absl::string_view source) {
  auto authorizer = std::shared_ptr<TokenAuthorizer>(new TokenAuthorizer());
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(source, " line ", line_no, ": ", why));
    };
    if (fields.size() < 2 || fields.size() > 3) {
      return bad("expected '<role> <token> [name]'");
    }
    Entry e;
    if (fields[0] == "reader") {
      e.role = Role::kReader;
    } else if (fields[0] == "trainer") {
      e.role = Role::kTrainer;
    } else if (fields[0] == "admin") {
      e.role = Role::kAdmin;
    } else {
      return bad("the role must be reader, trainer or admin");
    }
    e.token = std::string(fields[1]);
    if (e.token.size() < kMinTokenLength || e.token.size() > kMaxTokenLength) {
      return bad(absl::StrCat("a token must have ", kMinTokenLength, " to ", kMaxTokenLength,
                              " characters (e.g. openssl rand -hex 32)"));
    }
    for (char c : e.token) {
      if (c < '!' || c > '~') return bad("a token must be printable ASCII without spaces");
    }
    for (const auto& other : authorizer->entries_) {
      if (other.token == e.token) return bad("this token is listed twice");
    }
    e.name = fields.size() == 3 ? std::string(fields[2]) : absl::StrCat("token on line ", line_no);
    authorizer->entries_.push_back(std::move(e));
  }
  if (authorizer->entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " lists no tokens"));
  }
  return authorizer;
}

absl::StatusOr<TokenAuthorizer::Identity> TokenAuthorizer::Authenticate(
    absl::string_view authorization) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "no token: send 'authorization: Bearer <token>' metadata (--token_file in the clients)");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError("the authorization metadata is not 'Bearer <token>'");
  }
  const absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {  // no early exit: every token is compared
    if (ConstantTimeEquals(e.token, token)) found = &e;
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown token");
  return Identity{found->role, found->name};
}

}  // namespace embedserve
