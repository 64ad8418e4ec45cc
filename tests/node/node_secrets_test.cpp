// Secrets end to end on the tracker's side (docs/config.md, "Secrets"): the
// real tracker (publish, fleet init, secret set, serve) and a real
// flotilla-node that enrolled with its device key. `secret set` reads the
// value from stdin and stores only a box that the node's device key opens:
// the value is nowhere in the tracker's repository, database files or log;
// `secret show` names it without its value; bad values, undeclared names
// and configuration under a secret's name are refused; a decommissioned
// device is sealed for no more. This node refuses a release declaring a
// secret until it delivers them.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "core/file_io.h"
#include "core/sealed_box.h"
#include "tests/node/fleet_node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_util.h"

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
                 {"command", {"/bin/sh", "-c", "exec sleep 1000"}},
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
                   "declares the secret API_TOKEN: this node does not deliver "
                   "secrets yet") != std::string::npos;
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

}  // namespace
}  // namespace flotilla::testing
