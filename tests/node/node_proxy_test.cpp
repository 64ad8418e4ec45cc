// Devices behind an HTTP proxy, end to end, in a private network namespace:
// a real flotilla-tracker, Debian's tinyproxy with Basic authentication, and
// two flotilla-node processes on one LAN (LSD and the beacons on the
// namespace's loopback). An nftables rule refuses every connection to the
// tracker's port that does not come from the proxy's user, so the proxy is
// the nodes' only route to the tracker. Both nodes enrol, follow the signed
// metadata and report through it; A fetches the release from the web seed
// through it (the node's loopback relay, origin_relay.h); B takes its bytes
// from A directly. The proxy's log shows every request it carried: only the
// tracker's address, never a peer; the tracker hands the proxied nodes out to
// no one (it answers their announces with no peers, so never with the
// proxy's address).
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"
#include "tests/support/tinyproxy.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr const char* kProxyPassword = "Pr0xy-Pa55word";

class NodeProxy : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lo = EnterNetnsWithLoopbackMulticast();
    if (!lo) GTEST_SKIP() << "cannot create a network namespace";
    ASSERT_EQ(lo->exit_code, 0) << lo->output;
    dir_ = MakeTempDir("node-proxy-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_));
  }
  void TearDown() override {
    a_.Stop();
    b_.Stop();
    tracker_.Stop();
    proxy_.Stop();
    if (!dir_.empty()) RunShell("rm -rf " + dir_);
  }
  // Only tinyproxy (user nobody) may open a connection to the tracker's port.
  CommandResult OnlyTheProxyReachesTheTracker() {
    return RunShell(
        "nft add table inet proxytest && "
        "nft add chain inet proxytest out '{ type filter hook output priority 0; }' && "
        "nft add rule inet proxytest out tcp dport " +
        std::to_string(tracker_.port()) + " meta skuid != nobody reject with tcp reset 2>&1");
  }
  Json ProxiedConfig(const std::string& name, int host) {
    Json c = NodeConfigFor(name, dir_ + "/" + name + "/data", tracker_.url(),
                           repo_ + "/metadata/1.root.json", "kiosk");
    c["transfer_mode"] = "p2p";
    c["listen"] = "127.0.0." + std::to_string(host) + ":0";
    c["site"] = "shop-7";
    c["proxy"] = proxy_.Url();
    c["lan"] = {{"enabled", true},
                {"http_listen", "127.0.0.1:0"},
                {"interface", "127.0.0.1"},
                {"beacon_interval_s", 1}};
    return c;
  }
  bool StartNode(NodeProcess& node, const std::string& name, const Json& config) {
    RunShell("mkdir -p " + dir_ + "/" + name);
    return node.Start(dir_ + "/" + name, config);
  }
  bool WaitReady(const std::string& name, uint64_t release, seconds timeout) {
    return WaitFor(
        [&] { return AppState(dir_ + "/" + name + "/data", "kiosk")["ready_release"] == release; },
        timeout);
  }
  uint64_t FullArtifactBytes(uint64_t release) {
    auto text = ReadTextFileBounded(repo_ + "/metadata/targets.json", 16 << 20);
    if (!text.ok()) return 0;
    Json targets = Json::parse(*text, nullptr, false);
    const std::string name = "apps/kiosk/release-" + std::to_string(release) + ".json";
    if (targets.is_discarded() || !targets["signed"]["targets"].contains(name)) return 0;
    uint64_t total = 0;
    for (const Json& a : targets["signed"]["targets"][name]["custom"]["flotilla"]["artifacts"]) {
      if (a["kind"] == "full") total += a["length"].get<uint64_t>();
    }
    return total;
  }
  // Every "the tracker answered with N peers" of a node's log: N.
  static std::vector<int> TrackerAnswers(const std::string& log) {
    std::vector<int> peers;
    static const std::regex kAnswer("the tracker answered with ([0-9]+) peers");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), kAnswer);
         it != std::sregex_iterator(); ++it) {
      peers.push_back(std::stoi((*it)[1]));
    }
    return peers;
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  TinyProxy proxy_;
  NodeProcess a_, b_;
};

TEST_F(NodeProxy, NodesEnrolFetchAndReportThroughTheProxyAndSharePiecesDirectly) {
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 2048, "1"));
  const uint64_t artifact_bytes = FullArtifactBytes(1);
  ASSERT_GT(artifact_bytes, 2000u * 1024);
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  ASSERT_TRUE(proxy_.Start("fleet", kProxyPassword)) << proxy_.Log();
  auto rule = OnlyTheProxyReachesTheTracker();
  ASSERT_EQ(rule.exit_code, 0) << rule.output;
  // The rule holds: direct is refused, through the proxy answers.
  const std::string probe = "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 ";
  EXPECT_NE(RunShell(probe + tracker_.url() + "/metadata/timestamp.json").exit_code, 0);
  EXPECT_EQ(
      RunShell(probe + "-x " + proxy_.Url() + " " + tracker_.url() + "/metadata/timestamp.json")
          .output,
      "200");
  const size_t probes = proxy_.Requests().size();

  ASSERT_TRUE(StartNode(a_, "a", ProxiedConfig("a", 2)));
  ASSERT_TRUE(WaitReady("a", 1, seconds(90))) << a_.Log() << proxy_.Log();
  ASSERT_TRUE(StartNode(b_, "b", ProxiedConfig("b", 3)));
  ASSERT_TRUE(WaitReady("b", 1, seconds(90))) << b_.Log();

  // A took the release from the web seed, through the proxy; B from A.
  Json a = AppState(dir_ + "/a/data", "kiosk");
  Json b = AppState(dir_ + "/b/data", "kiosk");
  std::printf("A: %s\nB: %s\nsigned full artifacts: %llu bytes\n", a.dump().c_str(),
              b.dump().c_str(), static_cast<unsigned long long>(artifact_bytes));
  EXPECT_EQ(a["bytes_from_origin"].get<uint64_t>(), artifact_bytes) << a.dump();
  const uint64_t b_peers = b["bytes_from_peers"], b_origin = b["bytes_from_origin"];
  EXPECT_EQ(b_peers + b_origin, artifact_bytes) << b.dump();
  EXPECT_GE(b_peers * 10, artifact_bytes * 8) << b.dump() << b_.Log();

  // Both enrolled and reported through the proxy.
  const std::string db = repo_ + "/tracker.db";
  ASSERT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(db,
                              "SELECT d.name, s.release FROM device_status s JOIN devices d "
                              "ON d.device_id = s.device_id ORDER BY d.name") == "a|1\nb|1\n";
      },
      seconds(20)))
      << QueryTrackerDb(db, "SELECT * FROM device_status");

  // What the proxy carried: only the tracker (metadata, enrolment, reports,
  // announces marked proxied, web seed ranges); no peer connection at all.
  const std::vector<std::string> requests = proxy_.Requests();
  ASSERT_GT(requests.size(), probes);
  const std::string tracker_prefix = tracker_.url() + "/";
  size_t enrol = 0, reports = 0, announces = 0, web_seed = 0, metadata = 0;
  for (size_t i = probes; i < requests.size(); ++i) {
    const std::string& r = requests[i];
    const size_t space = r.find(' ');
    ASSERT_NE(space, std::string::npos) << r;
    const std::string target = r.substr(space + 1);
    EXPECT_EQ(target.rfind(tracker_prefix, 0), 0u) << "the proxy carried " << r;
    if (target.find("/enrol") != std::string::npos) ++enrol;
    if (target.find("/report") != std::string::npos) ++reports;
    if (target.find("/announce/") != std::string::npos) {
      ++announces;
      EXPECT_NE(target.find("proxied=1"), std::string::npos) << r;
    }
    if (target.find("/artifacts/") != std::string::npos) ++web_seed;
    if (target.find("/metadata/") != std::string::npos) ++metadata;
  }
  std::printf(
      "through the proxy: %zu enrolment, %zu report, %zu announce, %zu web seed, "
      "%zu metadata requests\n",
      enrol, reports, announces, web_seed, metadata);
  EXPECT_GE(enrol, 2u);
  EXPECT_GE(reports, 2u);
  EXPECT_GE(announces, 2u);
  EXPECT_GE(web_seed, 1u);
  EXPECT_GE(metadata, 2u);

  // The tracker handed out no one: the proxied nodes are never given, so the
  // proxy's address (every proxied announce's source) never is.
  for (NodeProcess* node : {&a_, &b_}) {
    const auto answers = TrackerAnswers(node->Log());
    EXPECT_FALSE(answers.empty()) << node->Log();
    for (int peers : answers) EXPECT_EQ(peers, 0) << node->Log();
    // The proxy's password is never logged.
    EXPECT_EQ(node->Log().find(kProxyPassword), std::string::npos);
  }
  EXPECT_EQ(a_.Stop(), 0);
  EXPECT_EQ(b_.Stop(), 0);
}

// A proxy that wants credentials the node does not give: the node does not
// crash; it says why in its log and keeps trying.
TEST_F(NodeProxy, AProxyThatRefusesTheNodeIsAClearError) {
  ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 64, "1"));
  ASSERT_TRUE(tracker_.Start(dir_, repo_));
  ASSERT_TRUE(proxy_.Start("fleet", kProxyPassword)) << proxy_.Log();
  Json config = ProxiedConfig("a", 2);
  config["proxy"] = proxy_.Url(false);
  ASSERT_TRUE(StartNode(a_, "a", config));
  ASSERT_TRUE(WaitFor(
      [&] { return a_.Log().find("the proxy asks for authentication") != std::string::npos; },
      seconds(30)))
      << a_.Log();
  EXPECT_TRUE(a_.running());
  EXPECT_EQ(a_.Stop(), 0);
}

}  // namespace
}  // namespace flotilla::testing
