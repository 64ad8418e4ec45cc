// The tracker's HTTP endpoints (docs/tracker.md lists each with examples):
//
//   GET  /metadata/<name>                 signed metadata, as stored
//   GET  /artifacts/<hex>[/<hex>]         artifact bytes, Range supported (web seed)
//   GET  /torrents/<hex>.torrent[?passkey=P]  the artifact's torrent (personalised with P)
//   GET  /targets/fleet/<hex>.root.json   the fleet root (fleet_route.cpp)
//   GET  /fleet/devices/<id>/{metadata,targets}/<name>  a device's fleet
//                                         repository, to that device only
//   GET  /announce/<passkey>?...          BitTorrent HTTP tracker (BEP 3/23/52)
//   POST /api/v1/enroll                   fleet token -> device id, credential, passkey
//   POST /api/v1/devices/<id>/report      device status (Authorization: Bearer <credential>)
//   GET  /api/v1/devices/<id>/notice?image=N&fleet=M&wait=S  held until the
//                                         image or the device's fleet timestamp
//                                         is no longer N / M (notice_board.h)
//   GET  /api/v1/fleet[?page=N]           devices, their latest reports and desired releases,
//                                         releases, failures, rollouts (JSON)
//   GET  /  (or /dashboard)[?page=N]      the fleet dashboard (HTML), a page of devices
//   GET  /metrics                         Prometheus metrics
//   GET  /login, POST /login, POST /logout  the dashboard's login (operator_routes.cpp)
//   POST /api/v1/operator/{pin,unpin,recall,rollouts[/<id>/{pause,resume,abort}]}
//   GET  /api/v1/operator/audit            the operator API (docs/operators.md)
//   GET  /healthz                         "ok" while the process serves (liveness)
//   GET  /readyz                          "ready", or 503 while the database does not answer
//
// Not thread-safe: Handle runs on the server's one network thread.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "http/http_server.h"
#include "tracker/announce/announce_response.h"
#include "tracker/announce/reputation.h"
#include "tracker/announce/swarm_registry.h"
#include "tracker/service/dashboard.h"
#include "tracker/service/metrics.h"
#include "tracker/service/notice_board.h"
#include "tracker/service/refusals.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/operator_store.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

// Enrolments with the fleet token: a token bucket, and a cap on devices.
struct EnrolmentLimits {
  double burst = 600;
  double per_minute = 600;
  size_t max_devices = 100'000;
};

// Announces and reports of one device (its credential and passkey): a token
// bucket per device, so one device's loop cannot take the server's time.
struct DeviceRequestLimits {
  double burst = 2048;
  double per_minute = 2048;
};

// Runs an operator action (tracker/fleet/fleet_actions.h, OperatorActions::Run)
// for the operator API: the JSON the command prints with --json, or the
// store's error.
using OperatorActionRunner = std::function<Result<Json>(
    std::string_view action, const Json& body, const std::string& actor, int64_t rollout_id)>;

// Failed dashboard logins counted per account and per address
// (docs/operators.md, "Dashboard login").
struct LoginLimits {
  size_t per_account = 5;
  size_t per_address = 20;
  Duration window = std::chrono::minutes(15);
  // Every login attempt, whatever its name and address: each costs a
  // password hash (about 0.1 s) on the network thread.
  double burst = 30;
  double per_minute = 60;
};

struct TrackerServiceOptions {
  RepositoryLayout repo;
  std::string public_url;          // base of announce URLs handed to devices
  std::string fleet_token_sha256;  // hex; empty: no fleet token (batch tokens only)
  AnnounceTiming timing;
  SwarmLimits swarm;
  EnrolmentLimits enrolment;
  DeviceRequestLimits device_requests;
  // Where the server listens (also the web seed's address): a bad-peer
  // report naming it, or public_url's host and port, is ignored.
  std::string listen_host;
  uint16_t listen_port = 0;
  // Empty: the dashboard and /api/v1/fleet show no rollout and no desired release.
  FleetModelView fleet_model;
  NoticeLimits notice;
  // Operator accounts (docs/operators.md); null: no operator login at all
  // (the dashboard, /api/v1/fleet and /metrics are open, as in tests).
  OperatorStore* operators = nullptr;
  // Empty: the operator API's actions answer 503.
  OperatorActionRunner operator_actions;
  LoginLimits logins;
  // Runs `job` off the network thread, then `done` on it: serve gives the
  // password checks of logins and the operator actions (with their
  // re-signing) a thread of their own. Empty: they run on the calling thread
  // (tests that drive the service directly).
  std::function<void(std::function<void()> job, std::function<void()> done)> offload;
};

// The token after "Bearer " in Authorization, or empty.
std::string_view BearerToken(const http::Request& request);
// The flotilla_session cookie's value, or empty.
std::string_view SessionCookie(const http::Request& request);
// An application/x-www-form-urlencoded body ('+' is a space).
Result<std::map<std::string, std::string>> ParseForm(std::string_view body);
// A form field's value, or empty.
std::string FormValue(const std::map<std::string, std::string>& form, const char* name);

class TrackerService {
 public:
  TrackerService(TrackerServiceOptions options, DeviceDb& db, const Clock& clock);

  http::Reply Handle(const http::Request& request, const http::RequestContext& context);

  const SwarmRegistry& swarms() const { return swarms_; }
  TrackerMetrics& metrics() { return metrics_; }
  // For refusals made outside the handler (the HTTP server's connection caps).
  RefusalLog& refusals() { return refusals_; }
  // Answers the held notice requests whose versions changed or whose wait
  // passed; the server calls it once a second.
  void NoticeTick() { notice_.Tick(); }
  size_t notices_held() const { return notice_.held(); }

 private:
  struct RequestTarget {
    std::string_view path;
    std::string_view query;
    std::vector<std::string_view> parts;  // path split at '/', not decoded
  };
  // `route` receives the metrics label of the endpoint.
  http::Reply Route(const http::Request& request, const http::RequestContext& context,
                    std::string& route);
  std::optional<http::Reply> RouteContent(const http::Request& request,
                                          const http::RequestContext& context,
                                          const RequestTarget& target, std::string& route);
  http::Reply RouteApiAndPages(const http::Request& request, const http::RequestContext& context,
                               const RequestTarget& target, std::string& route);
  http::Reply ServeMetadata(std::string_view name);
  http::Reply ServeArtifact(std::string_view hex, const http::Request& request);
  http::Reply ServeTorrent(std::string_view file, std::string_view query);
  http::Reply ServeFleetRoot(std::string_view file);
  http::Reply ServeFleetDevice(const std::vector<std::string_view>& parts,
                               const http::Request& request);
  // A held request: answered when the image or the device's fleet timestamp
  // version differs from the query's, or "unchanged" after its wait.
  http::Reply Notice(std::string_view device_id, std::string_view query,
                     const http::Request& request);
  http::Reply Announce(std::string_view passkey, std::string_view query,
                       const http::RequestContext& context);
  http::Reply Enroll(const http::Request& request);
  // POST /api/v1/devices/<id>/key: a device enrolled without a key binds one.
  http::Reply BindKey(std::string_view device_id, const http::Request& request);
  // PermissionDenied unless `signature` is `public_key`'s over
  // EnrolStatement(name, ...) and `signed_at_ms` is within the window of
  // the tracker's clock; `retry` ends the clock message ("enrol again").
  Status CheckStatement(std::string_view name, const std::string& public_key, int64_t signed_at_ms,
                        const std::string& signature, std::string_view retry) const;
  http::Reply Report(std::string_view device_id, const http::Request& request,
                     const http::RequestContext& context);
  // Takes one request from the device's budget; false when it is spent.
  bool WithinBudget(const DeviceIdentity& device);
  // The device whose bearer credential `request` carries, when that is
  // `device_id` and its budget is not spent (the request then counts toward
  // the device's connection cap); otherwise the reply refusing it (401, 403
  // or 429), counted as `kind`_credential or `kind`_device_rate. `noun` names
  // the request in the refusal log ("report").
  std::variant<DeviceIdentity, http::Reply> AuthenticateDevice(const http::Request& request,
                                                               std::string_view device_id,
                                                               std::string_view kind,
                                                               std::string_view noun);
  bool IsOrigin(const IpAddress& address, uint16_t port) const;
  // Marks the report's bad peers for the announce's reputation.
  void RecordBadPeers(const DeviceIdentity& device, const DeviceReport& report,
                      const http::RequestContext& context);
  // `query` may hold page=N (1-based).
  http::Reply Fleet(std::string_view query);
  // The operator the request authenticates as, when it may do `action`
  // (docs/operators.md): nullopt to go on (`who` empty when no account
  // exists and the action is a read left open), else the refusal: 401 (a
  // page: a redirect to /login), 403 for a role that lacks it (audited) or
  // a session's POST without its CSRF token.
  std::optional<http::Reply> Authorize(const http::Request& request,
                                       const http::RequestContext& context, std::string_view action,
                                       bool page, OperatorIdentity& who);
  http::Reply LoginPage(const http::Request& request, const http::RequestContext& context);
  http::Reply Login(const http::Request& request, const http::RequestContext& context);
  // A login's answer once its password was checked (on the network thread).
  http::Reply LoginChecked(const PendingLogin& login, bool password_matches,
                           const std::string& from, bool tls);
  http::Reply Logout(const http::Request& request, const http::RequestContext& context);
  http::Reply OperatorApi(const std::vector<std::string_view>& parts, std::string_view query,
                          const http::Request& request, const http::RequestContext& context);
  // An operator action's answer (the API's JSON, or its error).
  http::Reply ActionAnswer(Result<Json> out, const std::string& actor, const std::string& action);
  // Whether `key` failed `limit` logins within the window (and forgets
  // older ones).
  bool LoginsBlocked(std::deque<MonoTime>& failures, size_t limit);
  http::Reply Dashboard(std::string_view query, const OperatorIdentity& who,
                        const http::Request& request);
  http::Reply Metrics();
  http::Reply Ready();
  // Remote logs (log_routes.cpp, docs/logs.md): GET .../devices/ID/logs,
  // POST .../devices/ID/logs/REQUEST_ID; POST .../operator/logs, GET
  // .../operator/logs/ID.
  http::Reply DeviceLogs(const std::vector<std::string_view>& parts, const http::Request& request);
  // The dashboard's device-log pages: GET and POST /logs, GET /logs/ID.
  http::Reply LogPages(std::string_view path, std::string_view query, const http::Request& request,
                       const http::RequestContext& context);
  http::Reply OperatorLogs(const std::vector<std::string_view>& parts, const http::Request& request,
                           const http::RequestContext& context);
  // The newest open log request of a device (0: none), and of every device
  // having one.
  uint64_t NewestLogRequest(const std::string& device_id);
  std::map<std::string, uint64_t> NewestLogRequests();
  int64_t WallSeconds() const;

  const TrackerServiceOptions options_;
  DeviceDb& db_;
  const Clock& clock_;
  TrackerMetrics metrics_;
  RefusalLog refusals_;
  PeerReputation reputation_;
  SwarmRegistry swarms_;
  TokenBucket enrolments_;
  TokenBucket login_attempts_;
  std::unordered_map<std::string, TokenBucket> device_budgets_;
  NoticeBoard notice_;
  // The device the request being handled authenticated as (its id), for
  // the server's per-device connection count; empty when none.
  std::string authenticated_device_;
  // Failed logins per account name and per address (LoginLimits).
  std::unordered_map<std::string, std::deque<MonoTime>> failed_logins_by_name_;
  std::unordered_map<std::string, std::deque<MonoTime>> failed_logins_by_address_;
};

}  // namespace flotilla::tracker
