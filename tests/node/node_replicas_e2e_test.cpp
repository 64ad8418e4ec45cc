// The scaled-out tracker of docs/scale.md under four real nodes: a
// PostgreSQL cluster started by the test (initdb into a temporary
// directory, the server run as an unprivileged user), three `serve`
// replicas over it (timestamps signed for 2 minutes, re-signed every
// minute), haproxy in front (API round robin, announces hashed on their
// info_hash, PROXY protocol v2) and nginx serving the repository as the
// static tier. Four flotilla-node daemons take a release through them
// while the replica holding the signing lease is killed, and then while
// the next holder is stopped past its lease and resumed.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_topology.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kLeaseTtlS = 4;
constexpr int kNodes = 4;

std::string FileText(const std::string& path) {
  return ReadTextFileBounded(path, 16 << 20).value_or("");
}

// A device of the test's own that reports through the balancer as a node
// does: every report numbered, one not answered 2xx sent again with its
// number until it is. Each report carries an error naming its number, so
// the failures table shows how often each was stored.
class ProbeReporter {
 public:
  ProbeReporter(int port, EnrolledDevice device) : port_(port), device_(std::move(device)) {}
  ~ProbeReporter() { Finish(); }
  void Start() {
    thread_ = std::thread([this] {
      for (uint64_t seq = 1; !stop_; ++seq) {
        const std::string body =
            R"({"app":"probe","release":"1","state":"failed","progress":{"done":0,"total":1},)"
            R"("bytes_from_peers":0,"bytes_from_origin":0,"health":"unknown",)"
            R"("errors":["probe report )" +
            std::to_string(seq) + R"("],"seq":)" + std::to_string(seq) + "}";
        for (int attempt = 0; attempt < 300; ++attempt) {
          const int status =
              HttpRequestTo(port_, "POST", "/api/v1/devices/" + device_.device_id + "/report",
                            {"Authorization: Bearer " + device_.credential}, body)
                  .status;
          std::this_thread::sleep_for(100ms);
          if (status / 100 == 2) {
            std::lock_guard lock(mu_);
            answered_.push_back(seq);
            break;
          }
          std::lock_guard lock(mu_);
          ++retries_;
        }
      }
    });
  }
  void Finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<uint64_t> answered() {
    std::lock_guard lock(mu_);
    return answered_;
  }
  int retries() {
    std::lock_guard lock(mu_);
    return retries_;
  }

 private:
  const int port_;
  const EnrolledDevice device_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<uint64_t> answered_;
  int retries_ = 0;
};

class NodeReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-replicas-");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    url_ = ReplicaTopology::CreateDatabase("node_replicas");
    ASSERT_FALSE(url_.empty()) << "the test's PostgreSQL cluster did not start";
    auto init = RunShell(BinaryPath("flotilla-tracker") + " init " + repo_ +
                         " --public-url http://127.0.0.1:1 --database-url '" + url_ + "' 2>&1");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    // 8 MiB of random bytes: with nginx sending 256 KiB/s per request, the
    // nodes are still fetching when the holder is killed.
    ASSERT_TRUE(PublishImage(dir_, repo_, "kiosk", 8192, "replicas"))
        << FileText(dir_ + "/publish.log");
  }
  void TearDown() override {
    for (auto& node : nodes_) node.Stop();
    topology_.Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string NodeDir(int i) { return dir_ + "/node-" + std::to_string(i); }
  // The first column of the first row of `sql`; -1 on error.
  int64_t Count(const std::string& sql, std::initializer_list<tracker::SqlValue> params = {}) {
    auto rows = topology_.db().Query(sql, params);
    return rows.ok() && !rows->empty() ? rows->Int(0, 0) : -1;
  }
  std::string RecordedSha256(const std::string& role, uint64_t version) {
    auto rows =
        topology_.db().Query("SELECT sha256 FROM metadata_versions WHERE role = ? AND version = ?",
                             {role, static_cast<int64_t>(version)});
    return rows.ok() && !rows->empty() ? rows->Text(0, 0) : "";
  }
  int64_t LatestTimestamp() {
    return Count(
        "SELECT COALESCE(MAX(version), 0) FROM metadata_versions WHERE role = 'timestamp'");
  }
  // Every document of `dir` named N.ROLE.json or ROLE.json (the current
  // one) whose version the database records is the recorded document.
  void ExpectFilesAgreeWithTheDatabase(const std::string& dir, const std::string& whose) {
    const std::regex name(R"((?:\d+\.)?(timestamp|snapshot|targets)\.json)");
    int checked = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      std::smatch match;
      const std::string file = entry.path().filename().string();
      if (!std::regex_match(file, match, name)) continue;
      const std::string text = FileText(entry.path().string());
      const Json doc = Json::parse(text, nullptr, false);
      ASSERT_FALSE(doc.is_discarded()) << entry.path();
      const uint64_t version = doc["signed"]["version"].get<uint64_t>();
      const std::string recorded = RecordedSha256(match[1], version);
      if (recorded.empty()) continue;  // signed by a turn that did not commit
      EXPECT_EQ(recorded, Digest::Of(text).Hex())
          << whose << " " << file << ": version " << version << " has two documents";
      ++checked;
    }
    EXPECT_GT(checked, 0) << whose;
  }

  std::string dir_, repo_, url_;
  ReplicaTopology topology_;
  NodeProcess nodes_[kNodes];
};

TEST_F(NodeReplicasTest, NodesTakeAReleaseWhileTheSigningReplicaIsKilledThenStopped) {
  ReplicaTopology::Options options;
  options.replicas = 3;
  options.lease_ttl_s = kLeaseTtlS;
  options.config_members =
      R"("timestamp_expiry_s": 60, "announce_interval_s": 10, "min_announce_interval_s": 1)";
  options.nginx_limit_rate = "256k";
  const std::string started = topology_.Start(dir_ + "/servers", repo_, url_, options);
  ASSERT_EQ(started, "");
  // serve re-signs publish's day-long timestamp for one minute at once, then every
  // 30 s (half its lifetime): the takeovers below wait for a re-signing.
  ASSERT_TRUE(WaitFor([&] { return topology_.HolderIndex() >= 0 && LatestTimestamp() > 0; }, 30s))
      << topology_.Logs();

  std::map<int, int> peer_ports;
  for (int i = 0; i < kNodes; ++i) {
    std::filesystem::create_directories(NodeDir(i));
    Json config = NodeConfigFor("screen-" + std::to_string(i), NodeDir(i) + "/data",
                                topology_.balancer_url(), repo_ + "/metadata/1.root.json", "kiosk");
    config["transfer_mode"] = "p2p";
    peer_ports[i] = FreePort();
    config["listen"] = "127.0.0.6" + std::to_string(i) + ":" + std::to_string(peer_ports[i]);
    config["content_url"] = topology_.static_url();
    ASSERT_TRUE(nodes_[i].Start(NodeDir(i), config));
  }
  auto probe_device = EnrolDevice(topology_.balancer_port(), "probe");
  ASSERT_FALSE(probe_device.device_id.empty());
  ProbeReporter probe(topology_.balancer_port(), probe_device);
  probe.Start();

  // Mid-update: a node has reported that it is fetching.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Count(
                   "SELECT COUNT(*) FROM device_status WHERE app = 'kiosk' AND "
                   "state IN ('downloading', 'verifying')") > 0;
      },
      60s))
      << topology_.Logs();
  const int first_holder = topology_.HolderIndex();
  ASSERT_GE(first_holder, 0);
  const SigningLeaseRow killed_lease = topology_.Lease();
  const int64_t timestamp_at_kill = LatestTimestamp();
  int finished = 0;
  for (int i = 0; i < kNodes; ++i) {
    if (AppState(NodeDir(i) + "/data", "kiosk")["ready_release"] == 1) ++finished;
  }
  EXPECT_LT(finished, kNodes) << "the holder is killed mid-update";
  topology_.replica(first_holder).Kill();
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return topology_.HolderIndex() >= 0; }, 60s)) << topology_.Logs();
  const auto takeover = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LE(takeover, std::chrono::seconds(kLeaseTtlS + 5));
  const SigningLeaseRow second_lease = topology_.Lease();
  EXPECT_GT(second_lease.epoch, killed_lease.epoch);

  // Every node finishes on the release.
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(
        WaitFor([&] { return AppState(NodeDir(i) + "/data", "kiosk")["ready_release"] == 1; }, 90s))
        << nodes_[i].Log();
  }
  std::this_thread::sleep_for(2s);  // a few more probe reports after the takeover
  probe.Finish();

  // SIGSTOP the holder past its lease: another takes over; resumed, the
  // stopped one signs nothing more.
  const int stopped = topology_.HolderIndex();
  ASSERT_GE(stopped, 0);
  const SigningLeaseRow stopped_lease = topology_.Lease();
  ASSERT_EQ(::kill(topology_.replica(stopped).pid(), SIGSTOP), 0);
  const bool taken_over = WaitFor(
      [&] {
        const int holder = topology_.HolderIndex();
        return holder >= 0 && holder != stopped;
      },
      60s);
  const int64_t stopped_rows =
      Count("SELECT COUNT(*) FROM metadata_versions WHERE epoch = ?", {stopped_lease.epoch});
  ASSERT_EQ(::kill(topology_.replica(stopped).pid(), SIGCONT), 0);
  ASSERT_TRUE(taken_over) << topology_.Logs();
  const SigningLeaseRow third_lease = topology_.Lease();
  EXPECT_GT(third_lease.epoch, stopped_lease.epoch);
  EXPECT_TRUE(WaitFor(
      [&] {
        return topology_.replica(stopped).Log().find("signing lease lost") != std::string::npos;
      },
      30s))
      << topology_.replica(stopped).Log();

  // Timestamps keep being re-signed: a version above the one current at the
  // kill, by a later holder, is what the static tier serves.
  EXPECT_TRUE(WaitFor(
      [&] {
        return Count(
                   "SELECT COUNT(*) FROM metadata_versions WHERE role = 'timestamp' AND "
                   "version > ? AND epoch > ?",
                   {timestamp_at_kill, killed_lease.epoch}) > 0;
      },
      90s))
      << topology_.Logs();
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string served =
            GetFrom("127.0.0.1", topology_.static_port(), "/metadata/timestamp.json").body;
        return !served.empty() &&
               RecordedSha256("timestamp", LatestTimestamp()) == Digest::Of(served).Hex();
      },
      30s));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM metadata_versions WHERE epoch = ?", {stopped_lease.epoch}),
            stopped_rows)
      << "the resumed replica published nothing";
  EXPECT_EQ(topology_.Lease().epoch, third_lease.epoch) << "nor took the lease back";
  EXPECT_EQ(HttpRequestTo(topology_.replica(stopped).port(), "GET", "/readyz").status, 200);

  // No version with two documents: the repository's files, and what each
  // node trusts, are the documents recorded under their versions.
  ExpectFilesAgreeWithTheDatabase(repo_ + "/metadata", "repository");
  for (int i = 0; i < kNodes; ++i) {
    ExpectFilesAgreeWithTheDatabase(NodeDir(i) + "/data/tuf", "node " + std::to_string(i));
  }

  // Every report answered 2xx is stored once: the probe's, each with its
  // own error message, and each node's last one (its number, at most the
  // highest the node reserved, and its state).
  const std::vector<uint64_t> answered = probe.answered();
  ASSERT_GT(answered.size(), 5u);
  auto stored = topology_.db().Query(
      "SELECT message, COUNT(*) FROM failures WHERE device_id = ? GROUP BY message",
      {probe_device.device_id});
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  std::map<std::string, int64_t> times_stored;
  for (size_t r = 0; r < stored->size(); ++r) times_stored[stored->Text(r, 0)] = stored->Int(r, 1);
  EXPECT_EQ(times_stored.size(), answered.size());
  for (uint64_t seq : answered) {
    EXPECT_EQ(times_stored["probe report " + std::to_string(seq)], 1) << "seq " << seq;
  }
  std::cout << "probe: " << answered.size() << " reports answered 2xx, " << probe.retries()
            << " attempts not\n";
  for (int i = 0; i < kNodes; ++i) {
    auto rows = topology_.db().Query(
        "SELECT s.release, s.state, q.last_seq FROM devices d "
        "JOIN device_status s ON s.device_id = d.device_id "
        "JOIN report_sequence q ON q.device_id = d.device_id WHERE d.name = ?",
        {"screen-" + std::to_string(i)});
    ASSERT_TRUE(rows.ok() && rows->size() == 1u) << i;
    EXPECT_EQ(rows->Text(0, 0), "1") << i;
    EXPECT_EQ(rows->Text(0, 1), "idle") << i;
    const Json state = Json::parse(FileText(NodeDir(i) + "/data/state.json"), nullptr, false);
    ASSERT_TRUE(state.contains("report_seq")) << state.dump();
    EXPECT_GE(state["report_seq"].get<int64_t>(), rows->Int(0, 2)) << i;
    EXPECT_GT(rows->Int(0, 2), 0) << i;
  }

  // The peers handed out through the balancer are the nodes' own addresses
  // and ports: announce into the nodes' swarms (their info_hash as they
  // send it, from haproxy's log) and find all four.
  const std::regex info_hash(R"(/announce/[^? ]+\?(?:[^ ]*&)?info_hash=([^& ]+))");
  std::set<std::string> swarms;
  const std::string log = topology_.HaproxyLog();
  for (auto it = std::sregex_iterator(log.begin(), log.end(), info_hash);
       it != std::sregex_iterator(); ++it) {
    swarms.insert((*it)[1]);
  }
  ASSERT_FALSE(swarms.empty()) << log;
  auto listed = [&](const std::string& body, int i) {
    return body.find("2:ip10:127.0.0.6" + std::to_string(i)) != std::string::npos &&
           body.find("4:porti" + std::to_string(peer_ports[i]) + "e") != std::string::npos;
  };
  std::string last_body;
  EXPECT_TRUE(WaitFor(
      [&] {
        for (const std::string& swarm : swarms) {
          last_body = GetFrom("127.0.0.70", topology_.balancer_port(),
                              "/announce/" + probe_device.passkey + "?info_hash=" + swarm +
                                  "&peer_id=" + PercentEncodeAll("-FL0001-probe-peer-0") +
                                  "&port=7070&left=10&compact=0&numwant=50")
                          .body;
          int found = 0;
          for (int i = 0; i < kNodes; ++i) found += listed(last_body, i) ? 1 : 0;
          if (found == kNodes) return true;
        }
        return false;
      },
      30s, 1s))
      << last_body;
  EXPECT_EQ(last_body.find("127.0.0.9"), std::string::npos) << "never the balancer's address";
}

}  // namespace
}  // namespace flotilla::testing
