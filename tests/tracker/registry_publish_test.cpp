// Publishing from an OCI registry, end to end (docs/registry.md): Debian's
// docker-registry started by each test on a free loopback port with a
// configuration it writes (storage in the test's directory), images pushed
// by skopeo, the real flotilla-tracker publishing them: by tag and by
// digest, behind htpasswd Basic auth, behind a bearer-token server the test
// runs (tests/tracker/registry_token_server.py, trusted by the registry
// through a certificate openssl makes), a registry serving https with a
// certificate a private CA signs (--registry-ca), a layer corrupted in the
// registry's storage, a two-platform index, and four nodes upgrading by
// delta from two releases published from the registry.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/release.h"
#include "tests/node/node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const std::string kSource = FLOTILLA_SOURCE_DIR;
constexpr char kUser[] = "operator";
constexpr char kPassword[] = "s3cr3t-pw";

// docker-registry serve <dir>/config.yml on 127.0.0.1:<free port>.
class RegistryProcess {
 public:
  // `auth_yaml`: the configuration's auth section ("" for none); with
  // `tls_prefix`, https only, serving <tls_prefix>.pem and <tls_prefix>.key.
  bool Start(const std::string& dir, const std::string& auth_yaml = "",
             const std::string& tls_prefix = "") {
    dir_ = dir;
    fs::create_directories(dir);
    port_ = FreePort();
    std::ofstream(dir + "/config.yml")
        << "version: 0.1\n"
           "log:\n  level: warn\n"
           "storage:\n  filesystem:\n    rootdirectory: "
        << dir << "/storage\n"
        << "http:\n  addr: 127.0.0.1:" << port_ << "\n"
        << (tls_prefix.empty() ? ""
                               : "  tls:\n    certificate: " + tls_prefix +
                                     ".pem\n    key: " + tls_prefix + ".key\n")
        << auth_yaml;
    if (!process_.Start({"/usr/bin/docker-registry", "serve", dir + "/config.yml"},
                        dir + "/registry.log")) {
      return false;
    }
    const std::string scheme = tls_prefix.empty() ? "http" : "https";
    return WaitFor(
        [&] {
          auto r = RunShell("curl -sk -o /dev/null -w '%{http_code}' " + scheme + "://" + Host() +
                            "/v2/");
          return r.output == "200" || r.output == "401";
        },
        seconds(15));
  }
  std::string Host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Storage() const { return dir_ + "/storage/docker/registry/v2"; }
  std::string Log() const { return RunShell("cat " + dir_ + "/registry.log").output; }

 private:
  std::string dir_;
  int port_ = 0;
  ChildProcess process_;
};

class RegistryPublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("registry-publish");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    auto init = RunShell(BinaryPath("flotilla-tracker") + " init " + repo_ +
                         " --public-url http://127.0.0.1:9 2>&1");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(WriteFileAtomic(
                    dir_ + "/demo.json",
                    std::string(R"({"name": "demo", "command": ["/bin/sh", "-c", "sleep 1000"]})"))
                    .ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The busybox image of tests/layerstore/make_image.sh in <dir>/img/oci:
  // ref "img" (linux/amd64) and "multi" (an index of amd64 and arm64).
  void MakeImage() {
    fs::create_directories(dir_ + "/img");
    auto made =
        RunShell("bash " + kSource + "/tests/layerstore/make_image.sh " + dir_ + "/img 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  CommandResult Push(const std::string& source, const std::string& name,
                     const std::string& extra = "") {
    return RunShell("skopeo copy --quiet --dest-tls-verify=false " + extra + " " + source +
                    " docker://" + registry_.Host() + "/" + name + " 2>&1");
  }
  // The digest of what `name` (repo:tag) resolves to, from the registry's own bytes.
  std::string RemoteDigest(const std::string& name, const std::string& creds = "") {
    auto raw = RunShell("skopeo inspect --raw --tls-verify=false " +
                        (creds.empty() ? "" : "--creds " + creds) + " docker://" +
                        registry_.Host() + "/" + name);
    EXPECT_EQ(raw.exit_code, 0) << raw.output;
    return Digest::Of(raw.output).ToString();
  }
  std::string Reference(const std::string& name) const {
    return "docker://" + registry_.Host() + "/" + name;
  }
  // publish --json; stdout and stderr in output, the JSON document in `json`.
  CommandResult Publish(const std::string& image, const std::string& extra = "",
                        const std::string& app = "demo") {
    auto r = RunShell(BinaryPath("flotilla-tracker") + " publish --json --repository " + repo_ +
                      " --app " + app + " --spec " + dir_ + "/" + app + ".json " + extra + " " +
                      image + " 2>&1");
    json_ = nullptr;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("{")) json_ = Json::parse(line, nullptr, false);
    }
    return r;
  }
  // The signed target of release `version` of `app`, parsed (custom included).
  Json ReleaseCustom(uint64_t version, const std::string& app = "demo") {
    auto text = ReadTextFileBounded(repo_ + "/metadata/targets.json", 16 << 20);
    if (!text.ok()) return nullptr;
    Json targets = Json::parse(*text)["signed"]["targets"];
    const std::string name = metadata::ReleaseTargetName(app, version);
    return targets.contains(name) ? targets[name]["custom"] : Json(nullptr);
  }
  bool StagingEmpty() const {
    return !fs::exists(repo_ + "/staging") || fs::is_empty(repo_ + "/staging");
  }
  std::string WriteAuthFile(const std::string& password,
                            fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
    const std::string path = dir_ + "/auth-" + std::to_string(++auth_files_) + ".json";
    const std::string auth =
        RunShell("printf '%s' '" + std::string(kUser) + ":" + password + "' | base64 -w0").output;
    EXPECT_TRUE(
        WriteFileAtomic(path, Json{{"auths", {{registry_.Host(), {{"auth", auth}}}}}}.dump(), 0600)
            .ok());
    fs::permissions(path, perms);
    return path;
  }

  std::string dir_, repo_;
  RegistryProcess registry_;
  Json json_;
  int auth_files_ = 0;
};

TEST_F(RegistryPublishTest, PublishesByTagAndByDigestAndSignsTheSource) {
  MakeImage();
  ASSERT_TRUE(registry_.Start(dir_ + "/registry"));
  auto pushed = Push("oci:" + dir_ + "/img/oci:img", "shop/demo:1");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  const std::string digest = RemoteDigest("shop/demo:1");

  auto r = Publish(Reference("shop/demo:1"));
  ASSERT_EQ(r.exit_code, 0) << r.output << registry_.Log();
  ASSERT_TRUE(json_.is_object()) << r.output;
  EXPECT_EQ(json_["release"], 1);
  EXPECT_EQ(json_["artifacts_made"], 3);
  EXPECT_EQ(json_["image_manifest"], digest);
  EXPECT_EQ(json_["source"]["digest"], digest);
  // The source is in the signed target, beside custom.flotilla.
  Json custom = ReleaseCustom(1);
  ASSERT_TRUE(custom.is_object());
  EXPECT_EQ(custom["source"]["reference"], Reference("shop/demo:1"));
  EXPECT_EQ(custom["source"]["digest"], digest);
  auto release = metadata::ParseRelease(custom);
  ASSERT_TRUE(release.ok()) << release.status().ToString();
  EXPECT_EQ(release->image.manifest.ToString(), digest);
  EXPECT_TRUE(StagingEmpty());

  // By digest: the same image again, every artifact reused.
  r = Publish(Reference("shop/demo@" + digest));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_["release"], 2);
  EXPECT_EQ(json_["artifacts_reused"], 3);
  EXPECT_EQ(ReleaseCustom(2)["source"]["reference"], Reference("shop/demo@" + digest));

  // Credentials in the reference are refused before anything is fetched, unechoed.
  r = Publish("docker://operator:pw-in-url@" + registry_.Host() + "/shop/demo:1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("give --registry-auth"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("pw-in-url"), std::string::npos) << r.output;

  // A tag the registry does not have.
  r = Publish(Reference("shop/demo:9"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("NotFound"), std::string::npos) << r.output;
  EXPECT_TRUE(ReleaseCustom(3).is_null());
  EXPECT_TRUE(StagingEmpty());
}

// A registry whose certificate a private CA signs (docs/registry.md,
// "Transport"): openssl makes a CA and a certificate for IP 127.0.0.1, the
// registry serves https only; publish trusts exactly the CA --registry-ca names.
TEST_F(RegistryPublishTest, RegistryCaTrustsAPrivateCaAndNothingElse) {
  MakeImage();
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  auto made = RunShell(
      "(cd " + dir_ + " && openssl req -x509" + ec +
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=flotilla-test-ca && openssl req -x509" + ec +
      "-keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=flotilla-other-ca && "
      "openssl req" +
      ec +
      "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
      "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile server.ext -out server.pem) 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ASSERT_TRUE(registry_.Start(dir_ + "/registry", "", dir_ + "/server"));
  auto pushed = Push("oci:" + dir_ + "/img/oci:img", "shop/demo:1");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output << registry_.Log();
  const std::string digest = RemoteDigest("shop/demo:1");

  // The flag's rules, refused before any network.
  auto r =
      Publish(Reference("shop/demo:1"), "--registry-ca " + dir_ + "/ca.pem --insecure-registry");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("contradict each other"), std::string::npos) << r.output;
  r = Publish(dir_ + "/img/oci", "--registry-ca " + dir_ + "/ca.pem");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("apply to a docker:// image only"), std::string::npos) << r.output;
  r = Publish(Reference("shop/demo:1"), "--registry-ca " + dir_ + "/no-such-ca.pem");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--registry-ca: " + dir_ + "/no-such-ca.pem does not exist"),
            std::string::npos)
      << r.output;
  r = Publish(Reference("shop/demo:1"), "--registry-ca " + dir_ + "/server.csr");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no PEM certificate in it"), std::string::npos) << r.output;

  // Without --registry-ca a loopback registry is spoken to in plain http,
  // which a TLS port answers with a 400.
  r = Publish(Reference("shop/demo:1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("http://" + registry_.Host()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HTTP 400"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("for https give --registry-ca FILE"), std::string::npos) << r.output;
  // Another CA: the certificate does not verify, nothing is published.
  r = Publish(Reference("shop/demo:1"), "--registry-ca " + dir_ + "/other-ca.pem");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("PermissionDenied: publish demo: registry https://" + registry_.Host() +
                          ": its TLS certificate did not verify against the CAs in "
                          "--registry-ca " +
                          dir_ + "/other-ca.pem"),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(ReleaseCustom(1).is_null());
  EXPECT_TRUE(StagingEmpty());

  // The CA that signed it: https, verified, published with the source digest.
  r = Publish(Reference("shop/demo:1"), "--registry-ca " + dir_ + "/ca.pem");
  ASSERT_EQ(r.exit_code, 0) << r.output << registry_.Log();
  EXPECT_NE(r.output.find("from https://" + registry_.Host()), std::string::npos) << r.output;
  EXPECT_EQ(json_["release"], 1);
  EXPECT_EQ(ReleaseCustom(1)["source"]["digest"], digest);
  EXPECT_EQ(ReleaseCustom(1)["source"]["reference"], Reference("shop/demo:1"));
}

TEST_F(RegistryPublishTest, HtpasswdBasicAuthWithTheCredentialsFile) {
  MakeImage();
  // A bcrypt line (cost 4: the registry checks it on every request).
  auto hash = RunShell(
      "python3 -W ignore -c 'import crypt,sys; "
      "print(sys.argv[1] + \":\" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, "
      "rounds=16)))' " +
      std::string(kUser) + " " + kPassword + " > " + dir_ + "/htpasswd");
  ASSERT_EQ(hash.exit_code, 0) << hash.output;
  ASSERT_TRUE(registry_.Start(dir_ + "/registry",
                              "auth:\n  htpasswd:\n    realm: flotilla-test\n"
                              "    path: " +
                                  dir_ + "/htpasswd\n"));
  const std::string creds = std::string(kUser) + ":" + kPassword;
  auto pushed = Push("oci:" + dir_ + "/img/oci:img", "shop/demo:1", "--dest-creds " + creds);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output << registry_.Log();

  auto r = Publish(Reference("shop/demo:1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("asks for credentials: give --registry-auth"), std::string::npos)
      << r.output;
  r = Publish(Reference("shop/demo:1"),
              "--registry-auth " +
                  WriteAuthFile(kPassword, fs::perms::owner_read | fs::perms::owner_write |
                                               fs::perms::group_read | fs::perms::others_read));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("has mode 0644"), std::string::npos) << r.output;
  r = Publish(Reference("shop/demo:1"), "--registry-auth " + WriteAuthFile("wrong-pw"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("refused the credentials for " + registry_.Host()), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("wrong-pw"), std::string::npos) << r.output;
  EXPECT_TRUE(ReleaseCustom(1).is_null());

  r = Publish(Reference("shop/demo:1"), "--registry-auth " + WriteAuthFile(kPassword));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_["source"]["digest"], RemoteDigest("shop/demo:1", creds));
  EXPECT_EQ(r.output.find(kPassword), std::string::npos);
}

TEST_F(RegistryPublishTest, BearerTokensFromTheRegistrysTokenServer) {
  MakeImage();
  auto cert = RunShell(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -keyout " +
      dir_ + "/token.key -out " + dir_ + "/token.pem -days 2 -subj /CN=flotilla-test-token 2>&1");
  ASSERT_EQ(cert.exit_code, 0) << cert.output;
  ChildProcess token_server;
  ASSERT_TRUE(token_server.Start(
      {"/usr/bin/env", "python3", kSource + "/tests/tracker/registry_token_server.py",
       dir_ + "/token.port", dir_ + "/token.key", dir_ + "/token.pem", "flotilla-test-issuer",
       std::string(kUser) + ":" + kPassword},
      dir_ + "/token.log"));
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ + "/token.port"); }, seconds(15)))
      << RunShell("cat " + dir_ + "/token.log").output;
  const std::string token_port = ReadTextFileBounded(dir_ + "/token.port", 64).value();
  ASSERT_TRUE(registry_.Start(dir_ + "/registry",
                              "auth:\n  token:\n    realm: http://127.0.0.1:" + token_port +
                                  "/token\n    service: flotilla-test\n"
                                  "    issuer: flotilla-test-issuer\n    rootcertbundle: " +
                                  dir_ + "/token.pem\n"));
  const std::string creds = std::string(kUser) + ":" + kPassword;
  auto pushed = Push("oci:" + dir_ + "/img/oci:img", "shop/demo:1", "--dest-creds " + creds);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output << registry_.Log();

  auto r = Publish(Reference("shop/demo:1"), "--registry-auth " + WriteAuthFile("wrong-pw"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("token server http://127.0.0.1:" + token_port), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("refused the credentials"), std::string::npos) << r.output;

  r = Publish(Reference("shop/demo:1"), "--registry-auth " + WriteAuthFile(kPassword));
  ASSERT_EQ(r.exit_code, 0) << r.output << registry_.Log();
  EXPECT_EQ(json_["release"], 1);
  const std::string log = RunShell("cat " + dir_ + "/token.log").output;
  EXPECT_NE(log.find("token granted repository:shop/demo:pull\n"), std::string::npos) << log;
  EXPECT_EQ(r.output.find(kPassword), std::string::npos);
}

TEST_F(RegistryPublishTest, ALayerCorruptedInTheRegistryIsRefusedAndNothingIsPublished) {
  MakeImage();
  ASSERT_TRUE(registry_.Start(dir_ + "/registry"));
  ASSERT_EQ(Push("oci:" + dir_ + "/img/oci:img", "shop/demo:1").exit_code, 0);
  // The largest blob in the registry's storage is a layer: one byte changed.
  std::string largest;
  uintmax_t size = 0;
  for (const auto& entry : fs::recursive_directory_iterator(registry_.Storage() + "/blobs")) {
    if (entry.is_regular_file() && entry.file_size() > size) {
      size = entry.file_size();
      largest = entry.path().string();
    }
  }
  ASSERT_FALSE(largest.empty());
  {
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put('\x5a');
  }
  auto r = Publish(Reference("shop/demo:1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string blob = "sha256:" + fs::path(largest).parent_path().filename().string();
  EXPECT_NE(r.output.find("Corruption: "), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find("blob " + blob + " from http://" + registry_.Host() + ": its bytes hash to"),
      std::string::npos)
      << r.output;
  EXPECT_TRUE(ReleaseCustom(1).is_null());
  EXPECT_TRUE(StagingEmpty());
}

TEST_F(RegistryPublishTest, ATwoPlatformIndexYieldsEachPlatformsManifest) {
  MakeImage();
  ASSERT_TRUE(registry_.Start(dir_ + "/registry"));
  auto pushed = Push("oci:" + dir_ + "/img/oci:multi", "shop/demo:multi", "--all");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  const std::string index_digest = RemoteDigest("shop/demo:multi");
  // The index the test wrote (make_image.sh), as the registry serves it.
  auto raw = RunShell("skopeo inspect --raw --tls-verify=false " + Reference("shop/demo:multi"));
  Json index = Json::parse(raw.output);
  std::map<std::string, std::string> manifest_of;
  for (const auto& entry : index["manifests"]) {
    manifest_of[entry["platform"]["architecture"]] = entry["digest"];
  }
  ASSERT_EQ(manifest_of.size(), 2u) << raw.output;

  auto r = Publish(Reference("shop/demo:multi"), "--platform linux/arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_["platform"], "linux/arm64");
  EXPECT_EQ(json_["image_manifest"], manifest_of["arm64"]);
  EXPECT_EQ(json_["source"]["digest"], index_digest);
  r = Publish(Reference("shop/demo:multi"), "--platform linux/amd64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_["platform"], "linux/amd64");
  EXPECT_EQ(json_["image_manifest"], manifest_of["amd64"]);
  auto release = metadata::ParseRelease(ReleaseCustom(2));
  ASSERT_TRUE(release.ok()) << release.status().ToString();
  EXPECT_EQ(release->image.platform, "linux/amd64");

  r = Publish(Reference("shop/demo:multi"), "--platform linux/riscv64");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the index offers linux/amd64 linux/arm64"), std::string::npos)
      << r.output;
}

// --platforms: one index, one release per platform, each under its own app
// (the default platform's under --app), each recording its platform's
// manifest and the index's digest.
TEST_F(RegistryPublishTest, PlatformsPublishesOneAppPerPlatformFromOneIndex) {
  MakeImage();
  ASSERT_TRUE(registry_.Start(dir_ + "/registry"));
  auto pushed = Push("oci:" + dir_ + "/img/oci:multi", "shop/demo:multi", "--all");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  const std::string index_digest = RemoteDigest("shop/demo:multi");
  auto raw = RunShell("skopeo inspect --raw --tls-verify=false " + Reference("shop/demo:multi"));
  const Json index = Json::parse(raw.output);
  std::map<std::string, std::string> manifest_of;
  for (const auto& entry : index["manifests"]) {
    manifest_of[entry["platform"]["architecture"]] = entry["digest"];
  }

  auto r = Publish(Reference("shop/demo:multi"), "--platforms linux/arm64,linux/amd64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(json_["releases"].size(), 2u) << r.output;
  EXPECT_EQ(json_["releases"][0]["app"], "demo");
  EXPECT_EQ(json_["releases"][1]["app"], "demo.amd64");
  for (const auto& [app, arch] : {std::pair{"demo", "arm64"}, std::pair{"demo.amd64", "amd64"}}) {
    auto release = metadata::ParseRelease(ReleaseCustom(1, app));
    ASSERT_TRUE(release.ok()) << app << ": " << release.status().ToString();
    EXPECT_EQ(release->image.platform, std::string("linux/") + arch);
    EXPECT_EQ(release->image.manifest.ToString(), manifest_of[arch]);
    ASSERT_TRUE(release->source.has_value());
    EXPECT_EQ(release->source->digest.ToString(), index_digest);
    EXPECT_EQ(release->source->reference, Reference("shop/demo:multi"));
    // The node checks that the spec names the app; the container keeps the one hostname.
    EXPECT_EQ(release->app_spec["name"], app);
    EXPECT_EQ(release->app_spec.value("hostname", "demo"), "demo");
  }

  // Each device takes only its platform's app: on this host the node that
  // follows the other platform's fetches nothing of it and says why; the
  // one that follows this host's app fetches all of its release.
  const std::string host_app = RunShell("uname -m").output == "aarch64\n" ? "demo" : "demo.amd64";
  const std::string other_app = host_app == "demo" ? "demo.amd64" : "demo";
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir_, repo_)) << tracker.Log();
  NodeProcess own, other;
  fs::create_directories(dir_ + "/own");
  fs::create_directories(dir_ + "/other");
  const std::string root = repo_ + "/metadata/1.root.json";
  ASSERT_TRUE(own.Start(dir_ + "/own",
                        NodeConfigFor("own", dir_ + "/own/data", tracker.url(), root, host_app)));
  ASSERT_TRUE(other.Start(dir_ + "/other", NodeConfigFor("other", dir_ + "/other/data",
                                                         tracker.url(), root, other_app)));
  ASSERT_TRUE(WaitFor([&] { return AppState(dir_ + "/own/data", host_app)["ready_release"] == 1; },
                      seconds(60)))
      << own.Log();
  ASSERT_TRUE(
      WaitFor([&] { return AppState(dir_ + "/other/data", other_app)["failed_release"] == 1; },
              seconds(60)))
      << other.Log();
  EXPECT_EQ(AppState(dir_ + "/own/data", host_app)["bytes_from_origin"],
            FullArtifactBytes(repo_, host_app, 1));
  const Json refused = AppState(dir_ + "/other/data", other_app);
  EXPECT_EQ(refused["bytes_from_origin"], 0) << refused.dump();
  EXPECT_NE(refused["last_error"].get<std::string>().find("this device runs"), std::string::npos)
      << refused.dump();
  EXPECT_EQ(RunShell("ls " + dir_ + "/other/data/artifacts 2>/dev/null | wc -l").output, "0\n");
  own.Stop();
  other.Stop();
  tracker.Stop();

  // The default platform chosen: amd64 is "demo" now, arm64 its own app.
  r = Publish(Reference("shop/demo:multi"),
              "--platforms linux/arm64,linux/amd64 --default-platform linux/amd64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_["releases"][0]["app"], "demo.arm64");
  EXPECT_EQ(json_["releases"][1]["app"], "demo");
  EXPECT_EQ(json_["releases"][1]["release"], 2);
  EXPECT_EQ(metadata::ParseRelease(ReleaseCustom(2))->image.platform, "linux/amd64");

  // Contradictions are refused before anything is fetched.
  r = Publish(Reference("shop/demo:multi"), "--platforms linux/arm64 --platform linux/arm64");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = Publish(Reference("shop/demo:multi"),
              "--platforms linux/arm64,linux/amd64 --default-platform linux/arm/v7");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is not in --platforms"), std::string::npos) << r.output;
  EXPECT_TRUE(ReleaseCustom(3).is_null());

  // All or nothing: a platform the index lacks stops the publish before the
  // first platform is published, from the registry and from a layout on disk.
  for (const std::string& image : {Reference("shop/demo:multi"), dir_ + "/img/oci"}) {
    const std::string select = image.starts_with("docker://") ? "" : "--select multi ";
    r = Publish(image, select + "--platforms linux/amd64,linux/riscv64,linux/arm64");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("no image for linux/riscv64;"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("linux/amd64"), std::string::npos) << r.output;  // what it offers
    EXPECT_EQ(r.output.find("published"), std::string::npos) << r.output;
    EXPECT_TRUE(ReleaseCustom(3).is_null()) << image;
    EXPECT_TRUE(ReleaseCustom(1, "demo.riscv64").is_null()) << image;
    EXPECT_TRUE(ReleaseCustom(2, "demo.arm64").is_null()) << image;
  }
}

// The issue's end to end: two releases pushed with skopeo, both published
// from the registry, four nodes upgrade by delta (the same path as a file).
TEST_F(RegistryPublishTest, TwoReleasesFromTheRegistryReachNodesByDelta) {
  ASSERT_TRUE(registry_.Start(dir_ + "/registry"));
  for (const char* variant : {"0", "2"}) {
    const std::string image = dir_ + "/kiosk-" + variant + ".tar";
    auto made = RunShell("python3 " + kSource + "/tests/node/make_node_image.py " + image +
                         " 512 1 " + variant + " 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    auto pushed = Push("docker-archive:" + image, std::string("shop/kiosk:") + variant);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  }
  const Json spec = {{"name", "kiosk"}, {"command", {"/bin/sh", "-c", "sleep 1000"}}};
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/kiosk.json", spec.dump()).ok());
  auto r = Publish(Reference("shop/kiosk:0"), "", "kiosk");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir_, repo_)) << tracker.Log();
  constexpr int kNodes = 4;
  NodeProcess nodes[kNodes];
  for (int i = 0; i < kNodes; ++i) {
    const std::string name = "kiosk-" + std::to_string(i);
    const std::string data = dir_ + "/" + name;
    fs::create_directories(data);
    ASSERT_TRUE(nodes[i].Start(data, NodeConfigFor(name, data + "/data", tracker.url(),
                                                   repo_ + "/metadata/1.root.json", "kiosk")));
  }
  auto ready = [&](int i, uint64_t release) {
    return WaitFor(
        [&] {
          Json a = AppState(dir_ + "/kiosk-" + std::to_string(i) + "/data", "kiosk");
          return a.is_object() && a["ready_release"] == release;
        },
        seconds(60));
  };
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(ready(i, 1)) << nodes[i].Log();

  r = Publish(Reference("shop/kiosk:2"), "", "kiosk");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_["deltas_made"], 2) << r.output;
  auto release = metadata::ParseRelease(ReleaseCustom(2, "kiosk"));
  ASSERT_TRUE(release.ok()) << release.status().ToString();
  ASSERT_TRUE(release->source.has_value());
  EXPECT_EQ(release->source->reference, Reference("shop/kiosk:2"));
  uint64_t delta_bytes = 0;
  for (const auto& a : release->artifacts) {
    if (a.kind == metadata::ArtifactKind::kDelta) delta_bytes += a.length;
  }
  ASSERT_GT(delta_bytes, 0u);
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(ready(i, 2)) << nodes[i].Log();
    // Each node moved the deltas' bytes after release 1's, not release 2's layers.
    Json state = AppState(dir_ + "/kiosk-" + std::to_string(i) + "/data", "kiosk");
    EXPECT_EQ(state["bytes_from_origin"], delta_bytes) << state.dump();
  }
  for (auto& node : nodes) node.Stop();
  tracker.Stop();
}

}  // namespace
}  // namespace flotilla::testing
