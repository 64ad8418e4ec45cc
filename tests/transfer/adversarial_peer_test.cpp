// Transfers that always end (docs/transfer.md, "Corrupt peers"): a real
// tracker, a good seeder and a fetcher that also meets one scripted hostile
// peer (tests/support/adversarial_peer.py). For each behaviour the fetcher
// completes with the right bytes within twice the time of the same fetch
// without the hostile peer plus 60 s, wastes at most one artifact plus two
// pieces, announces within the tracker's intervals, and a peer that sent
// bad data is banned, logged and listed for the report.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"
#include "tests/transfer/transfer_fixture.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kSeedIp = "127.77.9.2";
constexpr const char* kBaselineIp = "127.77.9.3";
constexpr const char* kVictimIp = "127.77.9.4";
constexpr const char* kHostileIp = "127.77.9.9";

std::string FileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// True when a "failed its hash" line of `log` names `ip` as the piece's only
// sender ("sent by IP:PORT)").
bool FailedAlone(const std::string& log, const std::string& ip) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const size_t by = line.find("failed its hash");
    if (by == std::string::npos) continue;
    const size_t from = line.find("sent by ", by);
    const size_t to = line.find(')', from);
    if (from == std::string::npos || to == std::string::npos) continue;
    const std::string senders = line.substr(from + 8, to - from - 8);
    if (senders.rfind(ip + ":", 0) == 0 && senders.find(',') == std::string::npos) return true;
  }
  return false;
}

class AdversarialPeerTest : public TransferTest {
 protected:
  // The artifact, a good seeder fed by the origin, and the time a fresh
  // fetcher takes with that seeder alone (the baseline).
  void Prepare(int piece_kib, int seed_rate = 256 << 10) {
    artifact_ = AddArtifact(512 << 10, piece_kib, 31);
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/right.bin", artifact_.content).ok());
    auto seed_args = NodeArgs("seed", kSeedIp, artifact_);
    // A slow seeder, so that the hostile peer takes part.
    seed_args.insert(seed_args.end(),
                     {"--stall", "0", "--no-lsd", "--up", std::to_string(seed_rate)});
    ASSERT_TRUE(seed_.Start(dir_ + "/seed.log", seed_args)) << seed_.Log();
    ASSERT_TRUE(seed_.WaitFor(ArtifactComplete, seconds(30))) << seed_.Log();
    FetchProcess baseline;
    const auto started = Clock::now();
    ASSERT_TRUE(baseline.Start(dir_ + "/baseline.log", VictimArgs("baseline", kBaselineIp, {})))
        << baseline.Log();
    ASSERT_TRUE(baseline.WaitFor(ArtifactComplete, seconds(60))) << baseline.Log();
    baseline_ = Clock::now() - started;
    baseline.Stop();
  }

  // A fetcher with the tracker, the origin after 3 s without verified peer
  // bytes, no LSD, and `peers` then the good seeder configured.
  std::vector<std::string> VictimArgs(const std::string& name, const std::string& ip,
                                      const std::vector<std::string>& peers) {
    auto args = NodeArgs(name, ip, artifact_);
    args.insert(args.end(), {"--no-lsd", "--stall", "3"});
    for (const auto& p : peers) args.insert(args.end(), {"--peer", p});
    args.insert(args.end(), {"--peer", std::string(kSeedIp) + ":" + std::to_string(seed_.port())});
    return args;
  }

  // Starts the hostile peer; its port once it listens.
  int StartHostile(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {
        "/usr/bin/python3", SourcePath("tests/support/adversarial_peer.py"),
        "--torrent",        repo_ + "/torrents/" + artifact_.hex + ".torrent",
        "--data",           dir_ + "/right.bin",
        "--listen",         std::string(kHostileIp) + ":0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    hostile_log_ = dir_ + "/hostile.log";
    if (!hostile_.Start(argv, hostile_log_, dir_ + "/hostile.err")) return 0;
    int port = 0;
    WaitFor(
        [&] {
          std::istringstream lines(FileText(hostile_log_));
          std::string first;
          std::getline(lines, first);
          const auto line = nlohmann::json::parse(first, nullptr, false);
          port = line.is_object() ? line.value("port", 0) : 0;
          return port > 0;
        },
        seconds(10));
    return port;
  }

  uint64_t Announces() {
    const std::string body = HttpRequestTo(tracker_.port(), "GET", "/metrics").body;
    uint64_t total = 0;
    const std::string key = "flotilla_announces_total{";
    for (size_t at = body.find(key); at != std::string::npos; at = body.find(key, at + 1)) {
      const size_t value = body.find("} ", at);
      if (value != std::string::npos) total += std::strtoull(body.c_str() + value + 2, nullptr, 10);
    }
    return total;
  }

  // Runs the victim against the hostile peer at `hostile` and checks what
  // every behaviour must give. Returns the victim's last progress line.
  nlohmann::json RunVictim(const std::vector<std::string>& peers, bool expect_ban) {
    const uint64_t announces_before = Announces();
    FetchProcess victim;
    const auto started = Clock::now();
    EXPECT_TRUE(victim.Start(dir_ + "/victim.log", VictimArgs("victim", kVictimIp, peers)))
        << victim.Log();
    victim_port_ = victim.port();
    if (on_victim_started_) on_victim_started_();
    const auto limit = 2 * baseline_ + seconds(60);
    const bool done = victim.WaitFor(ArtifactComplete,
                                     std::chrono::duration_cast<std::chrono::milliseconds>(limit));
    const auto took = Clock::now() - started;
    if (done && expect_ban) {
      // A piece several peers sent names its culprit only when libtorrent's
      // smart ban has compared the failed blocks with the piece that passed
      // (two disk reads): on a busy machine that can come after the
      // artifact completes. The node keeps seeding; wait for the verdict.
      victim.WaitFor(
          [](const nlohmann::json& line) {
            return !line["artifacts"][0].value("bad_peers", nlohmann::json::array()).empty();
          },
          std::chrono::milliseconds(30000));
    }
    const auto ran = Clock::now() - started;
    const nlohmann::json last = victim.Last();
    victim.Stop();
    EXPECT_TRUE(done) << victim.Log() << FileText(hostile_log_);
    std::printf("baseline %.1f s, with the hostile peer %.1f s: %s\n",
                std::chrono::duration<double>(baseline_).count(),
                std::chrono::duration<double>(took).count(), last.dump().c_str());
    auto got = HashFile(DataDir("victim") + "/data/" + artifact_.hex + "/" + artifact_.hex);
    EXPECT_TRUE(got.ok() && got->Hex() == artifact_.hex);
    const uint64_t piece = static_cast<uint64_t>(artifact_.piece_size);
    // Failed bytes are never progress: peers and origin count the artifact
    // exactly once, re-adds included (docs/transfer.md, "Measured").
    const uint64_t counted = ArtifactField(last, "from_peers") + ArtifactField(last, "from_origin");
    EXPECT_EQ(counted, artifact_.request.length);
    EXPECT_LE(ArtifactField(last, "wasted"), artifact_.request.length + 2 * piece);
    const std::string log = FileText(dir_ + "/victim.log");
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] != '{') std::printf("victim: %s\n", line.c_str());
    }
    const std::string banned = std::string("banned for this artifact: ") + kHostileIp;
    if (expect_ban) {
      // A piece the hostile peer sent alone bans it at once. When it shared
      // every failing piece with the seeder, only libtorrent's smart ban can
      // name it, and that is best effort (it needs the peer's entry still in
      // libtorrent's peer list when the piece passes): the fetch still ends.
      if (FailedAlone(log, kHostileIp) || !last["artifacts"][0]["bad_peers"].empty()) {
        EXPECT_EQ(last["artifacts"][0]["bad_peers"], nlohmann::json::array({kHostileIp}));
        EXPECT_NE(log.find(banned), std::string::npos) << log;
      } else {
        std::printf("every failing piece was shared with the seeder; no culprit named\n");
      }
      EXPECT_GT(ArtifactField(last, "hash_failures"), 0u);
    } else {
      EXPECT_EQ(last["artifacts"][0]["bad_peers"], nlohmann::json::array());
      EXPECT_EQ(ArtifactField(last, "wasted"), 0u);
    }
    // The hostile peer took part.
    EXPECT_GT(HostileStat("connections"), 0) << FileText(hostile_log_);
    // The good seeder is never banned: it sent no failing piece.
    EXPECT_EQ(log.find(std::string("banned for this artifact: ") + kSeedIp), std::string::npos);
    // Announces keep to the tracker's intervals: the victim's first one and
    // "completed" and "stopped", and at most one per 30 s in between.
    const double minutes = std::chrono::duration<double>(ran).count() / 30;
    EXPECT_LE(Announces() - announces_before, 4 + static_cast<uint64_t>(2 * minutes));
    return last;
  }

  // The hostile peer's last count of `key`.
  int HostileStat(const std::string& key) {
    std::istringstream lines(FileText(hostile_log_));
    int value = 0;
    for (std::string line; std::getline(lines, line);) {
      const auto stats = nlohmann::json::parse(line, nullptr, false);
      if (stats.is_object() && stats.value("event", "") == "stats") value = stats.value(key, 0);
    }
    return value;
  }

  static std::string SourcePath(const std::string& relative) {
    return std::string(FLOTILLA_SOURCE_DIR) + "/" + relative;
  }

  TestArtifact artifact_;
  FetchProcess seed_;
  std::chrono::steady_clock::duration baseline_{};
  ChildProcess hostile_;
  std::string hostile_log_;
  int victim_port_ = 0;
  std::function<void()> on_victim_started_;
};

std::string Endpoint(int port) { return std::string(kHostileIp) + ":" + std::to_string(port); }

TEST_F(AdversarialPeerTest, CorruptFromTheStartIsBannedAndTheFetchCompletes) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16));
  const int port = StartHostile({"--mode", "corrupt"});
  ASSERT_GT(port, 0) << FileText(dir_ + "/hostile.err");
  RunVictim({Endpoint(port)}, /*expect_ban=*/true);
}

// The livelock this guards against: a peer trusted for its good pieces was
// re-admitted after each ban. Pieces of 4 blocks, so blocks of one piece
// can come from both peers.
TEST_F(AdversarialPeerTest, CorruptAfterGoodPiecesStaysBanned) {
  ASSERT_NO_FATAL_FAILURE(Prepare(64));
  const int port = StartHostile({"--mode", "corrupt", "--good-pieces", "2"});
  ASSERT_GT(port, 0) << FileText(dir_ + "/hostile.err");
  const auto last = RunVictim({Endpoint(port)}, /*expect_ban=*/true);
  // Banned by the first failing piece it sent alone, or by libtorrent's
  // smart ban for a piece it shared with the seeder (a few pieces fail
  // before either: RunVictim bounds their waste), and never re-admitted:
  // after the ban only pieces already in flight fail with its blocks. At
  // most one re-add, for a piece 2.0.8 left waiting for hashes.
  std::istringstream log(FileText(dir_ + "/victim.log"));
  bool banned = false;
  int failures_after_ban = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.find(std::string("banned for this artifact: ") + kHostileIp) != std::string::npos) {
      banned = true;
    } else if (banned && line.find("failed its hash") != std::string::npos &&
               line.find(kHostileIp) != std::string::npos) {
      ++failures_after_ban;
    }
  }
  EXPECT_LE(failures_after_ban, 3) << last.dump();
  EXPECT_LE(last["counters"].value("readds", 0), 1) << last.dump();
}

// A banned peer that keeps connecting to the victim is refused each time:
// its failing pieces stop at the first few in flight.
TEST_F(AdversarialPeerTest, BannedPeerReconnectingIsKeptOut) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16, 128 << 10));
  on_victim_started_ = [this] {
    StartHostile({"--mode", "corrupt", "--reconnect", "--reconnect-seconds", "0.5", "--connect",
                  std::string(kVictimIp) + ":" + std::to_string(victim_port_)});
  };
  const auto last = RunVictim({}, /*expect_ban=*/true);
  EXPECT_LE(ArtifactField(last, "hash_failures"), 4u) << last.dump();
  EXPECT_GE(HostileStat("connections"), 3);
}

TEST_F(AdversarialPeerTest, PeerClaimingPiecesItNeverSendsDoesNotHoldTheFetch) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16));
  const int port = StartHostile({"--mode", "claim"});
  ASSERT_GT(port, 0);
  RunVictim({Endpoint(port)}, /*expect_ban=*/false);
}

TEST_F(AdversarialPeerTest, PeerThatAcceptsRequestsAndStallsDoesNotHoldTheFetch) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16));
  const int port = StartHostile({"--mode", "stall"});
  ASSERT_GT(port, 0);
  RunVictim({Endpoint(port)}, /*expect_ban=*/false);
  EXPECT_GT(HostileStat("requests"), 0);  // it held requests back
}

TEST_F(AdversarialPeerTest, PeerTricklingOneBytePerSecondDoesNotHoldTheFetch) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16));
  const int port = StartHostile({"--mode", "trickle", "--trickle-rate", "1"});
  ASSERT_GT(port, 0);
  RunVictim({Endpoint(port)}, /*expect_ban=*/false);
  EXPECT_GT(HostileStat("requests"), 0);  // it held requests back
}

// The hostile peer connects to the victim itself, again and again.
TEST_F(AdversarialPeerTest, PeerReconnectingInALoopDoesNotHoldTheFetch) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16, 128 << 10));
  on_victim_started_ = [this] {
    StartHostile({"--mode", "flap", "--flap-seconds", "0.5", "--reconnect", "--connect",
                  std::string(kVictimIp) + ":" + std::to_string(victim_port_)});
  };
  RunVictim({}, /*expect_ban=*/false);
  EXPECT_GE(HostileStat("connections"), 3);
}

TEST_F(AdversarialPeerTest, MalformedAndOversizedMessagesDoNotHoldTheFetch) {
  ASSERT_NO_FATAL_FAILURE(Prepare(16, 128 << 10));
  on_victim_started_ = [this] {
    StartHostile({"--mode", "malformed", "--reconnect", "--connect",
                  std::string(kVictimIp) + ":" + std::to_string(victim_port_)});
  };
  RunVictim({}, /*expect_ban=*/false);
  EXPECT_GE(HostileStat("malformed_sent"), 3);
}

}  // namespace
}  // namespace flotilla::testing
