// TrackerService: who an operator request is (a bearer token or a dashboard
// session), the role check, the login page, and the operator API
// (docs/operators.md).
#include <spdlog/spdlog.h>

#include <charconv>

#include "core/bytes.h"
#include "tracker/announce/announce_request.h"
#include "tracker/api/labels.h"
#include "tracker/service/dashboard.h"
#include "tracker/service/json_reply.h"
#include "tracker/service/tracker_service.h"

namespace flotilla::tracker {
namespace {

constexpr std::string_view kSessionCookie = "flotilla_session";
constexpr std::string_view kCsrfHeader = "X-Flotilla-CSRF";

http::Reply Unauthenticated(const std::string& message) {
  http::Reply r = JsonError(http::status::unauthorized, message);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

http::Reply Redirect(std::string_view location) {
  http::Reply r = http::Reply::Text(http::status::see_other, "see " + std::string(location));
  r.headers.emplace_back("Location", std::string(location));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ConstantTimeEqual(AsBytes(a), AsBytes(b));
}

// The login form; `message` (may be empty) says why it is shown again.
http::Reply LoginForm(http::status status, std::string_view message, bool accounts) {
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>flotilla: log "
      "in</title><style>body{font-family:sans-serif;margin:3em}label{display:block;margin:.5em "
      "0}</style></head><body>\n<h1>flotilla fleet</h1>\n";
  if (!message.empty()) page += "<p id=\"message\">" + HtmlEscape(message) + "</p>\n";
  if (!accounts) {
    page +=
        "<p>No operator account exists: the dashboard is open. On the tracker host, "
        "<code>flotilla-tracker operator add NAME --role admin</code> adds one.</p>\n";
  }
  page +=
      "<form method=\"post\" action=\"/login\">\n"
      "<label>name <input name=\"name\" autocomplete=\"username\" required></label>\n"
      "<label>password <input name=\"password\" type=\"password\" "
      "autocomplete=\"current-password\" required></label>\n"
      "<button type=\"submit\">log in</button>\n</form>\n</body></html>\n";
  http::Reply r = http::Reply::Typed(status, "text/html; charset=utf-8", std::move(page));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Reply ActionError(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return JsonError(http::status::bad_request, status.message());
    case StatusCode::kNotFound:
      return JsonError(http::status::not_found, status.message());
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return JsonError(http::status::conflict, status.message());
    default:
      spdlog::error("operator action: {}", status.ToString());
      return JsonError(http::status::internal_server_error, "the action failed");
  }
}

Result<int64_t> PositiveNumber(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return InvalidArgument("'" + std::string(text) + "' is not a number");
  }
  return value;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseForm(std::string_view body) {
  std::string spaced;
  spaced.reserve(body.size());
  for (char c : body) {
    if (c == '+') {
      spaced += "%20";
    } else {
      spaced += c;
    }
  }
  return ParseQuery(spaced);
}

std::string FormValue(const std::map<std::string, std::string>& form, const char* name) {
  auto it = form.find(name);
  return it == form.end() ? std::string() : it->second;
}

std::string_view SessionCookie(const http::Request& request) {
  auto it = request.find(http::field::cookie);
  if (it == request.end()) return {};
  std::string_view cookies = it->value();
  while (!cookies.empty()) {
    const size_t semi = cookies.find(';');
    std::string_view pair = cookies.substr(0, semi);
    cookies = semi == std::string_view::npos ? std::string_view() : cookies.substr(semi + 1);
    while (pair.starts_with(' ')) pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == kSessionCookie) {
      return pair.substr(eq + 1);
    }
  }
  return {};
}

std::optional<http::Reply> TrackerService::Authorize(const http::Request& request,
                                                     const http::RequestContext& context,
                                                     std::string_view action, bool page,
                                                     OperatorIdentity& who) {
  OperatorStore* operators = options_.operators;
  if (operators == nullptr) return std::nullopt;
  const bool read = action == "dashboard" || action == "fleet.read" || action == "metrics";
  auto any = operators->HasOperators();
  if (!any.ok()) {
    spdlog::error("operator check: {}", any.status().ToString());
    return JsonError(http::status::internal_server_error, "database error");
  }
  if (!*any) {
    if (read) return std::nullopt;
    return Unauthenticated(
        "no operator account exists: add one on the tracker host (flotilla-tracker operator add "
        "NAME --role admin)");
  }
  const std::string_view bearer = BearerToken(request);
  const std::string_view cookie = SessionCookie(request);
  const std::string from = context.remote.to_string();
  if (!bearer.empty()) {
    auto identity = operators->AuthenticateToken(bearer);
    if (!identity.ok()) {
      if (identity.status().code() != StatusCode::kPermissionDenied) {
        spdlog::error("operator token check: {}", identity.status().ToString());
        return JsonError(http::status::internal_server_error, "database error");
      }
      refusals_.Refuse("operator_token",
                       "operator request from " + from + ": " + identity.status().message());
      return Unauthenticated("an operator token is required (" + identity.status().message() + ")");
    }
    who = std::move(*identity);
  } else if (!cookie.empty()) {
    auto identity = operators->AuthenticateSession(cookie);
    if (!identity.ok()) {
      if (identity.status().code() != StatusCode::kPermissionDenied) {
        spdlog::error("operator session check: {}", identity.status().ToString());
        return JsonError(http::status::internal_server_error, "database error");
      }
      if (page) return Redirect("/login");
      return Unauthenticated("log in again (" + identity.status().message() + ")");
    }
    who = std::move(*identity);
    if (request.method() == http::verb::post) {
      // A session's POST carries the session's CSRF token in a header (the
      // API) or, from a page's form, as the field `csrf` (logout, handled by
      // Logout, does the same).
      auto header = request.find(kCsrfHeader);
      std::string given(header == request.end() ? "" : header->value());
      if (given.empty() && page) {
        auto form = ParseForm(request.body());
        if (form.ok()) given = FormValue(*form, "csrf");
      }
      if (!SameSecret(given, CsrfTokenOf(cookie))) {
        refusals_.Refuse("operator_csrf",
                         "operator '" + who.name + "' POST without its CSRF token");
        if (page) {
          return http::Reply::Text(http::status::forbidden,
                                   "a form needs the session's CSRF token: reload the page");
        }
        return JsonError(http::status::forbidden,
                         "a session's POST needs its CSRF token (header X-Flotilla-CSRF)");
      }
    }
  } else {
    if (page) return Redirect("/login");
    return Unauthenticated("an operator token (Authorization: Bearer flop_...) is required");
  }
  if (!RoleAllows(who.role, action)) {
    const std::string_view path = request.target().substr(0, request.target().find('?'));
    (void)operators->Audit({.actor = who.name,
                            .action = std::string(action),
                            .target = std::string(path),
                            .outcome = "denied"});
    const std::string message =
        "operator '" + who.name + "' (" + who.role + ") may not " + std::string(action);
    if (page) return http::Reply::Text(http::status::forbidden, message);
    return JsonError(http::status::forbidden, message);
  }
  return std::nullopt;
}

bool TrackerService::LoginsBlocked(std::deque<MonoTime>& failures, size_t limit) {
  const MonoTime now = clock_.MonotonicNow();
  while (!failures.empty() && now - failures.front() >= options_.logins.window) {
    failures.pop_front();
  }
  return failures.size() >= limit;
}

http::Reply TrackerService::LoginPage(const http::Request& request,
                                      const http::RequestContext& context) {
  (void)request;
  (void)context;
  bool accounts = true;
  if (options_.operators != nullptr) {
    auto any = options_.operators->HasOperators();
    accounts = !any.ok() || *any;
  } else {
    accounts = false;
  }
  return LoginForm(http::status::ok, "", accounts);
}

http::Reply TrackerService::Login(const http::Request& request,
                                  const http::RequestContext& context) {
  if (options_.operators == nullptr) return LoginForm(http::status::not_found, "", false);
  auto form = ParseForm(request.body());
  if (!form.ok()) return LoginForm(http::status::bad_request, "malformed form", true);
  const std::string name = FormValue(*form, "name");
  const std::string password = FormValue(*form, "password");
  const std::string from = context.remote.to_string();
  // Bounded keys: a name that is no label counts under one key.
  const std::string name_key = IsValidLabel(name) ? name : "?";
  auto& by_name = failed_logins_by_name_[name_key];
  auto& by_address = failed_logins_by_address_[from];
  if (!login_attempts_.Take(clock_.MonotonicNow())) {
    refusals_.Refuse("login_rate", "logins of every account: too many attempts");
    http::Reply r = LoginForm(http::status::too_many_requests,
                              "too many logins on this tracker: retry in a minute", true);
    r.headers.emplace_back("Retry-After", "60");
    return r;
  }
  if (LoginsBlocked(by_name, options_.logins.per_account) ||
      LoginsBlocked(by_address, options_.logins.per_address)) {
    refusals_.Refuse("login_rate", "logins of '" + name_key + "' from " + from);
    (void)options_.operators->Audit({.actor = name_key,
                                     .action = "login",
                                     .target = name_key,
                                     .detail = Json{{"from", from}, {"rate_limited", true}},
                                     .outcome = "failed"});
    http::Reply r =
        LoginForm(http::status::too_many_requests, "too many failed logins: wait 15 minutes", true);
    r.headers.emplace_back(
        "Retry-After",
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(options_.logins.window).count()));
    return r;
  }
  auto pending = options_.operators->BeginLogin(name);
  if (!pending.ok()) {
    spdlog::error("login: {}", pending.status().ToString());
    return LoginForm(http::status::internal_server_error, "the login failed", true);
  }
  if (!options_.offload) {
    return LoginChecked(*pending, PasswordMatches(*pending, password), from, context.tls);
  }
  // The password check (Argon2id, about 0.1 s of CPU) runs off the network
  // thread, which goes on serving devices meanwhile; the answer follows.
  http::Reply held;
  held.later = [this, login = std::move(*pending), password, from,
                tls = context.tls](std::function<void(http::Reply)> answer) {
    auto matches = std::make_shared<bool>(false);
    options_.offload([login, password, matches] { *matches = PasswordMatches(login, password); },
                     [this, login, matches, from, tls, answer = std::move(answer)] {
                       answer(LoginChecked(login, *matches, from, tls));
                     });
  };
  return held;
}

http::Reply TrackerService::LoginChecked(const PendingLogin& login, bool password_matches,
                                         const std::string& from, bool tls) {
  auto session = options_.operators->FinishLogin(login, password_matches, from);
  if (!session.ok()) {
    if (session.status().code() != StatusCode::kPermissionDenied) {
      spdlog::error("login: {}", session.status().ToString());
      return LoginForm(http::status::internal_server_error, "the login failed", true);
    }
    const std::string name_key = IsValidLabel(login.name) ? login.name : "?";
    failed_logins_by_name_[name_key].push_back(clock_.MonotonicNow());
    failed_logins_by_address_[from].push_back(clock_.MonotonicNow());
    // Keep the maps bounded: forget keys whose failures all passed.
    if (failed_logins_by_address_.size() > 10'000 || failed_logins_by_name_.size() > 10'000) {
      for (auto* failures : {&failed_logins_by_address_, &failed_logins_by_name_}) {
        for (auto it = failures->begin(); it != failures->end();) {
          it = LoginsBlocked(it->second, 1) ? std::next(it) : failures->erase(it);
        }
      }
    }
    spdlog::info("failed login as '{}' from {}", name_key, from);
    return LoginForm(http::status::unauthorized, "wrong name or password", true);
  }
  spdlog::info("operator '{}' logged in from {}", session->identity.name, from);
  http::Reply r = Redirect("/");
  r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + session->cookie +
                                           "; Path=/; HttpOnly; SameSite=Strict" +
                                           (tls ? "; Secure" : ""));
  return r;
}

http::Reply TrackerService::Logout(const http::Request& request,
                                   const http::RequestContext& context) {
  const std::string_view cookie = SessionCookie(request);
  if (options_.operators == nullptr || cookie.empty()) return Redirect("/login");
  auto form = ParseForm(request.body());
  const std::string csrf = form.ok() ? FormValue(*form, "csrf") : "";
  if (!SameSecret(csrf, CsrfTokenOf(cookie))) {
    refusals_.Refuse("operator_csrf",
                     "logout without its CSRF token from " + context.remote.to_string());
    return http::Reply::Text(http::status::forbidden, "logout needs the session's CSRF token");
  }
  if (Status st = options_.operators->Logout(cookie); !st.ok()) {
    spdlog::error("logout: {}", st.ToString());
    return http::Reply::Text(http::status::internal_server_error, "database error");
  }
  http::Reply r = Redirect("/login");
  r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) +
                                           "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" +
                                           (context.tls ? "; Secure" : ""));
  return r;
}

http::Reply TrackerService::OperatorApi(const std::vector<std::string_view>& parts,
                                        std::string_view query, const http::Request& request,
                                        const http::RequestContext& context) {
  // parts: api v1 operator ...
  if (options_.operators == nullptr) {
    return JsonError(http::status::not_found, "this tracker has no operator API");
  }
  const bool post = request.method() == http::verb::post;
  std::string action;
  int64_t rollout_id = 0;
  if (parts.size() == 4 && (parts[3] == "pin" || parts[3] == "unpin" || parts[3] == "recall")) {
    action = std::string(parts[3]);
  } else if (parts.size() == 4 && parts[3] == "rollouts") {
    action = "rollout.start";
  } else if (parts.size() == 6 && parts[3] == "rollouts" &&
             (parts[5] == "pause" || parts[5] == "resume" || parts[5] == "abort")) {
    auto id = PositiveNumber(parts[4]);
    if (!id.ok() || *id == 0) return JsonError(http::status::not_found, "no such rollout");
    rollout_id = *id;
    action = "rollout." + std::string(parts[5]);
  } else if (parts.size() == 4 && parts[3] == "audit") {
    if (request.method() != http::verb::get) {
      http::Reply r = JsonError(http::status::method_not_allowed, "method not allowed");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    OperatorIdentity who;
    if (auto refusal = Authorize(request, context, "audit.read", false, who)) return *refusal;
    auto params = ParseQuery(query);
    if (!params.ok()) return JsonError(http::status::bad_request, "malformed query");
    AuditFilter filter;
    for (const auto& [key, value] : *params) {
      if (key == "actor") {
        filter.actor = value;
        continue;
      }
      auto number = PositiveNumber(value);
      if (!number.ok() || (key != "since" && key != "limit")) {
        return JsonError(http::status::bad_request, "unknown or bad parameter '" + key + "'");
      }
      (key == "since" ? filter.since : filter.limit) = *number;
    }
    filter.limit = std::clamp<int64_t>(filter.limit, 1, 1000);
    auto entries = ListAudit(options_.operators->engine(), filter);
    if (!entries.ok()) {
      spdlog::error("audit: {}", entries.status().ToString());
      return JsonError(http::status::internal_server_error, "database error");
    }
    Json list = Json::array();
    for (const AuditEntry& e : *entries) list.push_back(AuditEntryToJson(e));
    http::Reply r = JsonReply(http::status::ok, Json{{"entries", list}});
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  } else {
    return JsonError(http::status::not_found, "no such operator route");
  }
  if (!post) {
    http::Reply r = JsonError(http::status::method_not_allowed, "method not allowed");
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  OperatorIdentity who;
  if (auto refusal = Authorize(request, context, action, false, who)) return *refusal;
  if (!options_.operator_actions) {
    return JsonError(http::status::service_unavailable, "operator actions are not available");
  }
  Json body = Json::object();
  if (!request.body().empty()) {
    auto parsed = ParseJsonStrict(request.body());
    if (!parsed.ok() || !parsed->is_object()) {
      return JsonError(http::status::bad_request, "the body must be a JSON object");
    }
    body = std::move(*parsed);
  }
  if (!options_.offload)
    return ActionAnswer(options_.operator_actions(action, body, who.name, rollout_id), who.name,
                        action);
  // An action re-signs the documents of the devices it changes: off the
  // network thread, on the thread password checks use (one at a time).
  http::Reply held;
  held.later = [this, action, body = std::move(body), actor = who.name,
                rollout_id](std::function<void(http::Reply)> answer) {
    auto out = std::make_shared<Result<Json>>(Internal("not run"));
    options_.offload(
        [this, out, action, body, actor, rollout_id] {
          *out = options_.operator_actions(action, body, actor, rollout_id);
        },
        [this, out, actor, action, answer = std::move(answer)] {
          answer(ActionAnswer(std::move(*out), actor, action));
        });
  };
  return held;
}

http::Reply TrackerService::ActionAnswer(Result<Json> out, const std::string& actor,
                                         const std::string& action) {
  if (!out.ok()) return ActionError(out.status());
  spdlog::info("operator '{}': {}", actor, action);
  return JsonReply(http::status::ok, *out);
}

}  // namespace flotilla::tracker
