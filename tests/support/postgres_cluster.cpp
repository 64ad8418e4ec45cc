#include "tests/support/postgres_cluster.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "tracker/storage/sql_engine.h"

namespace flotilla::testing {
namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin/";
constexpr const char* kUser = "flotilla";  // the cluster's superuser

// Forks `argv` as the unprivileged user, output appended to `log`; the child
// gets SIGQUIT (PostgreSQL's immediate shutdown) if this process dies.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) return FailedPrecondition("no user 'postgres' (run scripts/setup.sh)");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return IOErrorFromErrno("fork", errno);
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (setgroups(0, nullptr) != 0 && geteuid() == 0) _exit(126);
    if (setgid(gid) != 0 || setuid(uid) != 0) _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGQUIT);  // after setuid, which clears it
    if (getppid() != parent) _exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log) {
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, log));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Internal(argv[0] + " failed (see " + log + ")");
  }
  return Status::Ok();
}

// Removes the cluster directories of test processes that died without
// removing theirs (killed at a timeout): "flotilla-pg-<pid>-..." whose <pid>
// no longer runs.
void RemoveOrphanedClusters(const std::string& parent) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(parent, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("flotilla-pg-", 0) != 0) continue;
    const pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + 12));
    if (owner > 0 && kill(owner, 0) != 0 && errno == ESRCH) {
      std::filesystem::remove_all(entry.path(), error);
    }
  }
}

}  // namespace

// Stops the shared cluster when the process exits normally.
struct ClusterReaper {
  std::unique_ptr<PostgresCluster> cluster;
  ~ClusterReaper() {
    if (cluster) cluster->Stop();
  }
};

Result<PostgresCluster*> PostgresCluster::Shared() {
  static ClusterReaper reaper;
  static Status started = [] {
    reaper.cluster.reset(new PostgresCluster());
    return reaper.cluster->Start();
  }();
  RETURN_IF_ERROR_CTX(started, "test PostgreSQL cluster");
  return reaper.cluster.get();
}

Status PostgresCluster::Start() {
  // tmpfs when there is one: initdb writes ~30 MB that no test needs kept.
  const std::string parent = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  RemoveOrphanedClusters(parent);
  std::string name = parent + "/flotilla-pg-" + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(name.data()) == nullptr) return IOErrorFromErrno("mkdtemp " + name, errno);
  dir_ = name;
  data_dir_ = dir_ + "/data";
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) return FailedPrecondition("no user 'postgres' (run scripts/setup.sh)");
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return IOErrorFromErrno("chown " + dir_, errno);
    }
  }
  RETURN_IF_ERROR(RunToCompletion({std::string(kBinDir) + "initdb", "-D", data_dir_, "-U", kUser,
                                   "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"},
                                  dir_ + "/postgres.log"));
  return StartServer();
}

Status PostgresCluster::StartServer() {
  const std::string log = dir_ + "/postgres.log";
  ASSIGN_OR_RETURN(pid_, Spawn({std::string(kBinDir) + "postgres", "-D", data_dir_, "-k", dir_,
                                "-c", "listen_addresses=", "-F", "-c", "full_page_writes=off", "-c",
                                "synchronous_commit=off", "-c", "max_connections=50"},
                               log));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    auto engine = tracker::OpenPostgresqlEngine(Url("postgres"));
    if (engine.ok()) return Status::Ok();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Internal("postgres exited at start (see " + log + ")");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded("postgres not ready in 30 s: " + engine.status().message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void PostgresCluster::StopServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGINT);  // fast shutdown: sessions end, commits are kept
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void PostgresCluster::Stop() {
  StopServer();
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

std::string PostgresCluster::Url(const std::string& database) const {
  return "postgresql:///" + database + "?host=" + dir_ + "&user=" + kUser;
}

Result<std::string> PostgresCluster::CreateDatabase(const std::string& name) {
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return InvalidArgument("database name '" + name + "' is not [a-z0-9_]+");
    }
  }
  ASSIGN_OR_RETURN(auto admin, tracker::OpenPostgresqlEngine(Url("postgres")));
  RETURN_IF_ERROR(admin->ExecScript("DROP DATABASE IF EXISTS " + name));
  RETURN_IF_ERROR(admin->ExecScript("CREATE DATABASE " + name));
  return Url(name);
}

Result<std::string> PostgresCluster::CreatePasswordLogin(const std::string& user,
                                                         const std::string& password,
                                                         const std::string& database) {
  for (char c : user) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return InvalidArgument("role name '" + user + "'");
  }
  const std::string hba = data_dir_ + "/pg_hba.conf";
  std::ifstream in(hba);
  std::stringstream rules;
  rules << in.rdbuf();
  std::ofstream(hba) << "local all " << user << " scram-sha-256\n" << rules.str();
  ASSIGN_OR_RETURN(auto admin, tracker::OpenPostgresqlEngine(Url("postgres")));
  std::string quoted;
  for (char c : password) quoted += (c == '\'' ? std::string("''") : std::string(1, c));
  RETURN_IF_ERROR(
      admin->ExecScript("CREATE ROLE " + user + " LOGIN SUPERUSER PASSWORD '" + quoted + "'"));
  ::kill(pid_, SIGHUP);  // reload pg_hba.conf; wait until a login without the password fails
  const std::string without_password =
      "postgresql:///" + database + "?host=" + dir_ + "&user=" + user;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (tracker::OpenPostgresqlEngine(without_password).ok()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded("pg_hba.conf not reloaded in 30 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string encoded;
  for (unsigned char c : password) {
    if (std::isalnum(c) != 0) {
      encoded += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      encoded += hex;
    }
  }
  return "postgresql://" + user + ":" + encoded + "@/" + database + "?host=" + dir_;
}

Result<std::vector<std::string>> ServeDatabaseFlags(const std::string& engine,
                                                    const std::string& name) {
  if (engine == "sqlite") return std::vector<std::string>{};
  if (engine != "postgresql") return InvalidArgument("unknown engine " + engine);
  ASSIGN_OR_RETURN(PostgresCluster * cluster, PostgresCluster::Shared());
  ASSIGN_OR_RETURN(std::string url, cluster->CreateDatabase(name));
  return std::vector<std::string>{"--database-url", url};
}

}  // namespace flotilla::testing
