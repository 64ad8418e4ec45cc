// Offline bundles end to end (docs/bundle.md): `flotilla-tracker bundle`
// writes them from a published repository, `flotilla-node import` takes them
// into a node whose tracker is unreachable, and `flotilla-node run` deploys
// the release with no network. Bad bundles (a flipped byte in an artifact or
// in metadata, another repository's, truncated, a symlink, older than what
// runs) are refused with a clear message and leave the node as it was.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/file_io.h"
#include "layerstore/layer_store.h"
#include "metadata/tuf_time.h"
#include "node/daemon/bundle_import.h"
#include "node/daemon/node_config.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kApp[] = "web";

Json AppSpec() {
  return {{"name", kApp},
          {"command", {"/bin/sh", "-c", "echo up $(cat /etc/motd); exec sleep 1000"}},
          {"health", {{"type", "running"}, {"seconds", 1}}},
          {"restart", {{"policy", "always"}}}};
}

// Every file of a directory with its bytes (what "nothing changed" compares).
std::map<std::string, size_t> FilesOf(const std::string& dir) {
  std::map<std::string, size_t> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    files[e.path().string()] =
        std::hash<std::string>{}(ReadTextFileBounded(e.path().string(), 16 << 20).value_or("?"));
  }
  return files;
}

// Flips one byte in the middle of tar member `member` of `bundle`.
void FlipByteOfMember(const std::string& bundle, const std::string& member) {
  const std::string script = bundle + ".flip.py";
  ASSERT_TRUE(
      WriteFileAtomic(script,
                      "import sys, tarfile\n"
                      "path, prefix = sys.argv[1], sys.argv[2]\n"
                      "with tarfile.open(path) as t:\n"
                      "    m = [i for i in t.getmembers() if i.name.startswith(prefix)][0]\n"
                      "    at = m.offset_data + m.size // 2\n"
                      "with open(path, 'r+b') as f:\n"
                      "    f.seek(at)\n"
                      "    b = f.read(1)\n"
                      "    f.seek(at)\n"
                      "    f.write(bytes([b[0] ^ 1]))\n")
          .ok());
  auto r = RunShell("python3 " + script + " " + bundle + " " + member + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

class BundleE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(MakeTempDir("bundle-e2e-")).lexically_normal();
    repo_ = dir_ + "/repo";
    data_ = dir_ + "/node/data";
    ASSERT_TRUE(InitRepository(dir_, repo_));
    Publish(repo_, "0");
    // Port 1 on loopback: nothing listens, the tracker is unreachable.
    Json c = NodeConfigFor("n", data_, "http://127.0.0.1:1", repo_ + "/metadata/1.root.json", kApp);
    c["deploy"] = true;
    RunShell("mkdir -p " + dir_ + "/node");
    config_path_ = dir_ + "/node.json";
    ASSERT_TRUE(WriteFileAtomic(config_path_, c.dump()).ok());
    config_ = c;
  }
  void TearDown() override {
    node_.Stop();
    if (!mounted_.empty()) RunShell("umount " + mounted_);
    RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ + "/runtime " + kApp +
             " >/dev/null 2>&1");
    RunShell("rm -rf " + dir_);
  }

  void Publish(const std::string& repo, const std::string& variant) {
    ASSERT_TRUE(PublishImage(dir_, repo, kApp, 64, "bundle", variant, AppSpec()))
        << ReadTextFileBounded(dir_ + "/publish.log", 1 << 20).value_or("");
  }

  CommandResult Bundle(const std::string& repo, uint64_t release, uint64_t from,
                       const std::string& out) {
    return RunShell(BinaryPath("flotilla-tracker") + " bundle --repository " + repo + " --app " +
                    kApp + " --release " + std::to_string(release) +
                    (from ? " --from " + std::to_string(from) : "") + " --out " + out + " 2>&1");
  }

  CommandResult Import(const std::string& bundle) {
    return RunShell(BinaryPath("flotilla-node") + " import --config " + config_path_ + " " +
                    bundle + " 2>&1");
  }

  // `flotilla-node status --json` of the running node (an empty object
  // while its control socket is not up).
  Json NodeStatus() {
    auto r = RunShell("timeout 10 " + BinaryPath("flotilla-node") + " status --json --config " +
                      config_path_ + " 2>/dev/null");
    auto json = Json::parse(r.output, nullptr, false);
    return json.is_discarded() ? Json::object() : json;
  }

  std::string StoreVerify() {
    return RunShell(BinaryPath("flotilla-node") + " store --store " + data_ + "/store verify 2>&1")
        .output;
  }

  bool Runs(uint64_t version) {
    Json state = AppState(data_, kApp);
    return !state.is_null() && state["running_release"] == version && state["phase"] == "running";
  }

  // `bundle` is refused with `message`; the trusted metadata, state and store
  // are exactly as before, and no staging copy is left.
  void ExpectRefused(const std::string& bundle, const std::string& message) {
    const auto tuf_before = FilesOf(data_ + "/tuf");
    const auto state_before = ReadTextFileBounded(data_ + "/state.json", 1 << 20).value_or("");
    const std::string store_before = StoreVerify();
    auto r = Import(bundle);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_EQ(FilesOf(data_ + "/tuf"), tuf_before) << bundle;
    EXPECT_EQ(ReadTextFileBounded(data_ + "/state.json", 1 << 20).value_or(""), state_before);
    EXPECT_EQ(StoreVerify(), store_before);
    EXPECT_FALSE(std::filesystem::exists(data_ + "/tmp/import"));
  }

  std::string dir_, repo_, data_, config_path_;
  std::string mounted_;  // a filesystem the test mounted (unmounted at the end)
  Json config_;
  NodeProcess node_;
};

// A node whose tracker never answers takes release 1 from a bundle of full
// layers while stopped, then release 2 from a bundle of deltas from 1 while it
// runs: the daemon imports it, shows its progress, and switches to it; older
// bundles are refused by the running daemon and by the stopped node alike.
TEST_F(BundleE2e, ANodeWithNoTrackerRunsImportedReleasesAndRefusesAnOlderBundle) {
  const std::string b1 = dir_ + "/web-1.bundle", b2 = dir_ + "/web-2.bundle";
  auto made = Bundle(repo_, 1, 0, b1);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(made.output.find("bundle: artifact 1/"), std::string::npos) << made.output;
  EXPECT_FALSE(std::filesystem::exists(b1 + ".tmp"));
  auto imported = Import(b1);
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_NE(imported.output.find("imported web release 1"), std::string::npos) << imported.output;
  EXPECT_NE(imported.output.find("start the node to deploy it"), std::string::npos);

  ASSERT_TRUE(node_.Start(dir_ + "/node", config_));
  ASSERT_TRUE(WaitFor([&] { return Runs(1); }, seconds(60))) << node_.Log();
  EXPECT_EQ(NodeStatus()["import"]["id"], 0);

  // The running daemon imports release 2 (only deltas from release 1's
  // layers travel) and switches to it, with no restart.
  Publish(repo_, "1");
  ASSERT_EQ(Bundle(repo_, 2, 1, b2).exit_code, 0);
  EXPECT_EQ(Json::parse(RunShell("tar xOf " + b2 + " bundle.json").output)["from"], 1);
  imported = Import(b2);
  ASSERT_EQ(imported.exit_code, 0) << imported.output << node_.Log();
  EXPECT_NE(imported.output.find("the running daemon imports it"), std::string::npos)
      << imported.output;
  EXPECT_NE(imported.output.find("artifact(s) verified against the signed release"),
            std::string::npos)
      << imported.output;
  EXPECT_NE(imported.output.find("imported web release 2"), std::string::npos) << imported.output;
  ASSERT_TRUE(WaitFor([&] { return Runs(2); }, seconds(60))) << node_.Log();
  EXPECT_EQ(AppState(data_, kApp)["bytes_from_origin"], 0);
  Json import = NodeStatus()["import"];
  EXPECT_EQ(import["id"], 1);
  EXPECT_EQ(import["step"], "imported");
  EXPECT_EQ(import["source"], "control");
  EXPECT_EQ(import["bundle"], b2);
  EXPECT_EQ(import["release"], 2);
  EXPECT_EQ(import["bytes_done"], import["bytes_total"]);
  EXPECT_GT(import["bytes_total"].get<uint64_t>(), 0u);

  // Refused by the daemon, with the same words and exit status as offline.
  auto old = Import(b1);
  EXPECT_EQ(old.exit_code, 1) << old.output;
  EXPECT_NE(old.output.find("import: refused " + b1), std::string::npos) << old.output;
  EXPECT_NE(old.output.find("rollback"), std::string::npos) << old.output;
  EXPECT_EQ(NodeStatus()["import"]["step"], "refused");
  EXPECT_FALSE(std::filesystem::exists(data_ + "/tmp/import"));
  EXPECT_TRUE(Runs(2));
  ASSERT_EQ(node_.Stop(), 0);

  // Release 1's bundle is genuine, but its metadata is older than what the
  // device trusts; release 2's again holds nothing newer than what runs.
  ExpectRefused(b1, "rollback");
  ExpectRefused(b2, "not newer than release 2");
}

// The offline validity window (docs/metadata.md): root caps windows at 90
// days and release 2 carries one of 30. The device's time is set through its
// time floor, as provisioning may write it (docs/tuf-client.md): "now" is
// max(clock, floor). Past the window's end the bundle is refused naming the
// end; 10 days in (timestamp and snapshot expired) it imports and runs with
// the tracker unreachable, the floor not moved; with the tracker answering,
// normal expiry applies again.
TEST_F(BundleE2e, AnExpiredBundleImportsAndRunsWithinItsOfflineWindowOnlyWhileTheTrackerIsAway) {
  auto tracker_cli = [](const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  };
  auto staged = tracker_cli("stage-root --repository " + repo_ + " --offline-window-max-days 90");
  ASSERT_EQ(staged.exit_code, 0) << staged.output;
  const std::string root2 = repo_ + "/pending/2.root.json";
  auto signed_root = tracker_cli("sign " + root2 + " --key " + repo_ + "/keys/root.key");
  ASSERT_EQ(signed_root.exit_code, 0) << signed_root.output;
  EXPECT_NE(signed_root.output.find("offline validity windows of releases: at most 90 days"),
            std::string::npos)
      << signed_root.output;
  auto accepted = tracker_cli("accept --repository " + repo_ + " " + root2);
  ASSERT_EQ(accepted.exit_code, 0) << accepted.output;
  // Over the cap: refused before anything is imported.
  EXPECT_FALSE(PublishImage(dir_, repo_, kApp, 64, "bundle", "1", AppSpec(), "",
                            "--offline-valid-days 120"));
  EXPECT_NE(ReadTextFileBounded(dir_ + "/publish.log", 1 << 20)
                .value_or("")
                .find("--offline-valid-days 120: an offline window of 120 days is longer than the "
                      "90 days root allows"),
            std::string::npos);
  ASSERT_TRUE(
      PublishImage(dir_, repo_, kApp, 64, "bundle", "1", AppSpec(), "", "--offline-valid-days 30"));
  auto targets = Json::parse(*ReadTextFileBounded(repo_ + "/metadata/targets.json", 1 << 20));
  const Json window =
      targets["signed"]["targets"]["apps/web/release-2.json"]["custom"]["offline_window"];
  const WallTime start = *metadata::ParseTufTime(window["start"].get<std::string>());
  const std::string end = window["end"].get<std::string>();
  const std::string b2 = dir_ + "/web-2.bundle";
  auto made = Bundle(repo_, 2, 0, b2);
  ASSERT_EQ(made.exit_code, 0) << made.output;

  ASSERT_EQ(RunShell(BinaryPath("flotilla-node") + " tuf --metadata-dir " + data_ + "/tuf init " +
                     repo_ + "/metadata/1.root.json")
                .exit_code,
            0);
  auto set_device_time = [&](WallTime t) {
    ASSERT_TRUE(WriteFileAtomic(data_ + "/tuf/time-floor", metadata::FormatTufTime(t) + "\n").ok());
  };
  const std::chrono::hours day(24);
  set_device_time(start + 31 * day);
  ExpectRefused(b2, "release 2 of web may be used offline only until " + end);

  const std::string ten_days_in = metadata::FormatTufTime(start + 10 * day);
  set_device_time(start + 10 * day);
  auto imported = Import(b2);
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_NE(imported.output.find("imported web release 2"), std::string::npos) << imported.output;
  EXPECT_EQ(ReadTextFileBounded(data_ + "/tuf/time-floor", 64).value_or(""), ten_days_in + "\n");
  // The daemon's start-up offer finds the metadata expired; once the tracker
  // proves unreachable the window stands and the release is deployed.
  ASSERT_TRUE(node_.Start(dir_ + "/node", config_));
  ASSERT_TRUE(WaitFor([&] { return Runs(2); }, seconds(60))) << node_.Log();
  ASSERT_EQ(node_.Stop(), 0);
  EXPECT_EQ(ReadTextFileBounded(data_ + "/tuf/time-floor", 64).value_or(""), ten_days_in + "\n");

  // The tracker answers: the window is ignored and the expired metadata refused.
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir_, repo_)) << tracker.Log();
  config_["tracker_url"] = tracker.url();
  ASSERT_TRUE(WriteFileAtomic(config_path_, config_.dump()).ok());
  ExpectRefused(b2, "timestamp metadata expired at");
  tracker.Stop();
}

TEST_F(BundleE2e, TamperedTruncatedForeignAndLinkedBundlesAreRefusedAndChangeNothing) {
  const std::string good = dir_ + "/good.bundle";
  ASSERT_EQ(Bundle(repo_, 1, 0, good).exit_code, 0);
  // The node trusts the repository's first root and has no release yet.
  ASSERT_EQ(RunShell(BinaryPath("flotilla-node") + " tuf --metadata-dir " + data_ + "/tuf init " +
                     repo_ + "/metadata/1.root.json")
                .exit_code,
            0);

  const std::string artifact = dir_ + "/artifact.bundle";
  RunShell("cp " + good + " " + artifact);
  FlipByteOfMember(artifact, "artifacts/");
  ExpectRefused(artifact, "does not match its signed hash and length");

  const std::string metadata = dir_ + "/metadata.bundle";
  RunShell("cp " + good + " " + metadata);
  FlipByteOfMember(metadata, "metadata/timestamp.json");
  ExpectRefused(metadata, "the bundle's metadata does not verify");

  const std::string truncated = dir_ + "/truncated.bundle";
  RunShell("head -c $(( $(stat -c %s " + good + ") * 2 / 3 )) " + good + " > " + truncated);
  ExpectRefused(truncated, "the tar is damaged or truncated");

  // Another fleet's repository: its root is not the one this device trusts.
  const std::string other_repo = dir_ + "/other-repo", other = dir_ + "/other.bundle";
  ASSERT_TRUE(InitRepository(dir_, other_repo));
  Publish(other_repo, "0");
  ASSERT_EQ(Bundle(other_repo, 1, 0, other).exit_code, 0);
  ExpectRefused(other, "the bundle's metadata does not verify");

  // A symlink entry, wherever it points, refuses the whole bundle.
  const std::string linked = dir_ + "/linked.bundle";
  RunShell("cp " + good + " " + linked + " && mkdir -p " + dir_ +
           "/l/metadata && ln -s /etc/passwd " + dir_ + "/l/metadata/root.json && tar -C " + dir_ +
           "/l -rf " + linked + " metadata/root.json");
  ExpectRefused(linked, "is not a regular file");

  // And the genuine bundle still imports after all of them.
  auto imported = Import(good);
  EXPECT_EQ(imported.exit_code, 0) << imported.output;
}

// The import directory (a USB stick's mount point): absent at first (no
// error), then a bundle being written is imported only once it is whole, a
// symlink is never followed, a tampered bundle is refused once and not
// retried, and after a restart nothing there is imported again. The node
// never writes to the directory.
TEST_F(BundleE2e, TheImportDirectoryImportsEachWholeBundleOnceAndFollowsNoSymlink) {
  const std::string stick = dir_ + "/stick";
  const std::string b1 = dir_ + "/web-1.bundle";
  ASSERT_EQ(Bundle(repo_, 1, 0, b1).exit_code, 0);
  config_["import_dir"] = stick;
  config_["import_poll_s"] = 1;
  ASSERT_TRUE(WriteFileAtomic(config_path_, config_.dump()).ok());
  ASSERT_TRUE(node_.Start(dir_ + "/node", config_));
  ASSERT_TRUE(WaitFor([&] { return NodeStatus()["import_dir"]["path"] == stick; }, seconds(20)));
  EXPECT_EQ(NodeStatus()["import_dir"]["present"], false);

  // A symlink to a genuine bundle is not followed, however long it stays.
  ASSERT_EQ(RunShell("mkdir " + stick + " && ln -s " + b1 + " " + stick + "/link.bundle").exit_code,
            0);
  ASSERT_TRUE(WaitFor([&] { return NodeStatus()["import_dir"]["present"] == true; }, seconds(20)));
  // The bundle is written slowly, a piece every half poll: never imported half-written.
  const std::string slow =
      "python3 -c \"import sys, time\n"
      "data = open(sys.argv[1], 'rb').read()\n"
      "with open(sys.argv[2], 'wb') as f:\n"
      "    for i in range(0, len(data), len(data) // 6 + 1):\n"
      "        f.write(data[i:i + len(data) // 6 + 1]); f.flush(); "
      "time.sleep(0.5)\n\" " +
      b1 + " " + stick + "/web-1.bundle";
  ASSERT_EQ(RunShell(slow).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Runs(1); }, seconds(60))) << node_.Log();
  Json import = NodeStatus()["import"];
  EXPECT_EQ(import["id"], 1) << import.dump();  // the half-written file was never tried
  EXPECT_EQ(import["step"], "imported");
  EXPECT_EQ(import["source"], "import_dir");
  EXPECT_EQ(import["bundle"], stick + "/web-1.bundle");

  // A truncated bundle: refused once (the refusal names the file in the
  // directory), not retried at the following polls.
  Publish(repo_, "1");
  const std::string b2 = dir_ + "/web-2.bundle";
  ASSERT_EQ(Bundle(repo_, 2, 1, b2).exit_code, 0);
  ASSERT_EQ(RunShell("head -c $(( $(stat -c %s " + b2 + ") * 2 / 3 )) " + b2 + " > " + stick +
                     "/web-2.bundle")
                .exit_code,
            0);
  ASSERT_TRUE(WaitFor([&] { return NodeStatus()["import"]["id"] == 2; }, seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return NodeStatus()["import"]["finished_unix"] != 0; }, seconds(20)));
  import = NodeStatus()["import"];
  EXPECT_EQ(import["step"], "refused");
  EXPECT_NE(import["message"].get<std::string>().find("bundle " + stick +
                                                      "/web-2.bundle: the tar is damaged"),
            std::string::npos)
      << import.dump();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(NodeStatus()["import"]["id"], 2);
  EXPECT_EQ(NodeStatus()["import_dir"]["bundles_seen"], 2);
  EXPECT_TRUE(Runs(1));

  // After a restart, what was tried is remembered: nothing is imported again.
  const auto stick_before = FilesOf(stick);
  ASSERT_EQ(node_.Stop(), 0);
  ASSERT_TRUE(node_.Start(dir_ + "/node", config_));
  ASSERT_TRUE(WaitFor([&] { return NodeStatus()["import_dir"]["present"] == true; }, seconds(20)));
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(NodeStatus()["import"]["id"], 0);
  EXPECT_TRUE(Runs(1));
  EXPECT_EQ(FilesOf(stick), stick_before);
  EXPECT_EQ(RunShell("ls -A " + stick).output, "link.bundle\nweb-1.bundle\nweb-2.bundle\n");
}

// In the daemon the import (on the store lane) and the metadata follower's
// refresh (on the loop) both write <data_dir>/tuf: the import makes the
// device trust the bundle's metadata only while no refresh holds the trusted
// directory's lock, and does so as soon as it is free.
TEST_F(BundleE2e, TheImportCommitsTrustedMetadataOnlyWhileNoRefreshHoldsTheDirectory) {
  const std::string bundle = dir_ + "/web-1.bundle";
  ASSERT_EQ(Bundle(repo_, 1, 0, bundle).exit_code, 0);
  auto config = node::ParseNodeConfig(config_.dump());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const node::DataLayout layout(data_);
  RunShell("mkdir -p " + layout.store());
  auto store = layerstore::LayerStore::Open(layout.store());
  ASSERT_TRUE(store.ok()) << store.status().ToString();

  std::mutex trusted_dir_lock;
  std::unique_lock<std::mutex> refresh(trusted_dir_lock);  // a refresh runs
  std::atomic<bool> verified{false};
  Result<node::ImportResult> imported = Internal("the import did not run");
  std::thread import([&] {
    auto progress = [&](const node::ImportProgress& p) {
      if (p.line.find("verified against the signed release") != std::string::npos) verified = true;
    };
    imported = node::ImportBundleInto(*config, **store, bundle, SystemClock::Instance(), progress,
                                      "", {}, &trusted_dir_lock);
  });
  for (int i = 0; i < 200 && !verified; ++i) std::this_thread::sleep_for(milliseconds(100));
  ASSERT_TRUE(verified.load());
  // Verified, and waiting: the trusted directory still holds only the root.
  std::this_thread::sleep_for(seconds(1));
  EXPECT_FALSE(std::filesystem::exists(layout.tuf() + "/timestamp.json"));
  EXPECT_FALSE(std::filesystem::exists(layout.tuf() + "/targets.json"));
  refresh.unlock();
  import.join();
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->version, 1u);
  EXPECT_TRUE(std::filesystem::exists(layout.tuf() + "/timestamp.json"));
  EXPECT_TRUE(std::filesystem::exists(layout.tuf() + "/targets.json"));
}

// A data directory on a small filesystem: the bundle is refused before
// anything of the node's is written (the free space is checked against what
// the rebuild needs), with a message saying what is short.
TEST_F(BundleE2e, ABundleThatDoesNotFitIsRefusedBeforeAnythingIsWritten) {
  const std::string good = dir_ + "/good.bundle";
  ASSERT_EQ(Bundle(repo_, 1, 0, good).exit_code, 0);
  RunShell("mkdir -p " + data_);
  // Room for the bundle's copy, not for its rebuild and the node's reserve.
  ASSERT_EQ(RunShell("mount -t tmpfs -o size=8m flotilla-bundle-test " + data_).exit_code, 0);
  mounted_ = data_;
  ASSERT_EQ(RunShell(BinaryPath("flotilla-node") + " tuf --metadata-dir " + data_ + "/tuf init " +
                     repo_ + "/metadata/1.root.json")
                .exit_code,
            0);
  ExpectRefused(good, "but data_dir has");
  auto r = Import(good);
  EXPECT_NE(r.output.find("release 1 needs"), std::string::npos) << r.output;
  EXPECT_EQ(RunShell("ls -A " + data_ + "/tmp 2>/dev/null").output, "");
  // The same bundle fits once the filesystem is larger.
  ASSERT_EQ(RunShell("mount -o remount,size=128m " + data_).exit_code, 0);
  auto imported = Import(good);
  EXPECT_EQ(imported.exit_code, 0) << imported.output;
}

}  // namespace
}  // namespace flotilla::testing
