// The bad-peer chain with real binaries (docs/transfer.md "Corrupt peers",
// docs/tracker.md "Peer reputation"): a scripted peer
// (tests/support/adversarial_peer.py) announces itself to a real tracker and
// serves good pieces, then corrupt ones; two flotilla-node daemons at
// different sites (the second started once the first reported it) get it
// from their announces, ban it, complete and report it; the tracker keeps handing it out after the
// first site's report and stops after the second's, as a fresh announce of a third device shows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr const char* kHostileIp = "127.78.1.9";

std::string FileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The JSON lines of the adversarial peer's stdout: the first ("listening")
// and the last ("stats").
Json PeerLine(const std::string& log, bool last) {
  std::istringstream lines(log);
  Json found = nullptr;
  for (std::string line; std::getline(lines, line);) {
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    if (!last) return j;
    if (j.value("event", "") == "stats") found = j;
  }
  return found;
}

std::string PercentEncode(const std::string& bytes) {
  std::string out;
  char hex[4];
  for (unsigned char c : bytes) {
    std::snprintf(hex, sizeof hex, "%%%02X", c);
    out += hex;
  }
  return out;
}

// The peers ("IP:PORT") a tracker's compact announce answer hands out; empty
// when the answer is not one.
std::vector<std::string> CompactPeers(const std::string& body) {
  std::vector<std::string> peers;
  const size_t key = body.find("5:peers");
  if (key == std::string::npos) return peers;
  const size_t colon = body.find(':', key + 7);
  if (colon == std::string::npos) return peers;
  const size_t length = std::strtoull(body.c_str() + key + 7, nullptr, 10);
  if (colon + 1 + length > body.size() || length % 6 != 0) return peers;
  for (size_t at = colon + 1; at < colon + 1 + length; at += 6) {
    const auto* b = reinterpret_cast<const unsigned char*>(body.data() + at);
    peers.push_back(std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) +
                    "." + std::to_string(b[3]) + ":" + std::to_string(b[4] << 8 | b[5]));
  }
  return peers;
}

class BadPeerChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-bad-peer-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_)) << FileText(dir_ + "/init.log");
    ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 1024, "1")) << FileText(dir_ + "/publish.log");
    ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
  }
  void TearDown() override {
    for (auto& n : nodes_) n.Stop();
    hostile_.Stop(seconds(2));
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }

  // Starts node `name` at `site`, listening on `ip`, in p2p mode without LAN
  // discovery: the tracker's announces are its only source of peers.
  void StartNode(size_t i, const std::string& site, const std::string& ip) {
    const std::string home = dir_ + "/" + site;
    RunShell("mkdir -p " + home);
    Json config = NodeConfigFor("node-" + site, home + "/data", tracker_.url(),
                                repo_ + "/metadata/1.root.json", "kiosk");
    config["transfer_mode"] = "p2p";
    config["listen"] = ip + ":0";
    config["site"] = site;
    ASSERT_TRUE(nodes_[i].Start(home, config));
    homes_[i] = home;
  }
  bool WaitReady(size_t i) {
    return WaitFor(
        [&] {
          Json a = AppState(homes_[i] + "/data", "kiosk");
          return a.is_object() && a["ready_release"] == 1;
        },
        seconds(45));
  }

  // The peers the tracker hands a fresh device of its own site in the
  // hostile peer's swarm.
  std::vector<std::string> PeersHandedOut(const std::string& swarm) {
    auto raw = HexDecode(swarm);
    if (!raw.ok()) return {};
    const std::string target = "/announce/" + probe_.passkey + "?info_hash=" +
                               PercentEncode(std::string(raw->begin(), raw->end())) +
                               "&peer_id=-PR0001-abcdefghijkl&port=9&uploaded=0&downloaded=0"
                               "&left=1&compact=1&numwant=200";
    return CompactPeers(HttpRequestTo(tracker_.port(), "GET", target).body);
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  ChildProcess hostile_;
  EnrolledDevice probe_;
  NodeProcess nodes_[2];
  std::string homes_[2];
};

TEST_F(BadPeerChainTest, TwoSitesBanAndReportAPeerGoneCorruptAndOnlyBothReportsDelistIt) {
  // The hostile peer serves the release's largest artifact, two pieces right
  // and then corrupt ones, and joins the swarm through the tracker as an
  // enrolled device would: its own announces (--announce).
  const std::string artifact =
      RunShell("ls -S " + repo_ + "/artifacts | head -1 | tr -d '\\n'").output;
  ASSERT_EQ(artifact.size(), 64u);
  EnrolledDevice hostile = EnrolDevice(tracker_.port(), "hostile", "elsewhere");
  probe_ = EnrolDevice(tracker_.port(), "probe", "site-probe");
  ASSERT_FALSE(hostile.device_id.empty());
  ASSERT_FALSE(probe_.device_id.empty());
  const std::string hostile_log = dir_ + "/hostile.log";
  ASSERT_TRUE(hostile_.Start(
      {"/usr/bin/python3", std::string(FLOTILLA_SOURCE_DIR) + "/tests/support/adversarial_peer.py",
       "--torrent", repo_ + "/torrents/" + artifact + ".torrent", "--data",
       repo_ + "/artifacts/" + artifact, "--listen", std::string(kHostileIp) + ":0", "--mode",
       "corrupt", "--good-pieces", "2", "--announce",
       tracker_.url() + "/announce/" + hostile.passkey},
      hostile_log, dir_ + "/hostile.err"));
  ASSERT_TRUE(WaitFor(
      [&] {
        Json stats = PeerLine(FileText(hostile_log), /*last=*/true);
        return stats.is_object() && stats.value("announces", 0) >= 1;
      },
      seconds(10)))
      << FileText(hostile_log) << FileText(dir_ + "/hostile.err");
  const Json listening = PeerLine(FileText(hostile_log), /*last=*/false);
  const std::string swarm = listening["swarm"];
  const std::string endpoint =
      std::string(kHostileIp) + ":" + std::to_string(listening["port"].get<int>());
  auto handed_out = [&] {
    auto peers = PeersHandedOut(swarm);
    return std::find(peers.begin(), peers.end(), endpoint) != peers.end();
  };
  ASSERT_TRUE(handed_out()) << "the tracker does not list the hostile peer's announce";

  const auto started = std::chrono::steady_clock::now();
  auto phase = [&](const char* what) {
    std::printf("%5.1f s: %s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                what);
  };
  const uint64_t release_bytes =
      std::strtoull(RunShell("cat " + repo_ + "/artifacts/* | wc -c").output.c_str(), nullptr, 10);
  const std::string banned = std::string("banned for this artifact: ") + kHostileIp;
  auto reported_by = [&](const std::string& device) {
    return tracker_.Log().find("device '" + device + "' reports 1 peer(s) that sent bad data") !=
           std::string::npos;
  };
  // A device banned it, logged it, completed with every byte counted once.
  auto completed = [&](size_t i, const std::string& site) {
    ASSERT_TRUE(WaitReady(i)) << nodes_[i].Log();
    EXPECT_NE(nodes_[i].Log().find(banned), std::string::npos) << nodes_[i].Log();
    const Json a = AppState(homes_[i] + "/data", "kiosk");
    std::printf("%s: %s B from peers, %s B from the origin\n", site.c_str(),
                a["bytes_from_peers"].dump().c_str(), a["bytes_from_origin"].dump().c_str());
    EXPECT_EQ(a["bytes_from_peers"].get<uint64_t>() + a["bytes_from_origin"].get<uint64_t>(),
              release_bytes)
        << a.dump();
  };

  // The right bytes: a stopped node's store holds every signed layer and
  // re-hashes clean.
  const std::string signed_layers =
      RunShell(
          "python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))[\"signed\"][\"targets\"]"
          "[\"apps/kiosk/release-1.json\"][\"custom\"][\"flotilla\"]; "
          "[print(l[\"diff_id\"]) for l in t[\"image\"][\"layers\"]]' " +
          repo_ + "/metadata/targets.json")
          .output;
  auto stop_and_verify = [&](size_t i) {
    EXPECT_EQ(nodes_[i].Stop(), 0);
    const std::string store = homes_[i] + "/data/store";
    auto verify =
        RunShell(BinaryPath("flotilla-node") + " store --store " + store + " verify 2>&1");
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    auto layers = RunShell(BinaryPath("flotilla-node") + " store --store " + store + " layers");
    std::istringstream in(signed_layers);
    int count = 0;
    for (std::string diff_id; in >> diff_id; ++count) {
      EXPECT_NE(layers.output.find(diff_id.substr(7, 12)), std::string::npos) << layers.output;
    }
    EXPECT_GT(count, 0) << signed_layers;
  };

  // Site A meets it through its announces, bans it at its first corrupt
  // piece and reports it.
  StartNode(0, "site-a", "127.78.1.2");
  ASSERT_TRUE(WaitFor(
      [&] {
        return nodes_[0].Log().find(banned) != std::string::npos && reported_by("node-site-a");
      },
      seconds(30)))
      << nodes_[0].Log() << tracker_.Log();
  phase("site A banned and reported it");
  const Json after_a = PeerLine(FileText(hostile_log), true);
  EXPECT_GE(after_a.value("blocks_sent", 0), after_a.value("corrupt_blocks", 0) + 1)
      << "good pieces first: " << after_a.dump();
  EXPECT_GT(after_a.value("corrupt_blocks", 0), 0) << after_a.dump();
  // One site's report does not delist it.
  EXPECT_TRUE(handed_out()) << "delisted after one site's report";

  // Site B, started while A still fetches, meets it too.
  StartNode(1, "site-b", "127.78.1.3");
  completed(0, "site-a");
  completed(1, "site-b");
  if (HasFatalFailure()) return;
  phase("both sites ready");
  ASSERT_TRUE(WaitFor([&] { return reported_by("node-site-b"); }, seconds(10))) << tracker_.Log();
  // Both sites' reports delist it: a fresh announce no longer gets it.
  ASSERT_TRUE(WaitFor([&] { return !handed_out(); }, seconds(10))) << tracker_.Log();
  phase("delisted");
  const Json remotes = PeerLine(FileText(hostile_log), true)["remotes"];
  auto met = [&](const std::string& ip) {
    return std::find(remotes.begin(), remotes.end(), ip) != remotes.end();
  };
  EXPECT_TRUE(met("127.78.1.2") && met("127.78.1.3")) << remotes.dump();
  stop_and_verify(0);
  stop_and_verify(1);
}

}  // namespace
}  // namespace flotilla::testing
