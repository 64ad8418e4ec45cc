// Remote logs with real processes (docs/logs.md): the tracker, two
// flotilla-node daemons running a busybox app that prints more than the
// upload bound, and `flotilla-tracker logs`. A node holding a notice request
// uploads within 10 s of the request; a node without one (notice off)
// uploads at its next report; the log is cut from the oldest side behind the
// marker line. Through the operator API a deployer's token is refused (403)
// and an admin's request is answered and audited with its actor.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

constexpr char kApp[] = "web";

// 1,000 lines of 100 bytes (more than the 48 KiB bound, within the 256 KiB
// ring), then a last line; then a "tick" line every second.
Json AppSpec() {
  return {
      {"name", kApp},
      {"command",
       {"/bin/sh", "-c",
        "echo first line of the app; i=0; while [ $i -lt 1000 ]; do printf 'filler %091d\\n' "
        "$i; i=$((i+1)); done; echo last line of the app; while :; do sleep 1; echo tick; done"}},
      {"health", {{"type", "running"}, {"seconds", 1}}},
      {"restart", {{"policy", "always"}}}};
}

class NodeLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-logs-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_));
    ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 64, "logs", "0", AppSpec()))
        << ReadTextFileBounded(dir_ + "/publish.log", 1 << 20).value_or("");
    ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
  }
  void TearDown() override {
    for (auto& node : nodes_) node->Stop();
    for (const auto& data : data_dirs_) {
      RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data + "/runtime " + kApp +
               " >/dev/null 2>&1");
    }
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }

  NodeProcess& StartNode(const std::string& name, bool notice, uint32_t report_interval_s) {
    const std::string data = dir_ + "/" + name + "/data";
    Json c = NodeConfigFor(name, data, tracker_.url(), repo_ + "/metadata/1.root.json", kApp);
    c["deploy"] = true;
    c["notice"] = notice;
    c["refresh_interval_s"] = 300;
    c["report_interval_s"] = report_interval_s;
    data_dirs_.push_back(data);
    RunShell("mkdir -p " + dir_ + "/" + name);
    nodes_.push_back(std::make_unique<NodeProcess>());
    EXPECT_TRUE(nodes_.back()->Start(dir_ + "/" + name, c));
    return *nodes_.back();
  }
  bool Running(const std::string& name) {
    Json s = AppState(dir_ + "/" + name + "/data", kApp);
    return s.is_object() && s["running_release"] == 1;
  }
  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ +
                    " 2>&1");
  }
  // The uploaded log as `logs` prints it: bounded, cut at a line, marked.
  static void ExpectBoundedLog(const std::string& log) {
    EXPECT_LE(log.size(), 48u * 1024) << log.size();
    EXPECT_TRUE(log.starts_with("[flotilla: ")) << log.substr(0, 200);
    EXPECT_NE(log.find(" earlier bytes not sent]\nfiller "), std::string::npos)
        << log.substr(0, 200);
    EXPECT_NE(log.find("last line of the app\n"), std::string::npos) << log;
    EXPECT_EQ(log.find("first line of the app"), std::string::npos) << "cut from the oldest side";
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::string> data_dirs_;
};

TEST_F(NodeLogsTest, AppLogReachesTheOperatorByNoticeAndByReport) {
  NodeProcess& live = StartNode("live", /*notice=*/true, /*report_interval_s=*/300);
  NodeProcess& quiet = StartNode("quiet", /*notice=*/false, /*report_interval_s=*/3);
  ASSERT_TRUE(WaitFor([&] { return Running("live") && Running("quiet"); }, seconds(120)))
      << live.Log() << quiet.Log();
  // The app has printed its last line, and the live node's reports (at
  // start and after each change) are over: only the notice can carry the request.
  std::this_thread::sleep_for(seconds(4));

  auto asked = SteadyClock::now();
  CommandResult got = Tracker("logs live web --wait 60");
  const auto took = SteadyClock::now() - asked;
  ASSERT_EQ(got.exit_code, 0) << got.output << live.Log();
  ExpectBoundedLog(got.output);
  EXPECT_LT(took, seconds(10)) << "with a held notice request the upload comes within seconds";
  EXPECT_NE(live.Log().find("notice: log request"), std::string::npos)
      << "the notice carried the request: " << live.Log();
  EXPECT_NE(live.Log().find("logs: uploaded"), std::string::npos) << live.Log();
  EXPECT_EQ(quiet.Log().find("notice: log request"), std::string::npos) << quiet.Log();

  // No held request: the next report (every 3 s) carries it.
  got = Tracker("logs quiet web --wait 60");
  ASSERT_EQ(got.exit_code, 0) << got.output << quiet.Log();
  ExpectBoundedLog(got.output);

  // --since: the lines of the last seconds only (the ring keeps line
  // times): the ticks, none of what the app printed at its start.
  got = Tracker("logs live web --since 3s --wait 60");
  ASSERT_EQ(got.exit_code, 0) << got.output << live.Log();
  EXPECT_NE(got.output.find("tick\n"), std::string::npos) << got.output;
  EXPECT_EQ(got.output.find("filler"), std::string::npos) << got.output.substr(0, 300);
  EXPECT_EQ(got.output.find("last line of the app"), std::string::npos) << got.output;
  EXPECT_LT(got.output.size(), 1000u) << got.output;

  // Each request is in the audit log, by the local user.
  Json audit = Json::parse(Tracker("audit list --json").output, nullptr, false);
  ASSERT_TRUE(audit.is_object()) << Tracker("audit list --json").output;
  int requests = 0;
  for (const Json& e : audit["entries"]) {
    if (e["action"] == "logs.request") {
      ++requests;
      EXPECT_TRUE(e["actor"].get<std::string>().starts_with("local:")) << e.dump();
      EXPECT_EQ(e["detail"]["app"], kApp);
    }
  }
  EXPECT_EQ(requests, 3) << audit.dump();

  // The operator API: admin only.
  const std::string pass = dir_ + "/pass";
  ASSERT_TRUE(WriteFileAtomic(pass, "a-long-enough-passphrase-1\n").ok());
  ASSERT_EQ(Tracker("operator add alice --role admin --password-file " + pass).exit_code, 0);
  ASSERT_EQ(Tracker("operator add dave --role deployer --password-file " + pass).exit_code, 0);
  auto token_of = [&](const std::string& name) {
    Json t =
        Json::parse(Tracker("operator token create " + name + " --json").output, nullptr, false);
    return t.is_object() ? t["token"].get<std::string>() : std::string();
  };
  const std::string admin = token_of("alice");
  const std::string deployer = token_of("dave");
  ASSERT_FALSE(admin.empty());
  ASSERT_FALSE(deployer.empty());
  const std::string body = Json{{"device", "live"}, {"app", kApp}}.dump();
  HttpResponse refused = HttpRequestTo(tracker_.port(), "POST", "/api/v1/operator/logs",
                                       {"Authorization: Bearer " + deployer}, body);
  EXPECT_EQ(refused.status, 403) << refused.raw;
  HttpResponse created = HttpRequestTo(tracker_.port(), "POST", "/api/v1/operator/logs",
                                       {"Authorization: Bearer " + admin}, body);
  ASSERT_EQ(created.status, 202) << created.raw;
  const int64_t id = Json::parse(created.body)["id"].get<int64_t>();
  Json answer;
  ASSERT_TRUE(WaitFor(
      [&] {
        HttpResponse r =
            HttpRequestTo(tracker_.port(), "GET", "/api/v1/operator/logs/" + std::to_string(id),
                          {"Authorization: Bearer " + admin});
        answer = Json::parse(r.body, nullptr, false);
        return r.status == 200 && answer.is_object() && answer.contains("log");
      },
      seconds(30)))
      << answer.dump() << live.Log();
  ExpectBoundedLog(answer["log"].get<std::string>());
  audit = Json::parse(Tracker("audit list --json --actor alice").output, nullptr, false);
  bool found = false;
  for (const Json& e : audit["entries"]) {
    found = found || (e["action"] == "logs.request" && e["target"] == "live");
  }
  EXPECT_TRUE(found) << audit.dump();
}

}  // namespace
}  // namespace flotilla::testing
