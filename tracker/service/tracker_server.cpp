#include "tracker/service/tracker_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>

#include "core/clock.h"
#include "core/file_io.h"
#include "tracker/service/signing_duty.h"
#include "tracker/service/tracker_service.h"
#include "tracker/service/webhook_sender.h"

namespace flotilla::tracker {
namespace {

Result<TrackerServiceOptions> ServiceOptions(const TrackerConfig& config) {
  TrackerServiceOptions options;
  options.repo.root = config.repository;
  if (!config.fleet_token_file.empty()) {
    ASSIGN_OR_RETURN(options.fleet_token_sha256, LoadFleetTokenHash(config.fleet_token_file));
  }
  options.timing.interval_s = static_cast<int>(config.announce_interval_s);
  options.timing.min_interval_s = static_cast<int>(config.min_announce_interval_s);
  options.swarm.peer_ttl = std::chrono::seconds(config.peer_ttl_s);
  options.swarm.max_peers = static_cast<size_t>(config.max_peers);
  options.swarm.max_peers_per_device = static_cast<size_t>(config.max_peers_per_device);
  options.swarm.max_peers_per_device_swarm = static_cast<size_t>(config.max_peers_per_device_swarm);
  options.enrolment.burst = static_cast<double>(config.enrol_burst);
  options.enrolment.per_minute = static_cast<double>(config.enrol_per_minute);
  options.enrolment.max_devices = static_cast<size_t>(config.max_devices);
  options.device_requests.burst = static_cast<double>(config.device_request_burst);
  options.device_requests.per_minute = static_cast<double>(config.device_requests_per_minute);
  options.notice.max_wait = std::chrono::seconds(config.notice_max_wait_s);
  options.notice.max_held = static_cast<size_t>(config.notice_max_held);
  return options;
}

http::ServerOptions ServerOptions(const TrackerConfig& config, const ListenAddress& listen) {
  http::ServerOptions options;
  options.server_name = "flotilla-tracker";
  options.address = listen.host;
  options.port = listen.port;
  if (!config.tls_certificate.empty()) {
    options.tls = http::TlsFiles{config.tls_certificate, config.tls_private_key};
  }
  options.read_timeout = std::chrono::seconds(config.read_timeout_s);
  options.max_header_bytes = static_cast<uint32_t>(config.max_header_bytes);
  options.max_body_bytes = static_cast<uint64_t>(config.max_body_bytes);
  options.max_connections = static_cast<int>(config.max_connections);
  options.max_connections_per_address = static_cast<int>(config.max_connections_per_address);
  options.max_connections_per_identity = static_cast<int>(config.max_connections_per_device);
  for (const std::string& proxy : config.trusted_proxies) {
    options.trusted_proxies.push_back(boost::asio::ip::make_address(proxy));  // validated
  }
  return options;
}

std::string DefaultPublicUrl(const http::ServerOptions& options, uint16_t port) {
  std::string host = options.address;
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(options.tls ? "https" : "http") + "://" + host + ":" + std::to_string(port);
}

Status PrepareRepository(const RepositoryLayout& repo) {
  for (const auto& dir : {repo.metadata_dir(), repo.artifacts_dir(), repo.torrents_dir()}) {
    RETURN_IF_ERROR(CreateDirectories(dir));
  }
  return Status::Ok();
}

// A holder duty (the rollouts' evaluation and the fleet's re-signing) that
// then has the network thread check the held notice requests at once: a
// fleet document this replica re-signed wakes its device's request without
// waiting for the next 1 s check.
class CheckNoticesAfter final : public MetadataRefresher {
 public:
  CheckNoticesAfter(MetadataRefresher& duty, std::function<void()> check)
      : duty_(duty), check_(std::move(check)) {}
  Result<Duration> Refresh(WallTime now) override {
    auto wait = duty_.Refresh(now);
    check_();
    return wait;
  }

 private:
  MetadataRefresher& duty_;
  std::function<void()> check_;
};

// The signing duties on their own thread: the lease (its own connection),
// the duty and its timer. Destroyed in reverse order, so that the schedule
// stops before its executor, and the lease is released last (another
// replica takes it at once rather than after its TTL).
// The webhook sender has a thread and timer of its own (a slow receiver
// delays no signing) and asks the duty whether the lease is held; it stops
// first. It runs without webhooks too: it prunes the outbox.
struct SigningParts {
  std::unique_ptr<CheckNoticesAfter> holder_duty;
  std::unique_ptr<SigningLease> lease;
  std::unique_ptr<SigningDuty> duty;
  std::unique_ptr<ThreadExecutor> executor;
  std::unique_ptr<RefreshSchedule> schedule;
  std::unique_ptr<WebhookSender> sender;
  std::unique_ptr<ThreadExecutor> sender_executor;
  std::unique_ptr<RefreshSchedule> sender_schedule;
  ~SigningParts() {
    if (sender != nullptr) sender->Stop();
    sender_schedule.reset();
    sender_executor.reset();
    schedule.reset();
    executor.reset();
    if (lease == nullptr) return;
    if (Status st = lease->Release(); !st.ok()) spdlog::warn("{}", st.ToString());
  }
};

Result<std::unique_ptr<SigningParts>> StartSigning(
    const TrackerConfig& config, const std::string& db_url, MetadataRefresher& refresher,
    MetadataRefresher* holder_duty, std::function<void()> check_notices,
    std::vector<WebhookTarget> webhooks, const Clock& clock, TrackerMetrics& metrics) {
  auto parts = std::make_unique<SigningParts>();
  if (holder_duty != nullptr) {
    parts->holder_duty =
        std::make_unique<CheckNoticesAfter>(*holder_duty, std::move(check_notices));
    holder_duty = parts->holder_duty.get();
  }
  ASSIGN_OR_RETURN(parts->lease,
                   SigningLease::Open(db_url, clock, DefaultLeaseHolder(),
                                      std::chrono::seconds(config.signing_lease_ttl_s)));
  parts->duty = std::make_unique<SigningDuty>(
      *parts->lease, refresher, RepositoryLayout{config.repository}.metadata_dir(), &metrics);
  parts->duty->SetHolderDuty(holder_duty);
  parts->executor = std::make_unique<ThreadExecutor>();
  parts->schedule = std::make_unique<RefreshSchedule>(*parts->executor, clock, *parts->duty);
  parts->schedule->Start();
  // Without webhooks the sender only prunes the outbox, hourly.
  SigningDuty* duty = parts->duty.get();
  parts->sender = std::make_unique<WebhookSender>(
      db_url, std::move(webhooks), WebhookOptionsOf(config), clock,
      [duty] { return duty->holding(); }, &metrics);
  parts->sender_executor = std::make_unique<ThreadExecutor>();
  parts->sender_schedule =
      std::make_unique<RefreshSchedule>(*parts->sender_executor, clock, *parts->sender);
  parts->sender_schedule->Start();
  return parts;
}

}  // namespace

Status RunTrackerServer(const TrackerConfig& config, MetadataRefresher* refresher,
                        MetadataRefresher* holder_duty, FleetModelView fleet_model,
                        OperatorActionRunner operator_actions) {
  RETURN_IF_ERROR(ValidateTrackerConfig(config));
  ASSIGN_OR_RETURN(ListenAddress listen, ParseListenAddress(config.listen));
  ASSIGN_OR_RETURN(TrackerServiceOptions service_options, ServiceOptions(config));
  RETURN_IF_ERROR(PrepareRepository(service_options.repo));
  const Clock& clock = SystemClock::Instance();
  const std::string db_url = TrackerDatabaseUrl(config, service_options.repo.default_db_path());
  ASSIGN_OR_RETURN(auto db, DeviceDb::Open(db_url, clock));
  // Operator accounts, sessions and the audit log: a connection of the
  // network thread's own (docs/operators.md).
  ASSIGN_OR_RETURN(auto operators, OperatorStore::Open(db_url, clock));
  ASSIGN_OR_RETURN(const bool accounts, operators->HasOperators());
  ASSIGN_OR_RETURN(std::vector<WebhookTarget> webhooks, LoadWebhookTargets(config));

  boost::asio::io_context io(1);
  // Logins' password checks (Argon2id, about 0.1 s each) run on a thread of
  // their own, one at a time, so the network thread keeps serving devices.
  // Declared after `io`: its thread is joined before `io` goes.
  ThreadExecutor password_checks;
  service_options.offload = [&io, &password_checks](std::function<void()> job,
                                                    std::function<void()> done) {
    password_checks.Post([&io, job = std::move(job), done = std::move(done)]() mutable {
      job();
      boost::asio::post(io, std::move(done));
    });
  };
  std::unique_ptr<TrackerService> service;
  const http::ServerOptions http_options = ServerOptions(config, listen);
  ASSIGN_OR_RETURN(auto server, http::Server::Start(
                                    io, http_options,
                                    [&service](const http::Request& request,
                                               const http::RequestContext& context) {
                                      return service->Handle(request, context);
                                    },
                                    [&service](const char* kind, const std::string& detail) {
                                      if (service) service->refusals().Refuse(kind, detail);
                                    }));
  service_options.public_url = config.public_url.empty()
                                   ? DefaultPublicUrl(http_options, server->port())
                                   : config.public_url;
  service_options.listen_host = listen.host;
  service_options.listen_port = server->port();
  service_options.fleet_model = std::move(fleet_model);
  service_options.operators = operators.get();
  service_options.operator_actions = std::move(operator_actions);
  service = std::make_unique<TrackerService>(service_options, *db, clock);
  if (!config.port_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(config.port_file, std::to_string(server->port()) + "\n"));
  }
  spdlog::info("serving repository {} on {}:{} ({}), public URL {}, database {}, enrolment {}",
               config.repository, listen.host, server->port(), http_options.tls ? "https" : "http",
               service_options.public_url, RedactDatabaseUrl(db_url),
               service_options.fleet_token_sha256.empty()
                   ? "by batch tokens only (flotilla-tracker token create)"
                   : "by batch tokens and the fleet token file");
  if (accounts) {
    spdlog::info(
        "operators: the dashboard, /api/v1/fleet and /metrics need a login or an "
        "operator token (docs/operators.md)");
  } else {
    spdlog::warn(
        "operators: no account, so the dashboard, /api/v1/fleet and /metrics are open "
        "to whoever reaches them; `flotilla-tracker operator add NAME --role admin` "
        "closes them");
  }

  // Held notice requests are checked once a second (notice_board.h).
  boost::asio::steady_timer notice_timer(io);
  std::function<void()> notice_tick = [&] {
    notice_timer.expires_after(std::chrono::seconds(1));
    notice_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      service->NoticeTick();
      notice_tick();
    });
  };
  notice_tick();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    server->StopAccepting();
    io.stop();
  });
  std::unique_ptr<SigningParts> signing;
  if (refresher != nullptr) {
    if (!webhooks.empty()) {
      spdlog::info("webhooks: {} configured, sent by the replica holding the signing lease",
                   webhooks.size());
    }
    // Posted to the network thread, which owns the held requests.
    auto check_notices = [&io, &service] {
      boost::asio::post(io, [&service] { service->NoticeTick(); });
    };
    ASSIGN_OR_RETURN(signing, StartSigning(config, db_url, *refresher, holder_duty, check_notices,
                                           std::move(webhooks), clock, service->metrics()));
  } else if (!webhooks.empty()) {
    spdlog::warn("webhooks: none is sent from this tracker, which runs no signing duties");
  }
  try {
    io.run();
  } catch (const std::exception& e) {
    return Internal(std::string("server loop: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace flotilla::tracker
