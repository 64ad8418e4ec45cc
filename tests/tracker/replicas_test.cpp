// Two `flotilla-tracker serve` replicas over one PostgreSQL database and one
// repository directory: one holds the signing lease; when it is killed the
// other takes the lease over within its TTL plus 5 s and re-signs the due
// timestamp under its epoch; a report retried on
// the other replica with its sequence number is stored once; a holder
// stopped past its TTL and resumed has lost the lease.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/repository.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tests/support/tracker_topology.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::testing {
namespace {

constexpr int kLeaseTtlS = 5;

struct Lease {
  std::string holder;
  int64_t epoch = 0;
};

class TrackerReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("replicas");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    auto init = RunShell(BinaryPath("flotilla-tracker") + " init " + repo_ +
                         " --public-url http://127.0.0.1:9 2>&1");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    auto cluster = PostgresCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    auto url = (*cluster)->CreateDatabase("replicas");
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    auto db = tracker::SqlEngine::Open(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }
  void TearDown() override {
    for (auto& replica : replicas_) replica.Stop();
    std::filesystem::remove_all(dir_);
  }
  void StartReplica(int i, const std::vector<std::string>& extra = {}) {
    const std::string dir = dir_ + "/replica-" + std::to_string(i);
    std::filesystem::create_directories(dir);
    std::vector<std::string> args = {"--database-url", url_, "--signing-lease-ttl",
                                     std::to_string(kLeaseTtlS)};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(replicas_[i].Start(dir, repo_, args)) << replicas_[i].Log();
  }
  Lease CurrentLease() {
    auto rows = db_->Query("SELECT holder, epoch FROM signing_lease");
    if (!rows.ok() || rows->empty()) return {};
    return {rows->Text(0, 0), rows->Int(0, 1)};
  }
  // The replica that logged taking the lease `lease` names.
  int HolderIndex(const Lease& lease) {
    for (int i = 0; i < 2 && !lease.holder.empty(); ++i) {
      if (replicas_[i].Log().find("signing lease taken by " + lease.holder) != std::string::npos)
        return i;
    }
    return -1;
  }
  // Every recorded timestamp version, and whether the current one is the file's bytes.
  bool TimestampRecorded() {
    auto rows = db_->Query(
        "SELECT sha256 FROM metadata_versions WHERE role = 'timestamp' "
        "ORDER BY version DESC LIMIT 1");
    auto file = ReadTextFileBounded(repo_ + "/metadata/timestamp.json", 1 << 20);
    return rows.ok() && !rows->empty() && file.ok() && rows->Text(0, 0) == Digest::Of(*file).Hex();
  }
  // Re-signs the timestamp as if 13 of its 24 hours had passed: due for
  // re-signing at the next holder's first turn.
  uint64_t BackdateTimestamp() {
    FakeClock past(SystemClock::Instance().Now() - std::chrono::hours(13));
    auto repo = metadata::Repository::Open(repo_, past);
    EXPECT_TRUE(repo.ok()) << repo.status().ToString();
    if (!repo.ok()) return 0;
    auto key = metadata::LoadRoleKey(repo_ + "/keys/timestamp.key", (*repo)->root(),
                                     metadata::RoleType::kTimestamp);
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    if (!key.ok()) return 0;
    metadata::KeyRing ring;
    ring.Add(*key);
    EXPECT_TRUE((*repo)->ResignTimestamp(ring).ok());
    return (*repo)->timestamp().common.version;
  }
  int64_t RecordedTimestampEpoch(uint64_t version) {
    auto rows = db_->Query(
        "SELECT epoch FROM metadata_versions WHERE role = 'timestamp' AND "
        "version = ?",
        {static_cast<int64_t>(version)});
    return rows.ok() && !rows->empty() ? rows->Int(0, 0) : 0;
  }
  int Report(int replica, const EnrolledDevice& device, const std::string& body) {
    return HttpRequestTo(replicas_[replica].port(), "POST",
                         "/api/v1/devices/" + device.device_id + "/report",
                         {"Authorization: Bearer " + device.credential}, body)
        .status;
  }

  std::string dir_, repo_, url_;
  std::unique_ptr<tracker::SqlEngine> db_;
  TrackerProcess replicas_[2];
};

TEST_F(TrackerReplicasTest, OneReplicaSignsAndAnotherTakesOverWhenItIsKilledOrStopped) {
  StartReplica(0);
  StartReplica(1);
  ASSERT_TRUE(WaitFor([&] { return HolderIndex(CurrentLease()) >= 0 && TimestampRecorded(); },
                      std::chrono::seconds(60)))
      << replicas_[0].Log() << replicas_[1].Log();
  const Lease first = CurrentLease();
  EXPECT_EQ(first.epoch, 1);
  const int holder = HolderIndex(first);
  const int other = 1 - holder;
  EXPECT_EQ(replicas_[other].Log().find("signing lease taken"), std::string::npos)
      << "one holder at a time";

  // A device reports to the holder; its retry (same seq) reaches the other replica.
  auto device = EnrolDevice(replicas_[other].port(), "pi-1");
  ASSERT_FALSE(device.device_id.empty());
  const std::string report =
      R"({"app":"web","release":"r1","state":"failed","progress":{"done":1,"total":4},)"
      R"("bytes_from_peers":0,"bytes_from_origin":0,"health":"unknown","errors":["disk full"],)"
      R"("seq":1})";
  EXPECT_EQ(Report(holder, device, report), 204);

  // Its next turn is a minute or more away: the timestamp waits, due.
  const uint64_t due_version = BackdateTimestamp();
  ASSERT_GT(due_version, 0u);
  replicas_[holder].Kill();
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return CurrentLease().epoch == 2; }, std::chrono::seconds(60)))
      << replicas_[other].Log();
  const auto takeover = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LE(takeover, std::chrono::seconds(kLeaseTtlS + 5));
  EXPECT_EQ(HolderIndex(CurrentLease()), other);
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string metrics = HttpRequestTo(replicas_[other].port(), "GET", "/metrics").body;
        return metrics.find("flotilla_signing_lease_held 1\n") != std::string::npos &&
               metrics.find("flotilla_signing_lease_epoch 2\n") != std::string::npos;
      },
      std::chrono::seconds(30)));
  // The new holder re-signs the due timestamp at once, under its epoch.
  EXPECT_TRUE(WaitFor([&] { return RecordedTimestampEpoch(due_version + 1) == 2; },
                      std::chrono::seconds(30)))
      << replicas_[other].Log();
  EXPECT_TRUE(TimestampRecorded());
  EXPECT_EQ(HttpRequestTo(replicas_[other].port(), "GET", "/readyz").status, 200);

  EXPECT_EQ(Report(other, device, report), 204) << "a retry is answered 2xx";
  auto failures = db_->Query("SELECT COUNT(*) FROM failures");
  ASSERT_TRUE(failures.ok());
  EXPECT_EQ(failures->Int(0, 0), 1) << "and stored once";
  std::string unnumbered = report;
  unnumbered.replace(unnumbered.find(",\"seq\":1"), 8, "");
  EXPECT_EQ(Report(other, device, unnumbered), 204) << "a report without seq is stored as ever";
  EXPECT_EQ(db_->Query("SELECT COUNT(*) FROM failures")->Int(0, 0), 2);

  // The holder stopped past its TTL (SIGSTOP) loses the lease to a fresh
  // replica; resumed, it logs the loss, signs nothing and keeps serving.
  StartReplica(holder);
  const Lease second = CurrentLease();
  const std::string pid_text = second.holder.substr(second.holder.find(':') + 1);
  const pid_t stopped = static_cast<pid_t>(std::stoi(pid_text.substr(0, pid_text.find(':'))));
  ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
  const bool taken_over =
      WaitFor([&] { return CurrentLease().epoch == 3; }, std::chrono::seconds(60));
  ASSERT_EQ(::kill(stopped, SIGCONT), 0);
  ASSERT_TRUE(taken_over) << replicas_[holder].Log();
  EXPECT_EQ(HolderIndex(CurrentLease()), holder);
  EXPECT_TRUE(WaitFor(
      [&] { return replicas_[other].Log().find("signing lease lost") != std::string::npos; },
      std::chrono::seconds(60)))
      << replicas_[other].Log();
  EXPECT_EQ(CurrentLease().epoch, 3) << "the resumed replica does not take it back";
  EXPECT_EQ(HttpRequestTo(replicas_[other].port(), "GET", "/readyz").status, 200);
  EXPECT_TRUE(WaitFor([&] { return TimestampRecorded(); }, std::chrono::seconds(30)));
}

// Both replicas behind Debian's haproxy as docs/scale.md configures it:
// device API requests spread over the replicas, announces hashed on their
// info_hash so that a swarm lives on one replica, PROXY v2 from the
// balancer's own source address. Devices enrolled on either replica are
// handed each other, under their own addresses.
TEST_F(TrackerReplicasTest, BehindHaproxyEachSwarmLivesOnOneReplica) {
  ASSERT_TRUE(std::filesystem::exists("/usr/sbin/haproxy")) << "run scripts/setup.sh";
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/proxied.json", R"({"trusted_proxies": ["127.0.0.9"]})").ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_NO_FATAL_FAILURE(StartReplica(i, {"--config", dir_ + "/proxied.json"}));
  }
  const int port = FreePort();
  const std::string config =
      HaproxyConfig(port, {replicas_[0].port(), replicas_[1].port()}, "127.0.0.9");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/haproxy.cfg", config).ok());
  ChildProcess haproxy;
  ASSERT_TRUE(haproxy.Start({"/usr/sbin/haproxy", "-db", "-f", dir_ + "/haproxy.cfg"},
                            dir_ + "/haproxy.log", dir_ + "/haproxy.err"));
  ASSERT_TRUE(WaitFor([&] { return GetFrom("127.0.0.1", port, "/readyz").status == 200; },
                      std::chrono::seconds(10)));

  std::vector<EnrolledDevice> devices;
  for (int i = 0; i < 4; ++i) {
    devices.push_back(EnrolDevice(port, "screen-" + std::to_string(i), "shop-1"));
    ASSERT_FALSE(devices.back().passkey.empty()) << i;
  }
  auto announce = [&](int i) {
    const std::string target =
        "/announce/" + devices[i].passkey + "?info_hash=" + PercentEncodeAll(std::string(20, 's')) +
        "&peer_id=" + PercentEncodeAll("-FL0001-screen-" + std::to_string(i) + "....") +
        "&port=" + std::to_string(7000 + i) + "&left=10&compact=0&numwant=50";
    return GetFrom("127.0.0.7" + std::to_string(i), port, target);
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(announce(i).status, 200) << i;
  auto last = announce(3);
  ASSERT_EQ(last.status, 200) << last.raw;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(last.body.find("2:ip10:127.0.0.7" + std::to_string(i)), std::string::npos)
        << last.body;
  }
  EXPECT_EQ(last.body.find("127.0.0.9"), std::string::npos) << last.body;
  // Every announce of the swarm reached the same replica.
  int replicas_announced = 0;
  for (int i = 0; i < 2; ++i) {
    const std::string metrics = HttpRequestTo(replicas_[i].port(), "GET", "/metrics").body;
    if (metrics.find("route=\"announce\"") != std::string::npos) ++replicas_announced;
  }
  EXPECT_EQ(replicas_announced, 1);
  haproxy.Stop(std::chrono::seconds(5));
}

}  // namespace
}  // namespace flotilla::testing
