// The scaled-out tracker of docs/scale.md on loopback, for end-to-end tests:
// `serve` replicas over one PostgreSQL database of the test process's
// cluster (tests/support/postgres_cluster.h), Debian's haproxy in front of
// them and nginx serving the repository as the static tier, each started
// with the configuration the docs give, with the test's paths and ports.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/tracker_process.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::testing {

// haproxy listening on 127.0.0.1:`port` in front of the replicas on
// 127.0.0.1:`replica_ports`, connecting from `source` with PROXY protocol v2
// and checking /readyz every 500 ms: device API requests round robin,
// announces hashed on their info_hash. Each request is logged to stdout.
std::string HaproxyConfig(int port, const std::vector<int>& replica_ports,
                          const std::string& source);

// nginx serving `repo`'s metadata/, torrents/ and artifacts/ on
// 127.0.0.1:`port` (docs/tracker.md, "Static tier"); its pid, logs and
// temporary files in `dir`. `limit_rate` (e.g. "512k"; "" none) slows each
// response down.
std::string StaticTierNginxConfig(const std::string& dir, const std::string& repo, int port,
                                  const std::string& limit_rate = "");

// The signing lease row: its holder ("HOST:PID:RANDOM") and epoch.
struct SigningLeaseRow {
  std::string holder;
  int64_t epoch = 0;
  pid_t pid() const;  // the holder's process; -1 when none
};

class ReplicaTopology {
 public:
  struct Options {
    int replicas = 3;
    int lease_ttl_s = 5;
    // The replicas' configuration file's other members (JSON object text
    // without braces, e.g. "\"timestamp_expiry_s\": 120"); trusted_proxies
    // is set to the balancer's source address.
    std::string config_members;
    std::string nginx_limit_rate;  // StaticTierNginxConfig's
  };

  ReplicaTopology() = default;
  ~ReplicaTopology() { Stop(); }
  ReplicaTopology(const ReplicaTopology&) = delete;
  ReplicaTopology& operator=(const ReplicaTopology&) = delete;

  // A fresh database `database` in the process's cluster, for the
  // repository's `init --database-url` before Start.
  static std::string CreateDatabase(const std::string& database);

  // Starts the replicas of `repo` over `database_url`, haproxy and nginx, in
  // `dir`; an empty string on success, else what failed (with logs).
  std::string Start(const std::string& dir, const std::string& repo,
                    const std::string& database_url, const Options& options);
  void Stop();

  TrackerProcess& replica(int i) { return *replicas_[i]; }
  int replicas() const { return static_cast<int>(replicas_.size()); }
  int balancer_port() const { return balancer_port_; }
  int static_port() const { return static_port_; }
  std::string balancer_url() const;
  std::string static_url() const;
  // The test's own connection to the database.
  tracker::SqlEngine& db() { return *db_; }
  const std::string& dir() const { return dir_; }

  SigningLeaseRow Lease();
  // The index of the replica whose process holds the lease; -1 when none.
  int HolderIndex();
  // Every replica's log, and haproxy's and nginx's, for failure messages.
  std::string Logs() const;
  std::string HaproxyLog() const;

 private:
  std::string dir_;
  std::string repo_;
  std::vector<std::unique_ptr<TrackerProcess>> replicas_;
  ChildProcess haproxy_, nginx_;
  int balancer_port_ = 0;
  int static_port_ = 0;
  std::unique_ptr<tracker::SqlEngine> db_;
};

}  // namespace flotilla::testing
