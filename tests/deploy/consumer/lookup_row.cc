// lookup_row ADDRESS TABLE ID: prints the row as "v0 v1 ..." (%.9g), exit 0;
// any error: the status on stderr, exit 1. Built only against the installed
// client package.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "client/embedding_client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: lookup_row ADDRESS TABLE ID\n");
    return 2;
  }
  auto client = embedserve::EmbeddingClient::Connect(argv[1], embedserve::ClientOptions{});
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  const int64_t id = std::strtoll(argv[3], nullptr, 10);
  auto row = (*client)->Lookup(argv[2], {id});
  if (!row.ok()) {
    std::fprintf(stderr, "%s\n", row.status().ToString().c_str());
    return 1;
  }
  std::string line;
  char buf[32];
  for (float v : row->values) {
    std::snprintf(buf, sizeof buf, "%s%.9g", line.empty() ? "" : " ", v);
    line += buf;
  }
  std::printf("%s\n", line.c_str());
  return 0;
}
