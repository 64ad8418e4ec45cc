// Rollouts with real processes: `flotilla-tracker serve` (its signing replica
// evaluates the rollouts every second), devices enrolled and reporting with
// the tracker client library as nodes do, and the `rollout` commands of the
// real binary. Each device's fleet document, as `serve` or the command
// re-signed it, says which release it is sent. SQLite, and PostgreSQL for
// the halt. A webhook receiver on loopback, which fails its first request,
// gets the halt's signed notification on retry.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "http/http_server.h"
#include "metadata/release.h"
#include "metadata/repository.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/client/tracker_client.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/fleet/rollout_store.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/device_state.h"

namespace flotilla::testing {
namespace {

using metadata::RoleType;

metadata::Release KioskRelease(uint64_t version) {
  const std::string bytes = "artifact " + std::to_string(version);
  metadata::Release r;
  r.app = "kiosk";
  r.version = version;
  r.image = {Digest::Of("m" + bytes), Digest::Of("c"), "linux/arm64", {{Digest::Of(bytes), 10}}};
  r.artifacts = {{Digest::Of(bytes),
                  metadata::ArtifactKind::kFull,
                  {},
                  Digest::Of(bytes),
                  bytes.size(),
                  Digest::Of("t" + bytes).bytes(),
                  "zstd"}};
  return r;
}

// A webhook receiver on 127.0.0.1 (this project's HTTP server): records each
// request; answers 503 to the first, 200 to the others.
class HookReceiver {
 public:
  struct Seen {
    std::string body, event, event_id, signature;
  };
  HookReceiver() {
    server_ =
        http::Server::Start(io_, {}, [this](const http::Request& r, const http::RequestContext&) {
          std::lock_guard lock(mu_);
          seen_.push_back({r.body(), std::string(r["X-Flotilla-Event"]),
                           std::string(r["X-Flotilla-Event-Id"]),
                           std::string(r["X-Flotilla-Signature"])});
          return http::Reply::Text(
              seen_.size() == 1 ? http::status::service_unavailable : http::status::ok, "");
        }).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~HookReceiver() {
    io_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/flotilla?token=t";
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
  std::vector<Seen> seen_;
};

constexpr char kHookSecret[] = "secret-of-the-rollout-webhook";

// Nine screens on three sites (4, 3, 2) run kiosk; releases 6 and 7 are
// published, the fleet repository is initialized, `serve` runs.
class RolloutE2eTest : public ::testing::TestWithParam<tracker::SqlEngineKind> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("rollout-e2e");
    ASSERT_FALSE(dir_.empty());
    repo_ = tracker::RepositoryLayout{dir_ + "/repo"};
    std::string init_args = "init " + repo_.root + " --public-url http://127.0.0.1:9";
    url_ = repo_.default_db_path();
    if (GetParam() == tracker::SqlEngineKind::kPostgresql) {
      auto cluster = PostgresCluster::Shared();
      ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
      auto url = (*cluster)->CreateDatabase("rollout");
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = *url;
      init_args += " --database-url '" + url_ + "'";
    }
    auto init = Tracker(init_args);
    ASSERT_EQ(init.exit_code, 0) << init.output;
    {
      auto image = metadata::Repository::Open(repo_.root, clock_);
      ASSERT_TRUE(image.ok()) << image.status().ToString();
      auto keys = tracker::LoadRoleKeys(
          repo_, (*image)->root(), {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp});
      ASSERT_TRUE(keys.ok()) << keys.status().ToString();
      auto db = tracker::DeviceDb::Open(url_, clock_);
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      for (uint64_t v : {6, 7}) {
        ASSERT_TRUE(metadata::PublishRelease(**image, KioskRelease(v), *keys).ok());
        ASSERT_TRUE((*db)->RecordRelease("kiosk", std::to_string(v)).ok());
      }
    }
    Cli("fleet init --offline-keys " + dir_ + "/fleet-off");
    // The webhook: retried a second after a failure.
    const std::string secret = dir_ + "/hook.secret";
    ASSERT_TRUE(WriteFileAtomic(secret, std::string(kHookSecret) + "\n").ok());
    std::filesystem::permissions(
        secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    const Json config{{"repository", repo_.root},
                      {"webhooks", {{{"url", hooks_.url()}, {"secret_file", secret}}}},
                      {"webhook_retry_min_s", 1}};
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/serve.json", config.dump()).ok());
    std::vector<std::string> serve_args = {"--rollout-interval", "1", "--config",
                                           dir_ + "/serve.json"};
    if (GetParam() == tracker::SqlEngineKind::kPostgresql) {
      serve_args.insert(serve_args.end(), {"--database-url", url_});
    }
    ASSERT_TRUE(tracker_.Start(dir_, repo_.root, serve_args)) << tracker_.Log();
    tracker::TrackerClient client(tracker_.url());
    const std::vector<std::pair<std::string, int>> sites = {{"a", 4}, {"b", 3}, {"c", 2}};
    for (const auto& [site, count] : sites) {
      for (int i = 0; i < count; ++i) {
        const std::string name = "screen-" + site + std::to_string(i);
        auto enrolled = client.Enrol({TrackerProcess::FleetToken(), name, "site-" + site});
        ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
        devices_[name] = *enrolled;
      }
    }
    Cli("group create screens --select tag=screen");
    for (const auto& [name, d] : devices_) Cli("device tag " + name + " --add screen");
    Cli("app assign kiosk --group screens");
  }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  }
  std::string Db() const {
    return GetParam() == tracker::SqlEngineKind::kPostgresql ? " --database-url '" + url_ + "'"
                                                             : "";
  }
  // A fleet command that must succeed; its JSON.
  Json Cli(const std::string& args) {
    auto run = Tracker(args + " --repository " + repo_.root + Db() + " --json");
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.output << "\n" << tracker_.Log();
    // Text lines may precede nothing: --json prints one document.
    auto json = ParseJsonStrict(run.output);
    EXPECT_TRUE(json.ok()) << args << ": " << run.output;
    return json.ok() ? *json : Json();
  }
  Json Status(int64_t id) { return Cli("rollout status " + std::to_string(id)); }
  // Polls the rollout's status until `done` holds (20 s at most).
  Json WaitFor(int64_t id, const std::function<bool(const Json&)>& done) {
    Json status;
    for (int i = 0; i < 100; ++i) {
      status = Status(id);
      if (done(status)) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "rollout " << id << " never got there: " << status.dump() << "\n"
                  << tracker_.Log();
    return status;
  }
  void Report(const std::string& name, const std::string& state, uint64_t release,
              const std::string& health, const std::string& failure = "") {
    tracker::TrackerClient client(tracker_.url());
    tracker::DeviceReport r{.app = "kiosk",
                            .release = std::to_string(release),
                            .state = state,
                            .health = health,
                            .failure = failure};
    ASSERT_TRUE(client.Report(devices_.at(name), r).ok()) << name;
  }
  // The release the device's fleet document sends it (0: none, or no document).
  uint64_t Sent(const std::string& name) {
    auto dir = tracker::DeviceRepositoryDir(repo_, devices_.at(name).device_id);
    EXPECT_TRUE(dir.ok());
    // The document the state file's current targets lists (replaced whole:
    // never one serve is half-way through writing).
    auto state = tracker::ReadDeviceState(*dir);
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    if (!state.ok() || !*state) return 0;  // no document yet
    const std::string* document = (*state)->Find((*state)->document_sha256 + ".device.json");
    EXPECT_NE(document, nullptr);
    if (!document) return 0;
    Json doc = ParseJsonStrict(*document).value();
    EXPECT_EQ(doc["device"], devices_.at(name).device_id);
    return doc["apps"].contains("kiosk") ? doc["apps"]["kiosk"]["release"].get<uint64_t>() : 0;
  }
  // Waits until serve re-signed the device's document to send `release`
  // (the rollout's status is committed before the documents are signed).
  void WaitSent(const std::string& name, uint64_t release) {
    for (int i = 0; i < 100 && Sent(name) != release; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(Sent(name), release) << name << "\n" << tracker_.Log();
  }
  // Device names by wave (0-based), from the rollout's stored members.
  std::vector<std::vector<std::string>> Waves(int64_t id) {
    auto store = tracker::RolloutStore::Open(url_, clock_);
    EXPECT_TRUE(store.ok());
    auto views = (*store)->List(id);
    EXPECT_TRUE(views.ok());
    std::vector<std::vector<std::string>> waves(views->front().rollout.waves.size());
    for (const auto& m : views->front().members) waves[m.wave].push_back(m.name);
    return waves;
  }

  // The signature the openssl command computes for `body` with kHookSecret.
  std::string OpensslSignature(const std::string& body) {
    EXPECT_TRUE(WriteFileAtomic(dir_ + "/hook.body", body).ok());
    auto run = RunShell("openssl dgst -sha256 -hmac '" + std::string(kHookSecret) + "' '" + dir_ +
                        "/hook.body'");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const size_t eq = run.output.rfind("= ");
    return eq == std::string::npos ? run.output : "sha256=" + run.output.substr(eq + 2, 64);
  }

  HookReceiver hooks_;
  SystemClock& clock_ = SystemClock::Instance();
  std::string dir_;
  std::string url_;
  tracker::RepositoryLayout repo_;
  TrackerProcess tracker_;
  std::map<std::string, tracker::DeviceCredentials> devices_;
};

// The first wave's screens roll back and fail their health check: the
// rollout halts itself, the next wave never starts, status says why; abort
// sends the first wave back to release 6.
TEST_P(RolloutE2eTest, HaltsItselfThenAbortSendsDevicesBack) {
  Json started =
      Cli("rollout start --app kiosk --release 7 --waves 50%,100% --group screens "
          "--soak 0 --max-failures 25%");
  const int64_t id = started["id"];
  EXPECT_EQ(started["waves"][0]["size"], 5);
  EXPECT_EQ(started["waves"][1]["size"], 4);
  const auto waves = Waves(id);
  ASSERT_EQ(waves[0].size(), 5u);
  for (const auto& name : waves[0]) EXPECT_EQ(Sent(name), 7u) << name;
  for (const auto& name : waves[1]) EXPECT_EQ(Sent(name), 6u) << name;

  Report(waves[0][0], "running", 7, "healthy");
  Report(waves[0][1], "rolled_back", 6, "healthy", "health");  // its switch to 7 rolled back
  Report(waves[0][2], "running", 7, "unhealthy");              // health failure after the switch
  Report(waves[0][3], "failed", 7, "unknown", "transfer");     // a fetch it retries: not a failure
  Json halted = WaitFor(id, [](const Json& s) { return s["state"] == "halted"; });
  const std::string reason = halted["reason"];
  EXPECT_NE(reason.find("wave 1: 2 of 5 devices failed (at most 25% may)"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find(waves[0][1] + ": switch rolled back, health check failed (runs release 6)"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find(waves[0][2] + ": health check failed on release 7"), std::string::npos)
      << reason;
  EXPECT_EQ(halted["waves"][0]["failed"], 2);
  EXPECT_EQ(halted["waves"][0]["healthy"], 1);
  EXPECT_EQ(halted["waves"][0]["pending"], 2);
  EXPECT_EQ(halted["waves"][1]["started"], false);
  EXPECT_EQ(halted["failed_devices"].size(), 2u);
  auto text =
      Tracker("rollout status " + std::to_string(id) + " --repository " + repo_.root + Db());
  EXPECT_NE(text.output.find("halted: wave 1: 2 of 5"), std::string::npos) << text.output;

  // serve's dashboard and its JSON twin show the halt, and each device's
  // desired release beside the one it reports, once serve read them again
  // (apart from the requests, when a page asks: within seconds).
  const std::string halted_mark = "<span class=\"state state-halted\">halted</span> wave 1 of 2";
  HttpResponse page;
  for (int i = 0; i < 100; ++i) {
    page = HttpRequestTo(tracker_.port(), "GET", "/");
    ASSERT_EQ(page.status, 200) << page.raw;
    if (page.body.find(halted_mark) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (const std::string& needle :
       {halted_mark, std::string("wave 1: 2 of 5 devices failed (at most 25% may)"),
        "<li data-device=\"" + waves[0][1] + "\">", "<tr data-device=\"" + waves[0][1] + "\">",
        std::string("rollout 1 (halted): wave 2 of 2, waiting")}) {
    EXPECT_NE(page.body.find(needle), std::string::npos) << needle << "\n" << page.body;
  }
  auto fleet = tracker::TrackerClient(tracker_.url()).Fleet();
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->rollouts.size(), 1u);
  EXPECT_EQ(fleet->rollouts[0].state, "halted");
  EXPECT_EQ(fleet->rollouts[0].waves[0].failed, 2u);
  EXPECT_EQ(fleet->rollouts[0].failed_devices.size(), 2u);
  size_t shown = 0;
  for (const tracker::DeviceRow& d : fleet->devices) {
    ASSERT_EQ(d.desired.size(), 1u) << d.identity.name;
    const bool first_wave =
        std::find(waves[0].begin(), waves[0].end(), d.identity.name) != waves[0].end();
    EXPECT_EQ(d.desired[0].release, first_wave ? 7u : 6u) << d.identity.name;
    ++shown;
  }
  EXPECT_EQ(shown, devices_.size());
  // Pages: past the last one is empty but counts the fleet; a bad one is refused.
  const HttpResponse past = HttpRequestTo(tracker_.port(), "GET", "/api/v1/fleet?page=2");
  ASSERT_EQ(past.status, 200) << past.raw;
  const Json past_json = ParseJsonStrict(past.body).value();
  EXPECT_EQ(past_json["devices"].size(), 0u);
  EXPECT_EQ(past_json["devices_total"], devices_.size());
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/?page=0").status, 400);
  EXPECT_EQ(HttpRequestTo(tracker_.port(), "GET", "/api/v1/fleet?page=x").status, 400);

  // The webhook got the halt, signed, on its second try (it refused the first).
  for (int i = 0; i < 100 && hooks_.seen().size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto hooked = hooks_.seen();
  ASSERT_EQ(hooked.size(), 2u) << tracker_.Log();
  EXPECT_EQ(hooked[1].event_id, hooked[0].event_id) << "the same event, retried";
  EXPECT_EQ(hooked[1].body, hooked[0].body);
  EXPECT_EQ(hooked[1].event, "rollout.halted");
  EXPECT_EQ(hooked[1].signature, OpensslSignature(hooked[1].body));
  Json event = ParseJsonStrict(hooked[1].body).value();
  EXPECT_EQ(event["id"], hooked[1].event_id);
  EXPECT_EQ(event["rollout"]["id"], id);
  EXPECT_EQ(event["rollout"]["state"], "halted");
  EXPECT_EQ(event["rollout"]["reason"], reason);
  EXPECT_EQ(tracker_.Log().find(kHookSecret), std::string::npos) << "secrets are never logged";
  EXPECT_EQ(tracker_.Log().find("token=t"), std::string::npos) << "nor a URL's query";
  Json outbox = Cli("webhook status");
  EXPECT_EQ(outbox["events"], 1);
  EXPECT_EQ(outbox["newest"]["id"], hooked[1].event_id);
  ASSERT_EQ(outbox["webhooks"].size(), 1u) << outbox.dump();
  EXPECT_EQ(outbox["webhooks"][0]["url"],
            hooks_.url().substr(0, hooks_.url().find('?')))  // the query may hold a token
      << outbox.dump();
  EXPECT_EQ(outbox["webhooks"][0]["delivered"], 1);
  EXPECT_EQ(outbox["webhooks"][0]["pending"], 0);

  // The rest of wave 1 turns healthy: a halted rollout still starts no wave.
  for (size_t i = 3; i < waves[0].size(); ++i) Report(waves[0][i], "running", 7, "healthy");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(Status(id)["state"], "halted");
  for (const auto& name : waves[1]) EXPECT_EQ(Sent(name), 6u) << name;

  auto second = Tracker("rollout start --app kiosk --release 7 --waves 100% --repository " +
                        repo_.root + Db());
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("is halted: abort it first"), std::string::npos) << second.output;

  Json aborted = Cli("rollout abort " + std::to_string(id));
  EXPECT_EQ(aborted["state"], "aborted");
  for (const auto& name : waves[0]) EXPECT_EQ(Sent(name), 6u) << name << " goes back";
  for (const auto& name : waves[1]) EXPECT_EQ(Sent(name), 6u) << name;
  Json desired = Cli("fleet desired --device " + waves[0][0]);
  EXPECT_EQ(desired["apps"][0]["release"], 6);
}

INSTANTIATE_TEST_SUITE_P(Engines, RolloutE2eTest,
                         ::testing::Values(tracker::SqlEngineKind::kSqlite,
                                           tracker::SqlEngineKind::kPostgresql),
                         [](const auto& info) {
                           return info.param == tracker::SqlEngineKind::kSqlite ? "sqlite"
                                                                                : "postgresql";
                         });

using RolloutE2eSqliteTest = RolloutE2eTest;

// Three waves with soak 0 complete as their devices report healthy; a pause
// holds the next wave however healthy the current one is, resume lets it go.
TEST_P(RolloutE2eSqliteTest, PauseResumeAndCompletionThroughThreeWaves) {
  // Given the database alone, the command signs nothing: serve re-signs the
  // devices of the rollout it sees started.
  auto run = Tracker(
      "rollout start --app kiosk --release 7 --waves 10%,50%,100% --soak 0 "
      "--max-failures 0% --database-url sqlite:" +
      repo_.default_db_path());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("fleet documents not signed: no --repository given"), std::string::npos)
      << run.output;
  const int64_t id = 1;
  const auto waves = Waves(id);
  ASSERT_EQ(waves[0].size(), 1u);
  ASSERT_EQ(waves[1].size(), 4u);
  ASSERT_EQ(waves[2].size(), 4u);
  WaitSent(waves[0][0], 7);
  for (const auto& name : waves[2]) WaitSent(name, 6);
  std::set<std::string> sites_of_wave2;
  for (const auto& name : waves[1]) sites_of_wave2.insert(name.substr(0, 8));
  EXPECT_EQ(sites_of_wave2.size(), 3u) << "wave 2 takes from every site";

  Report(waves[0][0], "running", 7, "healthy");
  WaitFor(id, [](const Json& s) { return s["current_wave"] == 2; });
  for (const auto& name : waves[1]) WaitSent(name, 7);
  for (const auto& name : waves[2]) EXPECT_EQ(Sent(name), 6u) << name;

  EXPECT_EQ(Cli("rollout pause " + std::to_string(id))["state"], "paused");
  for (const auto& name : waves[1]) Report(name, "running", 7, "healthy");
  Json paused = WaitFor(id, [](const Json& s) { return s["waves"][1]["healthy"] == 4; });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  paused = Status(id);
  EXPECT_EQ(paused["state"], "paused");
  EXPECT_EQ(paused["current_wave"], 2) << "a paused rollout starts no wave";
  for (const auto& name : waves[2]) EXPECT_EQ(Sent(name), 6u) << name;

  EXPECT_EQ(Cli("rollout resume " + std::to_string(id))["state"], "running");
  WaitFor(id, [](const Json& s) { return s["current_wave"] == 3; });
  for (const auto& name : waves[2]) WaitSent(name, 7);
  for (const auto& name : waves[2]) Report(name, "running", 7, "healthy");
  Json done = WaitFor(id, [](const Json& s) { return s["state"] == "completed"; });
  for (size_t w = 0; w < 3; ++w) EXPECT_EQ(done["waves"][w]["healthy"], waves[w].size());
  for (const auto& [name, d] : devices_) EXPECT_EQ(Sent(name), 7u) << name;

  // Each member, with its wave and when it ran the release healthy.
  Json members = Cli("rollout status " + std::to_string(id) + " --members")["members"];
  ASSERT_EQ(members.size(), devices_.size()) << members.dump();
  for (const Json& m : members) {
    const std::string name = m["device"];
    const size_t wave = m["wave"].get<size_t>();
    ASSERT_TRUE(wave >= 1 && wave <= 3) << m.dump();
    EXPECT_NE(std::find(waves[wave - 1].begin(), waves[wave - 1].end(), name),
              waves[wave - 1].end())
        << m.dump();
    EXPECT_TRUE(m["sent_at"].is_string()) << m.dump();
    EXPECT_TRUE(m["healthy_since"].is_string()) << m.dump();
    EXPECT_EQ(m["failure"], "") << m.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Sqlite, RolloutE2eSqliteTest,
                         ::testing::Values(tracker::SqlEngineKind::kSqlite),
                         [](const auto&) { return "sqlite"; });

// A floor raised while serve runs (the targets key online here: `floor`
// signs it at once, as `accept` of an app-key-signed one would) reaches a
// device pinned below it without a `fleet publish`: serve's rollout duty sees
// the image repository's floors change and re-signs what changed.
TEST_P(RolloutE2eSqliteTest, ARaisedFloorIsSentWithoutAFleetPublish) {
  Cli("pin --device screen-a0 --app kiosk --release 6");
  Cli("fleet publish");
  EXPECT_EQ(Sent("screen-a0"), 6u);
  EXPECT_EQ(Sent("screen-b0"), 7u);
  Cli("floor --app kiosk --release 7");
  WaitSent("screen-a0", 7);
  EXPECT_EQ(Sent("screen-b0"), 7u);
  // Logged once the round is over, after the document was written.
  const std::string logged = "release floors changed: 1 fleet document(s) re-signed";
  for (int i = 0; i < 100 && tracker_.Log().find(logged) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(tracker_.Log().find(logged), std::string::npos) << tracker_.Log();
}

// Bad input: exit 2 and a line that says what is wrong; --help teaches.
TEST_P(RolloutE2eSqliteTest, BadInputIsRefusedClearly) {
  const std::string r = " --repository " + repo_.root;
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--waves 10%,50%", "the last wave must be 100%"},
           {"--waves 50%,10%,100%", "must increase"},
           {"--waves 10%,100% --soak 5x", "--soak: '5x' is not a duration"},
           {"--waves 10%,100% --max-failures 5", "--max-failures: '5' is not a percentage"},
           {"--waves 10%,100% --wave-timeout 0", "--wave-timeout: must be above 0"}}) {
    auto run = Tracker("rollout start --app kiosk --release 7 " + args + r);
    EXPECT_EQ(run.exit_code, 2) << args << ": " << run.output;
    EXPECT_NE(run.output.find(says), std::string::npos) << args << ": " << run.output;
  }
  auto unknown = Tracker("rollout start --app kiosk --release 9 --waves 100%" + r);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("release 9 of kiosk is not published"), std::string::npos)
      << unknown.output;
  auto none = Tracker("rollout pause 42" + r);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no rollout 42"), std::string::npos) << none.output;
  EXPECT_EQ(Cli("rollout status --evaluate"), Json::parse(R"({"rollouts":[]})"))
      << "nothing started: an evaluation by hand changes nothing";
  auto help = Tracker("rollout start --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("ceil of the share"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("--max-failures"), std::string::npos);

  // A webhook's URL is checked when serve loads its configuration (exit 2,
  // the URL shown without its query), its secret file when serve starts.
  const std::string bad = dir_ + "/bad-hook.json";
  ASSERT_TRUE(WriteFileAtomic(bad, R"({"webhooks":[{"url":"ftp://hooks.example/x?token=zzz",
      "secret_file":"/nonexistent"}]})")
                  .ok());
  auto refused = Tracker("serve --config " + bad + r);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("webhooks[0]: url must start with http:// or https://"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(refused.output.find("zzz"), std::string::npos) << refused.output;
  const std::string open_secret = dir_ + "/open.secret";
  ASSERT_TRUE(WriteFileAtomic(open_secret, std::string(kHookSecret) + "\n", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(bad, R"({"webhooks":[{"url":"https://hooks.example/x",
      "secret_file":")" + open_secret + R"("}]})")
                  .ok());
  refused = Tracker("serve --listen 127.0.0.1:0 --config " + bad + r);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("readable by group or others (chmod 600)"), std::string::npos)
      << refused.output;
  EXPECT_EQ(refused.output.find(kHookSecret), std::string::npos) << refused.output;
  auto webhook_help = Tracker("webhook status --help");
  EXPECT_EQ(webhook_help.exit_code, 0);
  EXPECT_NE(webhook_help.output.find("retrying with backoff"), std::string::npos)
      << webhook_help.output;
}

}  // namespace
}  // namespace flotilla::testing
