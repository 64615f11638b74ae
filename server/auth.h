#ifndef EMBEDSERVE_SERVER_AUTH_H_
#define EMBEDSERVE_SERVER_AUTH_H_

// Bearer tokens with roles. A client sends "authorization: Bearer <token>"
// as gRPC metadata; the service checks it in one place
// (EmbeddingServiceImpl::Authorize) against the tokens file given by
// --tokens_file.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedserve {

// Ordered: each role may do everything the roles before it may.
enum class Role {
  kReader = 0,   // lookups, describe, list
  kTrainer = 1,  // + pushes and optimizer state
  kAdmin = 2,    // everything: create, drop, assign, update, load, import, export, checkpoints
};

absl::string_view RoleName(Role role);

// The tokens a server accepts. Immutable once built; thread-safe.
//
// File format: one token a line, "<role> <token> [name]", where role is
// reader, trainer or admin, token is 16 to 256 printable ASCII characters
// without spaces, and the optional name says whose it is (logged instead of
// the token). '#' starts a comment; blank lines are ignored.
class TokenAuthorizer {
 public:
  // InvalidArgument naming the line (never the token) for a malformed line
  // or a repeated token; NotFound if the file cannot be read.
  static absl::StatusOr<std::shared_ptr<const TokenAuthorizer>> FromFile(const std::string& path);
  static absl::StatusOr<std::shared_ptr<const TokenAuthorizer>> FromText(absl::string_view text,
                                                                         absl::string_view source);

  struct Identity {
    Role role;
    std::string name;  // the token's name, or "token <line>"
  };
  // The identity of an "authorization" metadata value ("Bearer <token>").
  // Unauthenticated if it is empty, not a bearer token or unknown. Every
  // known token is compared in constant time, and all of them are compared
  // whatever matches, so timing tells nothing about the tokens. Messages
  // never contain the presented token.
  absl::StatusOr<Identity> Authenticate(absl::string_view authorization) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Role role;
    std::string token;
    std::string name;
  };
  std::vector<Entry> entries_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_AUTH_H_
