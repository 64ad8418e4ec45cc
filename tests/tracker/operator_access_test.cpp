// Operator accounts against the real tracker (docs/operators.md): open until
// the first account, then each role allowed exactly its actions (403) and
// requests without a valid credential refused (401); revoked, expired and
// disabled credentials; device secrets refused as operator tokens; the
// dashboard's login, CSRF, logout and failed-login limit; every action in
// the audit log with its actor; and no password, token or cookie in the
// tracker's log or database files. Accounts are made with the real
// binary's commands, requests go over loopback sockets.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <thread>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/storage/device_db.h"

namespace flotilla::testing {
namespace {

constexpr char kAlicePassword[] = "alice-secret-passphrase-41";
constexpr char kDavePassword[] = "dave-secret-passphrase-42";
constexpr char kViewerPassword[] = "viewer-secret-passphrase-43";

class OperatorAccessTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("operator-access");
    auto flags = ServeDatabaseFlags(GetParam(), "operators");
    ASSERT_TRUE(flags.ok()) << flags.status().ToString();
    url_ = flags->empty() ? dir_ + "/repo/tracker.db" : (*flags)[1];
    database_ = flags->empty() ? "--repository " + dir_ + "/repo" : "--database-url '" + url_ + "'";
    // An initialised repository: pins read its signed release floors.
    auto init = RunShell(BinaryPath("flotilla-tracker") + " init " + dir_ +
                         "/repo --public-url http://127.0.0.1:9 2>&1");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", *flags)) << tracker_.Log();
    // Devices and releases through the tracker's own database code.
    auto db = tracker::DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto device = (*db)->Enroll("screen-1", "shop-1");
    ASSERT_TRUE(device.ok()) << device.status().ToString();
    credential_ = device->credential;
    device_id_ = device->device_id;
    ASSERT_TRUE((*db)->Enroll("screen-2", "shop-1").ok());
    for (const char* release : {"6", "7", "8"}) {
      ASSERT_TRUE((*db)->RecordRelease("kiosk", release).ok());
    }
    Ok("group create all --select all");
    Ok("app assign kiosk --group all");
  }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  CommandResult Tracker(const std::string& args, const std::string& stdin_text = "") {
    std::string command = BinaryPath("flotilla-tracker") + " " + args + " " + database_ + " 2>&1";
    if (!stdin_text.empty()) command = "printf '%s\\n' '" + stdin_text + "' | " + command;
    return RunShell(command);
  }
  std::string Ok(const std::string& args, const std::string& stdin_text = "") {
    auto run = Tracker(args, stdin_text);
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output;
    return run.output;
  }
  std::string NewToken(const std::string& name, const std::string& extra = "") {
    auto json = ParseJsonStrict(Ok("operator token create " + name + " --json " + extra));
    EXPECT_TRUE(json.ok()) << json.status().ToString();
    return json.ok() ? (*json)["token"].get<std::string>() : "";
  }
  HttpResponse Request(const std::string& method, const std::string& target,
                       const std::vector<std::string>& headers = {}, const std::string& body = "") {
    return HttpRequestTo(tracker_.port(), method, target, headers, body);
  }
  HttpResponse WithToken(const std::string& token, const std::string& method,
                         const std::string& target, const std::string& body = "") {
    return Request(method, target, {"Authorization: Bearer " + token}, body);
  }
  HttpResponse Login(const std::string& name, const std::string& password) {
    return Request("POST", "/login", {"Content-Type: application/x-www-form-urlencoded"},
                   "name=" + PercentEncodeAll(name) + "&password=" + PercentEncodeAll(password));
  }
  // "Cookie: flotilla_session=..." of a fresh login.
  std::string SessionOf(const std::string& name, const std::string& password) {
    auto in = Login(name, password);
    std::smatch match;
    const std::string set_cookie = in.headers["set-cookie"];
    EXPECT_TRUE(std::regex_search(set_cookie, match, std::regex("flotilla_session=([0-9a-f]{64})")))
        << in.status << " " << set_cookie;
    return "Cookie: flotilla_session=" + std::string(match[1]);
  }
  Json Audit() {
    auto json = ParseJsonStrict(Ok("audit list --json"));
    EXPECT_TRUE(json.ok()) << json.status().ToString();
    return json.ok() ? (*json)["entries"] : Json::array();
  }
  // "actor action outcome" of every audit entry, oldest first.
  std::vector<std::string> AuditLines() {
    std::vector<std::string> lines;
    for (const Json& e : Audit()) {
      lines.insert(lines.begin(), e["actor"].get<std::string>() + " " +
                                      e["action"].get<std::string>() + " " +
                                      e["outcome"].get<std::string>());
    }
    return lines;
  }

  std::string dir_;
  std::string url_;
  std::string database_;
  std::string credential_;
  std::string device_id_;
  FakeClock clock_;
  TrackerProcess tracker_;
};

// The requests of each action of the role table the API serves, in an
// order in which each succeeds for a role allowed it.
struct ActionRequest {
  std::string action;
  std::string method;
  std::string target;
  std::string body;
};
std::vector<ActionRequest> Actions(int rollout) {
  const std::string r = "/api/v1/operator/rollouts/" + std::to_string(rollout);
  return {
      {"fleet.read", "GET", "/api/v1/fleet", ""},
      {"metrics", "GET", "/metrics", ""},
      {"dashboard", "GET", "/", ""},
      {"pin", "POST", "/api/v1/operator/pin", R"({"group":"all","app":"kiosk","release":7})"},
      {"unpin", "POST", "/api/v1/operator/unpin", R"({"group":"all","app":"kiosk"})"},
      {"recall", "POST", "/api/v1/operator/recall", R"({"app":"kiosk","release":6})"},
      {"rollout.start", "POST", "/api/v1/operator/rollouts",
       R"({"app":"kiosk","release":8,"waves":"50%,100%","soak":"0"})"},
      {"rollout.pause", "POST", r + "/pause", ""},
      {"rollout.resume", "POST", r + "/resume", ""},
      {"rollout.abort", "POST", r + "/abort", ""},
      {"audit.read", "GET", "/api/v1/operator/audit?limit=5", ""},
  };
}

TEST_P(OperatorAccessTest, OpenUntilTheFirstAccountThenEachRoleExactlyItsActions) {
  // No account: the reads are open as before, the operator API has no one to act as.
  EXPECT_EQ(Request("GET", "/api/v1/fleet").status, 200);
  EXPECT_EQ(Request("GET", "/metrics").status, 200);
  EXPECT_EQ(Request("GET", "/").status, 200);
  EXPECT_EQ(Request("POST", "/api/v1/operator/recall", {}, R"({"app":"kiosk","release":6})").status,
            401);
  EXPECT_NE(tracker_.Log().find("no account, so the dashboard"), std::string::npos);
  auto first = Tracker("operator add viewer --role read-only", kViewerPassword);
  EXPECT_NE(first.exit_code, 0);
  EXPECT_NE(first.output.find("the first operator must be an admin"), std::string::npos)
      << first.output;

  Ok("operator add alice --role admin", kAlicePassword);
  Ok("operator add dave --role deployer", kDavePassword);
  // From a file this time: its first line is the password.
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/viewer.pass", std::string(kViewerPassword) + "\nignored\n", 0600)
          .ok());
  Ok("operator add viewer --role read-only --password-file " + dir_ + "/viewer.pass");
  auto listed = ParseJsonStrict(Ok("operator list --json"));
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ((*listed)["operators"].size(), 3u) << listed->dump();
  EXPECT_EQ((*listed)["operators"][2]["name"], "viewer");
  EXPECT_EQ((*listed)["operators"][2]["role"], "read-only");
  EXPECT_EQ(Login("viewer", kViewerPassword).status, 303) << "the file's first line";
  const std::map<std::string, std::string> tokens = {{"admin", NewToken("alice")},
                                                     {"deployer", NewToken("dave")},
                                                     {"read-only", NewToken("viewer")}};

  // Without a valid credential: 401 (a page: to the login form).
  EXPECT_EQ(Request("GET", "/api/v1/fleet").status, 401);
  EXPECT_EQ(Request("GET", "/metrics").status, 401);
  auto page = Request("GET", "/");
  EXPECT_EQ(page.status, 303);
  EXPECT_EQ(page.headers["location"], "/login");
  for (const std::string& bad : {"flop_" + std::string(64, '0'), credential_,
                                 TrackerProcess::FleetToken(), tokens.at("admin").substr(5)}) {
    EXPECT_EQ(WithToken(bad, "GET", "/api/v1/fleet").status, 401) << bad;
    EXPECT_EQ(
        WithToken(bad, "POST", "/api/v1/operator/recall", R"({"app":"kiosk","release":6})").status,
        401)
        << bad;
  }
  // An operator token is no device credential either.
  EXPECT_EQ(WithToken(tokens.at("admin"), "POST", "/api/v1/devices/x/report", "{}").status, 401);

  // Each role: its actions answered 200, the others 403, in one pass each;
  // the deployer's rollout is 1, the admin's 2.
  for (const auto& [role, rollout] :
       std::vector<std::pair<std::string, int>>{{"read-only", 1}, {"deployer", 1}, {"admin", 2}}) {
    for (const ActionRequest& a : Actions(rollout)) {
      const bool allowed = a.action == "fleet.read" || a.action == "metrics" ||
                           a.action == "dashboard" ||
                           (role != "read-only" && a.action != "audit.read") || role == "admin";
      auto reply = WithToken(tokens.at(role), a.method, a.target, a.body);
      EXPECT_EQ(reply.status, allowed ? 200 : 403) << role << " " << a.action << ": " << reply.body;
    }
  }
  // What the deployer and admin did is the fleet's state now.
  auto status = ParseJsonStrict(Ok("rollout status --json"));
  ASSERT_TRUE(status.ok());
  ASSERT_EQ((*status)["rollouts"].size(), 2u) << status->dump();
  EXPECT_EQ((*status)["rollouts"][0]["state"], "aborted");
  EXPECT_EQ((*status)["rollouts"][1]["state"], "aborted");

  // Every action in the audit log with its actor; the refusals too.
  const std::vector<std::string> lines = AuditLines();
  for (const char* action : {"pin", "unpin", "recall", "rollout.start", "rollout.pause",
                             "rollout.resume", "rollout.abort"}) {
    for (const char* who : {"dave", "alice"}) {
      EXPECT_NE(std::find(lines.begin(), lines.end(), std::string(who) + " " + action + " ok"),
                lines.end())
          << who << " " << action;
    }
    EXPECT_NE(std::find(lines.begin(), lines.end(), std::string("viewer ") + action + " denied"),
              lines.end())
        << action;
  }
  EXPECT_NE(std::find(lines.begin(), lines.end(), "dave audit.read denied"), lines.end());
  for (const Json& e : Audit()) {
    if (e["outcome"] == "denied" && e["action"] == "rollout.abort") {
      EXPECT_EQ(e["target"], "/api/v1/operator/rollouts/1/abort") << e.dump();
    }
    if (e["actor"] == "dave" && e["action"] == "pin") {
      EXPECT_EQ(e["target"], "group:all");
      EXPECT_EQ(e["detail"], (Json{{"app", "kiosk"}, {"release", 7}}));
    }
  }
  std::string user = RunShell("id -un").output;
  const std::string local = "local:" + user.substr(0, user.find('\n'));
  for (const char* action : {"group.create", "app.assign", "operator.add", "token.create"}) {
    EXPECT_NE(std::find(lines.begin(), lines.end(), local + " " + action + " ok"), lines.end())
        << action;
  }
  // audit list filters by actor and time.
  auto only_dave = ParseJsonStrict(Ok("audit list --json --actor dave --since 1h"));
  ASSERT_TRUE(only_dave.ok());
  EXPECT_GE((*only_dave)["entries"].size(), 8u);
  for (const Json& e : (*only_dave)["entries"]) EXPECT_EQ(e["actor"], "dave");
  auto future = ParseJsonStrict(Ok("audit list --json --since 4102444800"));
  ASSERT_TRUE(future.ok());
  EXPECT_TRUE((*future)["entries"].empty());
  // The admin reads the log over the API too.
  auto audit = WithToken(tokens.at("admin"), "GET", "/api/v1/operator/audit?actor=dave");
  ASSERT_EQ(audit.status, 200);
  auto entries = ParseJsonStrict(audit.body);
  ASSERT_TRUE(entries.ok());
  EXPECT_GE((*entries)["entries"].size(), 8u);
  for (const Json& e : (*entries)["entries"]) EXPECT_EQ(e["actor"], "dave");

  // Revoked, expired, disabled: refused.
  auto list = ParseJsonStrict(Ok("operator token list viewer --json"));
  ASSERT_TRUE(list.ok());
  Ok("operator token revoke " + std::to_string((*list)["tokens"][0]["id"].get<int64_t>()));
  EXPECT_EQ(WithToken(tokens.at("read-only"), "GET", "/api/v1/fleet").status, 401);
  const std::string brief = NewToken("viewer", "--expires 1s");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(WithToken(brief, "GET", "/api/v1/fleet").status, 401);
  Ok("operator disable dave");
  EXPECT_EQ(WithToken(tokens.at("deployer"), "GET", "/api/v1/fleet").status, 401);
  Ok("operator enable dave");
  EXPECT_EQ(WithToken(tokens.at("deployer"), "GET", "/api/v1/fleet").status, 200);
  // A role change applies to the next request.
  Ok("operator set-role dave read-only");
  EXPECT_EQ(WithToken(tokens.at("deployer"), "POST", "/api/v1/operator/recall",
                      R"({"app":"kiosk","release":7})")
                .status,
            403);
  // The last admin stays.
  auto last = Tracker("operator remove alice");
  EXPECT_NE(last.exit_code, 0);
  EXPECT_NE(last.output.find("would leave no enabled admin"), std::string::npos) << last.output;
}

TEST_P(OperatorAccessTest, DashboardLoginCsrfLogoutAndFailedLoginLimit) {
  Ok("operator add alice --role admin", kAlicePassword);
  Ok("operator add viewer --role read-only", kViewerPassword);
  auto form = Request("GET", "/login");
  EXPECT_EQ(form.status, 200);
  EXPECT_NE(form.body.find("<form method=\"post\" action=\"/login\">"), std::string::npos);
  EXPECT_EQ(Login("alice", "not the password").status, 401);
  EXPECT_EQ(Login("nobody", kAlicePassword).status, 401);

  auto in = Login("alice", kAlicePassword);
  ASSERT_EQ(in.status, 303) << in.body;
  EXPECT_EQ(in.headers["location"], "/");
  const std::string set_cookie = in.headers["set-cookie"];
  std::smatch match;
  ASSERT_TRUE(std::regex_search(set_cookie, match, std::regex("flotilla_session=([0-9a-f]{64})")))
      << set_cookie;
  const std::string cookie = match[1];
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(set_cookie.find("Secure"), std::string::npos) << "plain HTTP";
  const std::string cookie_header = "Cookie: other=1; flotilla_session=" + cookie;

  // The dashboard: who is signed in, the logout form with its CSRF token,
  // the audit section (an admin).
  auto dashboard = Request("GET", "/", {cookie_header});
  ASSERT_EQ(dashboard.status, 200);
  EXPECT_NE(dashboard.body.find("data-operator=\"alice\""), std::string::npos);
  EXPECT_NE(dashboard.body.find("id=\"audit\""), std::string::npos);
  ASSERT_TRUE(std::regex_search(dashboard.body, match,
                                std::regex("name=\"csrf\" value=\"([0-9a-f]{64})\"")));
  const std::string csrf = match[1];
  EXPECT_NE(csrf, cookie);

  // A session's POST needs its CSRF token.
  const std::string recall = R"({"app":"kiosk","release":6})";
  EXPECT_EQ(Request("POST", "/api/v1/operator/recall", {cookie_header}, recall).status, 403);
  EXPECT_EQ(Request("POST", "/api/v1/operator/recall",
                    {cookie_header, "X-Flotilla-CSRF: " + std::string(64, 'a')}, recall)
                .status,
            403);
  EXPECT_EQ(Request("POST", "/api/v1/operator/recall", {cookie_header, "X-Flotilla-CSRF: " + csrf},
                    recall)
                .status,
            200);
  const std::string form_type = "Content-Type: application/x-www-form-urlencoded";
  EXPECT_EQ(
      Request("POST", "/logout", {cookie_header, form_type}, "csrf=" + std::string(64, 'a')).status,
      403);
  auto out = Request("POST", "/logout", {cookie_header, form_type}, "csrf=" + csrf);
  EXPECT_EQ(out.status, 303);
  EXPECT_NE(out.headers["set-cookie"].find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(Request("GET", "/", {cookie_header}).status, 303) << "the session ended";
  EXPECT_EQ(Request("GET", "/api/v1/fleet", {cookie_header}).status, 401);

  // A read-only account's dashboard has no audit section.
  auto viewer = Login("viewer", kViewerPassword);
  ASSERT_EQ(viewer.status, 303);
  ASSERT_TRUE(std::regex_search(viewer.headers["set-cookie"], match,
                                std::regex("flotilla_session=([0-9a-f]{64})")));
  auto viewer_page = Request("GET", "/", {"Cookie: flotilla_session=" + std::string(match[1])});
  ASSERT_EQ(viewer_page.status, 200);
  EXPECT_EQ(viewer_page.body.find("id=\"audit\""), std::string::npos);

  // Failed logins: after 5 of one name within 15 minutes, even the right
  // password is refused for that name, not for another.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Login("alice", "guess " + std::to_string(i)).status, 401);
  auto limited = Login("alice", kAlicePassword);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_FALSE(limited.headers["retry-after"].empty());
  EXPECT_EQ(Login("viewer", kViewerPassword).status, 303);

  const std::vector<std::string> lines = AuditLines();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "alice login failed"), 6) << "5 + the limited";
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "nobody login failed"), 1);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "alice login ok"), 1);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "alice logout ok"), 1);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "alice recall ok"), 1);

  // No password, token, cookie or CSRF token in the log, the audit output
  // or the database files (SQLite: the file and its WAL).
  const std::string token = NewToken("alice");
  EXPECT_EQ(WithToken(token, "GET", "/api/v1/fleet").status, 200);
  std::string haystack = tracker_.Log() + Ok("audit list") + Ok("audit list --json");
  if (std::string(GetParam()) == "sqlite") {
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/repo")) {
      if (entry.path().filename().string().starts_with("tracker.db")) {
        haystack += ReadTextFileBounded(entry.path().string(), 64 << 20).value();
      }
    }
  }
  for (const std::string& secret :
       {std::string(kAlicePassword), std::string(kViewerPassword), token.substr(5), cookie, csrf}) {
    EXPECT_EQ(haystack.find(secret), std::string::npos) << secret;
  }
}

// The dashboard's device-log pages: an admin asks through a form (with the
// session's CSRF token), waits on a page that reloads itself, and reads the
// device's upload, escaped; a deployer may not; the request is audited with
// the admin's name.
TEST_P(OperatorAccessTest, DashboardLogPagesAskWaitAndShowTheDevicesUpload) {
  Ok("operator add alice --role admin", kAlicePassword);
  Ok("operator add dave --role deployer", kDavePassword);
  const std::string alice = SessionOf("alice", kAlicePassword);
  const std::string form_type = "Content-Type: application/x-www-form-urlencoded";

  auto dashboard = Request("GET", "/", {alice});
  ASSERT_EQ(dashboard.status, 200);
  EXPECT_NE(dashboard.body.find("<a href=\"/logs\">"), std::string::npos) << "an admin's link";
  auto page = Request("GET", "/logs?device=screen-1&app=kiosk", {alice});
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("name=\"device\" value=\"screen-1\""), std::string::npos);
  std::smatch match;
  ASSERT_TRUE(
      std::regex_search(page.body, match, std::regex("name=\"csrf\" value=\"([0-9a-f]{64})\"")));
  const std::string csrf = match[1];

  // The form without its CSRF token, an unknown device, a missing app: refused, nothing asked.
  const std::string ask = "device=screen-1&app=kiosk&since=300";
  EXPECT_EQ(Request("POST", "/logs", {alice, form_type}, ask).status, 403);
  auto unknown =
      Request("POST", "/logs", {alice, form_type}, "device=nobody&app=kiosk&since=0&csrf=" + csrf);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("no enrolled device"), std::string::npos) << unknown.body;
  EXPECT_EQ(
      Request("POST", "/logs", {alice, form_type}, "device=screen-1&since=0&csrf=" + csrf).status,
      400);

  auto asked = Request("POST", "/logs", {alice, form_type}, ask + "&csrf=" + csrf);
  ASSERT_EQ(asked.status, 303) << asked.body;
  const std::string location = asked.headers["location"];
  ASSERT_TRUE(std::regex_match(location, match, std::regex("/logs/([0-9]+)"))) << location;
  const std::string id = match[1];

  // Waiting: the page reloads itself; the list shows the request.
  auto waiting = Request("GET", location, {alice});
  ASSERT_EQ(waiting.status, 200);
  EXPECT_NE(waiting.body.find("http-equiv=\"refresh\""), std::string::npos);
  EXPECT_NE(waiting.body.find("waiting for the device"), std::string::npos);
  EXPECT_NE(waiting.body.find("the last 5 minutes"), std::string::npos);
  auto list = Request("GET", "/logs", {alice});
  EXPECT_NE(list.body.find("data-request=\"" + id + "\""), std::string::npos) << list.body;

  // The device sees the request (with its window) and uploads; the page shows it escaped.
  auto pending = Request("GET", "/api/v1/devices/" + device_id_ + "/logs",
                         {"Authorization: Bearer " + credential_});
  ASSERT_EQ(pending.status, 200) << pending.body;
  EXPECT_NE(pending.body.find("\"since_s\":300"), std::string::npos) << pending.body;
  ASSERT_EQ(Request("POST", "/api/v1/devices/" + device_id_ + "/logs/" + id,
                    {"Authorization: Bearer " + credential_, "Content-Type: text/plain"},
                    "started\n<script>alert(1)</script>\n")
                .status,
            204);
  auto answered = Request("GET", location, {alice});
  ASSERT_EQ(answered.status, 200);
  EXPECT_EQ(answered.body.find("http-equiv=\"refresh\""), std::string::npos) << "answered: still";
  EXPECT_NE(answered.body.find("started\n&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos)
      << answered.body;
  EXPECT_EQ(answered.body.find("<script>"), std::string::npos);
  EXPECT_EQ(Request("GET", "/logs/999999", {alice}).status, 404);

  // A deployer may not ask or read; no session: the login page.
  const std::string dave = SessionOf("dave", kDavePassword);
  EXPECT_EQ(Request("GET", "/logs", {dave}).status, 403);
  EXPECT_EQ(Request("GET", location, {dave}).status, 403);
  EXPECT_EQ(Request("GET", "/", {dave}).body.find("<a href=\"/logs\">"), std::string::npos);
  EXPECT_EQ(Request("GET", "/logs").status, 303);

  int requests = 0;
  for (const Json& e : Audit()) {
    if (e["action"] == "logs.request" && e["outcome"] == "ok") {
      ++requests;
      EXPECT_EQ(e["actor"], "alice");
      EXPECT_EQ(e["target"], "screen-1");
    }
  }
  EXPECT_EQ(requests, 1);
}

INSTANTIATE_TEST_SUITE_P(Engines, OperatorAccessTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace flotilla::testing
