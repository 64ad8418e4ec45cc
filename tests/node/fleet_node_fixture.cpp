#include "tests/node/fleet_node_fixture.h"

#include <filesystem>

#include "core/file_io.h"

namespace flotilla::testing {

using std::chrono::seconds;

void FleetNodeTest::SetUp() {
  dir_ = MakeTempDir(name_ + "-");
  repo_ = dir_ + "/repo";
  data_ = dir_ + "/node/data";
  ASSERT_TRUE(InitRepository(dir_, repo_)) << Text(dir_ + "/init.log");
}

void FleetNodeTest::TearDown() {
  node_.Stop();
  RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ + "/runtime " + app_ +
           " >/dev/null 2>&1");
  tracker_.Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void FleetNodeTest::PublishApp(const std::string& variant, const std::string& command) {
  Json spec = {{"name", app_},
               {"command", {"/bin/sh", "-c", command}},
               {"health", {{"type", "running"}, {"seconds", 1}}},
               {"restart", {{"policy", "always"}}}};
  ASSERT_TRUE(PublishImage(dir_, repo_, app_, 64, name_, variant, spec))
      << Text(dir_ + "/publish.log");
}

void FleetNodeTest::StartTrackerWithFleet() {
  ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
  Fleet("fleet init --offline-keys " + dir_ + "/fleet-off");
}

std::string FleetNodeTest::Fleet(const std::string& args) {
  auto run =
      RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ + " 2>&1");
  EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
  return run.output;
}

Json FleetNodeTest::NodeConfig(const std::string& name) const {
  Json config = NodeConfigFor(name, data_, tracker_.url(), repo_ + "/metadata/1.root.json", app_);
  config["deploy"] = true;
  return config;
}

void FleetNodeTest::StartNode(const Json& config) {
  std::filesystem::create_directories(dir_ + "/node");
  ASSERT_TRUE(node_.Start(dir_ + "/node", config));
  ASSERT_TRUE(
      WaitFor([&] { return std::filesystem::exists(data_ + "/credentials.json"); }, seconds(30)))
      << node_.Log();
}

uint64_t FleetNodeTest::Running() const {
  Json a = AppState(data_, app_);
  return a.is_object() ? a["running_release"].get<uint64_t>() : 0;
}

std::string FleetNodeTest::Text(const std::string& path) {
  return ReadTextFileBounded(path, 1 << 20).value_or("");
}

}  // namespace flotilla::testing
