// Webhook delivery against a real receiver on loopback (this project's HTTP
// server, started by the test): a rollout on a real SQLite file halts, the
// evaluation writes the event, the sender POSTs it signed; the signature is
// checked with the openssl command. A receiver that fails first gets the
// same event on retry, in order; one that never answers costs a timeout;
// events past the maximum age are given up. And the configuration's checks.
#include "tracker/service/webhook_sender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "http/http_server.h"
#include "tests/support/test_util.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

using namespace std::chrono_literals;

constexpr char kSecret[] = "a-webhook-secret-of-some-length";

TEST(WebhookRetryDelay, DoublesFromTheMinimumUpToTheCap) {
  EXPECT_EQ(WebhookRetryDelay(1, 10, 3600), 10);
  EXPECT_EQ(WebhookRetryDelay(2, 10, 3600), 20);
  EXPECT_EQ(WebhookRetryDelay(3, 10, 3600), 40);
  EXPECT_EQ(WebhookRetryDelay(9, 10, 3600), 2560);
  EXPECT_EQ(WebhookRetryDelay(10, 10, 3600), 3600);
  EXPECT_EQ(WebhookRetryDelay(1000, 10, 3600), 3600) << "no overflow";
}

TEST(WebhookSignature, IsHmacSha256OfTheBody) {
  // RFC 4231, test case 2.
  EXPECT_EQ(WebhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookConfig, UrlsEventsAndSecretsAreChecked) {
  const std::string dir = ::testing::TempDir() + "/webhook-config";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string secret = dir + "/secret";
  ASSERT_TRUE(WriteFileAtomic(secret, std::string(kSecret) + "\n").ok());
  std::filesystem::permissions(
      secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_TRUE(WriteFileAtomic(dir + "/ok.json", R"({"repository":"/r","webhooks":[
      {"url":"https://hooks.example/flotilla?token=t0ps3cret","secret_file":")" +
                                                    secret + R"("},
      {"url":"http://127.0.0.1:9/x","secret_file":")" +
                                                    secret + R"(","events":["rollout.halted"]}],
      "webhook_retry_min_s":1,"webhook_max_age_s":600})")
                  .ok());
  auto config = LoadTrackerConfig(dir + "/ok.json");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(ValidateTrackerConfig(*config).ok());
  ASSERT_EQ(config->webhooks.size(), 2u);
  EXPECT_EQ(config->webhook_retry_min_s, 1);
  auto targets = LoadWebhookTargets(*config);
  ASSERT_TRUE(targets.ok()) << targets.status().ToString();
  EXPECT_EQ((*targets)[0].secret, kSecret);
  EXPECT_EQ((*targets)[0].events, WebhookEventNames()) << "no filter: every event";
  EXPECT_EQ((*targets)[1].events, std::vector<std::string>{"rollout.halted"});

  auto refused = [&](const std::string& url, std::vector<std::string> events = {}) {
    TrackerConfig c = *config;
    c.webhooks = {{url, secret, std::move(events)}};
    Status st = ValidateTrackerConfig(c);
    EXPECT_FALSE(st.ok()) << url;
    EXPECT_EQ(st.message().find("t0ps3cret"), std::string::npos) << st.ToString();
    return st.message();
  };
  EXPECT_NE(refused("ftp://hooks.example/x?token=t0ps3cret").find("http:// or https://"),
            std::string::npos);
  EXPECT_NE(refused("hooks.example/x").find("webhooks[0]"), std::string::npos);
  EXPECT_NE(refused("http:///x?token=t0ps3cret").find("needs a host"), std::string::npos);
  EXPECT_NE(refused("http://hooks.example/a b").find("needs a host"), std::string::npos);
  EXPECT_NE(refused("http://hooks.example/", {"rollout.halt"}).find("unknown event"),
            std::string::npos);

  ASSERT_TRUE(WriteFileAtomic(dir + "/missing.json", R"({"repository":"/r","webhooks":[
      {"url":"http://h/"}]})")
                  .ok());
  EXPECT_NE(LoadTrackerConfig(dir + "/missing.json").status().message().find("secret_file"),
            std::string::npos);
  std::filesystem::permissions(secret, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  auto open_secret = LoadWebhookTargets(*config);
  EXPECT_EQ(open_secret.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(open_secret.status().message().find(kSecret), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A receiver on 127.0.0.1: records each request, answers with the next of
// `answers` (200 once they run out).
class Receiver {
 public:
  struct Seen {
    std::string body, event, event_id, signature, content_type;
  };
  explicit Receiver(std::vector<int> answers = {}) : answers_(std::move(answers)) {
    http::ServerOptions options;
    options.address = "127.0.0.1";
    server_ =
        http::Server::Start(io_, options,
                            [this](const http::Request& r, const http::RequestContext&) {
                              std::lock_guard lock(mu_);
                              seen_.push_back({r.body(), std::string(r["X-Flotilla-Event"]),
                                               std::string(r["X-Flotilla-Event-Id"]),
                                               std::string(r["X-Flotilla-Signature"]),
                                               std::string(r[http::field::content_type])});
                              const int status = next_ < answers_.size() ? answers_[next_++] : 200;
                              return http::Reply::Text(static_cast<http::status>(status), "thanks");
                            })
            .value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Receiver() {
    io_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hooks/flotilla";
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> answers_;
  size_t next_ = 0;
  std::vector<Seen> seen_;
};

// Four screens run kiosk; a rollout of release 7 in one wave, which two of
// them fail: the evaluation halts it and writes rollout.halted.
class WebhookSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/webhook-sender-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    url_ = dir_ + "/tracker.db";
    auto devices = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(devices.ok()) << devices.status().ToString();
    devices_ = std::move(*devices);
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) {
      auto enrolled = devices_->Enroll("screen-" + std::to_string(i), "shop");
      ASSERT_TRUE(enrolled.ok());
      ids.push_back(enrolled->device_id);
    }
    for (const char* release : {"6", "7"}) {
      ASSERT_TRUE(devices_->RecordRelease("kiosk", release).ok());
    }
    auto fleet = FleetStore::Open(url_, clock_);
    ASSERT_TRUE(fleet.ok());
    ASSERT_TRUE((*fleet)->CreateGroup("all", Selector::Parse("all").value()).ok());
    ASSERT_TRUE((*fleet)->AssignApp("kiosk", "all").ok());
    auto rollouts = RolloutStore::Open(url_, clock_);
    ASSERT_TRUE(rollouts.ok());
    auto started = (*rollouts)->Start(RolloutSpec{"kiosk", 7, "", {10000}, 0, 2500, 3600},
                                      (*fleet)->Load().value());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    clock_.Advance(1s);
    for (int i = 0; i < 2; ++i) {
      DeviceReport r{.app = "kiosk", .release = "7", .state = "failed", .health = "unknown"};
      ASSERT_TRUE(devices_->RecordReport(ids[i], r).ok());
    }
    ASSERT_TRUE((*rollouts)->Evaluate((*fleet)->Load().value()).ok());
    ASSERT_EQ((*rollouts)->List(std::nullopt)->front().rollout.state, RolloutState::kHalted);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<WebhookSender> Sender(const std::string& url,
                                        std::vector<std::string> events = WebhookEventNames(),
                                        std::function<bool()> may_send = {}) {
    WebhookSenderOptions options;
    options.timeout = 2s;
    options.retry_min_s = 10;
    options.retry_max_s = 40;
    options.max_age_s = 600;
    return std::make_unique<WebhookSender>(url_, std::vector<WebhookTarget>{{url, kSecret, events}},
                                           options, clock_, std::move(may_send), &metrics_);
  }
  std::vector<WebhookEvent> Events() {
    auto outbox = WebhookOutbox::Open(url_);
    EXPECT_TRUE(outbox.ok());
    return (*outbox)->Events().value();
  }
  // The signature the openssl command computes for `body`.
  std::string OpensslSignature(const std::string& body) {
    EXPECT_TRUE(WriteFileAtomic(dir_ + "/body", body).ok());
    auto run = testing::RunShell("openssl dgst -sha256 -hmac '" + std::string(kSecret) + "' '" +
                                 dir_ + "/body'");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const size_t eq = run.output.rfind("= ");
    return eq == std::string::npos ? run.output : "sha256=" + run.output.substr(eq + 2, 64);
  }

  FakeClock clock_;
  std::string dir_;
  std::string url_;
  std::unique_ptr<DeviceDb> devices_;
  TrackerMetrics metrics_;
};

TEST_F(WebhookSenderTest, TheReceiverGetsExactlyTheSignedEvent) {
  Receiver receiver;
  auto sender = Sender(receiver.url());
  ASSERT_TRUE(sender->DeliverDue().ok());
  const auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  const auto seen = receiver.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, events[0].body);
  EXPECT_EQ(seen[0].event, "rollout.halted");
  EXPECT_EQ(seen[0].event_id, events[0].event_id);
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].signature, OpensslSignature(seen[0].body));
  Json body = ParseJsonStrict(seen[0].body).value();
  EXPECT_EQ(body["event"], "rollout.halted");
  EXPECT_EQ(body["id"], events[0].event_id);
  EXPECT_EQ(body["rollout"]["app"], "kiosk");
  EXPECT_EQ(body["rollout"]["release"], 7);
  EXPECT_EQ(body["rollout"]["state"], "halted");
  EXPECT_NE(body["rollout"]["reason"].get<std::string>().find("2 of 4 devices failed"),
            std::string::npos)
      << body.dump();

  // A webhook for other events only gets none of it.
  Receiver other;
  ASSERT_TRUE(Sender(other.url(), {"rollout.completed"})->DeliverDue().ok());
  EXPECT_TRUE(other.seen().empty());
  // Nor does any while this replica does not hold the signing lease.
  ASSERT_TRUE(
      Sender(other.url(), WebhookEventNames(), [] { return false; })->Refresh(clock_.Now()).ok());
  EXPECT_TRUE(other.seen().empty());
  clock_.Advance(30s);
  ASSERT_TRUE(sender->DeliverDue().ok());
  EXPECT_EQ(receiver.seen().size(), 1u) << "delivered once";
  EXPECT_NE(metrics_.Render({}).find("flotilla_webhook_sends_total{result=\"delivered\"} 1"),
            std::string::npos)
      << metrics_.Render({});
}

TEST_F(WebhookSenderTest, AFailingReceiverGetsTheSameEventOnRetryInOrder) {
  Receiver receiver({503, 500});
  auto outbox = WebhookOutbox::Open(url_);
  ASSERT_TRUE(outbox.ok());
  auto engine = SqlEngine::Open(url_);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE(AppendWebhookEvent(**engine, "rollout.completed", "later", "", R"({"id":"later"})",
                                 1'800'000'002)
                  .ok());
  auto sender = Sender(receiver.url());

  ASSERT_TRUE(sender->DeliverDue().ok());
  ASSERT_EQ(receiver.seen().size(), 1u) << "the first failed: the later one waits";
  auto backlog = (*outbox)->Backlog();
  ASSERT_TRUE(backlog.ok());
  ASSERT_EQ(backlog->size(), 1u);
  EXPECT_EQ(backlog->front().pending, 1);
  EXPECT_NE(backlog->front().last_error.find("503"), std::string::npos)
      << backlog->front().last_error;
  EXPECT_EQ(backlog->front().url, receiver.url());

  clock_.Advance(9s);
  ASSERT_TRUE(sender->DeliverDue().ok());
  EXPECT_EQ(receiver.seen().size(), 1u) << "not before its retry (10 s)";
  clock_.Advance(1s);
  ASSERT_TRUE(sender->DeliverDue().ok());
  ASSERT_EQ(receiver.seen().size(), 2u) << "second attempt, 500";
  clock_.Advance(19s);
  ASSERT_TRUE(sender->DeliverDue().ok());
  EXPECT_EQ(receiver.seen().size(), 2u) << "the delay doubled (20 s)";
  clock_.Advance(1s);
  ASSERT_TRUE(sender->DeliverDue().ok());
  const auto seen = receiver.seen();
  ASSERT_EQ(seen.size(), 4u) << "delivered, then the later event";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i].event, "rollout.halted");
    EXPECT_EQ(seen[i].body, seen[0].body) << "the same bytes each time";
    EXPECT_EQ(seen[i].event_id, seen[0].event_id);
    EXPECT_EQ(seen[i].signature, OpensslSignature(seen[0].body));
  }
  EXPECT_EQ(seen[3].event_id, "later");
  EXPECT_EQ(seen[3].body, R"({"id":"later"})");
  backlog = (*outbox)->Backlog();
  EXPECT_EQ(backlog->front().pending, 0);
  EXPECT_EQ(backlog->front().delivered, 2);
  const std::string metrics = metrics_.Render({});
  EXPECT_NE(metrics.find("flotilla_webhook_sends_total{result=\"failed\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("flotilla_webhook_sends_total{result=\"delivered\"} 2"),
            std::string::npos);
}

// A receiver that takes the connection and never answers costs one timeout
// per attempt; past the maximum age the event is given up.
TEST_F(WebhookSenderTest, ASilentReceiverTimesOutAndIsGivenUpOnAtTheMaximumAge) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string url =
      "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/hook";
  auto sender = Sender(url);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(sender->DeliverDue().ok());
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 30s);
  auto outbox = WebhookOutbox::Open(url_);
  ASSERT_TRUE(outbox.ok());
  auto backlog = (*outbox)->Backlog();
  ASSERT_EQ(backlog->size(), 1u);
  EXPECT_EQ(backlog->front().pending, 1);

  clock_.Advance(601s);
  ASSERT_TRUE(sender->DeliverDue().ok());
  backlog = (*outbox)->Backlog();
  EXPECT_EQ(backlog->front().pending, 0);
  EXPECT_EQ(backlog->front().abandoned, 1);
  EXPECT_NE(metrics_.Render({}).find("flotilla_webhook_sends_total{result=\"abandoned\"} 1"),
            std::string::npos);
}

// With no webhook configured the sender still prunes the outbox, at twice
// the maximum age, so events do not pile up.
TEST_F(WebhookSenderTest, WithoutWebhooksTheOutboxIsStillPruned) {
  WebhookSenderOptions options;
  options.max_age_s = 600;
  WebhookSender sender(url_, {}, options, clock_);
  ASSERT_TRUE(sender.Refresh(clock_.Now()).ok());
  EXPECT_EQ(Events().size(), 1u) << "young: kept";
  clock_.Advance(3601s);  // the next hourly pass, past twice the maximum age
  auto wait = sender.Refresh(clock_.Now());
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(*wait, std::chrono::hours(1)) << "nothing to send: hourly";
  EXPECT_TRUE(Events().empty());
}

// While the sender waits on a receiver that does not answer, it holds no
// database lock: an evaluation that halts a rollout (and writes its event)
// and a report go through, and the POST is still waiting when they are
// done. Closing the connection then ends the POST.
TEST_F(WebhookSenderTest, ASlowReceiverHoldsNothingTheEvaluationNeeds) {
  boost::asio::io_context io;
  auto silent = std::make_unique<boost::asio::ip::tcp::acceptor>(
      io, boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0});
  WebhookSenderOptions options;
  options.timeout = 60s;
  WebhookSender sender(url_,
                       {{"http://127.0.0.1:" + std::to_string(silent->local_endpoint().port()),
                         kSecret, WebhookEventNames()}},
                       options, clock_);
  std::atomic<bool> sending_done = false;
  std::thread sending([&] {
    EXPECT_TRUE(sender.DeliverDue().ok());
    sending_done = true;
  });
  boost::asio::ip::tcp::socket connection = silent->accept();  // the POST is under way
  auto fleet = FleetStore::Open(url_, clock_);
  ASSERT_TRUE(fleet.ok());
  auto rollouts = RolloutStore::Open(url_, clock_);
  ASSERT_TRUE(rollouts.ok());
  ASSERT_TRUE((*rollouts)->Abort(1).ok());
  auto second = (*rollouts)->Start(RolloutSpec{"kiosk", 7, "", {10000}, 0, 0, 3600},
                                   (*fleet)->Load().value());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  clock_.Advance(1s);
  DeviceReport r{.app = "kiosk", .release = "7", .state = "failed", .health = "unknown"};
  ASSERT_TRUE(devices_->RecordReport(second->members.front().device_id, r).ok());
  ASSERT_TRUE((*rollouts)->Evaluate((*fleet)->Load().value()).ok());
  EXPECT_FALSE(sending_done) << "the evaluation waited for the sender";
  EXPECT_EQ(Events().size(), 2u) << "the second halt's event was written";
  connection.close();
  silent.reset();
  sending.join();
  auto outbox = WebhookOutbox::Open(url_);
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ((*outbox)->Backlog()->front().pending, 1) << "the failed POST is recorded";
}

}  // namespace
}  // namespace flotilla::tracker
