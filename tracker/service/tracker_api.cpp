// TrackerService: enrolment, reports, the fleet, dashboard and metrics endpoints.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/ed25519.h"
#include "tracker/announce/announce_request.h"
#include "tracker/api/device_report.h"
#include "tracker/api/enrolment.h"
#include "tracker/publish/torrent_maker.h"
#include "tracker/service/dashboard.h"
#include "tracker/service/json_reply.h"
#include "tracker/service/tracker_service.h"

namespace flotilla::tracker {
namespace {

// Failures shown by the dashboard and GET /api/v1/fleet: the newest ones.
constexpr int kFleetFailures = 50;

// The page=N of a dashboard or fleet query (1-based): nullopt when absent,
// InvalidArgument when malformed.
Result<std::optional<uint64_t>> PageOf(std::string_view query) {
  ASSIGN_OR_RETURN(auto params, ParseQuery(query));
  const auto it = params.find("page");
  if (it == params.end()) return std::optional<uint64_t>();
  uint64_t page = 0;
  const std::string& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), page);
  if (ec != std::errc() || end != text.data() + text.size() || page == 0 || page > 1'000'000'000) {
    return InvalidArgument("page must be a number from 1");
  }
  return std::optional<uint64_t>(page);
}

// The devices of `page`, and the fleet model's rollouts and desired
// releases when the service has it.
Result<FleetSnapshot> LoadFleet(DeviceDb& db, const FleetModelView& model,
                                std::optional<uint64_t> page) {
  DevicePage devices;
  if (page) devices = {(*page - 1) * kDashboardDevicesPerPage, kDashboardDevicesPerPage};
  ASSIGN_OR_RETURN(FleetSnapshot fleet, db.Snapshot(kFleetFailures, devices));
  if (model) RETURN_IF_ERROR(model(fleet, kDashboardRollouts, kDashboardFailedPerRollout));
  return fleet;
}

}  // namespace

std::string_view BearerToken(const http::Request& request) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return {};
  std::string_view value = it->value();
  constexpr std::string_view kScheme = "Bearer ";
  if (!value.starts_with(kScheme)) return {};
  return value.substr(kScheme.size());
}

// How far a device's signed statement may be from the tracker's clock
// (docs/identity.md); a replay inside it is refused by the database.
constexpr int64_t kEnrolStatementWindowS = 300;

Status TrackerService::CheckStatement(std::string_view name, const std::string& public_key,
                                      int64_t signed_at_ms, const std::string& signature,
                                      std::string_view retry) const {
  auto key = Ed25519PublicKey::FromHex(public_key);
  auto sig = HexDecode(signature);
  const std::string statement = EnrolStatement(name, public_key, signed_at_ms);
  if (!key.ok() || !sig.ok() || !VerifyEd25519(*key, AsBytes(statement), *sig).ok()) {
    return PermissionDenied("the enrolment statement's signature does not verify with public_key");
  }
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
          .count();
  const int64_t off_ms = signed_at_ms - now_ms;
  if (std::abs(off_ms) > kEnrolStatementWindowS * 1000) {
    return PermissionDenied("signed_at_ms is " + std::to_string(off_ms / 1000) +
                            " s off the tracker's clock (at most " +
                            std::to_string(kEnrolStatementWindowS) +
                            "): set the device's clock (NTP) and " + std::string(retry));
  }
  return Status::Ok();
}

http::Reply TrackerService::BindKey(std::string_view device_id, const http::Request& request) {
  auto authenticated = AuthenticateDevice(request, device_id, "key", "key binding");
  if (auto* refusal = std::get_if<http::Reply>(&authenticated)) return std::move(*refusal);
  const DeviceIdentity& device = std::get<DeviceIdentity>(authenticated);
  auto binding = ParseKeyBinding(request.body());
  if (!binding.ok()) {
    refusals_.Refuse("key_malformed", "key binding of device '" + device.name + "'");
    return JsonError(http::status::bad_request, binding.status().message());
  }
  Status signed_ok = CheckStatement(device.name, binding->public_key, binding->signed_at_ms,
                                    binding->signature, "try again");
  if (!signed_ok.ok()) {
    refusals_.Refuse("key_signature",
                     "key binding of device '" + device.name + "': " + signed_ok.message());
    return JsonError(http::status::forbidden, signed_ok.message());
  }
  Status bound = db_.BindKey(device.device_id, binding->public_key, binding->signed_at_ms);
  if (bound.code() == StatusCode::kAlreadyExists || bound.code() == StatusCode::kPermissionDenied) {
    refusals_.Refuse("key_signature",
                     "key binding of device '" + device.name + "': " + bound.message());
    return JsonError(bound.code() == StatusCode::kAlreadyExists ? http::status::conflict
                                                                : http::status::forbidden,
                     bound.message());
  }
  if (!bound.ok()) {
    spdlog::error("key binding of '{}' failed: {}", device.name, bound.ToString());
    return JsonError(http::status::internal_server_error, "key binding failed");
  }
  spdlog::info("device '{}' ({}) bound to key {}", device.name, device.device_id,
               binding->public_key.substr(0, 16));
  return http::Reply::Typed(http::status::no_content, "application/json", "");
}

http::Reply TrackerService::Enroll(const http::Request& request) {
  auto parsed = ParseEnrolRequest(request.body());
  if (!parsed.ok()) {
    // Not the parser's message: it may quote the body, fleet token included.
    refusals_.Refuse("enrol_malformed", "malformed enrolment request");
    return JsonError(http::status::bad_request, parsed.status().message());
  }
  const std::string& name = parsed->name;
  // The fleet token (serve's fleet_token_file) or a batch token the
  // database issued; which one, and whether it is still valid, the
  // enrolment's transaction decides.
  const std::string given = HashSecret(parsed->fleet_token);
  const bool fleet_token = !options_.fleet_token_sha256.empty() &&
                           ConstantTimeEqual(AsBytes(given), AsBytes(options_.fleet_token_sha256));
  if (!fleet_token) {
    auto known = db_.IsEnrolToken(given);
    if (!known.ok()) {
      spdlog::error("enrolment of '{}': {}", name, known.status().ToString());
      return JsonError(http::status::internal_server_error, "enrolment failed");
    }
    if (!*known) {
      refusals_.Refuse("enrol_token", "enrolment of '" + name + "': wrong enrolment token");
      return JsonError(http::status::forbidden, "wrong enrolment token");
    }
  }
  if (!parsed->public_key.empty()) {
    Status signed_ok = CheckStatement(name, parsed->public_key, parsed->signed_at_ms,
                                      parsed->signature, "enrol again");
    if (!signed_ok.ok()) {
      refusals_.Refuse("enrol_signature", "enrolment of '" + name + "': " + signed_ok.message());
      return JsonError(http::status::forbidden, signed_ok.message());
    }
  }
  if (db_.device_count() >= options_.enrolment.max_devices) {
    refusals_.Refuse("enrol_cap", "enrolment of '" + name + "': the fleet has " +
                                      std::to_string(db_.device_count()) + " devices, its cap");
    return JsonError(http::status::forbidden, "the fleet is at its device cap");
  }
  if (!enrolments_.Take(clock_.MonotonicNow())) {
    refusals_.Refuse("enrol_rate", "enrolment of '" + name + "': too many enrolments");
    http::Reply r = JsonError(http::status::too_many_requests, "too many enrolments, retry later");
    r.headers.emplace_back("Retry-After", "10");
    return r;
  }
  const EnrolAdmission admission{.fleet_token = fleet_token,
                                 .token_sha256 = fleet_token ? "" : given,
                                 .public_key = parsed->public_key,
                                 .signed_at_ms = parsed->signed_at_ms};
  auto enrolment = db_.Enroll(name, parsed->site, parsed->tags, admission);
  if (!enrolment.ok()) {
    const Status& st = enrolment.status();
    if (st.code() == StatusCode::kPermissionDenied) {
      refusals_.Refuse("enrol_token", "enrolment of '" + name + "': " + st.message());
      return JsonError(http::status::forbidden, st.message());
    }
    if (st.code() == StatusCode::kAlreadyExists) {
      refusals_.Refuse("enrol_name", "enrolment of '" + name + "': " + st.message());
      return JsonError(http::status::conflict, st.message());
    }
    spdlog::error("enrolment of '{}' failed: {}", name, st.ToString());
    return JsonError(http::status::internal_server_error, "enrolment failed");
  }
  spdlog::info(
      "enrolled device '{}' as {} (site '{}', {})", name, enrolment->device_id, parsed->site,
      parsed->public_key.empty() ? "no device key" : "key " + parsed->public_key.substr(0, 16));
  enrolment->announce_url = AnnounceUrl(options_.public_url) + "/" + enrolment->passkey;
  return JsonReply(http::status::ok, DeviceCredentialsToJson(*enrolment));
}

std::variant<DeviceIdentity, http::Reply> TrackerService::AuthenticateDevice(
    const http::Request& request, std::string_view device_id, std::string_view kind,
    std::string_view noun) {
  const std::string_view credential = BearerToken(request);
  auto device = credential.empty() ? Result<DeviceIdentity>(PermissionDenied("no credential"))
                                   : db_.AuthenticateCredential(credential);
  if (!device.ok()) {
    refusals_.Refuse(std::string(kind) + "_credential",
                     std::string(noun) + " without a known credential");
    http::Reply r = JsonError(http::status::unauthorized, "a device credential is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  authenticated_device_ = device->device_id;
  if (device->device_id != device_id) {
    refusals_.Refuse(std::string(kind) + "_credential",
                     std::string(noun) + " of device '" + device->name + "' for another device");
    return JsonError(http::status::forbidden, "credential belongs to another device");
  }
  if (!WithinBudget(*device)) {
    refusals_.Refuse(std::string(kind) + "_device_rate",
                     std::string(noun) + "s of device '" + device->name + "'");
    http::Reply r = JsonError(http::status::too_many_requests, "too many requests, retry later");
    r.headers.emplace_back("Retry-After", "60");
    return r;
  }
  return std::move(*device);
}

http::Reply TrackerService::Report(std::string_view device_id, const http::Request& request,
                                   const http::RequestContext& context) {
  auto authenticated = AuthenticateDevice(request, device_id, "report", "report");
  if (auto* refusal = std::get_if<http::Reply>(&authenticated)) return std::move(*refusal);
  const DeviceIdentity& device = std::get<DeviceIdentity>(authenticated);
  auto report = ParseDeviceReport(request.body());
  if (!report.ok()) {
    refusals_.Refuse("report_malformed",
                     "report of device '" + device.name + "': " + report.status().message());
    return JsonError(http::status::bad_request, report.status().message());
  }
  RecordBadPeers(device, *report, context);
  if (Status st = db_.RecordReport(device.device_id, *report); !st.ok()) {
    if (st.code() == StatusCode::kNotFound) {  // decommissioned a moment ago
      refusals_.Refuse("report_credential",
                       "report of decommissioned device '" + device.name + "'");
      http::Reply r = JsonError(http::status::unauthorized, "unknown device credential");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    spdlog::error("report from '{}' not stored: {}", device.name, st.ToString());
    return JsonError(http::status::internal_server_error, "report not stored");
  }
  if (!report->errors.empty()) {
    spdlog::info("device '{}' reports {} error(s) in state {}", device.name, report->errors.size(),
                 report->state);
  }
  http::Reply reply = http::Reply::Typed(http::status::no_content, "application/json", "");
  // Open log requests (docs/logs.md): a header, which nodes that do not
  // take log requests ignore.
  if (const uint64_t logs = NewestLogRequest(device.device_id); logs != 0) {
    reply.headers.emplace_back("X-Flotilla-Logs", std::to_string(logs));
  }
  return reply;
}

bool TrackerService::IsOrigin(const IpAddress& address, uint16_t port) const {
  auto host_port = [](std::string_view url) {  // "http://host:port/..." -> host, port
    const bool tls = url.starts_with("https:");
    if (size_t scheme = url.find("://"); scheme != std::string_view::npos) {
      url.remove_prefix(scheme + 3);
    }
    url = url.substr(0, url.find('/'));
    const size_t colon = url.rfind(':');
    std::string_view host = url.substr(0, colon);
    if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
    uint16_t p = 0;
    if (colon != std::string_view::npos) {
      std::from_chars(url.data() + colon + 1, url.data() + url.size(), p);
    } else {
      p = tls ? 443 : 80;
    }
    return std::make_pair(IpAddress::Parse(host), p);
  };
  auto [public_host, public_port] = host_port(options_.public_url);
  if (public_host.ok() && *public_host == address && public_port == port) return true;
  if (port != options_.listen_port) return false;
  auto listen = IpAddress::Parse(options_.listen_host);
  return !listen.ok() || *listen == address || *listen == IpAddress{} ||
         *listen == IpAddress{.v6 = true};
}

void TrackerService::RecordBadPeers(const DeviceIdentity& device, const DeviceReport& report,
                                    const http::RequestContext& context) {
  if (report.bad_peers.empty()) return;
  const IpAddress source = IpAddress::Parse(context.remote.to_string()).value_or(IpAddress{});
  const std::string site = ReporterSite(device.site, source);
  for (const BadPeer& bad : report.bad_peers) {
    auto address = IpAddress::Parse(bad.ip);
    auto hash = HexDecode(bad.swarm);
    if (!address.ok() || !hash.ok() || hash->size() != 20) continue;  // checked by the parser
    if (IsOrigin(*address, bad.port)) continue;  // the web seed is never delisted
    InfoHash20 swarm;
    std::copy(hash->begin(), hash->end(), swarm.begin());
    if (!reputation_.Report(swarm, *address, bad.port, site)) {
      refusals_.Refuse("bad_peer_table_full", "bad-peer report of device '" + device.name + "'");
      return;
    }
  }
  spdlog::info("device '{}' reports {} peer(s) that sent bad data", device.name,
               report.bad_peers.size());
}

http::Reply TrackerService::Fleet(std::string_view query) {
  auto page = PageOf(query);
  if (!page.ok()) return JsonError(http::status::bad_request, page.status().message());
  auto fleet = LoadFleet(db_, options_.fleet_model, *page);
  if (!fleet.ok()) {
    spdlog::error("fleet: {}", fleet.status().ToString());
    return JsonError(http::status::internal_server_error, "database error");
  }
  http::Reply reply = JsonReply(http::status::ok, FleetToJson(*fleet));
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

// Not logged: a balancer asks every few seconds, and the requests that need
// the database log its failures already.
http::Reply TrackerService::Ready() {
  if (!db_.Ping().ok()) {
    return http::Reply::Text(http::status::service_unavailable, "not ready: database unreachable");
  }
  return http::Reply::Text(http::status::ok, "ready");
}

http::Reply TrackerService::Dashboard(std::string_view query, const OperatorIdentity& who,
                                      const http::Request& request) {
  auto page = PageOf(query);
  if (!page.ok()) return http::Reply::Text(http::status::bad_request, page.status().message());
  auto fleet = LoadFleet(db_, options_.fleet_model, page->value_or(1));
  if (!fleet.ok()) {
    spdlog::error("dashboard: {}", fleet.status().ToString());
    return http::Reply::Text(http::status::internal_server_error, "database error");
  }
  DashboardContext ctx;
  ctx.now_unix = UnixSeconds(clock_);
  ctx.swarms = swarms_.swarm_count();
  ctx.peers = swarms_.peer_count();
  ctx.signed_in = who;
  if (const std::string_view cookie = SessionCookie(request);
      !cookie.empty() && BearerToken(request).empty()) {
    ctx.csrf = CsrfTokenOf(cookie);
  }
  if (options_.operators != nullptr && RoleAllows(who.role, "audit.read")) {
    auto audit = ListAudit(options_.operators->engine(), {.limit = kDashboardAuditEntries});
    if (!audit.ok()) {
      spdlog::error("dashboard: {}", audit.status().ToString());
      return http::Reply::Text(http::status::internal_server_error, "database error");
    }
    ctx.audit = std::move(*audit);
  }
  ctx.logs_link =
      options_.operators != nullptr && !who.name.empty() && RoleAllows(who.role, "logs.request");
  http::Reply reply = http::Reply::Typed(http::status::ok, "text/html; charset=utf-8",
                                         RenderDashboard(*fleet, ctx));
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

http::Reply TrackerService::Metrics() {
  GaugeSnapshot gauges;
  auto per_state = db_.DevicesPerState();
  if (!per_state.ok()) {
    spdlog::error("metrics: {}", per_state.status().ToString());
    return http::Reply::Text(http::status::internal_server_error, "database error");
  }
  gauges.devices_per_state = std::move(*per_state);
  gauges.swarms = static_cast<int64_t>(swarms_.swarm_count());
  gauges.peers = static_cast<int64_t>(swarms_.peer_count());
  gauges.notices_held = static_cast<int64_t>(notice_.held());
  return http::Reply::Typed(http::status::ok, "text/plain; version=0.0.4", metrics_.Render(gauges));
}

}  // namespace flotilla::tracker
