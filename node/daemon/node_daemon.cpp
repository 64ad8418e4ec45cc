#include "node/daemon/node_daemon.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "core/file_io.h"
#include "metadata/tuf_client.h"
#include "node/control/control_server.h"
#include "node/daemon/http_call.h"
#include "node/daemon/http_fetcher.h"
#include "node/transfer/torrent_fetcher.h"

namespace flotilla::node {
namespace {

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

NodeDaemon::NodeDaemon(NodeConfig config, const Clock& clock, Executor& executor)
    : config_(std::move(config)), layout_(config_.data_dir), clock_(clock), executor_(executor) {}

NodeDaemon::~NodeDaemon() {
  Stop();
  metrics_.reset();
  control_.reset();
  runtime_.reset();
  lan_.reset();
  fetcher_.reset();
  store_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<NodeDaemon>> NodeDaemon::Create(const NodeConfig& config, const Clock& clock,
                                                       Executor& executor) {
  std::unique_ptr<NodeDaemon> daemon(new NodeDaemon(config, clock, executor));
  RETURN_IF_ERROR(daemon->Prepare());
  return daemon;
}

Status NodeDaemon::Prepare() {
  RETURN_IF_ERROR(CreateDirectories(layout_.root, 0755).WithContext("data_dir"));
  lock_fd_ = ::open(layout_.lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return IOErrorFromErrno("open " + layout_.lock_file(), errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return FailedPrecondition("another flotilla-node runs on data_dir " + layout_.root);
  }
  RETURN_IF_ERROR(InstallRootOfTrust());
  auto store = layerstore::LayerStore::Open(layout_.store());
  if (!store.ok()) return store.status().WithContext("layer store");
  store_ = std::move(*store);
  for (const auto& note : store_->recovery_notes()) spdlog::info("store recovery: {}", note);
  ASSIGN_OR_RETURN(state_, LoadNodeState(layout_.state()));
  for (const auto& app : config_.apps) state_.apps.try_emplace(app);
  RETURN_IF_ERROR(SaveNodeState(layout_.state(), state_));
  if (config_.deploy) RETURN_IF_ERROR(OpenRuntime());
  RETURN_IF_ERROR(OpenControl());
  auto creds = LoadCredentials(layout_.credentials());
  if (creds.ok()) {
    credentials_ = *creds;
  } else if (creds.status().code() != StatusCode::kNotFound) {
    return creds.status();
  } else if (config_.transfer_mode == TransferMode::kP2p) {
    // The announce needs the passkey: enrol now if the tracker answers.
    auto enrolled = EnsureEnrolled(config_, layout_);
    if (enrolled.ok()) credentials_ = *enrolled;
    if (!enrolled.ok()) spdlog::warn("enrolment: {}", enrolled.status().ToString());
  }
  RETURN_IF_ERROR(OpenFetcher());
  if (config_.lan.enabled) {
    auto lan = LanExchange::Start(config_.lan, config_.device_name, config_.site, layout_.tuf(),
                                  layout_.torrents(), clock_);
    if (!lan.ok()) return lan.status();
    lan_ = std::move(*lan);
    RETURN_IF_ERROR(
        WriteFileAtomic(layout_.lan_port_file(), std::to_string(lan_->http_port()) + "\n"));
    PublishServedVersions();
  }
  return Status::Ok();
}

Status NodeDaemon::InstallRootOfTrust() {
  if (FileExists(layout_.tuf() + "/root.json")) return Status::Ok();
  if (config_.root_of_trust.empty()) {
    return FailedPrecondition("no trusted root in " + layout_.tuf() +
                              ": set root_of_trust in the config or run `flotilla-node tuf "
                              "--metadata-dir " +
                              layout_.tuf() + " init ROOT`");
  }
  auto root = ReadTextFileBounded(config_.root_of_trust, metadata::ClientLimits{}.max_root_bytes);
  if (!root.ok()) return root.status().WithContext("root_of_trust");
  return metadata::TufClient::Initialize(layout_.tuf(), *root).WithContext("root_of_trust");
}

Status NodeDaemon::OpenFetcher() {
  if (config_.transfer_mode == TransferMode::kP2p) return OpenTorrentFetcher();
  HttpFetcherOptions options;
  options.dir = layout_.artifacts();
  options.origin_url = config_.tracker_url;
  options.ca_file = config_.tls_ca_file;
  options.chunk_bytes = uint64_t{config_.http_chunk_kib} << 10;
  options.rate_bytes_per_s = config_.download_bytes_per_s;
  options.allowed_hours = config_.allowed_hours;
  fetcher_ = std::make_unique<HttpFetcher>(options, clock_, executor_);
  return Status::Ok();
}

Status NodeDaemon::OpenTorrentFetcher() {
  TorrentFetcherOptions options;
  options.data_dir = layout_.transfer();
  options.listen_interfaces = config_.listen;
  if (credentials_) {
    options.tracker_url = config_.tracker_url;
    options.passkey = credentials_->passkey;
  }
  options.web_seed_url = config_.tracker_url;
  options.fetch_torrent = [this](const ArtifactRequest& r) { return FetchTorrent(r); };
  options.download_rate_limit = static_cast<int>(config_.download_bytes_per_s);
  options.upload_rate_limit = static_cast<int>(config_.upload_bytes_per_s);
  options.enable_lsd = config_.lan.enabled;
  auto fetcher = TorrentFetcher::Create(options);
  if (!fetcher.ok()) return fetcher.status().WithContext("torrent fetcher");
  fetcher_ = std::move(*fetcher);
  return Status::Ok();
}

Result<std::string> NodeDaemon::FetchTorrent(const ArtifactRequest& request) {
  const std::string name = "/torrents/" + request.sha256.Hex() + ".torrent";
  HttpCall call;
  call.url = config_.tracker_url + name;
  call.ca_file = config_.tls_ca_file;
  call.max_body_bytes = 4 << 20;
  call.connect_timeout = std::chrono::seconds(5);
  auto from_tracker = HttpCallText(call);
  if (from_tracker.ok() || !lan_) return from_tracker;
  for (const Neighbour& n : lan_->Neighbours()) {
    call.url = n.http_base + name;
    call.ca_file.clear();
    auto from_neighbour = HttpCallText(call);
    if (from_neighbour.ok()) return from_neighbour;  // the fetcher checks its info-hash
  }
  return from_tracker.status();
}

void NodeDaemon::Start() {
  spdlog::info("node {} started: data_dir {}, following {} app(s), {} transfers",
               config_.device_name, layout_.root, config_.apps.size(),
               config_.transfer_mode == TransferMode::kP2p ? "p2p" : "http-only");
  if (runtime_) {
    ResumeDeployments();
    Schedule(kSuperviseTask, Duration::zero());
  }
  Schedule(kRefreshTask, Duration::zero());
  Schedule(kTickTask, std::chrono::seconds(1));
  Schedule(kLanTask, Duration::zero());
  if (lan_) Schedule(kBeaconTask, Duration::zero());
}

void NodeDaemon::Stop() {
  stopped_ = true;
  for (auto& timer : timers_) {
    if (timer) executor_.Cancel(*timer);
    timer.reset();
  }
}

void NodeDaemon::Schedule(TaskKind kind, Duration delay) {
  if (stopped_) return;
  if (timers_[kind]) executor_.Cancel(*timers_[kind]);
  timers_[kind] = executor_.PostAfter(delay, [this, kind] {
    timers_[kind].reset();
    if (stopped_) return;
    switch (kind) {
      case kRefreshTask:
        return RefreshTask();
      case kTickTask:
        return TickTask();
      case kLanTask:
        return LanTask();
      case kBeaconTask:
        return BeaconTask();
      case kSuperviseTask:
        return SuperviseTask();
      case kTaskKinds:
        return;
    }
  });
}

void NodeDaemon::RefreshTask() {
  Status st = RefreshMetadata();
  ++(st.ok() ? counters_.refreshes_ok : counters_.refreshes_failed);
  if (st.ok()) {
    counters_.last_refresh_unix =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
  }
  if (!st.ok()) {
    if (st.ToString() != last_refresh_error_) {
      spdlog::warn("metadata refresh: {}", st.ToString());
      AddError("cannot update: " + st.ToString());
    }
    last_refresh_error_ = st.ToString();
  } else {
    last_refresh_error_.clear();
  }
  Schedule(kRefreshTask, NextRefreshDelay(st.ok()));
}

void NodeDaemon::TickTask() {
  for (const auto& app : config_.apps) DriveApp(app);
  SampleRates();
  if (clock_.MonotonicNow() >= next_report_) report_due_ = true;
  if (report_due_) SendReports();
  Schedule(kTickTask, std::chrono::seconds(1));
}

void NodeDaemon::SampleRates() {
  const MonoTime now = clock_.MonotonicNow();
  for (const auto& app : config_.apps) {
    auto t = transfers_.find(app);
    if (t == transfers_.end()) {
      rates_.erase(app);
      continue;
    }
    RateSample& r = rates_[app];
    if (r.at != MonoTime{} && now > r.at && t->second.done >= r.done) {
      const double seconds = std::chrono::duration<double>(now - r.at).count();
      const double instant = (t->second.done - r.done) / seconds;
      r.rate = r.rate == 0 ? instant : 0.7 * r.rate + 0.3 * instant;  // smoothed over a few s
    }
    r.at = now;
    r.done = t->second.done;
  }
}

Status NodeDaemon::OpenControl() {
  auto control = ControlServer::Listen(config_.control_socket, *this);
  if (!control.ok()) return control.status().WithContext("control API");
  control_ = std::move(*control);
  if (config_.metrics_listen.empty()) return Status::Ok();
  auto metrics = MetricsServer::Listen(config_.metrics_listen, *this);
  if (!metrics.ok()) return metrics.status().WithContext("metrics_listen");
  metrics_ = std::move(*metrics);
  spdlog::info("metrics on http://{}/metrics (port {})", config_.metrics_listen, metrics_->port());
  return Status::Ok();
}

void NodeDaemon::LanTask() {
  if (lan_) lan_->Pump();
  if (control_) control_->Poll();
  if (metrics_) metrics_->Poll();
  Schedule(kLanTask, std::chrono::milliseconds(50));
}

void NodeDaemon::BeaconTask() {
  Status st = lan_->SendBeacon();
  if (!st.ok()) spdlog::debug("{}", st.ToString());
  Schedule(kBeaconTask, std::chrono::seconds(config_.lan.beacon_interval_s));
}

void NodeDaemon::SaveState() {
  spdlog::debug("writing state.json");
  Status st = SaveNodeState(layout_.state(), state_);
  if (!st.ok()) return spdlog::error("{}", st.ToString());
  spdlog::debug("state.json written");
}

}  // namespace flotilla::node
