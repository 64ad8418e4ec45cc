// The service's operator paths without a process (docs/operators.md):
// the session cookie's attributes over TLS, the audit section escaped,
// the limit on every login attempt, and a session's POST refused without
// its CSRF token, over a real SQLite database.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <thread>

#include "tracker/service/tracker_service.h"

namespace flotilla::tracker {
namespace {

constexpr char kPassword[] = "correct horse battery";

class OperatorRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/operator-routes-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/repo");
    const std::string url = dir_ + "/t.db";
    devices_ = DeviceDb::Open(url, clock_).value();
    operators_ = OperatorStore::Open(url, clock_).value();
    operators_->set_actor("local:test");
    ASSERT_TRUE(operators_->Add("alice", "admin", kPassword).ok());
    TrackerServiceOptions options;
    options.repo = RepositoryLayout{dir_ + "/repo"};
    options.public_url = "https://fleet.example";
    options.operators = operators_.get();
    options.logins.burst = 3;
    options.logins.per_minute = 1;
    options.operator_actions = [this](std::string_view action, const Json& body,
                                      const std::string& actor, int64_t) -> Result<Json> {
      ran_.push_back(actor + " " + std::string(action) + " " + body.dump());
      return Json{{"done", true}};
    };
    service_ = std::make_unique<TrackerService>(options, *devices_, clock_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  http::Reply Send(http::verb method, const std::string& target, const std::string& body = "",
                   const std::vector<std::pair<http::field, std::string>>& headers = {},
                   const std::vector<std::pair<std::string, std::string>>& other = {}) {
    http::Request request(method, target, 11);
    for (const auto& [name, value] : headers) request.set(name, value);
    for (const auto& [name, value] : other) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    return service_->Handle(request, {boost::asio::ip::make_address("192.0.2.7"), /*tls=*/true});
  }
  std::string Header(const http::Reply& reply, const std::string& name) {
    for (const auto& [key, value] : reply.headers) {
      if (key == name) return value;
    }
    return "";
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<DeviceDb> devices_;
  std::unique_ptr<OperatorStore> operators_;
  std::unique_ptr<TrackerService> service_;
  std::vector<std::string> ran_;
};

TEST_F(OperatorRoutesTest, SessionOverTlsCsrfAndTheEscapedAuditSection) {
  // An audit row whose target carries markup stays text on the page.
  ASSERT_TRUE(
      operators_
          ->Audit({.actor = "local:test", .action = "group.create", .target = "<script>x</script>"})
          .ok());
  const std::string form = "name=alice&password=correct+horse+battery";
  http::Reply login = Send(http::verb::post, "/login", form,
                           {{http::field::content_type, "application/x-www-form-urlencoded"}});
  ASSERT_EQ(login.status, http::status::see_other) << login.body;
  const std::string cookie = Header(login, "Set-Cookie");
  EXPECT_NE(cookie.find("; HttpOnly; SameSite=Strict; Secure"), std::string::npos) << cookie;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(cookie, match, std::regex("flotilla_session=([0-9a-f]{64})")));
  const std::string session = match[1];

  http::Reply page =
      Send(http::verb::get, "/", "", {{http::field::cookie, "flotilla_session=" + session}});
  ASSERT_EQ(page.status, http::status::ok);
  EXPECT_NE(page.body.find("&lt;script&gt;x&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.body.find("<script>x"), std::string::npos);
  EXPECT_NE(page.body.find(CsrfTokenOf(session)), std::string::npos);

  const std::string recall = R"({"app":"kiosk","release":6})";
  http::Reply refused = Send(http::verb::post, "/api/v1/operator/recall", recall,
                             {{http::field::cookie, "flotilla_session=" + session}});
  EXPECT_EQ(refused.status, http::status::forbidden);
  EXPECT_TRUE(ran_.empty());
  http::Reply done = Send(http::verb::post, "/api/v1/operator/recall", recall,
                          {{http::field::cookie, "flotilla_session=" + session}},
                          {{"X-Flotilla-CSRF", CsrfTokenOf(session)}});
  EXPECT_EQ(done.status, http::status::ok) << done.body;
  EXPECT_EQ(ran_, (std::vector<std::string>{"alice recall " + Json::parse(recall).dump()}));
}

// With an offload (as serve gives it), a login's password check leaves the
// calling thread: the reply is held, other requests are answered meanwhile,
// and the check runs on another thread before the answer comes.
TEST_F(OperatorRoutesTest, ALoginsPasswordCheckRunsOffTheNetworkThread) {
  std::vector<std::pair<std::function<void()>, std::function<void()>>> offloaded;
  TrackerServiceOptions options;
  options.repo = RepositoryLayout{dir_ + "/repo"};
  options.operators = operators_.get();
  options.offload = [&](std::function<void()> job, std::function<void()> done) {
    offloaded.emplace_back(std::move(job), std::move(done));
  };
  service_ = std::make_unique<TrackerService>(options, *devices_, clock_);
  const std::vector<std::pair<http::field, std::string>> form_type = {
      {http::field::content_type, "application/x-www-form-urlencoded"}};

  std::vector<http::Reply> answers;
  for (const char* password : {"correct+horse+battery", "wrong+password+here"}) {
    http::Reply held =
        Send(http::verb::post, "/login", std::string("name=alice&password=") + password, form_type);
    ASSERT_TRUE(held.later) << "held for the check: " << held.body;
    held.later([&](http::Reply reply) { answers.push_back(std::move(reply)); });
  }
  ASSERT_EQ(offloaded.size(), 2u);
  EXPECT_TRUE(answers.empty());
  // The network thread goes on meanwhile.
  EXPECT_EQ(Send(http::verb::get, "/healthz").status, http::status::ok);

  for (auto& [job, done] : offloaded) {
    std::thread checker(job);  // the checks touch no database: any thread
    checker.join();
    done();
  }
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].status, http::status::see_other) << answers[0].body;
  EXPECT_NE(Header(answers[0], "Set-Cookie").find("flotilla_session="), std::string::npos);
  EXPECT_EQ(answers[1].status, http::status::unauthorized) << answers[1].body;
  auto audit = ListAudit(operators_->engine(), {});
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> outcomes;
  for (const AuditEntry& e : *audit) {
    if (e.action == "login") outcomes.push_back(e.outcome);
  }
  std::sort(outcomes.begin(), outcomes.end());
  EXPECT_EQ(outcomes, (std::vector<std::string>{"failed", "ok"}));
}

TEST_F(OperatorRoutesTest, BadBodiesAndRoutesRunNothing) {
  const std::string bearer = "Bearer " + operators_->CreateToken("alice", "", 0).value();
  for (const std::string& body :
       {std::string("[1"), std::string("[1]"), std::string(100, '[') + std::string(100, ']'),
        std::string(R"({"app":"kiosk","app":"x"})")}) {
    http::Reply reply = Send(http::verb::post, "/api/v1/operator/recall", body,
                             {{http::field::authorization, bearer}});
    EXPECT_EQ(reply.status, http::status::bad_request) << body;
  }
  EXPECT_EQ(Send(http::verb::post, "/api/v1/operator/rollouts/x/pause", "",
                 {{http::field::authorization, bearer}})
                .status,
            http::status::not_found);
  EXPECT_EQ(
      Send(http::verb::get, "/api/v1/operator/recall", "", {{http::field::authorization, bearer}})
          .status,
      http::status::method_not_allowed);
  EXPECT_TRUE(ran_.empty());
}

TEST_F(OperatorRoutesTest, EveryLoginAttemptCountsTowardTheTrackersLimit) {
  const auto post = [&](const std::string& name) {
    return Send(http::verb::post, "/login", "name=" + name + "&password=wrong+password+here",
                {{http::field::content_type, "application/x-www-form-urlencoded"}})
        .status;
  };
  // Three names, one attempt each: the per-account limit is not reached,
  // the tracker's (a burst of 3) is.
  EXPECT_EQ(post("a1"), http::status::unauthorized);
  EXPECT_EQ(post("a2"), http::status::unauthorized);
  EXPECT_EQ(post("a3"), http::status::unauthorized);
  EXPECT_EQ(post("a4"), http::status::too_many_requests);
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_EQ(post("a5"), http::status::unauthorized);
  EXPECT_NE(service_->metrics().Render({}).find("flotilla_refusals_total{kind=\"login_rate\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace flotilla::tracker
