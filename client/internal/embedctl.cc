#include "client/internal/embedctl.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/embedding_client.h"
#include "client/internal/command_table.h"
#include "client/internal/embedctl_requests.h"
#include "client/internal/npy.h"
#include "client/internal/progress.h"
#include "client/internal/text_output.h"

namespace embedserve::internal {
namespace {

// What a command runs with: the options, the client, its positional
// argument (TABLE, NAME or SERVICE; "" if none) and the lists, parsed.
struct Call : RowLists {
  explicit Call(const EmbedctlOptions& options) : o(options) {}
  const EmbedctlOptions& o;
  EmbeddingClient* client = nullptr;
  std::string arg;
};
using Handler = int (*)(Call&);

int Fail(const absl::Status& s) {
  std::cerr << "embedctl: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return 1;
}

// The exit status of a call: 0 after `print(*answer)`, else Fail.
template <typename T, typename Print>
int Answer(const absl::StatusOr<T>& answer, Print print) {
  if (!answer.ok()) return Fail(answer.status());
  print(*answer);
  return 0;
}

// Prints "<verb> table ..." (a table's info after a change).
auto InfoAfter(const char* verb) {
  return [verb](const v1::TableInfo& info) {
    std::cout << verb << " ";
    PrintTableInfo(std::cout, info);
  };
}

// Prints a tensor whose rows are the ids (lookups, optimizer state).
void PrintIdRows(const Tensor& t, const Call& c) {
  PrintRows(
      std::cout, t, [&](int64_t r) { return absl::StrCat("row ", r, " (id ", c.ids[r], ")"); },
      c.o.max_values);
}

// --- The commands, in help order.

int Health(Call& c) {
  auto health = c.client->CheckHealth(c.arg);
  if (!health.ok()) return Fail(health.status());
  std::cout << *health << "\n";
  return *health == "SERVING" ? 0 : 1;
}

int List(Call& c) {
  return Answer(c.client->ListTables(), [](const std::vector<v1::TableInfo>& tables) {
    PrintTableList(std::cout, tables);
  });
}

int Describe(Call& c) {
  return Answer(c.client->DescribeTable(c.arg),
                [](const v1::TableInfo& info) { PrintTableInfo(std::cout, info); });
}

int Create(Call& c) {
  v1::TableSpec spec;
  std::vector<float> values;
  if (!MakeTableSpec(c.o, c.arg, &spec, &values)) return 2;
  return Answer(c.client->CreateTable(spec, values), InfoAfter("created"));
}

int Drop(Call& c) {
  if (absl::Status s = c.client->DropTable(c.arg); !s.ok()) return Fail(s);
  std::cout << "dropped " << c.arg << "\n";
  return 0;
}

int Lookup(Call& c) {
  v1::ValueType output = v1::FLOAT32;
  if (c.o.output == "float16") {
    output = v1::FLOAT16;
  } else if (c.o.output != "float32") {
    return UsageError("--output must be float32 or float16, got " + c.o.output);
  }
  if (c.o.words.empty()) {
    return Answer(c.client->Lookup(c.arg, c.ids, c.shape, output),
                  [&](const Tensor& t) { PrintIdRows(t, c); });
  }
  const std::vector<std::string> words = absl::StrSplit(c.o.words, ',');
  return Answer(c.client->LookupWords(c.arg, words, output), [&](const Tensor& t) {
    PrintRows(
        std::cout, t, [&](int64_t r) { return words[r]; }, c.o.max_values);
  });
}

int Load(Call& c) {
  v1::LoadTableRequest req;
  if (!MakeLoadRequest(c.o, c.arg, &req)) return 2;
  if (!SetOptimizer(c.o, /*creating=*/true, req.mutable_optimizer())) return 2;
  return Answer(c.client->LoadTable(req), InfoAfter("loaded"));
}

int LookupPooled(Call& c) {
  BagQuery q;
  q.table = c.arg;
  q.ids = c.ids;
  q.offsets = c.offsets;
  q.shape = c.shape;
  q.include_last_offset = c.o.include_last_offset;
  q.per_sample_weights = c.weights;
  const std::string mode = absl::AsciiStrToUpper(c.o.mode);
  if (!v1::PoolingMode_Parse(mode, &q.mode)) return UsageError("unknown --mode " + mode);
  return Answer(c.client->LookupPooled(q), [&](const Tensor& t) {
    PrintRows(
        std::cout, t, [](int64_t r) { return absl::StrCat("bag ", r); }, c.o.max_values);
  });
}

int Import(Call& c) {
  std::ifstream in(c.o.path, std::ios::binary);
  if (!in) return UsageError("cannot open --path=" + c.o.path);
  v1::LoadTableRequest req;
  if (!MakeLoadRequest(c.o, c.arg, &req)) return 2;
  Progress progress("import " + c.o.path, "bytes");
  auto info =
      c.client->ImportTable(req, in, [&](int64_t n, int64_t of) { progress.Update(n, of); });
  progress.Done();
  return Answer(info, InfoAfter("imported"));
}

// Where `embedctl export --out=FILE.npy` puts a dynamic table's ids:
// FILE.ids.npy (any other name gets ".ids.npy" appended).
std::string IdsPathFor(const std::string& out) {
  constexpr absl::string_view kNpy = ".npy";
  const absl::string_view stem =
      absl::EndsWith(out, kNpy) ? absl::string_view(out).substr(0, out.size() - kNpy.size()) : out;
  return absl::StrCat(stem, ".ids.npy");
}

// Writes an export to a .npy file of rows (renamed over --out when
// complete) and, for a dynamic table, its ids to an int64 .npy beside it
// (IdsPathFor), row i of the one being the id at i of the other.
class NpyExport final : public ExportSink {
 public:
  NpyExport(NpyFileWriter& file, std::string ids_path)
      : file_(file), ids_path_(std::move(ids_path)) {}
  absl::Status Begin(const v1::TableInfo& table) override {
    if (table.spec().dynamic()) {
      absl::StatusOr<std::unique_ptr<NpyFileWriter>> ids = NpyFileWriter::Create(ids_path_);
      if (!ids.ok()) return ids.status();
      ids_ = *std::move(ids);
      if (absl::Status s = ids_->WriteInt64VectorHeader(table.num_rows()); !s.ok()) return s;
    }
    return file_.WriteHeader(table.num_rows(), table.spec().embedding_dim());
  }
  absl::Status Ids(int64_t, absl::Span<const int64_t> ids) override {
    // Little-endian int64, as the header says (the hosts we build for are).
    return ids_->Append(
        absl::string_view(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int64_t)));
  }
  absl::Status Rows(int64_t, int64_t num_rows, absl::string_view values) override {
    rows_ += num_rows;
    return file_.Append(values);
  }
  // Puts the files in place: the ids first, so that new rows never sit
  // beside stale ids.
  absl::Status Commit() {
    if (ids_ != nullptr) {
      if (absl::Status s = ids_->Commit(); !s.ok()) return s;
    }
    return file_.Commit();
  }
  int64_t rows() const { return rows_; }
  bool has_ids() const { return ids_ != nullptr; }

 private:
  NpyFileWriter& file_;
  const std::string ids_path_;
  std::unique_ptr<NpyFileWriter> ids_;  // dynamic tables only
  int64_t rows_ = 0;
};

int Export(Call& c) {
  if (c.o.out.empty()) return UsageError("export needs --out=FILE.npy");
  auto file = NpyFileWriter::Create(c.o.out);
  if (!file.ok()) return UsageError(file.status().message());
  const std::string ids_path = IdsPathFor(c.o.out);
  NpyExport sink(**file, ids_path);
  Progress progress("export " + c.arg, "rows");
  absl::Status s =
      c.client->ExportTable(c.arg, sink, [&](int64_t n, int64_t of) { progress.Update(n, of); });
  progress.Done();
  if (s.ok()) s = sink.Commit();
  if (!s.ok()) return Fail(s);
  std::cout << "exported " << sink.rows() << " rows of " << c.arg << " to " << c.o.out
            << (sink.has_ids() ? absl::StrCat(" (their ids in ", ids_path, ")") : "") << "\n";
  return 0;
}

// Rows assigned per AssignRows call: about 8 MiB of values.
int64_t ImportChunkRows(int64_t dim) { return std::max<int64_t>(1, (8 << 20) / (dim * 4)); }

// Assigns the rows of a float32 .npy (an export) to the ids beside it, a
// chunk at a time, into an existing table.
int ImportRows(Call& c) {
  if (c.o.path.empty()) return UsageError("import-rows needs --path=FILE.npy");
  auto rows = NpyFileReader::Open(c.o.path, NpyFileReader::Kind::kFloat32Matrix);
  if (!rows.ok()) return UsageError(rows.status().message());
  const std::string ids_path = c.o.ids_path.empty() ? IdsPathFor(c.o.path) : c.o.ids_path;
  std::unique_ptr<NpyFileReader> ids;
  if (!c.o.ids_path.empty() || std::ifstream(ids_path).good()) {
    auto opened = NpyFileReader::Open(ids_path, NpyFileReader::Kind::kInt64Vector);
    if (!opened.ok()) return UsageError(opened.status().message());
    ids = *std::move(opened);
    if (ids->rows() != (*rows)->rows()) {
      return UsageError(absl::StrCat(ids_path, " holds ", ids->rows(), " ids for the ",
                                     (*rows)->rows(), " rows of ", c.o.path));
    }
  }
  auto info = c.client->DescribeTable(c.arg);
  if (!info.ok()) return Fail(info.status());
  const int64_t dim = info->spec().embedding_dim(), n = (*rows)->rows();
  if ((*rows)->cols() != dim) {
    return UsageError(absl::StrCat(c.o.path, " has rows of ", (*rows)->cols(), " values; table ",
                                   c.arg, " has embedding_dim ", dim));
  }
  if (ids == nullptr && info->spec().dynamic()) {
    return UsageError(absl::StrCat("table ", c.arg, " is dynamic: its rows need their ids (",
                                   ids_path, " is not there; give --ids_path)"));
  }
  const int64_t chunk = ImportChunkRows(dim);
  std::vector<int64_t> chunk_ids;
  std::vector<float> values;
  int64_t version = info->version(), done = 0;
  Progress progress("import-rows " + c.o.path, "rows");
  for (; done < n; done += chunk_ids.size()) {
    const int64_t m = std::min(chunk, n - done);
    chunk_ids.resize(m);
    values.resize(m * dim);
    absl::Status s;
    if (ids != nullptr) {
      s = ids->Read(m, chunk_ids.data());
    } else {
      for (int64_t i = 0; i < m; ++i) chunk_ids[i] = done + i;
    }
    if (s.ok()) s = (*rows)->Read(m, values.data());
    absl::StatusOr<int64_t> assigned =
        s.ok() ? c.client->AssignRows(c.arg, chunk_ids, values) : absl::StatusOr<int64_t>(s);
    if (!assigned.ok()) {
      progress.Done();
      std::cerr << "embedctl: " << done << " of " << n << " rows were assigned before this error\n";
      return Fail(assigned.status());
    }
    version = *assigned;
    progress.Update(done + m, n);
  }
  progress.Done();
  std::cout << "assigned " << n << " rows of " << c.o.path << " to " << c.arg << "; version "
            << version << "\n";
  return 0;
}

int CheckpointCreate(Call& c) {
  return Answer(c.client->CreateCheckpoint(c.arg), [&](const v1::Checkpoint& cp) {
    std::cout << "created checkpoint " << c.arg << " (" << cp.bytes()
              << " bytes, tables: " << absl::StrJoin(cp.tables(), ",") << ")\n";
  });
}

int CheckpointList(Call& c) {
  return Answer(c.client->ListCheckpoints(), [](const std::vector<v1::Checkpoint>& all) {
    for (const v1::Checkpoint& cp : all) PrintCheckpoint(std::cout, cp);
  });
}

int CheckpointRestore(Call& c) {
  std::vector<std::string> tables;
  if (!c.o.tables.empty()) tables = absl::StrSplit(c.o.tables, ',');
  return Answer(
      c.client->RestoreCheckpoint(c.arg, tables), [](const std::vector<v1::TableInfo>& restored) {
        for (const v1::TableInfo& t : restored) {
          std::cout << "restored " << t.spec().name() << " (version " << t.version() << ")\n";
        }
      });
}

int Assign(Call& c) {
  return Answer(c.client->AssignRows(c.arg, c.ids, c.values), [&](int64_t version) {
    std::cout << "assigned " << c.ids.size() << " rows of " << c.arg << "; version " << version
              << "\n";
  });
}

int Push(Call& c) {
  return Answer(c.client->PushGradients(c.arg, c.ids, c.grads), [&](const v1::PushResponse& r) {
    std::cout << "applied " << r.rows_applied() << " rows to " << c.arg << "; version "
              << r.version() << "\n";
  });
}

int Update(Call& c) {
  v1::UpdateTableRequest req;
  if (!MakeUpdateRequest(c.o, c.arg, &req)) return 2;
  return Answer(c.client->UpdateTable(req), InfoAfter("updated"));
}

int State(Call& c) {
  auto state = c.client->GetOptimizerState(c.arg, c.ids);
  if (!state.ok()) return Fail(state.status());
  std::cout << "step " << state->step() << "\n";
  for (const auto& slot : state->slots()) {
    v1::LookupResult as_result;  // a slot is [rows] or [rows, dim] float32
    as_result.mutable_shape()->CopyFrom(slot.shape());
    if (slot.shape_size() == 1) as_result.add_shape(1);
    as_result.set_values(slot.values());
    auto t = TensorFromResult(as_result);
    if (!t.ok()) return Fail(t.status());
    std::cout << slot.name() << " ";
    PrintIdRows(*t, c);
  }
  return 0;
}

// Help, argument checks and dispatch all come from this table.
constexpr Command<Handler> kCommands[] = {
    {"health", "[SERVICE]", "", "grpc.health.v1 status; exit 0 if SERVING", Health},
    {"list", "", "", "tables and their sizes (a dynamic table: rows stored)", List},
    {"describe", "TABLE", "",
     "spec, rows, bytes, version; a dynamic table's\n"
     "rows stored, admitted, evicted, expired",
     Describe},
    {"create", "TABLE",
     "--num=N --dim=D [--padding_idx=I] [--max_norm=M --norm_type=P]\n"
     "[--frozen] [--init=normal|uniform|zeros|constant|xavier_uniform]\n"
     "[--mean --std --a --b --value --seed] [--shards=S] [--from_raw=FILE]\n"
     "[--optimizer=sgd|adagrad|rowwise_adagrad|sparse_adam --lr=... ]\n"
     "[--scale_grad_by_freq]\n"
     "or a dynamic table (any int64 id; no --num, --shards, --from_raw):\n"
     "--dynamic --dim=D [--max_rows=R] [--ttl_steps=T] [--admit_after=K]\n"
     "[--unseen_zeros] [the other flags above]",
     "", Create},
    {"drop", "TABLE", "", "", Drop},
    {"lookup", "TABLE",
     "--ids=1,2,3 [--shape=3]   or   --words=king,queen\n[--output=float32|float16]",
     "ids: any int64 for a dynamic table", Lookup},
    {"load", "TABLE",
     "--path=FILE [--format=npy|word2vec_text|word2vec_binary|glove_text|raw_f32]\n"
     "[--raw_dim=D] [--frozen] [--padding_idx=I] [--replace]",
     "from_pretrained; FILE is on the server,\nrelative to its --load_dir", Load},
    {"lookup-pooled", "TABLE",
     "--ids=1,2,3,4 (--offsets=0,2 | --shape=2,2)\n"
     "[--mode=sum|mean|max] [--weights=...] [--include_last_offset]",
     "", LookupPooled},
    {"import", "TABLE",
     "--path=LOCAL_FILE [--format=...] [--raw_dim --frozen --padding_idx --replace]",
     "upload a file and load it (progress on stderr)", Import},
    {"export", "TABLE", "--out=FILE.npy",
     "download the rows as float32 .npy (progress on stderr;\n"
     "FILE.npy is replaced only by a complete export);\n"
     "a dynamic table's rows are its stored ids' (least\n"
     "recently updated first), whose ids go to FILE.ids.npy\n"
     "(int64, one per row)",
     Export},
    {"import-rows", "TABLE", "--path=FILE.npy [--ids_path=IDS.npy]",
     "assign the rows of a local float32 .npy (an export)\n"
     "to the ids of IDS.npy (int64; default FILE.ids.npy,\n"
     "without it ids 0..N-1) in an existing table, ~8 MiB\n"
     "a call; optimizer state is not carried",
     ImportRows},
    {"checkpoint create", "NAME", "", "", CheckpointCreate},
    {"checkpoint list", "", "", "", CheckpointList},
    {"checkpoint restore", "NAME", "[--tables=a,b]", "", CheckpointRestore},
    {"assign", "TABLE", "--ids=0 --values=v1,v2,...", "set whole rows", Assign},
    {"push", "TABLE", "--ids=1,1 --grads=g1,g2,...", "apply one gradient push", Push},
    {"update", "TABLE", "[--set_frozen=true|false] [--lr --lr_decay --eps --beta1 --beta2]", "",
     Update},
    {"state", "TABLE", "--ids=1,2", "optimizer state of rows", State},
};

// The client of this run, from the connection and security options; null
// (after a message) if they are unusable.
std::unique_ptr<EmbeddingClient> MakeClient(const EmbedctlOptions& o) {
  ClientOptions options;
  options.timeout = absl::Seconds(o.timeout);
  if (!o.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(o.token_file);
    if (!token.ok()) {
      std::cerr << "embedctl: " << token.status().message() << "\n";
      return nullptr;
    }
    options.token = *std::move(token);
  } else if (const char* env = std::getenv("EMBEDSERVE_TOKEN"); env != nullptr) {
    options.token = std::string(absl::StripAsciiWhitespace(env));
  }
  options.tls_ca_file = o.tls_ca;
  options.tls_cert_file = o.tls_cert;
  options.tls_key_file = o.tls_key;
  options.tls_server_name = o.tls_server_name;
  auto client = EmbeddingClient::Connect(o.address, options);
  if (!client.ok()) {
    std::cerr << "embedctl: " << client.status().message() << "\n";
    return nullptr;
  }
  return *std::move(client);
}

}  // namespace

std::string EmbedctlUsage() {
  return absl::StrCat(
      "talk to an embedserve server.\n"
      "\n"
      "  embedctl [--address=HOST:PORT] COMMAND [ARGS] [FLAGS]\n"
      "\n"
      "secured servers (README, Security):\n"
      "  --token_file=FILE (or EMBEDSERVE_TOKEN=...)   bearer token of a reader, trainer or admin\n"
      "  --tls_ca=CA.pem [--tls_cert=CLIENT.pem --tls_key=CLIENT.key] [--tls_server_name=NAME]\n"
      "\n"
      "commands:\n",
      CommandsHelp<Handler>(kCommands),
      "\n"
      "Exit status: 0 on success, 1 on a server error (printed with its gRPC code),\n"
      "2 on a usage error (including a token or TLS file that cannot be read).");
}

int RunEmbedctl(absl::Span<const std::string> words, const EmbedctlOptions& options) {
  Call call(options);
  auto command = FindCommand<Handler>(kCommands, words, &call.arg);
  if (!command.ok()) return UsageError(command.status().message());
  if (!ParseRowLists(options, &call)) return 2;
  std::unique_ptr<EmbeddingClient> client = MakeClient(options);
  if (client == nullptr) return 2;
  call.client = client.get();
  return (*command)->run(call);
}

}  // namespace embedserve::internal
