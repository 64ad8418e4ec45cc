// TrackerService: remote logs (docs/logs.md). Devices list the log requests
// open for them and upload an answer with their credential; operators with
// the logs.request action (admin) ask and read through the operator API.
#include <spdlog/spdlog.h>

#include <charconv>

#include "tracker/announce/announce_request.h"
#include "tracker/service/log_pages.h"
#include "tracker/service/tracker_service.h"
#include "tracker/storage/log_store.h"
#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {
namespace {

http::Reply LogJson(http::status status, const Json& body) {
  http::Reply reply = http::Reply::Typed(status, "application/json", body.dump() + "\n");
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

http::Reply LogError(http::status status, const std::string& message) {
  return LogJson(status, Json{{"error", message}});
}

std::optional<int64_t> RequestId(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value <= 0) {
    return std::nullopt;
  }
  return value;
}

http::Reply Html(http::status status, std::string page) {
  http::Reply reply = http::Reply::Typed(status, "text/html; charset=utf-8", std::move(page));
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

http::Reply MethodRefused(const char* allow) {
  http::Reply r = LogError(http::status::method_not_allowed, "method not allowed");
  r.headers.emplace_back("Allow", allow);
  return r;
}

}  // namespace

int64_t TrackerService::WallSeconds() const { return UnixSeconds(clock_); }

uint64_t TrackerService::NewestLogRequest(const std::string& device_id) {
  if (options_.operators == nullptr) return 0;
  auto pending = PendingLogRequests(options_.operators->engine(), device_id, WallSeconds());
  if (!pending.ok()) {
    spdlog::error("log requests of {}: {}", device_id, pending.status().ToString());
    return 0;
  }
  return pending->empty() ? 0 : static_cast<uint64_t>(pending->back().id);
}

std::map<std::string, uint64_t> TrackerService::NewestLogRequests() {
  std::map<std::string, uint64_t> newest;
  if (options_.operators == nullptr) return newest;
  auto rows = options_.operators->engine().Query(
      "SELECT device_id, MAX(id) FROM log_requests WHERE uploaded_at = 0 AND expires_at > ? "
      "GROUP BY device_id",
      {WallSeconds()});
  if (!rows.ok()) {
    spdlog::error("log requests: {}", rows.status().ToString());
    return newest;
  }
  for (size_t i = 0; i < rows->size(); ++i) {
    newest[rows->Text(i, 0)] = static_cast<uint64_t>(rows->Int(i, 1));
  }
  return newest;
}

http::Reply TrackerService::DeviceLogs(const std::vector<std::string_view>& parts,
                                       const http::Request& request) {
  // parts: api v1 devices ID logs [REQUEST_ID]
  const bool list = parts.size() == 5;
  if (list && request.method() != http::verb::get) return MethodRefused("GET");
  if (!list && request.method() != http::verb::post) return MethodRefused("POST");
  auto authenticated = AuthenticateDevice(request, parts[3], "logs", "log request");
  if (auto* refusal = std::get_if<http::Reply>(&authenticated)) return std::move(*refusal);
  const DeviceIdentity& device = std::get<DeviceIdentity>(authenticated);
  if (options_.operators == nullptr) {
    return LogError(http::status::not_found, "this tracker takes no log requests");
  }
  SqlEngine& db = options_.operators->engine();
  if (list) {
    auto pending = PendingLogRequests(db, device.device_id, WallSeconds());
    if (!pending.ok()) {
      spdlog::error("log requests of '{}': {}", device.name, pending.status().ToString());
      return LogError(http::status::internal_server_error, "database error");
    }
    Json requests = Json::array();
    for (const LogRequest& r : *pending) {
      requests.push_back(Json{{"id", r.id}, {"app", r.app}, {"since_s", r.since_s}});
    }
    return LogJson(http::status::ok, Json{{"requests", requests}});
  }
  const auto id = RequestId(parts[5]);
  if (!id) return LogError(http::status::not_found, "no such log request");
  if (request.body().size() > kMaxStoredLogBytes) {
    return LogError(http::status::payload_too_large,
                    "a log upload is at most " + std::to_string(kMaxStoredLogBytes) + " bytes");
  }
  Status st = StoreLogUpload(db, *id, device.device_id, request.body(), WallSeconds());
  if (st.code() == StatusCode::kNotFound) {
    return LogError(http::status::not_found, "no open log request " + std::to_string(*id));
  }
  if (!st.ok()) {
    spdlog::error("log upload of '{}': {}", device.name, st.ToString());
    return LogError(http::status::internal_server_error, "upload not stored");
  }
  spdlog::info("device '{}' uploaded {} bytes of log for request {}", device.name,
               request.body().size(), *id);
  return http::Reply::Typed(http::status::no_content, "application/json", "");
}

http::Reply TrackerService::OperatorLogs(const std::vector<std::string_view>& parts,
                                         const http::Request& request,
                                         const http::RequestContext& context) {
  // parts: api v1 operator logs [ID]
  const bool create = parts.size() == 4;
  if (create && request.method() != http::verb::post) return MethodRefused("POST");
  if (!create && request.method() != http::verb::get) return MethodRefused("GET");
  OperatorIdentity who;
  if (auto refusal = Authorize(request, context, "logs.request", false, who)) return *refusal;
  SqlEngine& db = options_.operators->engine();
  const int64_t now = WallSeconds();
  if (create) {
    auto body = ParseJsonStrict(request.body());
    if (!body.ok() || !body->is_object() || !(*body)["device"].is_string() ||
        !(*body)["app"].is_string() ||
        (body->contains("since_s") && !(*body)["since_s"].is_number_unsigned())) {
      return LogError(http::status::bad_request,
                      "the body must be {\"device\": NAME, \"app\": APP, \"since_s\": N}");
    }
    const std::string app = (*body)["app"];
    if (app.empty() || app.size() > 255) return LogError(http::status::bad_request, "bad app");
    auto device = FindLogDevice(db, (*body)["device"].get<std::string>());
    if (!device.ok()) return LogError(http::status::not_found, device.status().message());
    const int64_t since_s = body->value("since_s", int64_t{0});
    auto id = CreateLogRequest(db, who.name, device->device_id, device->name, app, since_s, now);
    if (id.status().code() == StatusCode::kFailedPrecondition) {
      return LogError(http::status::conflict, id.status().message());
    }
    if (!id.ok()) {
      spdlog::error("log request: {}", id.status().ToString());
      return LogError(http::status::internal_server_error, "database error");
    }
    spdlog::info("operator '{}': logs of '{}' app '{}' (request {})", who.name, device->name, app,
                 *id);
    return LogJson(http::status::accepted, Json{{"id", *id}, {"device", device->name}});
  }
  const auto id = RequestId(parts[4]);
  if (!id) return LogError(http::status::not_found, "no such log request");
  auto got = GetLogRequest(db, *id, now);
  if (!got.ok()) return LogError(http::status::internal_server_error, "database error");
  if (!got->has_value()) return LogError(http::status::not_found, "no such log request");
  const LogRequest& r = **got;
  Json answer{{"id", r.id},
              {"app", r.app},
              {"since_s", r.since_s},
              {"requested_by", r.requested_by},
              {"expires_at", r.expires_at},
              {"uploaded_at", r.uploaded_at}};
  if (r.uploaded_at != 0) answer["log"] = r.log;
  return LogJson(http::status::ok, answer);
}

http::Reply TrackerService::LogPages(std::string_view path, std::string_view query,
                                     const http::Request& request,
                                     const http::RequestContext& context) {
  const bool post = request.method() == http::verb::post;
  const bool one = path != "/logs";
  if (one && request.method() != http::verb::get) return MethodRefused("GET");
  if (!one && !post && request.method() != http::verb::get) return MethodRefused("GET, POST");
  if (options_.operators == nullptr) {
    return http::Reply::Text(http::status::not_found, "this tracker takes no log requests");
  }
  OperatorIdentity who;
  if (auto refusal = Authorize(request, context, "logs.request", true, who)) return *refusal;
  SqlEngine& db = options_.operators->engine();
  const int64_t now = WallSeconds();

  if (one) {
    const auto id = RequestId(path.substr(std::string_view("/logs/").size()));
    auto got = id ? GetLogRequest(db, *id, now) : Result<std::optional<LogRequest>>(std::nullopt);
    if (!got.ok()) {
      spdlog::error("log page: {}", got.status().ToString());
      return http::Reply::Text(http::status::internal_server_error, "database error");
    }
    if (!got->has_value()) {
      return http::Reply::Text(http::status::not_found,
                               "no such log request (a request and its answer are kept 10 "
                               "minutes): ask again at /logs");
    }
    auto device = FindLogDevice(db, (*got)->device_id);
    const std::string name = device.ok() ? device->name : (*got)->device_id;
    return Html(http::status::ok, RenderLogPage(**got, name, now));
  }

  LogsPageContext page{.now_unix = now};
  if (const std::string_view cookie = SessionCookie(request);
      !cookie.empty() && BearerToken(request).empty()) {
    page.csrf = CsrfTokenOf(cookie);
  }
  auto status = http::status::ok;
  if (post) {
    auto form = ParseForm(request.body());
    if (form.ok()) {
      page.form.device = FormValue(*form, "device");
      page.form.app = FormValue(*form, "app");
    }
    const auto since = form.ok() ? RequestId(FormValue(*form, "since")) : std::nullopt;
    page.form.since_s = since.value_or(0);
    if (!form.ok() || page.form.device.empty() || page.form.app.empty() ||
        page.form.app.size() > 255 || (!since && FormValue(*form, "since") != "0")) {
      page.message = "give a device, an app and a window";
      status = http::status::bad_request;
    } else if (auto device = FindLogDevice(db, page.form.device); !device.ok()) {
      page.message = device.status().message();
      status = http::status::not_found;
    } else {
      auto id = CreateLogRequest(db, who.name, device->device_id, device->name, page.form.app,
                                 page.form.since_s, now);
      if (id.ok()) {
        spdlog::info("operator '{}': logs of '{}' app '{}' (request {}, dashboard)", who.name,
                     device->name, page.form.app, *id);
        http::Reply r =
            http::Reply::Text(http::status::see_other, "see /logs/" + std::to_string(*id));
        r.headers.emplace_back("Location", "/logs/" + std::to_string(*id));
        r.headers.emplace_back("Cache-Control", "no-store");
        return r;
      }
      if (id.status().code() != StatusCode::kFailedPrecondition) {
        spdlog::error("log request: {}", id.status().ToString());
        return http::Reply::Text(http::status::internal_server_error, "database error");
      }
      page.message = id.status().message();
      status = http::status::conflict;
    }
  } else if (auto params = ParseQuery(query); params.ok()) {
    page.form.device = FormValue(*params, "device");
    page.form.app = FormValue(*params, "app");
  }
  auto recent = RecentLogRequests(db, now, kLogPageRequests);
  if (!recent.ok()) {
    spdlog::error("log page: {}", recent.status().ToString());
    return http::Reply::Text(http::status::internal_server_error, "database error");
  }
  return Html(status, RenderLogsPage(*recent, page));
}

}  // namespace flotilla::tracker
