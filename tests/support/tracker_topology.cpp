#include "tests/support/tracker_topology.h"

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

std::string FileText(const std::string& path) {
  return ReadTextFileBounded(path, 16 << 20).value_or("");
}

}  // namespace

std::string HaproxyConfig(int port, const std::vector<int>& replica_ports,
                          const std::string& source) {
  std::string servers;
  for (size_t i = 0; i < replica_ports.size(); ++i) {
    servers += "  server r" + std::to_string(i) + " 127.0.0.1:" + std::to_string(replica_ports[i]) +
               " send-proxy-v2 check check-send-proxy inter 500ms source " + source + "\n";
  }
  return "global\n  maxconn 256\n  log stdout format raw local0\n"
         "defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 5s\n"
         "  timeout client 60s\n  timeout server 60s\n  option httpchk GET /readyz\n"
         "frontend devices\n  bind 127.0.0.1:" +
         std::to_string(port) +
         "\n  acl announce path_beg /announce/\n  use_backend swarms if announce\n"
         "  default_backend api\n"
         "backend api\n  balance roundrobin\n" +
         servers + "backend swarms\n  balance url_param info_hash\n  hash-type consistent\n" +
         servers;
}

std::string StaticTierNginxConfig(const std::string& dir, const std::string& repo, int port,
                                  const std::string& limit_rate) {
  const std::string limit = limit_rate.empty() ? "" : "  limit_rate " + limit_rate + ";\n";
  return "user root;\nworker_processes 1;\ndaemon off;\npid " + dir + "/nginx.pid;\nerror_log " +
         dir + "/nginx-error.log;\nevents { worker_connections 64; }\nhttp {\n  access_log " + dir +
         "/nginx-access.log;\n  client_body_temp_path " + dir + "/nginx-body;\n" + limit +
         "  types { application/json json; application/x-bittorrent torrent; }\n"
         "  default_type application/octet-stream;\n"
         "  # Files named by the percent-encoded role (3.apps%2Fkiosk.json): the\n"
         "  # name as the client sent it, not the decoded path.\n"
         "  map $request_uri $metadata_file {\n"
         "    \"~^/metadata/(?<name>[A-Za-z0-9_%-][A-Za-z0-9._%-]*)$\" $name;\n"
         "    default \"\";\n"
         "  }\n"
         "  server {\n    listen 127.0.0.1:" +
         std::to_string(port) + ";\n    root " + repo +
         ";\n"
         "    location /metadata/ {\n"
         "      add_header Cache-Control no-cache;\n"
         "      try_files /metadata/$metadata_file =404;\n"
         "    }\n"
         "    location ~ \"^/torrents/[0-9a-f]{64}\\.torrent$\" { }\n"
         "    location ~ \"^/artifacts/([0-9a-f]{64})(/[0-9a-f]{64})?$\" {\n"
         "      try_files /artifacts/$1 =404;\n"
         "    }\n"
         "    location / { return 404; }\n"
         "  }\n}\n";
}

pid_t SigningLeaseRow::pid() const {
  const size_t first = holder.find(':');
  if (first == std::string::npos) return -1;
  return static_cast<pid_t>(std::atol(holder.c_str() + first + 1));
}

std::string ReplicaTopology::CreateDatabase(const std::string& database) {
  auto cluster = PostgresCluster::Shared();
  if (!cluster.ok()) return "";
  return (*cluster)->CreateDatabase(database).value_or("");
}

std::string ReplicaTopology::Start(const std::string& dir, const std::string& repo,
                                   const std::string& database_url, const Options& options) {
  if (!std::filesystem::exists("/usr/sbin/haproxy") ||
      !std::filesystem::exists("/usr/sbin/nginx")) {
    return "haproxy or nginx is not installed: run scripts/setup.sh";
  }
  dir_ = dir;
  repo_ = repo;
  std::filesystem::create_directories(dir);
  auto db = tracker::SqlEngine::Open(database_url);
  if (!db.ok()) return db.status().ToString();
  db_ = std::move(*db);
  constexpr const char* kBalancerSource = "127.0.0.9";
  std::string members = "\"trusted_proxies\": [\"" + std::string(kBalancerSource) + "\"]";
  if (!options.config_members.empty()) members += ", " + options.config_members;
  const std::string config = dir + "/replica.json";
  if (!WriteFileAtomic(config, "{" + members + "}").ok()) return "cannot write " + config;
  std::vector<int> ports;
  for (int i = 0; i < options.replicas; ++i) {
    const std::string replica_dir = dir + "/replica-" + std::to_string(i);
    std::filesystem::create_directories(replica_dir);
    replicas_.push_back(std::make_unique<TrackerProcess>());
    if (!replicas_.back()->Start(replica_dir, repo,
                                 {"--config", config, "--database-url", database_url,
                                  "--signing-lease-ttl", std::to_string(options.lease_ttl_s)})) {
      return "replica " + std::to_string(i) + " did not start:\n" + replicas_.back()->Log();
    }
    ports.push_back(replicas_.back()->port());
  }

  balancer_port_ = FreePort();
  if (!WriteFileAtomic(dir + "/haproxy.cfg", HaproxyConfig(balancer_port_, ports, kBalancerSource))
           .ok() ||
      !haproxy_.Start({"/usr/sbin/haproxy", "-db", "-f", dir + "/haproxy.cfg"},
                      dir + "/haproxy.log", dir + "/haproxy.err")) {
    return "haproxy did not start";
  }
  static_port_ = FreePort();
  if (!WriteFileAtomic(dir + "/nginx.conf",
                       StaticTierNginxConfig(dir, repo, static_port_, options.nginx_limit_rate))
           .ok() ||
      !nginx_.Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-e", dir + "/nginx-error.log"},
                    dir + "/nginx.out", dir + "/nginx.err")) {
    return "nginx did not start";
  }
  // Every replica up behind the balancer, and the static tier serving.
  const bool ready = WaitFor(
      [&] {
        return GetFrom("127.0.0.1", balancer_port_, "/readyz").status == 200 &&
               GetFrom("127.0.0.1", static_port_, "/metadata/timestamp.json").status == 200;
      },
      std::chrono::seconds(20));
  if (!ready) return "haproxy or nginx not ready in 20 s:\n" + Logs();
  return "";
}

void ReplicaTopology::Stop() {
  haproxy_.Stop(std::chrono::seconds(5));
  nginx_.Stop(std::chrono::seconds(5));
  for (auto& replica : replicas_) replica->Stop();
  replicas_.clear();
  db_.reset();
}

std::string ReplicaTopology::balancer_url() const {
  return "http://127.0.0.1:" + std::to_string(balancer_port_);
}

std::string ReplicaTopology::static_url() const {
  return "http://127.0.0.1:" + std::to_string(static_port_);
}

SigningLeaseRow ReplicaTopology::Lease() {
  auto rows = db_->Query("SELECT holder, epoch FROM signing_lease");
  if (!rows.ok() || rows->empty()) return {};
  return {rows->Text(0, 0), rows->Int(0, 1)};
}

int ReplicaTopology::HolderIndex() {
  const pid_t pid = Lease().pid();
  for (size_t i = 0; i < replicas_.size() && pid > 0; ++i) {
    if (replicas_[i]->running() && replicas_[i]->pid() == pid) return static_cast<int>(i);
  }
  return -1;
}

std::string ReplicaTopology::HaproxyLog() const { return FileText(dir_ + "/haproxy.log"); }

std::string ReplicaTopology::Logs() const {
  std::string logs;
  for (size_t i = 0; i < replicas_.size(); ++i) {
    logs += "--- replica " + std::to_string(i) + "\n" + replicas_[i]->Log();
  }
  logs += "--- haproxy\n" + FileText(dir_ + "/haproxy.err") + "--- nginx\n" +
          FileText(dir_ + "/nginx.err") + FileText(dir_ + "/nginx-error.log");
  return logs;
}

}  // namespace flotilla::testing
