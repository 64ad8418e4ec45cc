// Secrets end to end on the tracker's side (docs/config.md, "Secrets"): the
// real tracker (publish, fleet init, secret set, serve) and a real
// flotilla-node that enrolled with its device key. `secret set` reads the
// value from stdin and stores only a box that the node's device key opens:
// the value is nowhere in the tracker's repository, database files or log;
// `secret show` names it without its value; bad values, undeclared names
// and configuration under a secret's name are refused; a decommissioned
// device is sealed for no more. On the node's side: the node opens the box
// into a file on a tmpfs that only the app reads (at /run/flotilla/secrets),
// and the value is nowhere else: not in the node's log, status, metrics or
// data directory, the container's upper directory or environment, the
// tracker's files or log; the log the app printed it into reaches the
// operator redacted; after a reboot (the tmpfs gone) the node makes the file
// again before the container starts.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <random>
#include <sstream>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/ed25519.h"
#include "core/file_io.h"
#include "core/sealed_box.h"
#include "tests/node/fleet_node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tracker/fleet/fleet_repository.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr char kApp[] = "web";

std::string RandomToken() {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device random;
  std::string token;
  for (int i = 0; i < 32; ++i) token += kAlphabet[random() % (sizeof kAlphabet - 1)];
  return token;
}

// The files under `root` (recursive, any content) holding `needle`.
std::vector<std::string> FilesHolding(const std::string& root, const std::string& needle) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    auto bytes = ReadFileBounded(it->path().string(), 256 << 20);
    if (!bytes.ok()) continue;
    if (std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size())
            .find(needle) != std::string_view::npos) {
      found.push_back(it->path().string());
    }
  }
  return found;
}

class NodeSecretsTest : public FleetNodeTest {
 protected:
  NodeSecretsTest() : FleetNodeTest("secrets", kApp) {}
  void SetUp() override {
    FleetNodeTest::SetUp();
    Json spec = {{"name", kApp},
                 // Proves it read the secret (its hash), and prints it too:
                 // the uploaded log must not carry it.
                 {"command",
                  {"/bin/sh", "-c",
                   "f=/run/flotilla/secrets/API_TOKEN; echo \"read $(sha256sum < $f)\"; "
                   "echo \"printed $(cat $f) by $(id -u)\"; exec sleep 1000"}},
                 {"user", {{"uid", 1000}, {"gid", 1000}}},
                 {"health", {{"type", "running"}, {"seconds", 1}}},
                 {"config",
                  {{{"name", "API_TOKEN"}, {"pattern", "[A-Za-z0-9]{32}"}, {"secret", true}},
                   {{"name", "MODE"}, {"pattern", "[a-z]+"}}}}};
    ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 64, name_, "1", spec))
        << Text(dir_ + "/publish.log");
    StartTrackerWithFleet();
    Fleet("group create all --select all");
    Fleet("app assign web --group all");
  }
  // The tmpfs the node mounted goes with the test (after the container).
  void TearDown() override {
    node_.Stop();
    RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ + "/runtime " + kApp +
             " >/dev/null 2>&1");
    RunShell("umount " + dir_ + "/run/secrets 2>/dev/null");
    FleetNodeTest::TearDown();
  }
  // `printf %s VALUE | flotilla-tracker secret ARGS`, whatever its exit status.
  CommandResult Secret(const std::string& args, const std::string& value = "") {
    return RunShell("printf %s '" + value + "' | " + BinaryPath("flotilla-tracker") + " secret " +
                    args + " --repository " + repo_ + " 2>&1");
  }
  // The app's sealed boxes in the fleet document signed for the device:
  // its repository's state file holds each document on a line of its own.
  Json SignedBoxes() {
    for (const std::string& path : FilesHolding(repo_ + "/fleet/devices", "\"secrets\"")) {
      std::istringstream lines(Text(path));
      for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("{\"apps\"") || line.find("\"secrets\"") == std::string::npos) {
          continue;
        }
        return Json::parse(line)["apps"][kApp]["secrets"];
      }
    }
    return nullptr;
  }
};

TEST_F(NodeSecretsTest, TheTrackerKeepsOnlyABoxTheDeviceKeyOpens) {
  StartNode(NodeConfig("screen-1"));
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor(
      [&] {
        return node_.Log().find(
                   "declares the secret API_TOKEN, which is not sealed for this "
                   "device") != std::string::npos;
      },
      seconds(60)))
      << node_.Log();

  // The daemon that will hold the device key and secrets dumps no core.
  const std::string pid = RunShell("for p in $(pgrep -f -- '--config " + dir_ +
                                   "/node/node.json'); do readlink /proc/$p/exe | grep -q "
                                   "flotilla-node && echo $p; done | head -1")
                              .output;
  ASSERT_FALSE(pid.empty());
  const std::string limits = Text("/proc/" + pid.substr(0, pid.find('\n')) + "/limits");
  EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos)
      << limits;

  const std::string value = RandomToken();
  auto set = Secret("set --app web --device screen-1 API_TOKEN --json", value + "\n");
  ASSERT_EQ(set.exit_code, 0) << set.output;
  Json out = Json::parse(set.output.substr(set.output.find('{')));
  EXPECT_EQ(out["sealed_for"], Json::array({"screen-1"})) << set.output;
  EXPECT_EQ(out["resigned"], 1) << set.output;

  // The signed document carries a box only this device's key opens.
  Json boxes = SignedBoxes();
  ASSERT_TRUE(boxes.is_object()) << "no document with secrets";
  auto opener = SealedBoxOpener::LoadFile(data_ + "/device-key");
  ASSERT_TRUE(opener.ok()) << opener.status().ToString();
  auto opened = opener->Open(boxes["API_TOKEN"].get<std::string>());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, value) << "one trailing newline dropped";

  auto show = Secret("show --device screen-1 --json");
  ASSERT_EQ(show.exit_code, 0) << show.output;
  Json shown = Json::parse(show.output)["apps"][0];
  EXPECT_EQ(shown["secrets"][0]["name"], "API_TOKEN") << show.output;
  EXPECT_EQ(shown["secrets"][0]["level"], "device") << show.output;
  EXPECT_EQ(shown["missing"], Json::array()) << show.output;

  // Refused, naming neither the value nor writing anything.
  auto bad = Secret("set --app web --device screen-1 API_TOKEN", "short-" + value.substr(0, 8));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("does not match the pattern"), std::string::npos) << bad.output;
  EXPECT_EQ(bad.output.find(value.substr(0, 8)), std::string::npos) << bad.output;
  auto undeclared = Secret("set --app web OTHER", value);
  EXPECT_EQ(undeclared.exit_code, 2) << undeclared.output;
  EXPECT_NE(undeclared.output.find("does not declare the secret OTHER"), std::string::npos)
      << undeclared.output;
  auto as_config =
      RunShell(BinaryPath("flotilla-tracker") + " config set --app web API_TOKEN=" + value +
               " --repository " + repo_ + " 2>&1");
  EXPECT_EQ(as_config.exit_code, 2) << as_config.output;
  EXPECT_NE(as_config.output.find("API_TOKEN is a secret"), std::string::npos) << as_config.output;

  // Nowhere in clear on the tracker: repository (database files included)
  // and its log. (The config set above was refused before writing.)
  EXPECT_EQ(FilesHolding(repo_, value), std::vector<std::string>{});
  EXPECT_EQ(tracker_.Log().find(value), std::string::npos);
  EXPECT_EQ(node_.Log().find(value), std::string::npos);

  // A decommissioned device: its boxes deleted, and sealed for no more.
  Fleet("device decommission screen-1 --yes");
  EXPECT_EQ(QueryTrackerDb(repo_ + "/tracker.db", "SELECT count(*) FROM secret_boxes"), "0\n");
  auto after = Secret("set --app web API_TOKEN", value);
  EXPECT_EQ(after.exit_code, 2) << after.output;
  EXPECT_NE(after.output.find("no device in scope"), std::string::npos) << after.output;
}

std::string ReadText(const std::string& path) {
  return ReadTextFileBounded(path, 1 << 20).value_or("");
}

// The pid of the container's init and of its children (the app).
std::vector<std::string> ContainerPids(const std::string& runtime_dir) {
  std::vector<std::string> pids;
  for (const std::string& path : FilesHolding(runtime_dir, "\"init_pid\"")) {
    if (!path.ends_with("/running.json")) continue;
    auto running = ParseJsonStrict(ReadText(path));
    if (!running.ok()) continue;
    const std::string init = std::to_string((*running)["init_pid"].get<int64_t>());
    pids.push_back(init);
    std::istringstream children(ReadText("/proc/" + init + "/task/" + init + "/children"));
    for (std::string child; children >> child;) pids.push_back(child);
  }
  return pids;
}

TEST_F(NodeSecretsTest, ASecretReachesOnlyItsAppAndNowhereElse) {
  const std::string secrets_dir = dir_ + "/run/secrets";
  const uint16_t metrics_port = FreePort();
  Json config = NodeConfig("screen-1");
  config["secrets_dir"] = secrets_dir;
  config["metrics_listen"] = "127.0.0.1:" + std::to_string(metrics_port);
  config["report_interval_s"] = 3;  // carries the log request
  StartNode(config);
  const std::string value = RandomToken();
  auto set = Secret("set --app web --device screen-1 API_TOKEN", value);
  ASSERT_EQ(set.exit_code, 0) << set.output;
  Fleet("config set --app web MODE=shop");
  Fleet("fleet publish");
  const std::string expected_hash =
      RunShell("printf %s '" + value + "' | sha256sum | cut -d' ' -f1").output.substr(0, 64);
  auto app_log = [&] {
    return RunShell(BinaryPath("flotilla-node") + " app logs web --state-dir " + data_ +
                    "/runtime 2>&1")
        .output;
  };
  ASSERT_TRUE(
      WaitFor([&] { return Running() == 1 && app_log().find("printed ") != std::string::npos; },
              seconds(60)))
      << node_.Log() << app_log();
  // The app read it, as the user its spec names.
  EXPECT_NE(app_log().find("read " + expected_hash), std::string::npos) << app_log();
  EXPECT_NE(app_log().find("printed " + value + " by 1000"), std::string::npos) << app_log();

  // On a tmpfs the node mounted, 0400, the app's user's; one configuration.
  struct statfs fs {};
  ASSERT_EQ(::statfs(secrets_dir.c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, TMPFS_MAGIC);
  const std::string config_id = AppState(data_, kApp).value("config_id", std::string());
  ASSERT_FALSE(config_id.empty());
  const std::string file = secrets_dir + "/web/" + config_id + "/API_TOKEN";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(Text(file), value);
  // Beside the configuration files: the boxes only.
  EXPECT_TRUE(std::filesystem::exists(data_ + "/config/web/" + config_id + "/secrets.json"));

  // Nowhere else on the node: its log, status, metrics, data directory (the
  // container's upper directory in it), the container's environment.
  const std::string socket = " --socket " + data_ + "/control.sock 2>&1";
  const std::string status = RunShell(BinaryPath("flotilla-node") + " status" + socket).output;
  const std::string status_json =
      RunShell(BinaryPath("flotilla-node") + " status --json" + socket).output;
  ASSERT_NE(status_json.find("\"web\""), std::string::npos) << status_json;
  EXPECT_EQ(status.find(value), std::string::npos);
  EXPECT_EQ(status_json.find(value), std::string::npos);
  const std::string metrics = HttpGet(metrics_port, "/metrics");
  ASSERT_NE(metrics.find("flotilla_node"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find(value), std::string::npos);
  EXPECT_EQ(node_.Log().find(value), std::string::npos);
  const auto uppers = RunShell("find " + data_ + "/runtime -type d -name upper").output;
  ASSERT_FALSE(uppers.empty()) << "no container upper directory under " << data_;
  EXPECT_EQ(FilesHolding(data_, value), std::vector<std::string>{});
  const std::vector<std::string> pids = ContainerPids(data_ + "/runtime");
  ASSERT_GE(pids.size(), 1u);
  bool configured = false;  // the app's environment holds its configuration, not its secret
  for (const std::string& pid : pids) {
    const std::string environ = Text("/proc/" + pid + "/environ");
    configured = configured || environ.find("MODE=shop") != std::string::npos;
    EXPECT_EQ(environ.find(value), std::string::npos) << pid;
  }
  EXPECT_TRUE(configured);

  // Nowhere on the tracker: repository (database files and -wal included), log.
  EXPECT_EQ(FilesHolding(repo_, value), std::vector<std::string>{});
  EXPECT_EQ(tracker_.Log().find(value), std::string::npos);

  // The log the app printed it into reaches the operator redacted.
  auto logs = RunShell(BinaryPath("flotilla-tracker") +
                       " logs screen-1 web --wait 30 --repository " + repo_ + " 2>&1");
  ASSERT_EQ(logs.exit_code, 0) << logs.output << node_.Log();
  EXPECT_NE(logs.output.find("printed [redacted] by 1000"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("read " + expected_hash), std::string::npos) << logs.output;
  EXPECT_EQ(logs.output.find(value), std::string::npos);
  EXPECT_EQ(FilesHolding(repo_, value), std::vector<std::string>{}) << "the uploaded log";

  // A reboot: the node and the container gone, the tmpfs with them. The
  // node makes the file again before it starts the container.
  ASSERT_EQ(node_.Stop(), 0);
  for (const std::string& path : FilesHolding(data_ + "/runtime", "\"monitor_pid\"")) {
    if (!path.ends_with("/running.json")) continue;
    auto running = ParseJsonStrict(Text(path));
    ASSERT_TRUE(running.ok());
    for (const char* pid : {"monitor_pid", "init_pid"}) {
      ::kill(static_cast<pid_t>((*running)[pid].get<int64_t>()), SIGKILL);
    }
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::all_of(pids.begin(), pids.end(), [](const std::string& pid) {
          return !std::filesystem::exists("/proc/" + pid);
        });
      },
      seconds(10)));
  auto unmounted = RunShell("umount " + secrets_dir + " 2>&1");
  ASSERT_EQ(unmounted.exit_code, 0) << unmounted.output;
  ASSERT_FALSE(std::filesystem::exists(file)) << "the tmpfs is gone";
  ASSERT_TRUE(node_.Start(dir_ + "/node", config));
  // A new container, which read the file again.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::vector<std::string> now = ContainerPids(data_ + "/runtime");
        return now.size() >= 2 && now[0] != pids[0] &&
               app_log().find("printed " + value) != std::string::npos;
      },
      seconds(30)))
      << node_.Log() << app_log();
  EXPECT_NE(node_.Log().find("secrets of app web configuration " + config_id + " written again"),
            std::string::npos);
  EXPECT_EQ(Text(file), value);
  EXPECT_EQ(FilesHolding(data_, value), std::vector<std::string>{});

  // A document whose box was sealed to another key, signed with the
  // tracker's fleet keys by hand (a database the thief wrote to): the node
  // refuses the whole document and keeps its configuration running.
  const std::string id = Json::parse(Text(data_ + "/credentials.json"))["device_id"];
  Json targets = Json::parse(Text(repo_ + "/metadata/targets.json"));
  const std::string name = "apps/web/release-1.json";
  Json target = targets["signed"]["targets"][name];
  auto foreign = SealToKey(Ed25519PrivateKey::Generate().public_key(), RandomToken());
  ASSERT_TRUE(foreign.ok());
  Json doc = {{"device", id},
              {"format", 1},
              {"apps",
               {{kApp,
                 {{"release", 1},
                  {"target", name},
                  {"length", target["length"]},
                  {"hashes", target["hashes"]},
                  {"config", {{"MODE", "shop"}}},
                  {"secrets", {{"API_TOKEN", *foreign}}}}}}}};
  auto signer =
      tracker::FleetSigner::Open(tracker::RepositoryLayout{repo_}, SystemClock::Instance());
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  ASSERT_TRUE((*signer)->Publish(id, *CanonicalJson(doc)).ok());
  ASSERT_TRUE(
      WaitFor([&] { return node_.Log().find("secret API_TOKEN refused: ") != std::string::npos; },
              seconds(30)))
      << node_.Log();
  EXPECT_EQ(AppState(data_, kApp).value("config_id", std::string()), config_id);
  EXPECT_EQ(Text(file), value);
  EXPECT_EQ(node_.Log().find(value), std::string::npos);

  // Two new values, two configurations: the first one's secrets go with its
  // configuration directory; the previous one's stay (a rollback needs them).
  std::vector<std::string> ids = {config_id};
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(Secret("set --app web --device screen-1 API_TOKEN", RandomToken()).exit_code, 0);
    ASSERT_TRUE(WaitFor(
        [&] {
          const std::string now = AppState(data_, kApp).value("config_id", std::string());
          return !now.empty() && now != ids.back() && Running() == 1;
        },
        seconds(30)))
        << node_.Log();
    ids.push_back(AppState(data_, kApp).value("config_id", std::string()));
  }
  // The node prunes right after it saved the state that names the new
  // configuration: wait for it rather than race it.
  EXPECT_TRUE(WaitFor(
      [&] {
        return !std::filesystem::exists(secrets_dir + "/web/" + ids[0]) &&
               !std::filesystem::exists(data_ + "/config/web/" + ids[0]);
      },
      seconds(10)))
      << "the oldest configuration's files and secrets are still there";
  EXPECT_TRUE(std::filesystem::exists(secrets_dir + "/web/" + ids[1] + "/API_TOKEN"));
  EXPECT_TRUE(std::filesystem::exists(secrets_dir + "/web/" + ids[2] + "/API_TOKEN"));
}

}  // namespace
}  // namespace flotilla::testing
