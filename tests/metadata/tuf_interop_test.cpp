// Cross-check with an independent TUF implementation, tuf-js (npm, installed
// by scripts/setup.sh into tests/metadata/interop/node_modules), in both
// directions, over HTTP on loopback (tests/metadata/interop/serve.py):
//  * FlotillaReadsTufJs: repositories written by tuf-js's models and Node's
//    crypto (tufjs_make_repo.mjs) are read by `flotilla-node tuf` and by
//    tuf-js's own client; each scenario says what each must conclude.
//  * TufJsReadsFlotilla: repositories flotilla's metadata library writes
//    (TestRepository: ECDSA and RSA-PSS keys, delegations, hash bins, odd role
//    names, consistent snapshots) are read by tuf-js's client.
// Where the two disagree, docs/tuf-client.md says what the specification says.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/test_repository.h"
#include "metadata/tuf_names.h"
#include "tests/metadata/static_http_server.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using metadata::DelegatedRole;
using metadata::KeyScheme;
using metadata::RoleType;
using metadata::TestRepository;
using metadata::TufSigner;

const std::string kInterop = std::string(FLOTILLA_SOURCE_DIR) + "/tests/metadata/interop";

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// A client's conclusion for each target: "ok", "notfound" or "error", and the sha256 of what it
// got.
struct ReadResult {
  std::string refresh;  // "ok" or the error
  std::map<std::string, std::pair<std::string, std::string>> targets;
};

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kInterop + "/node_modules/tuf-js"))
        << "tuf-js is not installed: run scripts/setup.sh (npm ci in " << kInterop << ")";
    temp_ = MakeTempDir("tuf-interop-");
  }
  void TearDown() override { fs::remove_all(temp_); }

  std::unique_ptr<StaticHttpServer> Serve(const std::string& repo) {
    auto server =
        std::make_unique<StaticHttpServer>(std::vector<std::string>{kInterop + "/serve.py", repo},
                                           temp_ + "/http-" + std::to_string(++serial_) + ".log");
    EXPECT_GT(server->port(), 0);
    return server;
  }

  ReadResult TufJsReads(const std::string& repo, const std::string& root,
                        const std::vector<std::string>& names) {
    auto server = Serve(repo);
    const std::string dir = temp_ + "/tufjs-" + std::to_string(++serial_);
    fs::create_directories(dir + "/metadata");
    fs::copy_file(root, dir + "/metadata/root.json");
    std::string command = "node " + kInterop + "/tufjs_client.mjs " + dir + "/metadata " +
                          server->url("/metadata") + " " + server->url("/targets") + " " + dir +
                          "/downloads";
    for (const auto& name : names) command += " " + Quote(name);
    auto run = RunShell(command);
    ReadResult result;
    auto json = ParseJsonStrict(run.output);
    EXPECT_TRUE(json.ok()) << run.output;
    if (!json.ok()) return result;
    result.refresh = (*json)["refresh"];
    for (auto& [name, r] : (*json)["targets"].items()) {
      result.targets[name] = {r["result"], r.value("sha256", r.value("error", ""))};
    }
    return result;
  }

  ReadResult FlotillaReads(const std::string& repo, const std::string& root,
                           const std::vector<std::string>& names) {
    auto server = Serve(repo);
    const std::string dir = temp_ + "/flotilla-" + std::to_string(++serial_);
    const std::string tuf = BinaryPath("flotilla-node") + " tuf --metadata-dir " + dir +
                            "/metadata --metadata-url " + server->url("/metadata") + " ";
    ReadResult result;
    auto init = RunShell(tuf + "init " + root);  // refuses a root with keys TUF does not allow
    auto refresh = init.exit_code == 0 ? RunShell(tuf + "refresh") : init;
    result.refresh = refresh.exit_code == 0 ? "ok" : refresh.output;
    for (const auto& name : names) {
      auto got = RunShell(tuf + "--target-base-url " + server->url("/targets") + " --target-dir " +
                          dir + "/downloads --target-name " + Quote(name) + " download");
      if (got.exit_code == 0) {
        auto bytes =
            ReadTextFileBounded(dir + "/downloads/" + metadata::PercentEncode(name), 1 << 20);
        result.targets[name] = {"ok", bytes.ok() ? Digest::Of(*bytes).Hex() : "unreadable"};
      } else {
        bool missing = got.output.find("NotFound: no target named") != std::string::npos;
        result.targets[name] = {missing ? "notfound" : "error", got.output};
      }
    }
    return result;
  }

  // Checks `result` against what a scenario expects of `client`.
  static void Expect(const ReadResult& result, const Json& scenario, const std::string& client) {
    const std::string refresh = scenario["refresh"][client];
    if (refresh == "ok") {
      EXPECT_EQ(result.refresh, "ok");
    } else {
      EXPECT_NE(result.refresh, "ok");
      if (refresh.starts_with("error:")) {
        EXPECT_NE(result.refresh.find(refresh.substr(6)), std::string::npos)
            << client << ": " << result.refresh;
      }
    }
    for (auto& [name, expected] : scenario["targets"].items()) {
      SCOPED_TRACE(client + " reading " + name);
      auto it = result.targets.find(name);
      ASSERT_NE(it, result.targets.end());
      EXPECT_EQ(it->second.first, expected[client].get<std::string>()) << it->second.second;
      if (expected[client] == "ok") EXPECT_EQ(it->second.second, expected["sha256"]);
    }
  }

  std::string temp_;
  int serial_ = 0;
};

// ---- tuf-js writes, flotilla (and tuf-js) read ----

class FlotillaReadsTufJs : public InteropTest {
 protected:
  // Has tuf-js write scenario `name`, then both clients read it.
  void Check(const std::string& name) {
    const std::string repos = temp_ + "/tufjs-repos";
    auto made = RunShell("node " + kInterop + "/tufjs_make_repo.mjs " + repos + " " + name);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    Json scenarios = Json::parse(ReadTextFileBounded(repos + "/scenarios.json", 1 << 20).value());
    ASSERT_TRUE(scenarios.contains(name));
    const Json& scenario = scenarios[name];
    const std::string repo = repos + "/" + name;
    const std::string root = repo + "/metadata/1.root.json";
    std::vector<std::string> names;
    for (auto& [target, _] : scenario["targets"].items()) names.push_back(target);
    Expect(FlotillaReads(repo, root, names), scenario, "flotilla");
    Expect(TufJsReads(repo, root, names), scenario, "tufjs");
  }
};

TEST_F(FlotillaReadsTufJs, EcdsaRsaEd25519KeysDelegationsHashBinsAndOddRoleNames) {
  Check("schemes-and-delegations");
}
TEST_F(FlotillaReadsTufJs, TwoSignaturesUnderOneKeyIdAreRefusedByBoth) {
  Check("duplicate-signature");
}
TEST_F(FlotillaReadsTufJs, RsaKeyUnder2048BitsIsRefusedAsTheSpecificationSays) {
  Check("rsa-1024");
}
TEST_F(FlotillaReadsTufJs, WithoutConsistentSnapshots) { Check("not-consistent"); }
TEST_F(FlotillaReadsTufJs, CanonicalKeyOrderBeyondTheBasicPlane) { Check("canonical-key-order"); }
TEST_F(FlotillaReadsTufJs, PathPatternsAsPythonFnmatchNotMinimatch) { Check("patterns"); }
TEST_F(FlotillaReadsTufJs, KeyIdThatIsNotTheKeysHashIsRefused) { Check("key-id-not-the-hash"); }

// ---- flotilla writes, tuf-js reads ----

TufSigner Key(KeyScheme scheme) { return TufSigner::Generate(scheme).value(); }

DelegatedRole Role(const std::string& name, std::vector<std::string> paths,
                   bool terminating = false, uint32_t threshold = 1) {
  DelegatedRole role;
  role.name = name;
  role.paths = std::move(paths);
  role.terminating = terminating;
  role.keys.threshold = threshold;
  return role;
}

class TufJsReadsFlotilla : public InteropTest {
 protected:
  // Adds a target and records that both clients must get it.
  void Add(TestRepository& repo, const std::string& role, const std::string& name,
           const std::vector<std::string>& algorithms = {"sha256"}) {
    const std::string content = "target " + name + " signed by " + role + "\n";
    ASSERT_TRUE(repo.AddTarget(role, name, content, algorithms).ok());
    expected_["targets"][name] = {
        {"tufjs", "ok"}, {"flotilla", "ok"}, {"sha256", Digest::Of(content).Hex()}};
  }
  void Missing(const std::string& name) {
    expected_["targets"][name] = {{"tufjs", "notfound"}, {"flotilla", "notfound"}};
  }
  void CheckBoth(TestRepository& repo) {
    ASSERT_TRUE(repo.Publish().ok());
    expected_["refresh"] = {{"tufjs", "ok"}, {"flotilla", "ok"}};
    std::vector<std::string> names;
    for (auto& [name, _] : expected_["targets"].items()) names.push_back(name);
    const std::string root = repo.metadata_dir() + "/1.root.json";
    Expect(TufJsReads(temp_ + "/repo", root, names), expected_, "tufjs");
    Expect(FlotillaReads(temp_ + "/repo", root, names), expected_, "flotilla");
  }
  Json expected_ = Json::object();
};

TEST_F(TufJsReadsFlotilla, EcdsaRsaEd25519KeysDelegationsHashBinsAndOddRoleNames) {
  TestRepository repo(temp_ + "/repo", SystemClock::Instance().Now());
  repo.SetKeys(RoleType::kRoot, {Key(KeyScheme::kEcdsaSha2Nistp256)});
  repo.SetKeys(RoleType::kTargets, {Key(KeyScheme::kRsassaPssSha256)});
  repo.SetKeys(RoleType::kTimestamp, {Key(KeyScheme::kEcdsaSha2Nistp256)});
  Add(repo, "targets", "top.txt", {"sha256", "sha512"});
  Add(repo, "targets", "only512.txt", {"sha512"});
  repo.Delegate("targets", Role("pair", {"pair/*"}, false, 2),
                {Key(KeyScheme::kEcdsaSha2Nistp256), Key(KeyScheme::kRsassaPssSha256)});
  Add(repo, "pair", "pair/a.txt");
  repo.Delegate("targets", Role("locked", {"locked/*"}, true), {Key(KeyScheme::kEd25519)});
  repo.Delegate("targets", Role("fallback", {"locked/*", "fallback/*"}),
                {Key(KeyScheme::kEcdsaSha2Nistp256)});
  Add(repo, "locked", "locked/in.txt");
  ASSERT_TRUE(repo.AddTarget("fallback", "locked/out.txt", "behind a terminating role").ok());
  Missing("locked/out.txt");
  Add(repo, "fallback", "fallback/f.txt");
  int i = 0;
  for (const std::string role : {"?", "#", "/", "..", "a/../b"}) {
    const std::string name = "odd/" + std::to_string(++i) + ".txt";
    repo.Delegate("targets", Role(role, {name}), {Key(KeyScheme::kEd25519)});
    Add(repo, role, name);
  }
  DelegatedRole hashed;
  hashed.name = "hashed";
  hashed.path_hash_prefixes =
      std::vector<std::string>{Digest::Of("hashed/h.txt").Hex().substr(0, 1)};
  repo.Delegate("targets", hashed, {Key(KeyScheme::kEd25519)});
  Add(repo, "hashed", "hashed/h.txt");
  repo.Delegate("targets", Role("apps", {"apps/*"}), {Key(KeyScheme::kEd25519)});
  metadata::SuccinctRoles bins;
  bins.bit_length = 3;
  bins.name_prefix = "apps-bin";
  repo.DelegateSuccinct("apps", bins, {Key(KeyScheme::kEcdsaSha2Nistp256)});
  Add(repo, bins.RoleFor("apps/tool.txt"), "apps/tool.txt");
  Missing("missing.txt");
  CheckBoth(repo);
}

TEST_F(TufJsReadsFlotilla, RootRotatedToNewSchemesAndWithoutConsistentSnapshots) {
  TestRepository repo(temp_ + "/repo", SystemClock::Instance().Now());
  repo.consistent_snapshot = false;
  Add(repo, "targets", "plain.txt");
  repo.Delegate("targets", Role("d", {"d/*"}), {Key(KeyScheme::kRsassaPssSha256)});
  Add(repo, "d", "d/x.txt", {"sha512"});
  ASSERT_TRUE(repo.Publish().ok());
  // Root 2: root and snapshot keys move to ECDSA and RSA-PSS; signed by old and new root keys.
  repo.SetKeys(RoleType::kRoot, {Key(KeyScheme::kEcdsaSha2Nistp256)});
  repo.SetKeys(RoleType::kSnapshot, {Key(KeyScheme::kRsassaPssSha256)});
  ASSERT_TRUE(repo.PublishRoot().ok());
  Add(repo, "d", "d/y.txt");
  CheckBoth(repo);
}

// A repository as the tracker writes it under offline keys (docs/signing.md):
// `init --offline-keys`, an app role with an ECDSA key added by an offline
// targets signing, a release staged by `publish`, signed where the app key
// lives and accepted. tuf-js finds the release through the delegation, as
// flotilla's client does; what the app role may not sign stays unfound.
TEST_F(TufJsReadsFlotilla, ReleaseTheTrackerPublishedUnderAnOfflineAppKey) {
  const std::string repo = temp_ + "/repo";
  const std::string log = "cat " + temp_ + "/offline.log " + temp_ + "/publish.log";
  ASSERT_TRUE(InitOfflineRepository(temp_, repo, "kiosk", /*ecdsa=*/true)) << RunShell(log).output;
  ASSERT_TRUE(PublishImage(temp_, repo, "kiosk", 16, "1", "1")) << RunShell(log).output;
  ASSERT_TRUE(SignRelease(temp_, repo, "kiosk", 1)) << RunShell(log).output;

  auto app_role = ReadTextFileBounded(repo + "/metadata/1.apps%2Fkiosk.json", 8 << 20);
  ASSERT_TRUE(app_role.ok());
  const Json release = Json::parse(*app_role)["signed"]["targets"]["apps/kiosk/release-1.json"];
  ASSERT_TRUE(release.is_object()) << *app_role;
  expected_["targets"]["apps/kiosk/release-1.json"] = {
      {"tufjs", "ok"}, {"flotilla", "ok"}, {"sha256", release["hashes"]["sha256"]}};
  Missing("apps/kiosk/release-2.json");
  Missing("apps/other/release-1.json");
  expected_["refresh"] = {{"tufjs", "ok"}, {"flotilla", "ok"}};
  std::vector<std::string> names;
  for (auto& [name, _] : expected_["targets"].items()) names.push_back(name);
  const std::string root = repo + "/metadata/1.root.json";
  Expect(TufJsReads(repo, root, names), expected_, "tufjs");
  Expect(FlotillaReads(repo, root, names), expected_, "flotilla");
}

// The offline validity window (docs/metadata.md): root's
// flotilla_offline_window_max_days and a release's custom.offline_window are
// fields tuf-js does not know; it keeps them under the signatures and takes
// the release, as flotilla does.
TEST_F(TufJsReadsFlotilla, ARootCappingOfflineWindowsAndAReleaseWithOne) {
  const std::string repo = temp_ + "/repo";
  const std::string log = "cat " + temp_ + "/publish.log";
  ASSERT_TRUE(InitRepository(temp_, repo));
  auto tracker_cli = [](const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  };
  const std::string root2 = repo + "/pending/2.root.json";
  ASSERT_EQ(
      tracker_cli("stage-root --repository " + repo + " --offline-window-max-days 90").exit_code,
      0);
  ASSERT_EQ(tracker_cli("sign " + root2 + " --key " + repo + "/keys/root.key").exit_code, 0);
  ASSERT_EQ(tracker_cli("accept --repository " + repo + " " + root2).exit_code, 0);
  ASSERT_TRUE(
      PublishImage(temp_, repo, "kiosk", 16, "1", "1", nullptr, "", "--offline-valid-days 30"))
      << RunShell(log).output;

  auto targets = ReadTextFileBounded(repo + "/metadata/targets.json", 8 << 20);
  ASSERT_TRUE(targets.ok());
  const Json release = Json::parse(*targets)["signed"]["targets"]["apps/kiosk/release-1.json"];
  ASSERT_TRUE(release["custom"].contains("offline_window")) << *targets;
  expected_["targets"]["apps/kiosk/release-1.json"] = {
      {"tufjs", "ok"}, {"flotilla", "ok"}, {"sha256", release["hashes"]["sha256"]}};
  expected_["refresh"] = {{"tufjs", "ok"}, {"flotilla", "ok"}};
  const std::string root = repo + "/metadata/1.root.json";
  const std::vector<std::string> names = {"apps/kiosk/release-1.json"};
  Expect(TufJsReads(repo, root, names), expected_, "tufjs");
  Expect(FlotillaReads(repo, root, names), expected_, "flotilla");
}

}  // namespace
}  // namespace flotilla::testing
