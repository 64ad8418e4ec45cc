// The control API and metrics of a real daemon: flotilla-tracker serve and
// flotilla-node run on loopback, the app deployed in the built-in runtime,
// then `flotilla-node status|apps|logs|update|rollback` and GET /metrics.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "node/control/control_protocol.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kApp[] = "web";

// The value of the sample line that starts with `series` ("name{labels}"), or -1.
double Sample(const std::string& metrics, const std::string& series) {
  size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + series.size() + 2));
}

class ControlE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("control-e2e-");
    data_ = dir_ + "/node/data";
    socket_ = data_ + "/control.sock";
    RunShell("mkdir -p " + dir_ + "/node");
  }
  void TearDown() override {
    node_.Stop();
    // Apps outlive their node by design: stop it through the runtime.
    RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ + "/runtime " + kApp +
             " >/dev/null 2>&1");
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }
  CommandResult Node(const std::string& args) {
    return RunShell("timeout 30 " + BinaryPath("flotilla-node") + " " + args + " --socket " +
                    socket_ + " 2>&1");
  }
  Json Status() {
    auto r = RunShell("timeout 30 " + BinaryPath("flotilla-node") + " status --json --socket " +
                      socket_ + " 2>/dev/null");
    return r.exit_code == 0 ? Json::parse(r.output, nullptr, false) : Json();
  }
  std::string dir_, data_, socket_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

TEST_F(ControlE2e, StatusAndMetricsOfARealDaemonRunningItsApp) {
  const std::string repo = dir_ + "/repo";
  ASSERT_TRUE(InitRepository(dir_, repo));
  ASSERT_TRUE(PublishImage(dir_, repo, kApp, 256, "control"));
  ASSERT_TRUE(tracker_.Start(dir_, repo));
  const uint16_t metrics_port = FreePort();
  Json config =
      NodeConfigFor("ctl-node", data_, tracker_.url(), repo + "/metadata/1.root.json", kApp);
  config["deploy"] = true;
  config["refresh_interval_s"] = 60;  // refreshes here come from `update --now`
  config["metrics_listen"] = "127.0.0.1:" + std::to_string(metrics_port);
  ASSERT_TRUE(node_.Start(dir_ + "/node", config));

  Json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status();
        return status.is_object() && status["apps"].size() == 1 &&
               status["apps"][0]["running_release"] == 1 &&
               status["apps"][0]["container_state"] == "running";
      },
      90s))
      << status.dump() << "\n"
      << node_.Log();
  struct stat st {};
  ASSERT_EQ(::lstat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(status["device_name"], "ctl-node");
  EXPECT_EQ(status["transfer_mode"], "http-only");
  EXPECT_EQ(status["enrolled"], true);
  EXPECT_EQ(status["apps"][0]["name"], kApp);
  EXPECT_EQ(status["apps"][0]["phase"], "running");
  EXPECT_EQ(status["apps"][0]["ready_release"], 1);
  EXPECT_GE(status["refreshes_ok"].get<uint64_t>(), 1u);
  EXPECT_GT(status["store_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(status["disk_free_bytes"].get<uint64_t>(), 0u);

  auto human = Node("status");
  EXPECT_EQ(human.exit_code, 0) << human.output;
  EXPECT_NE(human.output.find("ctl-node (site"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("web  running  1        -         1      -       running"),
            std::string::npos)
      << human.output;
  auto apps = Node("apps");
  EXPECT_EQ(apps.exit_code, 0) << apps.output;
  EXPECT_NE(apps.output.find("web  1        running  running"), std::string::npos) << apps.output;

  std::string response = HttpGet(metrics_port, "/metrics");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK", 0), 0u) << response << node_.Log();
  EXPECT_EQ(Sample(response, "flotilla_node_app_running_release{app=\"web\"}"), 1);
  EXPECT_EQ(Sample(response, "flotilla_node_app_phase{app=\"web\",phase=\"running\"}"), 1);
  EXPECT_EQ(Sample(response, "flotilla_node_app_container_state{app=\"web\",state=\"running\"}"),
            1);
  EXPECT_EQ(Sample(response, "flotilla_node_refreshes_total{result=\"ok\"}"),
            status["refreshes_ok"].get<double>());
  EXPECT_GE(Sample(response, "flotilla_node_deploys_total{result=\"ok\"}"), 1);
  EXPECT_EQ(HttpGet(metrics_port, "/").rfind("HTTP/1.1 404", 0), 0u);

  // Release 2 published; `update --now` makes the node see it at once (the
  // next periodic refresh is a minute away): refreshed, fetched, deployed.
  const uint64_t before = status["refreshes_ok"];
  ASSERT_TRUE(PublishImage(dir_, repo, kApp, 256, "control", "1"));
  auto update = Node("update --now");
  EXPECT_EQ(update.exit_code, 0) << update.output;
  EXPECT_NE(update.output.find("refreshing metadata now"), std::string::npos) << update.output;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status();
        return status.is_object() && status["apps"][0]["running_release"] == 2 &&
               status["apps"][0]["previous_release"] == 1;
      },
      60s))
      << status.dump() << "\n"
      << node_.Log();
  EXPECT_GT(status["refreshes_ok"].get<uint64_t>(), before);
  EXPECT_GT(
      Sample(HttpGet(metrics_port, "/metrics"), "flotilla_node_refreshes_total{result=\"ok\"}"),
      static_cast<double>(before));

  EXPECT_EQ(Node("logs web").exit_code, 0);
  auto unknown = Node("logs nope");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("no app 'nope' is followed here"), std::string::npos)
      << unknown.output;

  // The operator rolls back: release 1 runs again, and status and metrics say so.
  auto rollback = Node("rollback web");
  EXPECT_EQ(rollback.exit_code, 0) << rollback.output << node_.Log();
  EXPECT_EQ(rollback.output, "web: release 1 runs (rolled back from 2)\n");
  status = Status();
  EXPECT_EQ(status["apps"][0]["running_release"], 1) << status.dump();
  EXPECT_EQ(
      Sample(HttpGet(metrics_port, "/metrics"), "flotilla_node_app_running_release{app=\"web\"}"),
      1);
  EXPECT_EQ(Node("rollback nope").exit_code, 1);

  EXPECT_EQ(node_.Stop(), 0);
  EXPECT_NE(::access(socket_.c_str(), F_OK), 0) << "the socket is removed at stop";
  auto gone = Node("status");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.output, "flotilla-node status: no daemon listens on " + socket_ +
                             ": is flotilla-node running?\n");
}

}  // namespace
}  // namespace flotilla::testing
