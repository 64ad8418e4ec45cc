// The bad-peer chain with real binaries (docs/transfer.md "Corrupt peers",
// docs/tracker.md "Peer reputation"): a scripted peer
// (tests/support/adversarial_peer.py) announces itself to a real tracker and
// serves good pieces, then corrupt ones; two flotilla-node daemons at
// different sites (the second started once the first reported it) get it
// from their announces, ban it, complete and report it; the tracker keeps handing it out after the
// first site's report and stops after the second's, as a fresh announce of a third device shows.
// Then every behaviour of that peer, one case each: a daemon meets it through
// the tracker and still completes within twice a clean fetch of the same
// release plus 60 s, wasting at most one artifact plus two pieces.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

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
    hostile_log_ = dir_ + "/hostile.log";
  }
  void TearDown() override {
    for (auto& n : nodes_) n.Stop();
    hostile_.Stop(seconds(2));
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }

  // Starts node `name` at `site`, listening on `ip`, in p2p mode without LAN
  // discovery: the tracker's announces are its only source of peers. It
  // takes bytes from the origin after `origin_wait_s` without peer bytes.
  void StartNode(size_t i, const std::string& site, const std::string& ip, uint16_t port = 0,
                 uint32_t origin_wait_s = 10) {
    const std::string home = dir_ + "/" + site;
    RunShell("mkdir -p " + home);
    Json config = NodeConfigFor("node-" + site, home + "/data", tracker_.url(),
                                repo_ + "/metadata/1.root.json", "kiosk");
    config["transfer_mode"] = "p2p";
    config["listen"] = ip + ":" + std::to_string(port);
    config["site"] = site;
    config["origin_wait_s"] = origin_wait_s;
    ASSERT_TRUE(nodes_[i].Start(home, config));
    homes_[i] = home;
  }
  bool Ready(size_t i) {
    Json a = AppState(homes_[i] + "/data", "kiosk");
    return a.is_object() && a["ready_release"] == 1;
  }
  bool WaitReady(size_t i) {
    return WaitFor([&] { return Ready(i); }, seconds(45));
  }

  // Starts the hostile peer serving the release's largest artifact as
  // `mode_args` say (plus `extra`), joined to the swarm through the tracker
  // as an enrolled device would: its own announces (--announce). Returns
  // once the tracker answered its first announce; its "listening" line.
  Json StartHostile(const std::vector<std::string>& mode_args,
                    const std::vector<std::string>& extra = {}) {
    const std::string artifact =
        RunShell("ls -S " + repo_ + "/artifacts | head -1 | tr -d '\\n'").output;
    EXPECT_EQ(artifact.size(), 64u);
    EnrolledDevice hostile = EnrolDevice(tracker_.port(), "hostile", "elsewhere");
    probe_ = EnrolDevice(tracker_.port(), "probe", "site-probe");
    EXPECT_FALSE(hostile.device_id.empty());
    EXPECT_FALSE(probe_.device_id.empty());
    std::vector<std::string> argv = {
        "/usr/bin/python3", std::string(FLOTILLA_SOURCE_DIR) + "/tests/support/adversarial_peer.py",
        "--torrent",        repo_ + "/torrents/" + artifact + ".torrent",
        "--data",           repo_ + "/artifacts/" + artifact,
        "--listen",         std::string(kHostileIp) + ":0",
        "--announce",       tracker_.url() + "/announce/" + hostile.passkey};
    argv.insert(argv.end(), mode_args.begin(), mode_args.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (!hostile_.Start(argv, hostile_log_, dir_ + "/hostile.err")) return nullptr;
    if (!WaitFor([&] { return HostileStat("announces") >= 1; }, seconds(10))) {
      ADD_FAILURE() << FileText(hostile_log_) << FileText(dir_ + "/hostile.err");
      return nullptr;
    }
    return PeerLine(FileText(hostile_log_), /*last=*/false);
  }
  // The hostile peer's last count of `key`.
  int HostileStat(const std::string& key) {
    const Json stats = PeerLine(FileText(hostile_log_), /*last=*/true);
    return stats.is_object() ? stats.value(key, 0) : 0;
  }

  uint64_t ReleaseBytes() {
    return std::strtoull(RunShell("cat " + repo_ + "/artifacts/* | wc -c").output.c_str(), nullptr,
                         10);
  }
  // The piece length of `artifact`'s torrent.
  uint64_t PieceBytes(const std::string& artifact) {
    return std::strtoull(
        RunShell("python3 -c 'import re,sys; d=open(sys.argv[1],\"rb\").read(); "
                 "print(re.search(rb\"12:piece lengthi([0-9]+)e\", d).group(1).decode())' " +
                 repo_ + "/torrents/" + artifact + ".torrent")
            .output.c_str(),
        nullptr, 10);
  }

  bool ReportedBy(const std::string& device) {
    return tracker_.Log().find("device '" + device + "' reports 1 peer(s) that sent bad data") !=
           std::string::npos;
  }

  // The right bytes: a stopped node's store holds every signed layer and
  // re-hashes clean.
  void StopAndVerify(size_t i) {
    const std::string signed_layers =
        RunShell(
            "python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))[\"signed\"][\"targets\"]"
            "[\"apps/kiosk/release-1.json\"][\"custom\"][\"flotilla\"]; "
            "[print(l[\"diff_id\"]) for l in t[\"image\"][\"layers\"]]' " +
            repo_ + "/metadata/targets.json")
            .output;
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

  std::string dir_, repo_, hostile_log_;
  TrackerProcess tracker_;
  ChildProcess hostile_;
  EnrolledDevice probe_;
  NodeProcess nodes_[2];
  std::string homes_[2];
};

TEST_F(BadPeerChainTest, TwoSitesBanAndReportAPeerGoneCorruptAndOnlyBothReportsDelistIt) {
  // The hostile peer serves the release's largest artifact, two pieces right
  // and then corrupt ones.
  const Json listening = StartHostile({"--mode", "corrupt", "--good-pieces", "2"});
  ASSERT_TRUE(listening.is_object());
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
  const uint64_t release_bytes = ReleaseBytes();
  const std::string banned = std::string("banned for this artifact: ") + kHostileIp;
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

  // Site A meets it through its announces, bans it at its first corrupt
  // piece and reports it.
  StartNode(0, "site-a", "127.78.1.2");
  ASSERT_TRUE(WaitFor(
      [&] {
        return nodes_[0].Log().find(banned) != std::string::npos && ReportedBy("node-site-a");
      },
      seconds(30)))
      << nodes_[0].Log() << tracker_.Log();
  phase("site A banned and reported it");
  const Json after_a = PeerLine(FileText(hostile_log_), true);
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
  ASSERT_TRUE(WaitFor([&] { return ReportedBy("node-site-b"); }, seconds(10))) << tracker_.Log();
  // Both sites' reports delist it: a fresh announce no longer gets it.
  ASSERT_TRUE(WaitFor([&] { return !handed_out(); }, seconds(10))) << tracker_.Log();
  phase("delisted");
  const Json remotes = PeerLine(FileText(hostile_log_), true)["remotes"];
  auto met = [&](const std::string& ip) {
    return std::find(remotes.begin(), remotes.end(), ip) != remotes.end();
  };
  EXPECT_TRUE(met("127.78.1.2") && met("127.78.1.3")) << remotes.dump();
  StopAndVerify(0);
  StopAndVerify(1);
}

// One behaviour of the hostile peer (tests/support/adversarial_peer.py).
struct Behaviour {
  const char* name;
  std::vector<std::string> mode_args;
  // It connects to the victim again and again too (--connect --reconnect),
  // besides being handed out by the tracker.
  bool connects;
  // It sends bad data: the victim bans it, logs it and reports it.
  bool corrupt;
  // The hostile peer's counter that shows it did its part, and its least value.
  const char* evidence;
  int evidence_at_least;
};

void PrintTo(const Behaviour& b, std::ostream* out) { *out << b.name; }

class BadPeerBehaviourTest : public BadPeerChainTest,
                             public ::testing::WithParamInterface<Behaviour> {};

// A clean fetch of the release (a node of its own site, the tracker's origin
// its only source) gives the baseline; then the hostile peer joins the swarm
// and a fresh node of another site takes the same release with the hostile
// peer handed out by the tracker and the origin as its only good source.
// Both nodes wait kOriginWaitS (plus a stagger of up to 0.8 times as long)
// for peer bytes before they take the origin: that wait paces the clean fetch
// of a node alone and the fetch of one whose only peer holds requests back.
TEST_P(BadPeerBehaviourTest, NodeCompletesWithinTwiceACleanFetchAndWastesAtMostOneArtifact) {
  constexpr uint32_t kOriginWaitS = 3;
  const Behaviour& b = GetParam();
  using Clock = std::chrono::steady_clock;
  const uint64_t release_bytes = ReleaseBytes();
  const std::string artifact =
      RunShell("ls -S " + repo_ + "/artifacts | head -1 | tr -d '\\n'").output;
  const uint64_t piece = PieceBytes(artifact);
  ASSERT_GT(piece, 0u);
  const uint64_t artifact_bytes = std::strtoull(
      RunShell("wc -c < " + repo_ + "/artifacts/" + artifact).output.c_str(), nullptr, 10);

  // The clean fetch, then that node leaves.
  auto started = Clock::now();
  ASSERT_NO_FATAL_FAILURE(StartNode(0, "site-clean", "127.78.1.4", 0, kOriginWaitS));
  ASSERT_TRUE(WaitFor([&] { return Ready(0); }, seconds(60))) << nodes_[0].Log();
  const auto clean = Clock::now() - started;
  StopAndVerify(0);

  const uint16_t victim_port = FreePort();
  const std::string victim_ip = "127.78.1.5";
  std::vector<std::string> extra;
  if (b.connects) {
    extra = {"--connect", victim_ip + ":" + std::to_string(victim_port), "--reconnect"};
  }
  ASSERT_TRUE(StartHostile(b.mode_args, extra).is_object());

  // The victim; bytes_wasted from its status, sampled while it fetches
  // (the daemon forgets the transfer once ready).
  started = Clock::now();
  ASSERT_NO_FATAL_FAILURE(StartNode(1, "site-victim", victim_ip, victim_port, kOriginWaitS));
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(2 * clean + seconds(60));
  uint64_t wasted_in_status = 0;
  const bool ready = WaitFor(
      [&] {
        auto status =
            RunShell("timeout 5 " + BinaryPath("flotilla-node") + " status --json --socket " +
                     homes_[1] + "/data/control.sock 2>/dev/null");
        const Json s = Json::parse(status.output, nullptr, false);
        if (s.is_object()) {
          wasted_in_status = std::max(wasted_in_status, s.value("bytes_wasted", uint64_t{0}));
        }
        return Ready(1);
      },
      limit, std::chrono::milliseconds(250));
  const auto took = Clock::now() - started;
  const std::string log = nodes_[1].Log();
  ASSERT_TRUE(ready) << "not ready within " << limit.count() << " ms\n"
                     << log << FileText(hostile_log_);

  // Every failing piece is logged once with the bytes it wasted.
  uint64_t wasted_in_log = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.find("failed its hash (");
    if (at != std::string::npos)
      wasted_in_log += std::strtoull(line.c_str() + at + 17, nullptr, 10);
  }
  const Json a = AppState(homes_[1] + "/data", "kiosk");
  std::printf(
      "%s: clean fetch %.1f s, with the hostile peer %.1f s (limit %.1f s); "
      "%s B from peers, %s B from the origin, %llu B wasted (status saw %llu)\n",
      b.name, std::chrono::duration<double>(clean).count(),
      std::chrono::duration<double>(took).count(), limit.count() / 1000.0,
      a["bytes_from_peers"].dump().c_str(), a["bytes_from_origin"].dump().c_str(),
      static_cast<unsigned long long>(wasted_in_log),
      static_cast<unsigned long long>(wasted_in_status));
  // Verified bytes are counted once; waste stays within one artifact plus
  // two pieces.
  EXPECT_EQ(a["bytes_from_peers"].get<uint64_t>() + a["bytes_from_origin"].get<uint64_t>(),
            release_bytes)
      << a.dump();
  EXPECT_LE(std::max(wasted_in_log, wasted_in_status), artifact_bytes + 2 * piece) << log;

  // The hostile peer did its part with this node.
  const Json remotes = PeerLine(FileText(hostile_log_), true)["remotes"];
  EXPECT_NE(std::find(remotes.begin(), remotes.end(), victim_ip), remotes.end())
      << FileText(hostile_log_);
  EXPECT_GE(HostileStat(b.evidence), b.evidence_at_least) << FileText(hostile_log_);

  const std::string banned = std::string("banned for this artifact: ") + kHostileIp;
  if (b.corrupt) {
    EXPECT_NE(log.find(banned), std::string::npos) << log;
    EXPECT_GT(wasted_in_log, 0u) << log;
    EXPECT_TRUE(WaitFor([&] { return ReportedBy("node-site-victim"); }, seconds(10)))
        << tracker_.Log();
  } else {
    EXPECT_EQ(log.find(banned), std::string::npos) << log;
    EXPECT_EQ(wasted_in_log, 0u) << log;
  }
  StopAndVerify(1);
}

INSTANTIATE_TEST_SUITE_P(
    EveryBehaviour, BadPeerBehaviourTest,
    ::testing::Values(
        Behaviour{"CorruptFromTheStart", {"--mode", "corrupt"}, false, true, "corrupt_blocks", 1},
        Behaviour{"CorruptAfterTwoGoodPieces",
                  {"--mode", "corrupt", "--good-pieces", "2"},
                  false,
                  true,
                  "corrupt_blocks",
                  1},
        Behaviour{"ClaimsPiecesNeverSends", {"--mode", "claim"}, false, false, "connections", 1},
        Behaviour{"AcceptsRequestsAndStalls", {"--mode", "stall"}, false, false, "requests", 1},
        Behaviour{"TricklesOneBytePerSecond",
                  {"--mode", "trickle", "--trickle-rate", "1"},
                  false,
                  false,
                  "requests",
                  1},
        Behaviour{"DisconnectsAndReconnectsInALoop",
                  {"--mode", "flap", "--flap-seconds", "0.5"},
                  true,
                  false,
                  "connections",
                  3},
        Behaviour{"MalformedAndOversizedMessages",
                  {"--mode", "malformed"},
                  true,
                  false,
                  "malformed_sent",
                  3}),
    [](const ::testing::TestParamInfo<Behaviour>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace flotilla::testing
