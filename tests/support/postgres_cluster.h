// A throwaway PostgreSQL 15 cluster for tests: initdb into a temporary
// directory (on /dev/shm when it exists), the server run as an unprivileged user ("postgres" when
// the test runs as root, else the test's own user), listening only on a Unix socket in that
// directory (no TCP port, so parallel tests never collide), durability off (a test cluster is never
// kept). One cluster per test process, started on first use; it dies with the process (parent-death
// signal) and its directory is removed at exit. Each test takes a fresh database.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::testing {

class PostgresCluster {
 public:
  // The process's cluster; an error says why it could not start (a test
  // that needs it must fail, not skip: setup.sh installs PostgreSQL).
  static Result<PostgresCluster*> Shared();

  // Creates the empty database `name` ([a-z0-9_], dropped first if it
  // exists) and returns its libpq URL.
  Result<std::string> CreateDatabase(const std::string& name);
  std::string Url(const std::string& database) const;

  // Creates the superuser role `user` that logs in only with `password`
  // (scram-sha-256; the cluster's own user stays on trust) and returns the
  // libpq URL of `database` as that user, the password percent-encoded in it.
  Result<std::string> CreatePasswordLogin(const std::string& user, const std::string& password,
                                          const std::string& database);
  const std::string& data_dir() const { return data_dir_; }

  // Stops the server (as an outage would, keeping the data) and starts it again.
  void StopServer();
  Status StartServer();

 private:
  Status Start();
  void Stop();

  std::string dir_;
  std::string data_dir_;
  int pid_ = -1;
  friend struct ClusterReaper;
};

// The flotilla-tracker `serve` flags that put its database on `engine`:
// "sqlite" none (the repository's tracker.db), "postgresql" a fresh database
// `name` of the process's cluster.
Result<std::vector<std::string>> ServeDatabaseFlags(const std::string& engine,
                                                    const std::string& name);

}  // namespace flotilla::testing
