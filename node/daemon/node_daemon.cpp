#include "node/daemon/node_daemon.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "metadata/release_floor.h"
#include "metadata/tuf_client.h"
#include "node/control/control_protocol.h"
#include "node/control/control_server.h"
#include "node/control/status_format.h"
#include "node/daemon/bundle_import.h"
#include "node/daemon/http_fetcher.h"
#include "node/daemon/imported_seeds.h"
#include "node/daemon/secret_files.h"
#include "node/transfer/torrent_fetcher.h"

namespace flotilla::node {
namespace {

// <data_dir>/tuf gets the configured root of trust when it trusts none yet.
Status InstallRootOfTrust(const NodeConfig& config, const DataLayout& layout) {
  if (::access((layout.tuf() + "/root.json").c_str(), F_OK) == 0) return Status::Ok();
  if (config.root_of_trust.empty()) {
    return FailedPrecondition("no trusted root in " + layout.tuf() +
                              ": set root_of_trust in the config or run `flotilla-node tuf "
                              "--metadata-dir " +
                              layout.tuf() + " init ROOT`");
  }
  auto root = ReadTextFileBounded(config.root_of_trust, metadata::ClientLimits{}.max_root_bytes);
  if (!root.ok()) return root.status().WithContext("root_of_trust");
  return metadata::TufClient::Initialize(layout.tuf(), *root).WithContext("root_of_trust");
}

}  // namespace

NodeDaemon::NodeDaemon(NodeConfig config, const Clock& clock, Executor& loop)
    : config_(std::move(config)),
      layout_(config_.data_dir),
      clock_(clock),
      loop_(loop),
      pump_timer_(loop),
      beacon_timer_(loop),
      window_timer_(loop) {}

NodeDaemon::~NodeDaemon() {
  Stop();
  lanes_.clear();  // joins each lane's running job: nothing below is in use after this
  metrics_.reset();
  control_.reset();
  notice_.reset();
  reporter_.reset();
  log_uploader_.reset();
  key_binder_.reset();
  fleet_.reset();
  follower_.reset();
  collector_.reset();
  deployer_.reset();
  runtime_.reset();
  pipeline_.reset();
  origin_relay_.reset();
  source_.reset();
  lan_.reset();
  importer_.reset();
  store_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<NodeDaemon>> NodeDaemon::Create(const NodeConfig& config, const Clock& clock,
                                                       Executor& loop) {
  // A proxy from the environment is checked here, as the key's is when the
  // configuration is read: libtorrent's announces need an http:// one.
  for (const std::string* url : {&config.tracker_url, &config.content_url}) {
    if (const std::string proxy = http::ProxyFor(HttpOptionsFor(config), *url); !proxy.empty()) {
      RETURN_IF_ERROR(
          http::ParseProxyUrl(proxy).status().WithContext("the proxy of " + http::RedactUrl(*url)));
    }
  }
  std::unique_ptr<NodeDaemon> daemon(new NodeDaemon(config, clock, loop));
  RETURN_IF_ERROR(daemon->Prepare());
  return daemon;
}

Executor& NodeDaemon::Lane(const std::string& name) {
  auto& lane = lanes_[name];
  if (!lane) lane = std::make_unique<ThreadExecutor>();
  return *lane;
}

Status NodeDaemon::Prepare() {
  RETURN_IF_ERROR(CreateDirectories(layout_.root, 0755).WithContext("data_dir"));
  lock_fd_ = ::open(layout_.lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return IOErrorFromErrno("open " + layout_.lock_file(), errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return FailedPrecondition("another flotilla-node runs on data_dir " + layout_.root);
  }
  RETURN_IF_ERROR(InstallRootOfTrust(config_, layout_));
  auto store = layerstore::LayerStore::Open(layout_.store());
  if (!store.ok()) return store.status().WithContext("layer store");
  for (const auto& note : (*store)->recovery_notes()) spdlog::info("store recovery: {}", note);
  store_ =
      std::make_unique<StoreWorker>(std::move(*store), layout_.root + "/tmp", Lane("store"), loop_);
  // An imported bundle's release is offered as the trusted metadata's are at start.
  importer_ = std::make_unique<BundleImporter>(
      config_, clock_, *store_, loop_, trusted_dir_lock_, [this](const ImportResult& imported) {
        // Its neighbours hear of the imported metadata, and take its artifacts.
        if (source_) source_->PublishServedVersions();
        if (pipeline_ && imported.not_deployed.empty()) {
          pipeline_->Seed(imported.app, imported.version, imported.seedable);
        }
        // The device's fleet document the bundle carried: the follower
        // accepts it (and hands its choices on) as after a poll.
        if (imported.fleet) {
          AcceptBundleFleet(*imported.fleet,
                            imported.offline_release ? &*imported.offline_release : nullptr);
        }
        OfferTrustedReleases();
      });
  RETURN_IF_ERROR(OpenFleet());
  RETURN_IF_ERROR(LoadLocks());
  ASSIGN_OR_RETURN(state_, StateFile::Open(layout_.state(), apps_));
  if (config_.deploy) RETURN_IF_ERROR(OpenDeployment());
  RETURN_IF_ERROR(OpenServers());
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
  return OpenTransfers();
}

Status NodeDaemon::OpenDeployment() {
  runtime::RuntimeOptions options;
  options.state_dir = layout_.runtime();
  options.monitor_path =
      config_.monitor_path.empty() ? runtime::DefaultMonitorPath() : config_.monitor_path;
  auto opened = runtime::Runtime::Open(std::move(options), clock_);
  if (!opened.ok()) return opened.status().WithContext("runtime");
  runtime_ = std::move(*opened);
  const LaneOf lanes = [this](const std::string& name) -> Executor& { return Lane(name); };
  deployer_ = std::make_unique<Deployer>(
      apps_, *state_, *store_, *runtime_, lanes, loop_,
      DeployerEvents{.changed = [this] { reporter_->MarkDue(); },
                     .error = [this](const std::string& e) { reporter_->AddError(e); },
                     .collect = [this] { collector_->Collect(); }},
      layout_.root + "/config",
      DeployerSecrets{.dir = config_.secrets_dir, .device_key = layout_.device_key()});
  collector_ = std::make_unique<GarbageCollector>(
      apps_, config_.keep_releases, *state_, *store_, *runtime_, lanes, loop_,
      CollectorEvents{.keep_in_flight =
                          [this](std::set<Digest>& layers, std::set<Digest>& artifacts) {
                            pipeline_->KeepInFlight(layers, artifacts);
                          },
                      .forget =
                          [this](const std::set<Digest>& artifacts) {
                            pipeline_->ForgetArtifacts(artifacts);
                          }});
  return Status::Ok();
}

// The fleet follower first: an accepted fleet document adds its apps to the
// followed ones before the state, the deployer and the collector open.
Status NodeDaemon::OpenFleet() {
  apps_ = config_.apps;
  FleetFollowerOptions options{.data_dir = layout_.root,
                               .tracker_url = config_.tracker_url,
                               .http = HttpOptionsFor(config_),
                               .refresh_interval_s = config_.refresh_interval_s,
                               .max_backoff_s = config_.max_backoff_s};
  // The floor the image repository's offline keys sign for each app
  // (metadata/release_floor.h), read from its verified metadata.
  auto fleet = FleetFollower::Open(
      std::move(options), clock_, loop_, &metadata::TrustedFloor,
      FleetEvents{.choices =
                      [this](const std::map<std::string, metadata::Release>& releases) {
                        FleetChose(releases);
                      },
                  .error = [this](const std::string& e) { reporter_->AddError(e); }});
  if (!fleet.ok()) return fleet.status().WithContext("fleet");
  fleet_ = std::move(*fleet);
  if (const auto& accepted = fleet_->status().accepted) {
    for (const auto& [app, choice] : accepted->document.apps) {
      if (std::find(apps_.begin(), apps_.end(), app) == apps_.end()) apps_.push_back(app);
    }
    spdlog::info("following the fleet document v{} accepted before (not the local apps list)",
                 accepted->targets_version);
  }
  return Status::Ok();
}

Status NodeDaemon::OpenServers() {
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

// The fetcher and the pipeline, then what follows the tracker.
Status NodeDaemon::OpenTransfers() {
  agent_app_ = AgentAppFor(layerstore::Platform::Host());
  ASSIGN_OR_RETURN(auto fetcher, OpenFetcher());
  PipelineOptions options{.data_dir = layout_.root,
                          .deltas = config_.deltas,
                          .keep_artifacts = config_.transfer_mode == TransferMode::kP2p,
                          .disk_budget_bytes = config_.disk_budget_bytes,
                          .refresh_interval_s = config_.refresh_interval_s,
                          .max_backoff_s = config_.max_backoff_s,
                          .stall_timeout_s = config_.stall_timeout_s};
  pipeline_ = std::make_unique<ReleasePipeline>(
      options, *state_, *store_, std::move(fetcher), clock_, loop_,
      PipelineEvents{.ready =
                         [this](const std::string& app, const metadata::Release& release) {
                           // An agent release is installed, never run as a container.
                           if (IsAgentApp(app)) return InstallAgent(release);
                           if (!deployer_) return;
                           // A release the fleet no longer chooses is kept, not switched to.
                           if (fleet_->managed() && FleetRelease(app) != release.version) return;
                           SwitchOrWait(app, release);
                         },
                     .error = [this](const std::string& e) { reporter_->AddError(e); },
                     .changed = [this] { reporter_->MarkDue(); }});
  return OpenFollower();
}

// The LAN exchange, the metadata follower and the reporter.
Status NodeDaemon::OpenFollower() {
  if (config_.lan.enabled) {
    ASSIGN_OR_RETURN(lan_, LanExchange::Start(config_.lan, config_.device_name, config_.site,
                                              layout_.tuf(), layout_.torrents(), clock_));
    RETURN_IF_ERROR(
        WriteFileAtomic(layout_.lan_port_file(), std::to_string(lan_->http_port()) + "\n"));
  }
  source_ = std::make_unique<TufMetadataSource>(config_, clock_, lan_.get(), trusted_dir_lock_);
  source_->PublishServedVersions();
  follower_ = std::make_unique<MetadataFollower>(
      FollowerOptions{.tracker_metadata_url = config_.content_url + "/metadata",
                      .refresh_interval_s = config_.refresh_interval_s,
                      .max_backoff_s = config_.max_backoff_s},
      *source_, clock_, loop_,
      FollowerEvents{.enrolled = [this](const DeviceCredentials& c) { Enrolled(c); },
                     .releases =
                         [this](const std::map<std::string, metadata::Release>& releases) {
                           ReleasesVerified(releases);
                         },
                     .error = [this](const std::string& e) { reporter_->AddError(e); }});
  importer_->SetTrackerUnreachable(
      [this] { return follower_ && follower_->status().tracker_unreachable; });
  key_binder_ = std::make_unique<KeyBinder>(config_, layout_, loop_);
  log_uploader_ = std::make_unique<LogUploader>(
      config_.tracker_url, HttpOptionsFor(config_),
      LogUploaderEvents{
          .read_log =
              [this](const std::string& app, int64_t since_unix_s, ControlReply reply) {
                AppLog(app, size_t{16} << 20, since_unix_s, std::move(reply));
              },
          // Every value the node holds: the files it wrote on the tmpfs.
          .secrets = [dir = config_.secrets_dir] { return SecretValuesUnder(dir); }});
  reporter_ = std::make_unique<Reporter>(config_.report_interval_s, clock_, loop_,
                                         [this] { return Reports(); });
  reporter_->SetSequenceStore(state_->state().report_seq,
                              [this](uint64_t n) { return state_->SaveReportSeq(n); });
  reporter_->SetPlatform(layerstore::Platform::Host().ToString());
  if (config_.notice) OpenNotice();
  if (credentials_) {
    follower_->SetCredentials(*credentials_);
    fleet_->SetCredentials(*credentials_);
    Enrolled(*credentials_);
  }
  return Status::Ok();
}

void NodeDaemon::OpenNotice() {
  notice_ = std::make_unique<NoticeWatcher>(
      NoticeOptions{.tracker_url = config_.tracker_url,
                    .http = HttpOptionsFor(config_),
                    .refresh_interval_s = config_.refresh_interval_s,
                    .max_backoff_s = config_.max_backoff_s},
      clock_, loop_,
      NoticeEvents{
          .versions =
              [this] {
                return NoticeVersions{.image = source_->TrustedTimestampVersion(),
                                      .fleet = fleet_->TrustedTimestampVersion()};
              },
          .changed = [this](bool image, bool fleet) { Noticed(image, fleet); },
          .log_requests = [this](uint64_t newest) { log_uploader_->Requested(newest); },
          .fleet_files = [this](CarriedFleetFiles carried) { fleet_->Carry(std::move(carried)); }});
}

// A change the tracker announced: the image repository first (the fleet
// document is checked against it), then the fleet repository when it
// moved, or when its last poll failed (it may have named a release the
// image repository did not offer yet).
void NodeDaemon::Noticed(bool image, bool fleet) {
  if (image) follower_->RefreshNow();
  if (fleet || (image && !fleet_->status().last_error.empty())) fleet_->PollNow();
}

Result<std::unique_ptr<ArtifactFetcher>> NodeDaemon::OpenFetcher() {
  if (config_.transfer_mode == TransferMode::kHttpOnly) {
    HttpFetcherOptions options;
    options.dir = layout_.artifacts();
    options.origin_url = config_.content_url;
    options.http = HttpOptionsFor(config_);
    options.chunk_bytes = uint64_t{config_.http_chunk_kib} << 10;
    options.rate_bytes_per_s = config_.download_bytes_per_s;
    options.allowed_hours = config_.allowed_hours;
    return std::unique_ptr<ArtifactFetcher>(new HttpFetcher(options, clock_, loop_));
  }
  TorrentFetcherOptions options;
  options.data_dir = layout_.transfer();
  options.listen_interfaces = config_.listen;
  const http::ClientOptions wan = HttpOptionsFor(config_);
  if (credentials_) {
    options.tracker_url = config_.tracker_url;
    options.passkey = credentials_->passkey;
    if (const std::string proxy = http::ProxyFor(wan, config_.tracker_url); !proxy.empty()) {
      ASSIGN_OR_RETURN(http::ProxyEndpoint endpoint,
                       http::ParseProxyUrl(proxy).WithContext("announce proxy"));
      options.announce_proxy = {endpoint.host, endpoint.port, endpoint.user, endpoint.password};
      spdlog::info("announces go through the proxy {}", http::RedactUrl(proxy));
    }
  }
  options.web_seed_url = config_.content_url;
  if (const std::string proxy = http::ProxyFor(wan, config_.content_url); !proxy.empty()) {
    // libtorrent would take LAN peers through the proxy with the web seed:
    // the web seed is a relay on loopback that goes through it (origin_relay.h).
    if (!origin_relay_) {
      ASSIGN_OR_RETURN(origin_relay_, OriginRelay::Start(config_.content_url, wan));
      spdlog::info("the content origin is reached through the proxy {}; web seeds through {}",
                   http::RedactUrl(proxy), origin_relay_->url());
    }
    options.web_seed_url = origin_relay_->url();
    options.web_seed_max_request_bytes = static_cast<int>(OriginRelay::kMaxRequestBytes);
  }
  torrent_source_ = std::make_unique<TorrentSource>(TorrentSourceOptions{
      .content_url = config_.content_url,
      .wan = wan,
      .lan = LanHttpOptionsFor(config_),
      .neighbours = [this] { return lan_ ? lan_->Neighbours() : std::vector<Neighbour>{}; }});
  options.fetch_torrent = [source = torrent_source_.get()](const ArtifactRequest& r) {
    return source->Fetch(r.sha256.Hex());
  };
  options.download_rate_limit = static_cast<int>(config_.download_bytes_per_s);
  options.upload_rate_limit = static_cast<int>(config_.upload_bytes_per_s);
  options.enable_lsd = config_.lan.enabled;
  options.origin.stall_seconds = config_.origin_wait_s;
  options.origin.stagger_seconds = 0.8 * config_.origin_wait_s;
  auto fetcher = TorrentFetcher::Create(options);
  if (!fetcher.ok()) return fetcher.status().WithContext("torrent fetcher");
  return std::unique_ptr<ArtifactFetcher>(std::move(*fetcher));
}

// Credentials at start, or from a late enrolment: reports can go out, and a
// p2p fetcher that started without the tracker gets the announce URL.
void NodeDaemon::Enrolled(const DeviceCredentials& credentials) {
  key_binder_->Start(credentials);
  fleet_->SetCredentials(credentials);
  if (notice_) notice_->SetCredentials(credentials);
  log_uploader_->SetCredentials(credentials);
  reporter_->SetSink(
      MakeTrackerReportSink(config_.tracker_url, HttpOptionsFor(config_), credentials,
                            [this](uint64_t newest) { log_uploader_->Requested(newest); }));
  if (credentials_) return;  // the fetcher has them
  credentials_ = credentials;
  spdlog::info("enrolled as {} ({})", config_.device_name, credentials.device_id);
  if (config_.transfer_mode != TransferMode::kP2p) return;
  // Verified pieces and resume data stay on disk: transfers continue where they were.
  auto fetcher = OpenFetcher();
  Status reopened =
      fetcher.ok() ? pipeline_->ReplaceFetcher(std::move(*fetcher)) : fetcher.status();
  if (!reopened.ok()) spdlog::warn("{}", reopened.ToString());
}

void NodeDaemon::ReleasesVerified(const std::map<std::string, metadata::Release>& releases) {
  // Once a fleet document was accepted, only it says what runs.
  if (fleet_->managed()) return;
  if (auto agent = releases.find(agent_app_); agent != releases.end()) {
    OfferAgent(agent->second, /*chosen=*/false);
  }
  for (const auto& app : config_.apps) {
    if (IsAgentApp(app)) continue;
    auto it = releases.find(app);
    if (it == releases.end() || it->second.version == state_->app(app).failed_release) continue;
    if (deployer_ && deployer_->Awaits(app, it->second.version) && !pipeline_->Fetching(app)) {
      // Ready but not running: a crash came between the fetch and the switch.
      SwitchOrWait(app, it->second);
      continue;
    }
    pipeline_->Offer(app, it->second);
  }
}

void NodeDaemon::OfferTrustedReleases() {
  // Offline validity windows count once a refresh found the tracker
  // unreachable; at start, before any refresh, when the tracker does not
  // answer one request for its timestamp (asked only when the metadata on
  // disk does not verify as it is: expired, typically). Offering at start,
  // before the deployer's first collection, keeps an imported release's
  // layers from being collected as unused.
  const bool offline = follower_ && follower_->status().tracker_unreachable;
  auto releases = source_->VerifyTrustedOnDisk(offline ? metadata::OfflineWindowUse::kAllowed
                                                       : metadata::OfflineWindowUse::kIgnored);
  if (!releases.ok() && !offline && !started_ &&
      releases.status().code() == StatusCode::kFailedPrecondition &&
      TrackerUnreachable(config_, std::chrono::seconds(5))) {
    releases = source_->VerifyTrustedOnDisk(metadata::OfflineWindowUse::kAllowed);
  }
  trusted_on_disk_verified_ = releases.ok();
  if (fleet_->managed()) {
    const bool offline_window = offline || (!started_ && !fleet_->AcceptedReleasesOnDisk().ok() &&
                                            TrackerUnreachable(config_, std::chrono::seconds(5)));
    // Only the accepted document says what runs: its releases, checked
    // again against the trusted metadata on disk, while it has not expired
    // (so a document a stopped node's import accepted is followed with no
    // tracker); else the fleet follower's first poll decides.
    auto chosen = fleet_->AcceptedReleasesOnDisk(offline_window);
    if (chosen.ok()) {
      FleetChose(*chosen);
    } else {
      spdlog::info("the accepted fleet document offers nothing before a poll: {}",
                   chosen.status().ToString());
    }
    return;
  }
  if (!releases.ok()) {
    spdlog::info("trusted metadata on disk offers no release: {}", releases.status().ToString());
    return;
  }
  ReleasesVerified(*releases);
}

void NodeDaemon::Follow(const std::string& app) {
  if (std::find(apps_.begin(), apps_.end(), app) != apps_.end()) return;
  spdlog::info("app {}: followed from now on (assigned by the fleet)", app);
  apps_.push_back(app);
  state_->app(app);
  const LaneOf lanes = [this](const std::string& name) -> Executor& { return Lane(name); };
  if (deployer_) deployer_->Follow(app, lanes);
  if (collector_) collector_->Follow(app, lanes);
  state_->Save();
}

uint64_t NodeDaemon::FleetRelease(const std::string& app) const {
  const auto& accepted = fleet_->status().accepted;
  if (!accepted) return 0;
  auto it = accepted->document.apps.find(app);
  return it == accepted->document.apps.end() ? 0 : it->second.release;
}

appspec::ConfigValues NodeDaemon::FleetConfig(const std::string& app) const {
  const auto& accepted = fleet_->status().accepted;
  if (!accepted) return {};
  auto it = accepted->document.apps.find(app);
  return it == accepted->document.apps.end() ? appspec::ConfigValues{} : it->second.config;
}

SecretBoxes NodeDaemon::FleetSecrets(const std::string& app) const {
  const auto& accepted = fleet_->status().accepted;
  if (!accepted) return {};
  auto it = accepted->document.apps.find(app);
  return it == accepted->document.apps.end() ? SecretBoxes{} : it->second.secrets;
}

// An app the document does not name is neither started nor updated; one
// that runs keeps running (nothing stops an app without a healthy
// replacement). A chosen release is installed even when it is older than
// what runs: it is one the image repository signed (checked by the follower).
void NodeDaemon::FleetChose(const std::map<std::string, metadata::Release>& releases) {
  for (const auto& [app, release] : releases) {
    if (IsAgentApp(app)) {
      if (app == agent_app_) OfferAgent(release, /*chosen=*/true);
      continue;
    }
    Follow(app);
    const AppState& a = state_->app(app);
    const uint64_t version = release.version;
    if (version == a.failed_release) continue;  // failed for good here; the report says so
    if (!deployer_) {
      pipeline_->OfferChosen(app, release);
      continue;
    }
    if (a.running_release == version) {
      // The same release with another configuration: a switch to it, like a
      // release's (docs/config.md, "A change without a release").
      if (deployer_->WantsConfig(app, FleetConfig(app), FleetSecrets(app))) {
        SwitchOrWait(app, release);
      } else {
        waiting_switches_.erase(app);
      }
      continue;
    }
    const bool kept = std::any_of(a.kept.begin(), a.kept.end(),
                                  [&](const KeptRelease& k) { return k.version == version; });
    if (kept && !pipeline_->Fetching(app)) {
      // Its layers are in the store: switch to it (health-gated, as any
      // switch) once the maintenance windows allow.
      SwitchOrWait(app, release);
      continue;
    }
    pipeline_->OfferChosen(app, release);
  }
}

const std::vector<tracker::MaintenanceWindow>& NodeDaemon::FleetWindows() const {
  static const std::vector<tracker::MaintenanceWindow> kNone;
  const auto& accepted = fleet_->status().accepted;
  return accepted ? accepted->document.windows : kNone;
}

// Nothing runs, or what runs is not running (exited, lost): its replacement
// does not wait for a window.
bool NodeDaemon::RunningHealthy(const std::string& app) const {
  return deployer_ && state_->app(app).running_release != 0 &&
         deployer_->Container(app).state == "running";
}

std::optional<UpdateLock> NodeDaemon::LockOf(const std::string& app) const {
  auto it = locks_.find(app);
  if (it == locks_.end()) return std::nullopt;
  return it->second;
}

Status NodeDaemon::LoadLocks() {
  const std::string path = layout_.root + "/locks.json";
  auto text = ReadTextFileBounded(path, 1 << 20);
  if (!text.ok()) {
    return text.status().code() == StatusCode::kNotFound ? Status::Ok()
                                                         : text.status().WithContext(path);
  }
  auto json = ParseJsonStrict(*text);
  const int64_t now = UnixSeconds(clock_);
  // An unreadable file loses the locks, never the node: they are only deferrals.
  if (!json.ok() || !json->is_object()) {
    spdlog::warn("{}: unreadable, update locks dropped", path);
    return Status::Ok();
  }
  for (const auto& [app, lock] : json->items()) {
    if (!lock.is_object() || !lock.contains("until") || !lock["until"].is_number_integer())
      continue;
    UpdateLock l{lock["until"].get<int64_t>(), lock.value("reason", std::string())};
    // A lock never outlasts the maximum from now (a clock set back must not stretch it).
    l.until_unix = std::min(l.until_unix, now + kMaxLockSeconds);
    if (l.until_unix > now) locks_[app] = std::move(l);
  }
  return Status::Ok();
}

Status NodeDaemon::SaveLocks() {
  Json json = Json::object();
  for (const auto& [app, lock] : locks_) {
    json[app] = Json{{"until", lock.until_unix}, {"reason", lock.reason}};
  }
  return WriteFileAtomic(layout_.root + "/locks.json", DumpJson(json) + "\n", 0600)
      .WithContext("locks.json");
}

void NodeDaemon::Lock(const std::string& app, int64_t seconds, const std::string& reason,
                      ControlReply reply) {
  if (std::find(apps_.begin(), apps_.end(), app) == apps_.end()) {
    return reply(NotFound("no app '" + app + "' is followed here"));
  }
  const int64_t now = UnixSeconds(clock_);
  const int64_t until = now + std::clamp<int64_t>(seconds, 1, kMaxLockSeconds);
  std::optional<UpdateLock> before = LockOf(app);
  locks_[app] = UpdateLock{until, reason};
  if (Status saved = SaveLocks(); !saved.ok()) {
    if (before) {
      locks_[app] = *before;
    } else {
      locks_.erase(app);
    }
    return reply(saved);
  }
  spdlog::info("app {}: update lock until {} UTC{}{}", app, FormatUtc(until),
               reason.empty() ? "" : ": ", reason);
  reply(app + ": locked until " + FormatUtc(until) + " UTC" +
        (reason.empty() ? "" : ": " + reason));
}

void NodeDaemon::SeedImportedWhileStopped() {
  const std::string path = layout_.imported_seeds();
  auto recorded = LoadImportedSeeds(path);
  if (!recorded.ok()) {
    spdlog::warn("imported artifacts not seeded: {}", recorded.status().ToString());
  } else {
    for (const ImportedSeeds& seeds : *recorded) {
      spdlog::info(
          "app {}: seeding {} artifact(s) of release {}, imported while the node was stopped",
          seeds.app, seeds.artifacts.size(), seeds.release);
      pipeline_->Seed(seeds.app, seeds.release, seeds.artifacts);
    }
  }
  if (Status removed = RemoveImportedSeeds(path); !removed.ok()) {
    spdlog::warn("{}", removed.ToString());
  }
}

void NodeDaemon::AcceptBundleFleet(const CarriedFleetFiles& carried,
                                   const metadata::Release* offline_release) {
  if (Status accepted = fleet_->AcceptFromBundle(carried, offline_release); !accepted.ok()) {
    spdlog::warn("import: this device's fleet document not accepted: {}", accepted.ToString());
    reporter_->AddError("fleet: " + accepted.ToString());
  }
}

void NodeDaemon::Import(const std::string& path, ControlReply reply) {
  Status begun = importer_->Begin(path, "control");
  if (!begun.ok()) return reply(begun);
  reply("importing " + path + "; its progress and outcome show in `flotilla-node status`");
}

void NodeDaemon::Unlock(const std::string& app, ControlReply reply) {
  if (std::find(apps_.begin(), apps_.end(), app) == apps_.end()) {
    return reply(NotFound("no app '" + app + "' is followed here"));
  }
  auto it = locks_.find(app);
  if (it == locks_.end()) return reply(app + ": not locked");
  const UpdateLock before = it->second;
  locks_.erase(it);
  if (Status saved = SaveLocks(); !saved.ok()) {
    locks_[app] = before;
    return reply(saved);
  }
  spdlog::info("app {}: update lock ended", app);
  reply(app + ": unlocked");
  CheckWaitingSwitches();
}

void NodeDaemon::SwitchOrWait(const std::string& app, const metadata::Release& release) {
  const SwitchDecision decision =
      DecideSwitch(FleetWindows(), LockOf(app), RunningHealthy(app), clock_);
  if (decision.now) {
    waiting_switches_.erase(app);
    deployer_->Deploy(app, release, FleetConfig(app), FleetSecrets(app));
    return;
  }
  auto [it, added] = waiting_switches_.insert_or_assign(app, release);
  if (added) spdlog::info("app {}: release {} ready, {}", app, release.version, decision.waiting);
  reporter_->MarkDue();
  if (!window_timer_.pending()) {
    window_timer_.Schedule(std::chrono::seconds(15), [this] { CheckWaitingSwitches(); });
  }
}

void NodeDaemon::CheckWaitingSwitches() {
  std::map<std::string, metadata::Release> waiting;
  waiting.swap(waiting_switches_);
  for (const auto& [app, release] : waiting) {
    if (fleet_->managed() && FleetRelease(app) != release.version) continue;  // not chosen now
    if (state_->app(app).running_release == release.version &&
        !deployer_->WantsConfig(app, FleetConfig(app), FleetSecrets(app))) {
      continue;
    }
    SwitchOrWait(app, release);
  }
  if (!waiting_switches_.empty() && !window_timer_.pending()) {
    window_timer_.Schedule(std::chrono::seconds(15), [this] { CheckWaitingSwitches(); });
  }
}

std::vector<AppReport> NodeDaemon::Reports() const {
  std::vector<AppReport> reports;
  for (const auto& app : apps_) {
    if (IsAgentApp(app)) continue;  // AgentReport's
    auto transfer = pipeline_->Transfer(app);
    reports.push_back(ReportOf(app, state_->app(app), transfer ? transfer->done : 0,
                               transfer ? transfer->total : 0));
    reports.back().bad_peers = pipeline_->TakeBadPeers(app);
  }
  if (auto agent = AgentReport()) reports.push_back(*agent);
  return reports;
}

void NodeDaemon::Start() {
  spdlog::info("node {} started: data_dir {}, following {} app(s), {} transfers",
               config_.device_name, layout_.root, apps_.size(),
               config_.transfer_mode == TransferMode::kP2p ? "p2p" : "http-only");
  if (deployer_) deployer_->Start();
  pipeline_->Start();
  ReportAgentRollback();
  SeedImportedWhileStopped();
  OfferTrustedReleases();
  importer_->Start();
  follower_->Start();
  fleet_->Start();
  reporter_->Start();
  if (notice_) notice_->Start();
  Pump();
  if (lan_) Beacon();
  started_ = true;
}

void NodeDaemon::Stop() {
  pump_timer_.Cancel();
  beacon_timer_.Cancel();
  window_timer_.Cancel();
  if (follower_) follower_->Stop();
  if (fleet_) fleet_->Stop();
  if (notice_) notice_->Stop();
  if (pipeline_) pipeline_->Stop();
  if (reporter_) reporter_->Stop();
  if (key_binder_) key_binder_->Stop();
  if (deployer_) deployer_->Stop();
  if (collector_) collector_->Stop();
  if (agent_worker_) agent_worker_->Close();
  if (importer_) importer_->Stop();
  if (store_) store_->Close();
}

void NodeDaemon::Pump() {
  if (control_) control_->Poll();
  if (metrics_) metrics_->Poll();
  pump_timer_.Schedule(std::chrono::milliseconds(50), [this] { Pump(); });
}

void NodeDaemon::Beacon() {
  lan_->SendBeacon();
  beacon_timer_.Schedule(std::chrono::seconds(config_.lan.beacon_interval_s), [this] { Beacon(); });
}

}  // namespace flotilla::node
