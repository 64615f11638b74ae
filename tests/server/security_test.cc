// Security over real TLS (README, Security). Certificates are made by the
// openssl CLI in a temporary directory: a CA, a server certificate for
// 127.0.0.1 / localhost / embedserve.test, a client certificate from that
// CA, and a second CA with a client certificate of its own. An in-process
// server on 127.0.0.1:0 requires client certificates (mutual TLS) and bearer
// tokens; clients are EmbeddingClient (ClientOptions) and plain gRPC
// channels where a test needs to send what EmbeddingClient never would.
//
// Over ~450 lines on purpose: one fixture (the certificates, the token file,
// a TLS server per test) that every TEST_F here shares, and a method x role
// table; the few fixture-free tests at the end check the same Security
// section's helpers (exposure, token files, client options).
#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/embedding_client.h"
#include "base/status_macros.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/embedding_server.h"
#include "server/startup.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Code = absl::StatusCode;

// 64 hex characters, as `openssl rand -hex 32` gives.
const std::string kReaderToken(64, 'a');
const std::string kTrainerToken(64, 'b');
const std::string kAdminToken(64, 'c');
// Well-formed, but in no tokens file.
const std::string kUnknownToken = "0123456789abcdef0123456789abcdef-unknown";

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.flush()) << path;
}

// Runs a shell command in `dir`; its output goes to dir/openssl.log.
void Shell(const std::string& dir, const std::string& command) {
  const std::string line = absl::StrCat("cd '", dir, "' && ", command, " >>openssl.log 2>&1");
  ASSERT_EQ(std::system(line.c_str()), 0) << line;
}

// The certificates and keys of a test run (PEM files in one directory).
struct Pki {
  std::string dir;
  std::string Path(const std::string& name) const { return dir + "/" + name; }

  // A CA `name`.pem / `name`.key.
  void MakeCa(const std::string& name) const {
    Shell(dir,
          absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                       "-keyout ",
                       name, ".key -out ", name, ".pem -days 2 -subj '/CN=", name, "'"));
  }
  // A certificate `name`.pem / `name`.key signed by CA `ca`, with the
  // extensions of `ext` (an openssl extension file's lines).
  void MakeCert(const std::string& name, const std::string& ca, const std::string& ext) const {
    WriteFile(Path(name + ".ext"), ext);
    Shell(dir, absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                            "-keyout ",
                            name, ".key -out ", name, ".csr -subj '/CN=", name, "'"));
    Shell(dir,
          absl::StrCat("openssl x509 -req -in ", name, ".csr -CA ", ca, ".pem -CAkey ", ca,
                       ".key -CAcreateserial -days 2 -out ", name, ".pem -extfile ", name, ".ext"));
  }
};

// One call of the service, made by `client`; `admin` prepares what the call
// needs first (a table to drop, a file to load).
using Call = std::function<absl::Status(EmbeddingClient& client, EmbeddingClient& admin)>;
struct Method {
  std::string name;
  Role need;  // the least role that may call it
  Call call;
};

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/embedserve-security-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    pki_ = new Pki{tmpl};
    pki_->MakeCa("ca");
    pki_->MakeCa("other_ca");
    pki_->MakeCert("server", "ca",
                   "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:embedserve.test\n"
                   "extendedKeyUsage=serverAuth\n");
    pki_->MakeCert("client", "ca", "extendedKeyUsage=clientAuth\n");
    pki_->MakeCert("other_client", "other_ca", "extendedKeyUsage=clientAuth\n");
    WriteFile(pki_->Path("tokens"),
              absl::StrCat("# role token name\n",  //
                           "reader ", kReaderToken, " alice\n", "trainer ", kTrainerToken,
                           " trainer-job\n", "admin ", kAdminToken, " ops\n"));
    // 4 x 2 float32 rows for LoadTable (beneath load_dir) and ImportTable.
    const float rows[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    WriteFile(pki_->Path("rows.f32"),
              std::string(reinterpret_cast<const char*>(rows), sizeof rows));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(pki_->dir);
    delete pki_;
    pki_ = nullptr;
  }

  // The secure server: mutual TLS, tokens, durable (checkpoints need a
  // store), LoadTable beneath the PKI directory.
  void SetUp() override {
    ASSERT_NE(pki_, nullptr);
    auto store = OpenDataDir(pki_->Path(absl::StrCat("data-", ++servers_)), "async");
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
    ServerOptions options = SecureOptions();
    auto server = EmbeddingServer::Start(
        options, std::make_shared<TableRegistry>(int64_t{1} << 26, store_.get()));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    admin_ = Client(kAdminToken);
    ASSERT_NE(admin_, nullptr);
    ASSERT_THAT(admin_->WaitForReady(absl::Seconds(10)), IsOk());
    v1::TableSpec spec = Spec("t");
    ASSERT_THAT(admin_->CreateTable(spec), IsOk());
    v1::CreateCheckpointRequest cp;
    cp.set_name("base");
    ASSERT_THAT(admin_->Unary(&v1::EmbeddingService::Stub::CreateCheckpoint, cp), IsOk());
  }
  void TearDown() override {
    admin_.reset();
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
  }

  static ServerOptions SecureOptions() {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.tls_cert_file = pki_->Path("server.pem");
    options.tls_key_file = pki_->Path("server.key");
    options.tls_client_ca_file = pki_->Path("ca.pem");
    auto authorizer = TokenAuthorizer::FromFile(pki_->Path("tokens"));
    EXPECT_THAT(authorizer, IsOk());
    if (authorizer.ok()) options.service.authorizer = *authorizer;
    options.service.load_dir = pki_->dir;
    options.service.upload_dir = pki_->dir;
    return options;
  }

  static v1::TableSpec Spec(const std::string& name) {
    v1::TableSpec spec;
    spec.set_name(name);
    spec.set_num_embeddings(4);
    spec.set_embedding_dim(2);
    return spec;
  }

  // The options of a well-behaved client: trusts the CA, presents the
  // client certificate, sends `token` (none if empty).
  static ClientOptions Secure(const std::string& token) {
    ClientOptions o;
    o.timeout = absl::Seconds(10);
    o.token = token;
    o.tls_ca_file = pki_->Path("ca.pem");
    o.tls_cert_file = pki_->Path("client.pem");
    o.tls_key_file = pki_->Path("client.key");
    return o;
  }
  std::unique_ptr<EmbeddingClient> Client(const std::string& token) {
    return Connect(Secure(token));
  }
  std::unique_ptr<EmbeddingClient> Connect(const ClientOptions& options) {
    auto client = EmbeddingClient::Connect(server_->address(), options);
    EXPECT_THAT(client, IsOk());
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A raw stub on a mutual-TLS channel (no token added by anyone).
  std::unique_ptr<v1::EmbeddingService::Stub> RawStub() {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Read("ca.pem");
    ssl.pem_cert_chain = Read("client.pem");
    ssl.pem_private_key = Read("client.key");
    return v1::EmbeddingService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl)));
  }
  static std::string Read(const std::string& name) {
    std::ifstream in(pki_->Path(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // Every method of embedserve.v1.EmbeddingService, made valid so that a
  // caller with the role gets OK.
  static std::vector<Method> Methods();

  static Pki* pki_;
  static int servers_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<EmbeddingServer> server_;
  std::unique_ptr<EmbeddingClient> admin_;
};

Pki* SecurityTest::pki_ = nullptr;
int SecurityTest::servers_ = 0;

std::string Unique(const std::string& prefix) {
  static int n = 0;
  return absl::StrCat(prefix, ++n);
}

std::vector<Method> SecurityTest::Methods() {
  using Stub = v1::EmbeddingService::Stub;
  return {
      {"CreateTable", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         return c.CreateTable(Spec(Unique("created"))).status();
       }},
      {"DropTable", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient& admin) {
         const std::string name = Unique("doomed");
         RETURN_IF_ERROR(admin.CreateTable(Spec(name)).status());
         return c.DropTable(name);
       }},
      {"ListTables", Role::kReader,
       [](EmbeddingClient& c, EmbeddingClient&) { return c.ListTables().status(); }},
      {"DescribeTable", Role::kReader,
       [](EmbeddingClient& c, EmbeddingClient&) { return c.DescribeTable("t").status(); }},
      {"Lookup", Role::kReader,
       [](EmbeddingClient& c, EmbeddingClient&) {
         return c.Lookup("t", {0, 3}).status();
       }},
      {"LookupPooled", Role::kReader,
       [](EmbeddingClient& c, EmbeddingClient&) {
         BagQuery q;
         q.table = "t";
         q.ids = {0, 1, 2};
         q.offsets = {0, 1};
         return c.LookupPooled(q).status();
       }},
      {"AssignRows", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         return c.AssignRows("t", {1}, {0.5f, 0.5f}).status();
       }},
      {"PushGradients", Role::kTrainer,
       [](EmbeddingClient& c, EmbeddingClient&) {
         return c.PushGradients("t", {1}, {0.1f, 0.1f}).status();
       }},
      {"StreamGradients", Role::kTrainer,
       [](EmbeddingClient& c, EmbeddingClient&) -> absl::Status {
         grpc::ClientContext ctx;
         c.PrepareContext(&ctx);
         auto stream = c.stub()->StreamGradients(&ctx);
         v1::PushRequest push;
         push.set_table("t");
         push.add_ids(2);
         const float grads[2] = {0.1f, 0.1f};
         push.set_grads(grads, sizeof grads);
         push.set_sequence(7);
         stream->Write(push);
         stream->WritesDone();
         v1::PushResponse answer;
         const bool answered = stream->Read(&answer);
         const absl::Status s = FromGrpcStatus(stream->Finish());
         if (!s.ok()) return s;
         if (!answered || answer.sequence() != 7 || answer.code() != 0) {
           return absl::InternalError(absl::StrCat("push not applied: ", answer.error()));
         }
         return absl::OkStatus();
       }},
      {"UpdateTable", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         v1::UpdateTableRequest req;
         req.set_name("t");
         req.mutable_optimizer()->set_lr(0.05);
         return c.UpdateTable(req).status();
       }},
      {"GetOptimizerState", Role::kTrainer,
       [](EmbeddingClient& c, EmbeddingClient&) { return c.GetOptimizerState("t", {1}).status(); }},
      {"LoadTable", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         v1::LoadTableRequest req;
         req.set_name(Unique("loaded"));
         req.set_path("rows.f32");  // relative to load_dir
         req.set_format(v1::RAW_F32);
         req.set_raw_dim(2);
         return c.Unary(&Stub::LoadTable, req).status();
       }},
      {"ImportTable", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         grpc::ClientContext ctx;
         c.PrepareContext(&ctx);
         v1::LoadTableResponse resp;
         auto writer = c.stub()->ImportTable(&ctx, &resp);
         v1::ImportChunk first;
         first.mutable_request()->set_name(Unique("imported"));
         first.mutable_request()->set_path("rows.f32");
         first.mutable_request()->set_format(v1::RAW_F32);
         first.mutable_request()->set_raw_dim(2);
         v1::ImportChunk data;
         data.set_data(Read("rows.f32"));
         if (writer->Write(first)) writer->Write(data);
         writer->WritesDone();
         return FromGrpcStatus(writer->Finish());
       }},
      {"ExportTable", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) -> absl::Status {
         grpc::ClientContext ctx;
         c.PrepareContext(&ctx);
         v1::ExportTableRequest req;
         req.set_name("t");
         auto reader = c.stub()->ExportTable(&ctx, req);
         v1::ExportChunk chunk;
         int64_t rows = 0;
         while (reader->Read(&chunk)) rows += chunk.num_rows();
         const absl::Status s = FromGrpcStatus(reader->Finish());
         if (s.ok() && rows != 4) return absl::InternalError(absl::StrCat(rows, " rows"));
         return s;
       }},
      {"CreateCheckpoint", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         v1::CreateCheckpointRequest req;
         req.set_name(Unique("cp"));
         return c.Unary(&Stub::CreateCheckpoint, req).status();
       }},
      {"ListCheckpoints", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         return c.Unary(&Stub::ListCheckpoints, v1::ListCheckpointsRequest()).status();
       }},
      {"RestoreCheckpoint", Role::kAdmin,
       [](EmbeddingClient& c, EmbeddingClient&) {
         v1::RestoreCheckpointRequest req;
         req.set_name("base");
         req.add_tables("t");
         return c.Unary(&Stub::RestoreCheckpoint, req).status();
       }},
  };
}

TEST_F(SecurityTest, MethodListCoversTheWholeService) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "embedserve.v1.EmbeddingService");
  ASSERT_NE(service, nullptr);
  std::set<std::string> in_service, tested;
  for (int i = 0; i < service->method_count(); ++i) in_service.insert(service->method(i)->name());
  for (const Method& m : Methods()) tested.insert(m.name);
  EXPECT_EQ(tested, in_service);
}

TEST_F(SecurityTest, EachRoleMayCallExactlyItsMethods) {
  const struct {
    Role role;
    const char* token_name;
    const std::string& token;
  } callers[] = {{Role::kReader, "alice", kReaderToken},
                 {Role::kTrainer, "trainer-job", kTrainerToken},
                 {Role::kAdmin, "ops", kAdminToken}};
  for (const auto& caller : callers) {
    auto client = Client(caller.token);
    ASSERT_NE(client, nullptr);
    for (const Method& m : Methods()) {
      SCOPED_TRACE(absl::StrCat(RoleName(caller.role), " calls ", m.name));
      const absl::Status s = m.call(*client, *admin_);
      if (caller.role >= m.need) {
        EXPECT_THAT(s, IsOk());
      } else {
        EXPECT_THAT(s, StatusIs(Code::kPermissionDenied,
                                HasSubstr(absl::StrCat("role '", RoleName(caller.role), "' (",
                                                       caller.token_name, ") may not call ", m.name,
                                                       "; it needs '", RoleName(m.need), "'"))));
      }
    }
  }
}

TEST_F(SecurityTest, NoOrUnknownTokenIsUnauthenticatedForEveryMethod) {
  ::testing::internal::CaptureStderr();
  std::vector<std::string> messages;
  for (const std::string& token : {std::string(), kUnknownToken}) {
    auto client = Client(token);
    ASSERT_NE(client, nullptr);
    for (const Method& m : Methods()) {
      SCOPED_TRACE(absl::StrCat(m.name, token.empty() ? " without a token" : " with a bad token"));
      const absl::Status s = m.call(*client, *admin_);
      EXPECT_THAT(s, StatusIs(Code::kUnauthenticated,
                              token.empty() ? HasSubstr("no token") : HasSubstr("unknown token")));
      messages.emplace_back(s.message());
    }
  }
  // A reader with a near miss of the admin token is still unknown.
  std::string near = kAdminToken;
  near.back() = 'd';
  auto client = Client(near);
  ASSERT_NE(client, nullptr);
  const absl::Status s = client->ListTables().status();
  EXPECT_THAT(s, StatusIs(Code::kUnauthenticated, HasSubstr("unknown token")));
  messages.emplace_back(s.message());
  const std::string log = ::testing::internal::GetCapturedStderr();
  for (const std::string& secret :
       {kUnknownToken, near, kReaderToken, kTrainerToken, kAdminToken}) {
    EXPECT_THAT(log, Not(HasSubstr(secret)));
    for (const std::string& message : messages) EXPECT_THAT(message, Not(HasSubstr(secret)));
  }
}

TEST_F(SecurityTest, MalformedAuthorizationIsUnauthenticated) {
  auto stub = RawStub();
  ::testing::internal::CaptureStderr();
  std::vector<std::string> messages;
  for (const std::string& value : {kAdminToken,                                    // no scheme
                                   absl::StrCat("Basic ", kAdminToken),            // another scheme
                                   std::string("Bearer"), std::string("Bearer "),  // no token
                                   absl::StrCat("Bearer  x", kAdminToken)}) {      // not the token
    SCOPED_TRACE(value);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", value);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListTablesResponse resp;
    const absl::Status s = FromGrpcStatus(stub->ListTables(&ctx, v1::ListTablesRequest(), &resp));
    EXPECT_THAT(s, StatusIs(Code::kUnauthenticated, Not(HasSubstr(kAdminToken))));
    messages.emplace_back(s.message());
    // The same on a stream.
    grpc::ClientContext stream_ctx;
    stream_ctx.AddMetadata("authorization", value);
    stream_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->StreamGradients(&stream_ctx);
    stream->WritesDone();
    EXPECT_THAT(FromGrpcStatus(stream->Finish()), StatusIs(Code::kUnauthenticated, HasSubstr("")));
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, Not(HasSubstr(kAdminToken)));
}

TEST_F(SecurityTest, HealthIsOpenWithoutAToken) {
  auto client = Client("");
  ASSERT_NE(client, nullptr);
  for (const char* service : {"", "embedserve.v1.EmbeddingService"}) {
    absl::StatusOr<std::string> health = client->CheckHealth(service);
    ASSERT_THAT(health, IsOk());
    EXPECT_EQ(*health, "SERVING");
  }
  // ... but it still needs the TLS handshake, client certificate included.
  ClientOptions no_cert = Secure("");
  no_cert.tls_cert_file.clear();
  no_cert.tls_key_file.clear();
  no_cert.timeout = absl::Seconds(5);
  EXPECT_THAT(Connect(no_cert)->CheckHealth(), StatusIs(Code::kUnavailable, HasSubstr("")));
}

TEST_F(SecurityTest, PlaintextClientCannotTalkToTheTlsServer) {
  ClientOptions plain;
  plain.timeout = absl::Seconds(5);
  plain.token = kAdminToken;
  auto client = Connect(plain);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListTables(), StatusIs(Code::kUnavailable, HasSubstr("")));
  EXPECT_THAT(client->CheckHealth(), StatusIs(Code::kUnavailable, HasSubstr("")));
  // The pre-security Connect is plaintext too.
  EXPECT_THAT(EmbeddingClient::Connect(server_->address(), absl::Seconds(5))->ListTables(),
              StatusIs(Code::kUnavailable, HasSubstr("")));
}

TEST_F(SecurityTest, ClientWithoutACertificateIsRefused) {
  ClientOptions o = Secure(kAdminToken);
  o.tls_cert_file.clear();
  o.tls_key_file.clear();
  o.timeout = absl::Seconds(5);
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListTables(), StatusIs(Code::kUnavailable, HasSubstr("")));
}

TEST_F(SecurityTest, ClientCertificateOfAnotherCaIsRefused) {
  ClientOptions o = Secure(kAdminToken);
  o.tls_cert_file = pki_->Path("other_client.pem");
  o.tls_key_file = pki_->Path("other_client.key");
  o.timeout = absl::Seconds(5);
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListTables(), StatusIs(Code::kUnavailable, HasSubstr("")));
}

TEST_F(SecurityTest, ClientRefusesAServerItsCaDidNotSign) {
  ClientOptions o = Secure(kAdminToken);
  o.tls_ca_file = pki_->Path("other_ca.pem");
  o.timeout = absl::Seconds(5);
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListTables(), StatusIs(Code::kUnavailable, HasSubstr("")));
}

TEST_F(SecurityTest, ServerNameOverrideIsVerified) {
  ClientOptions o = Secure(kReaderToken);
  o.tls_server_name = "embedserve.test";  // in the certificate
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListTables(), IsOk());
  o.tls_server_name = "elsewhere.test";  // not in it
  o.timeout = absl::Seconds(5);
  client = Connect(o);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListTables(), StatusIs(Code::kUnavailable, HasSubstr("")));
}

TEST_F(SecurityTest, TlsWithoutClientCertificates) {
  ServerOptions options = SecureOptions();
  options.tls_client_ca_file.clear();
  auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(1 << 20));
  ASSERT_THAT(server, IsOk());
  ClientOptions o = Secure(kReaderToken);
  o.tls_cert_file.clear();
  o.tls_key_file.clear();
  auto client = EmbeddingClient::Connect((*server)->address(), o);
  ASSERT_THAT(client, IsOk());
  EXPECT_THAT((*client)->ListTables(), IsOk());
  EXPECT_THAT((*client)->CreateTable(Spec("x")),
              StatusIs(Code::kPermissionDenied, HasSubstr("needs 'admin'")));
  (*server)->Shutdown();
}

TEST_F(SecurityTest, NonLoopbackAddressNeedsTlsAndTokensOrInsecure) {
  auto start = [](ServerOptions options) {
    options.address = "0.0.0.0:0";
    auto server = EmbeddingServer::Start(options, std::make_shared<TableRegistry>(1 << 20));
    if (server.ok()) (*server)->Shutdown();
    return server.status();
  };
  ServerOptions secure = SecureOptions();
  EXPECT_THAT(start(secure), IsOk());

  ServerOptions plain;
  EXPECT_THAT(start(plain), StatusIs(Code::kFailedPrecondition,
                                     AllOf(HasSubstr("0.0.0.0:0"), HasSubstr("TLS and tokens"),
                                           HasSubstr("--insecure"))));
  ServerOptions tls_only = secure;
  tls_only.service.authorizer = nullptr;
  EXPECT_THAT(start(tls_only), StatusIs(Code::kFailedPrecondition, HasSubstr("--tokens_file")));
  ServerOptions tokens_only = secure;
  tokens_only.tls_cert_file.clear();
  tokens_only.tls_key_file.clear();
  tokens_only.tls_client_ca_file.clear();
  EXPECT_THAT(start(tokens_only), StatusIs(Code::kFailedPrecondition, HasSubstr("--tls_cert")));

  plain.insecure = true;
  EXPECT_THAT(start(plain), IsOk());
}

TEST(ExposureTest, OnlyLoopbackLiteralsCountAsLoopback) {
  auto check = [](const std::string& address) {
    ServerOptions o;
    o.address = address;
    return EmbeddingServer::CheckExposure(o);
  };
  for (const char* ok : {"127.0.0.1:0", "127.1.2.3:50051", "[::1]:0", "localhost:0"}) {
    EXPECT_THAT(check(ok), IsOk()) << ok;
  }
  // A hostname that merely starts with "127." resolves to anything.
  for (const char* exposed : {"127.corp.example:0", "0.0.0.0:0", "[::]:0", "10.0.0.1:0",
                              "128.0.0.1:0", "example.com:0"}) {
    EXPECT_THAT(check(exposed), StatusIs(Code::kFailedPrecondition, HasSubstr("refusing")))
        << exposed;
  }
}

TEST(TokenFileTest, TokensMustBePrintableAscii) {
  EXPECT_THAT(TokenAuthorizer::FromText("reader abcdefghijklmnop\x01qrs\n", "t"),
              StatusIs(Code::kInvalidArgument, HasSubstr("printable ASCII")));
  EXPECT_THAT(TokenAuthorizer::FromText("reader abcdefghijklmnop\xc3\xa9\n", "t"),
              StatusIs(Code::kInvalidArgument, HasSubstr("line 1")));
  EXPECT_THAT(TokenAuthorizer::FromText("reader abcdefghijklmnopqrs\n", "t"), IsOk());
}

TEST(ClientOptionsTest, ConnectChecksItsOptions) {
  ClientOptions o;
  o.tls_cert_file = "/nonexistent/client.pem";
  EXPECT_THAT(EmbeddingClient::Connect("127.0.0.1:1", o),
              StatusIs(Code::kInvalidArgument, HasSubstr("--tls_key")));
  o.tls_key_file = "/nonexistent/client.key";
  EXPECT_THAT(EmbeddingClient::Connect("127.0.0.1:1", o),
              StatusIs(Code::kNotFound, HasSubstr("/nonexistent/client.pem")));
  ClientOptions ca;
  ca.tls_ca_file = "/etc/hostname";  // readable, not PEM
  EXPECT_THAT(EmbeddingClient::Connect("127.0.0.1:1", ca),
              StatusIs(Code::kInvalidArgument, HasSubstr("not a PEM file")));
  ClientOptions token;
  token.token = "two words";
  EXPECT_THAT(EmbeddingClient::Connect("127.0.0.1:1", token),
              StatusIs(Code::kInvalidArgument, Not(HasSubstr("two words"))));
  token.token = "line\nbreak";
  EXPECT_THAT(EmbeddingClient::Connect("127.0.0.1:1", token),
              StatusIs(Code::kInvalidArgument, HasSubstr("printable")));
}

TEST(ClientOptionsTest, ReadTokenFileTakesTheFirstTokenLine) {
  char tmpl[] = "/tmp/embedserve-token-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  WriteFile(dir + "/token", "\n# the reader token\n  \t s3cr3t-t0ken-value \r\nsecond\n");
  absl::StatusOr<std::string> token = ReadTokenFile(dir + "/token");
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(*token, "s3cr3t-t0ken-value");
  WriteFile(dir + "/empty", "\n  \n# nothing\n");
  EXPECT_THAT(ReadTokenFile(dir + "/empty"),
              StatusIs(Code::kInvalidArgument, HasSubstr("holds no token")));
  EXPECT_THAT(ReadTokenFile(dir + "/missing"),
              StatusIs(Code::kNotFound, HasSubstr(dir + "/missing")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace embedserve
