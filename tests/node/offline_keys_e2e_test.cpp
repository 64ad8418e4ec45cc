// Offline keys end to end (docs/signing.md): real flotilla-tracker (init
// --offline-keys, stage-app, publish, sign, accept, serve) and a real
// flotilla-node. An attacker holding the tracker's whole keys/ directory and
// tracker.db signs with the online keys and serves what it likes: the device
// installs only what the offline app key signed, and never goes below it.
#include <gtest/gtest.h>

#include <thread>

#include "core/file_io.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_types.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using metadata::SignedDocument;
using std::chrono::seconds;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// signed.version of a metadata file, 0 when unreadable.
uint64_t VersionOf(const std::string& path) {
  auto text = ReadTextFileBounded(path, 8 << 20);
  if (!text.ok()) return 0;
  auto json = Json::parse(*text, nullptr, false);
  return json.is_discarded() ? 0 : json["signed"].value("version", uint64_t{0});
}

SignedDocument ReadDocument(const std::string& path) {
  return metadata::ParseSignedDocument(ReadTextFileBounded(path, 8 << 20).value(), 8 << 20).value();
}

class OfflineKeysE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("offline-keys-e2e-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitOfflineRepository(dir_, repo_, "kiosk", /*ecdsa=*/true))
        << RunShell("cat " + dir_ + "/offline.log").output;
  }
  void TearDown() override {
    node_.Stop();
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }

  // Runs flotilla-tracker ARGS; expects `exit_code`; returns its output.
  std::string Tracker(const std::string& args, int exit_code = 0) {
    auto r = RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
    EXPECT_EQ(r.exit_code, exit_code) << args << "\n" << r.output;
    return r.output;
  }
  // publish stages release `release` of kiosk; the pending file's path.
  std::string Stage(int release) {
    EXPECT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "1", std::to_string(release)))
        << RunShell("cat " + dir_ + "/publish.log").output;
    return repo_ + "/pending/" + std::to_string(release) + ".apps%2Fkiosk.json";
  }
  void SignAndAccept(int release) {
    EXPECT_TRUE(SignRelease(dir_, repo_, "kiosk", release))
        << RunShell("cat " + dir_ + "/offline.log").output;
  }
  bool WaitReady(uint64_t release) {
    return WaitFor(
        [&] {
          Json a = AppState(Data(), "kiosk");
          return a.is_object() && a["ready_release"] == release;
        },
        seconds(60));
  }
  std::string Data() const { return dir_ + "/node"; }
  std::string Metadata() const { return repo_ + "/metadata"; }

  // What the attacker does with keys/: `doc` signed by the snapshot and
  // timestamp keys (none of them a targets key).
  std::string SignOnline(SignedDocument doc) {
    for (const char* role : {"snapshot", "timestamp"}) {
      auto key = Ed25519PrivateKey::LoadFile(repo_ + "/keys/" + role + ".key");
      EXPECT_TRUE(key.ok());
      metadata::AddSignature(doc, *key);
    }
    return metadata::SerializeDocument(doc);
  }
  // Serves `bytes` (empty: the file already there) as version `version` of
  // targets role `role`: the file, a snapshot naming it and a timestamp, all
  // signed with keys/, bypassing accept. Returns the timestamp's version.
  uint64_t ForgeServe(const std::string& role, uint64_t version, const std::string& bytes) {
    const std::string file =
        Metadata() + "/" + std::to_string(version) + "." + metadata::PercentEncode(role) + ".json";
    if (!bytes.empty()) EXPECT_TRUE(WriteFileAtomic(file, bytes).ok());
    const std::string served = *ReadTextFileBounded(file, 8 << 20);
    SignedDocument ts_doc = ReadDocument(Metadata() + "/timestamp.json");
    auto ts = metadata::ParseTimestamp(ts_doc.signed_json).value();
    const std::string sn_path =
        Metadata() + "/" + std::to_string(ts.snapshot.version) + ".snapshot.json";
    auto sn = metadata::ParseSnapshot(ReadDocument(sn_path).signed_json).value();
    sn.meta[role + ".json"] = {version, served.size(), {{"sha256", Digest::Of(served).Hex()}}};
    sn.common.version += 1;
    const std::string sn_bytes =
        SignOnline(metadata::MakeUnsignedDocument(metadata::ToJson(sn)).value());
    EXPECT_TRUE(
        WriteFileAtomic(Metadata() + "/" + std::to_string(sn.common.version) + ".snapshot.json",
                        sn_bytes)
            .ok());
    ts.snapshot = {sn.common.version, sn_bytes.size(), {{"sha256", Digest::Of(sn_bytes).Hex()}}};
    ts.common.version += 1;
    EXPECT_TRUE(
        WriteFileAtomic(Metadata() + "/timestamp.json",
                        SignOnline(metadata::MakeUnsignedDocument(metadata::ToJson(ts)).value()))
            .ok());
    return ts.common.version;
  }
  // The node trusted timestamp `version` (so it saw the forgery), and after a
  // few more refreshes still runs release `release`.
  void ExpectRefusedAndStillAt(uint64_t timestamp_version, uint64_t release) {
    EXPECT_TRUE(
        WaitFor([&] { return VersionOf(Data() + "/tuf/timestamp.json") >= timestamp_version; },
                seconds(30)))
        << node_.Log();
    std::this_thread::sleep_for(seconds(1));
    Json app = AppState(Data(), "kiosk");
    EXPECT_EQ(app["ready_release"], release) << app.dump();
    EXPECT_NE(app.value("target_release", uint64_t{0}), release + 1) << app.dump();
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

TEST_F(OfflineKeysE2e, TrackerKeysAndDatabaseCannotMakeADeviceInstallWhatNoAppKeySigned) {
  // keys/ holds the online keys only, 0600 in a 0700 directory.
  EXPECT_EQ(RunShell("cd " + repo_ + "/keys && stat -c '%a %n' . * | sort").output,
            "600 snapshot.key\n600 timestamp.key\n644 snapshot.key.pub\n"
            "644 timestamp.key.pub\n700 .\n");
  Stage(1);
  SignAndAccept(1);
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  ASSERT_TRUE(node_.Start(dir_, NodeConfigFor("kiosk-1", Data(), tracker_.url(),
                                              Metadata() + "/1.root.json", "kiosk")));
  ASSERT_TRUE(WaitReady(1)) << node_.Log();
  Stage(2);
  SignAndAccept(2);
  ASSERT_TRUE(WaitReady(2)) << node_.Log();

  // Release 3, staged with real artifacts, but signed by the tracker's keys only.
  const std::string pending = Stage(3);
  const std::string forged = SignOnline(ReadDocument(pending));
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/3.apps%2Fkiosk.json", forged).ok());
  EXPECT_NE(Tracker("accept --repository " + repo_ + " " + Quote(dir_ + "/3.apps%2Fkiosk.json"), 1)
                .find("signature"),
            std::string::npos);

  // The older release the app key signed, served again: below the floor.
  ExpectRefusedAndStillAt(ForgeServe("apps/kiosk", 1, ""), 2);
  // The online-signed app role, served as if accepted.
  ExpectRefusedAndStillAt(ForgeServe("apps/kiosk", 3, forged), 2);
  // Release 3 in the top-level targets (where 0.1.0 looks), signed online.
  SignedDocument top = ReadDocument(Metadata() + "/targets.json");
  auto targets = metadata::ParseTargets(top.signed_json).value();
  auto staged = metadata::ParseTargets(ReadDocument(pending).signed_json).value();
  targets.targets.insert(staged.targets.begin(), staged.targets.end());
  targets.common.version += 1;
  ExpectRefusedAndStillAt(
      ForgeServe("targets", targets.common.version,
                 SignOnline(metadata::MakeUnsignedDocument(metadata::ToJson(targets)).value())),
      2);
  EXPECT_NE(node_.Log().find("apps%2Fkiosk"), std::string::npos);
}

}  // namespace
}  // namespace flotilla::testing
