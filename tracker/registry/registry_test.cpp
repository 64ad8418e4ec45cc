// References, the credentials file, challenges, and the client's
// authentication and digest checks against a registry served by this test on
// loopback (the faults Debian's registry cannot produce on demand: a token
// server that answers, a registry that lies about a manifest). The client
// against the real docker-registry: tests/tracker/registry_publish_test.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "http/http_server.h"
#include "tests/support/test_util.h"
#include "tracker/registry/registry_client.h"
#include "tracker/registry/registry_credentials.h"
#include "tracker/registry/registry_reference.h"

namespace flotilla::tracker::registry {
namespace {

namespace fs = std::filesystem;
using flotilla::testing::MakeTempDir;

TEST(RegistryReference, ParsesTagsDigestsAndHosts) {
  auto r = ParseRegistryReference("docker://127.0.0.1:5000/shop/kiosk:2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->host, "127.0.0.1:5000");
  EXPECT_EQ(r->hostname, "127.0.0.1");
  EXPECT_EQ(r->repository, "shop/kiosk");
  EXPECT_EQ(r->ManifestRef(), "2");
  r = ParseRegistryReference("docker://Registry.Example.com/kiosk");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hostname, "registry.example.com");
  EXPECT_EQ(r->ManifestRef(), "latest");
  const std::string hex(64, 'a');
  r = ParseRegistryReference("docker://[::1]:5000/a/b@sha256:" + hex);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hostname, "::1");
  EXPECT_EQ(r->ManifestRef(), "sha256:" + hex);
  EXPECT_TRUE(r->tag.empty());
  EXPECT_TRUE(IsLoopbackHost(r->hostname));
  EXPECT_TRUE(IsLoopbackHost("127.3.2.1"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));

  for (const char* bad :
       {"kiosk.tar", "docker://", "docker://host", "docker://user:pw@host/kiosk:1",
        "docker://host/Kiosk:1", "docker://host/kiosk:1@sha256:abc", "docker://host:99999/k",
        "docker://host/kiosk:-x", "docker://host/kiosk@sha256:ABC", "docker://host//kiosk"}) {
    auto st = ParseRegistryReference(bad).status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.message().find("pw"), std::string::npos) << st.message();
  }
  EXPECT_NE(
      ParseRegistryReference("docker://user:pw@host/k").status().message().find("--registry-auth"),
      std::string::npos);
  EXPECT_FALSE(IsRegistryReference("/srv/images/kiosk.tar"));
}

TEST(RegistryCredentials, Base64RoundTrips) {
  for (std::string text : {"", "a", "ab", "abc", "user:pass word", "\xff\x00x"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(text)), text);
  }
  EXPECT_EQ(Base64Encode("operator:s3cr3t"), "b3BlcmF0b3I6czNjcjN0");
  EXPECT_FALSE(Base64Decode("abc").has_value());
  EXPECT_FALSE(Base64Decode("a=bc").has_value());
}

class RegistryCredentialsFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("registry-auth"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/auth.json";
    EXPECT_TRUE(WriteFileAtomic(path, text, mode).ok());
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(RegistryCredentialsFile, FindsTheHostsEntryAsDockerWritesIt) {
  const std::string path = Write(R"({"auths": {
      "https://other.example.com/v1/": {"auth": "b3RoZXI6eA=="},
      "127.0.0.1:5000": {"auth": "b3BlcmF0b3I6czNjcjN0", "email": "x"}}})",
                                 0600);
  auto c = LoadRegistryCredentials(path, "127.0.0.1:5000");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->user, "operator");
  EXPECT_EQ((*c)->password, "s3cr3t");
  c = LoadRegistryCredentials(path, "other.example.com");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->user, "other");
  c = LoadRegistryCredentials(path, "127.0.0.1:5001");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(RegistryCredentialsFile, RefusesAFileOthersCanReadAndMalformedEntries) {
  std::string path = Write(R"({"auths": {"h": {"auth": "b3BlcmF0b3I6czNjcjN0"}}})", 0644);
  auto st = LoadRegistryCredentials(path, "h").status();
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("0644"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("s3cr3t"), std::string::npos);
  path = Write(R"({"auths": {"h": {"auth": "bm9jb2xvbg=="}}})", 0600);  // "nocolon"
  st = LoadRegistryCredentials(path, "h").status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message().find("nocolon"), std::string::npos);
  path = Write(R"({"h": "x"})", 0600);
  EXPECT_EQ(LoadRegistryCredentials(path, "h").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(LoadRegistryCredentials(dir_ + "/absent.json", "h").ok());
}

// --registry-ca is checked before any network: present, a regular file, a
// PEM certificate in it.
TEST_F(RegistryCredentialsFile, ACaFileMustExistAndHoldAPemCertificate) {
  EXPECT_EQ(CheckCaFile(dir_ + "/absent.pem").code(), StatusCode::kNotFound);
  EXPECT_EQ(CheckCaFile(dir_).code(), StatusCode::kInvalidArgument);
  const std::string path =
      Write("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", 0600);
  Status st = CheckCaFile(path);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("no PEM certificate in it"), std::string::npos) << st.message();
  Write("a comment\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
  EXPECT_TRUE(CheckCaFile(path).ok());
}

TEST(RegistryChallenge, ParsesQuotedParametersWithCommas) {
  auto c = ParseChallenge(
      R"(Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->Param("realm"), "https://auth.example.com/token");
  EXPECT_EQ(c->Param("service"), "registry");
  EXPECT_EQ(c->Param("scope"), "repository:a/b:pull,push");
  c = ParseChallenge(R"(Basic realm="basic-realm")");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->Param("realm"), "basic-realm");
  EXPECT_FALSE(ParseChallenge(R"(Bearer realm="open)").ok());
}

// A registry on loopback serving one image (an index for linux/amd64 and
// linux/arm64), behind a bearer-token server of its own.
class FakeRegistry {
 public:
  struct Blob {
    std::string media_type, bytes;
  };
  FakeRegistry() {
    server_ =
        http::Server::Start(io_, {}, [this](const http::Request& r, const http::RequestContext&) {
          return Handle(r);
        }).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeRegistry() {
    io_.stop();
    thread_.join();
  }
  std::string Host() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  // Adds a blob (a manifest when its media type says so); returns its digest.
  std::string Add(const std::string& media_type, const std::string& bytes) {
    const std::string digest = Digest::Of(bytes).ToString();
    std::lock_guard lock(mu_);
    blobs_[digest] = {media_type, bytes};
    return digest;
  }
  void Tag(const std::string& tag, const std::string& digest) {
    std::lock_guard lock(mu_);
    tags_[tag] = digest;
  }
  // The next answer for `digest` carries these bytes instead.
  void Lie(const std::string& digest, const std::string& bytes) {
    std::lock_guard lock(mu_);
    blobs_[digest].bytes = bytes;
  }
  std::string realm_override;
  std::string password = "s3cr3t";
  int token_requests = 0;
  std::string last_token_authorization;

 private:
  http::Reply Handle(const http::Request& r) {
    std::lock_guard lock(mu_);
    const std::string target(r.target());
    if (target.starts_with("/token?")) {
      ++token_requests;
      last_token_authorization = std::string(r[http::field::authorization]);
      if (last_token_authorization != "Basic " + Base64Encode("operator:" + password)) {
        return http::Reply::Text(http::status::unauthorized, "bad credentials");
      }
      return http::Reply::Typed(http::status::ok, "application/json",
                                R"({"token":"tok-)" + password + R"("})");
    }
    if (std::string(r[http::field::authorization]) != "Bearer tok-" + password) {
      http::Reply reply = http::Reply::Text(http::status::unauthorized, "token please");
      const std::string realm =
          realm_override.empty() ? "http://" + Host() + "/token" : realm_override;
      reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"" + realm +
                                                         "\",service=\"fake\",scope=\"repository:"
                                                         "shop/kiosk:pull\"");
      return reply;
    }
    const std::string manifests = "/v2/shop/kiosk/manifests/", blobs = "/v2/shop/kiosk/blobs/";
    std::string key;
    if (target.starts_with(manifests)) {
      key = target.substr(manifests.size());
      if (tags_.contains(key)) key = tags_[key];
    } else if (target.starts_with(blobs)) {
      key = target.substr(blobs.size());
    }
    auto it = blobs_.find(key);
    if (it == blobs_.end()) return http::Reply::Text(http::status::not_found, "unknown");
    return http::Reply::Typed(http::status::ok, it->second.media_type, it->second.bytes);
  }

  boost::asio::io_context io_{1};
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Blob> blobs_;
  std::map<std::string, std::string> tags_;
};

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("registry-client");
    auth_ = dir_ + "/auth.json";
    ASSERT_TRUE(
        WriteFileAtomic(
            auth_,
            Json{{"auths", {{registry_.Host(), {{"auth", Base64Encode("operator:s3cr3t")}}}}}}
                .dump(),
            0600)
            .ok());
    for (const char* arch : {"amd64", "arm64"}) {
      const std::string layer = std::string("layer of ") + arch;
      const std::string config =
          Json{{"os", "linux"}, {"architecture", arch}, {"rootfs", {{"type", "layers"}}}}.dump();
      layer_[arch] = registry_.Add("application/octet-stream", layer);
      config_[arch] = registry_.Add("application/vnd.oci.image.config.v1+json", config);
      const std::string manifest =
          Json{{"schemaVersion", 2},
               {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
               {"config",
                {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                 {"digest", config_[arch]},
                 {"size", config.size()}}},
               {"layers", Json::array({{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                                        {"digest", layer_[arch]},
                                        {"size", layer.size()}}})}}
              .dump();
      manifest_[arch] = registry_.Add("application/vnd.oci.image.manifest.v1+json", manifest);
      entries_.push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                          {"digest", manifest_[arch]},
                          {"size", manifest.size()},
                          {"platform", {{"os", "linux"}, {"architecture", arch}}}});
    }
    index_ = registry_.Add("application/vnd.oci.image.index.v1+json",
                           Json{{"schemaVersion", 2},
                                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                                {"manifests", entries_}}
                               .dump());
    registry_.Tag("2", index_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<PulledImage> Pull(const std::string& reference, PullOptions options = {}) {
    auto ref = ParseRegistryReference("docker://" + registry_.Host() + "/shop/kiosk" + reference);
    if (!ref.ok()) return ref.status();
    if (options.auth_file.empty()) options.auth_file = auth_;
    options.read_timeout_ms = 5000;
    layout_ = dir_ + "/layout" + std::to_string(++pulls_);
    progress_.clear();
    return PullToLayout(*ref, options, layout_,
                        [this](const std::string& line) { progress_ += line + "\n"; });
  }

  FakeRegistry registry_;
  std::string dir_, auth_, layout_, index_;
  std::map<std::string, std::string> layer_, config_, manifest_;
  Json entries_ = Json::array();
  int pulls_ = 0;
  std::string progress_;
};

TEST_F(RegistryClientTest, BearerTokenDanceThenThePlatformsManifestAndBlobs) {
  auto pulled = Pull(":2", {.platform = "linux/arm64"});
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(pulled->platform, "linux/arm64");
  EXPECT_EQ(pulled->source_digest.ToString(), index_);
  EXPECT_EQ(pulled->manifest.ToString(), manifest_["arm64"]);
  EXPECT_EQ(registry_.token_requests, 1);  // one token serves the whole pull
  EXPECT_EQ(registry_.last_token_authorization, "Basic " + Base64Encode("operator:s3cr3t"));
  // The layout holds the arm64 image only, and index.json names its manifest.
  auto index = ParseJsonStrict(ReadTextFileBounded(layout_ + "/index.json", 1 << 20).value());
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)["manifests"][0]["digest"], manifest_["arm64"]);
  EXPECT_EQ((*index)["manifests"][0]["platform"]["architecture"], "arm64");
  const std::string blobs = layout_ + "/blobs/sha256/";
  EXPECT_TRUE(fs::exists(blobs + layer_["arm64"].substr(7)));
  EXPECT_FALSE(fs::exists(blobs + layer_["amd64"].substr(7)));

  // Progress names the platform's manifest and each layer, with a line per
  // progress_every_bytes of a long one.
  EXPECT_NE(progress_.find("linux/arm64 is " + manifest_["arm64"].substr(0, 19)), std::string::npos)
      << progress_;
  EXPECT_NE(progress_.find("blob 1/1 " + layer_["arm64"].substr(0, 19) + ": 14 bytes"),
            std::string::npos)
      << progress_;

  pulled = Pull("@" + index_, {.platform = "linux/amd64", .progress_every_bytes = 5});
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(pulled->manifest.ToString(), manifest_["amd64"]);
  EXPECT_NE(progress_.find(layer_["amd64"].substr(0, 19) + ": 14 of 14 bytes"), std::string::npos)
      << progress_;

  auto missing = Pull(":2", {.platform = "linux/riscv64"});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("linux/amd64 linux/arm64"), std::string::npos)
      << missing.status().ToString();
  EXPECT_EQ(Pull(":3", {.platform = "linux/arm64"}).status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryClientTest, WrongOrMissingCredentialsArePermissionDenied) {
  registry_.password = "other";
  auto pulled = Pull(":2", {.platform = "linux/arm64"});
  EXPECT_EQ(pulled.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(pulled.status().message().find("refused the credentials for " + registry_.Host()),
            std::string::npos)
      << pulled.status().ToString();
  EXPECT_EQ(pulled.status().message().find("s3cr3t"), std::string::npos);

  const std::string empty = dir_ + "/empty.json";
  ASSERT_TRUE(WriteFileAtomic(empty, R"({"auths": {}})", 0600).ok());
  pulled = Pull(":2", {.platform = "linux/arm64", .auth_file = empty});
  EXPECT_EQ(pulled.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(pulled.status().message().find("token server"), std::string::npos)
      << pulled.status().ToString();

  // A token realm over plain http on another host would carry the password in clear.
  registry_.password = "s3cr3t";
  registry_.realm_override = "http://auth.example.invalid/token";
  pulled = Pull(":2", {.platform = "linux/arm64"});
  EXPECT_EQ(pulled.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(pulled.status().message().find("--insecure-registry"), std::string::npos)
      << pulled.status().ToString();
  EXPECT_EQ(registry_.token_requests, 2);
}

TEST_F(RegistryClientTest, BytesThatDoNotMatchTheirDigestAreRefused) {
  // A tag whose manifest bytes changed under the index: the index's digest
  // for the arm64 entry no longer matches.
  registry_.Lie(manifest_["arm64"], R"({"schemaVersion":2})");
  auto pulled = Pull(":2", {.platform = "linux/arm64"});
  EXPECT_EQ(pulled.status().code(), StatusCode::kCorruption);
  EXPECT_NE(pulled.status().message().find("hash to"), std::string::npos)
      << pulled.status().ToString();
  // A layer blob with other bytes of the same length.
  std::string layer = "layer of amd64";
  layer[0] = 'L';
  registry_.Lie(layer_["amd64"], layer);
  pulled = Pull(":2", {.platform = "linux/amd64"});
  EXPECT_EQ(pulled.status().code(), StatusCode::kCorruption);
  EXPECT_NE(pulled.status().message().find("blob " + layer_["amd64"]), std::string::npos)
      << pulled.status().ToString();
  EXPECT_FALSE(fs::exists(layout_ + "/blobs/sha256/" + layer_["amd64"].substr(7)));
  // A longer one stops at the descriptor's size.
  registry_.Lie(layer_["amd64"], "layer of amd64 and more");
  pulled = Pull(":2", {.platform = "linux/amd64"});
  EXPECT_EQ(pulled.status().code(), StatusCode::kCorruption);
  EXPECT_NE(pulled.status().message().find("longer than"), std::string::npos)
      << pulled.status().ToString();
  // A digest reference whose bytes are something else.
  registry_.Lie(index_, "{}");
  pulled = Pull("@" + index_, {.platform = "linux/amd64"});
  EXPECT_EQ(pulled.status().code(), StatusCode::kCorruption);
}

TEST_F(RegistryClientTest, ALayerOverTheBoundIsNotFetched) {
  auto pulled = Pull("@" + manifest_["arm64"], {.max_blob_bytes = 4});
  EXPECT_EQ(pulled.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(pulled.status().message().find("--registry-max-blob"), std::string::npos);
  EXPECT_FALSE(fs::exists(layout_ + "/blobs/sha256/" + layer_["arm64"].substr(7)));
}

}  // namespace
}  // namespace flotilla::tracker::registry
