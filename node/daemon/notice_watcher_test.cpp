// The notice watcher against a scripted HTTP server on loopback (the real
// http::Server and client): which repository a "changed" answer refreshes,
// the next request carrying the refreshed versions, no loop when a refresh
// does not catch up, 404 from a tracker without the route, the credential
// sent, and a stop that does not wait for a held request.
#include "node/daemon/notice_watcher.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <mutex>
#include <thread>

#include "http/http_server.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

using namespace std::chrono_literals;

// A tracker whose notice answers come from `script`, given each request's target.
class ScriptedTracker {
 public:
  using Script = std::function<http::Reply(const std::string& target)>;
  explicit ScriptedTracker(Script script) : script_(std::move(script)) {
    auto server = http::Server::Start(
        io_, {}, [this](const http::Request& request, const http::RequestContext&) {
          std::string target(request.target());
          {
            std::lock_guard lock(mu_);
            targets_.push_back(target);
            authorizations_.emplace_back(request[http::field::authorization]);
            encodings_.emplace_back(request[http::field::accept_encoding]);
          }
          return script_(target);
        });
    EXPECT_TRUE(server.ok());
    server_ = std::move(*server);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptedTracker() {
    io_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<std::string> targets() {
    std::lock_guard lock(mu_);
    return targets_;
  }
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mu_);
    return authorizations_;
  }
  std::vector<std::string> encodings() {
    std::lock_guard lock(mu_);
    return encodings_;
  }

 private:
  Script script_;
  boost::asio::io_context io_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> targets_;
  std::vector<std::string> authorizations_;
  std::vector<std::string> encodings_;
};

http::Reply Answer(bool changed, uint64_t image, uint64_t fleet) {
  return http::Reply::Typed(http::status::ok, "application/json",
                            "{\"changed\":" + std::string(changed ? "true" : "false") +
                                ",\"image\":" + std::to_string(image) +
                                ",\"fleet\":" + std::to_string(fleet) + "}");
}

// The watcher on a loop thread of its own, as in the daemon.
class WatcherHarness {
 public:
  // `on_change` runs on the loop at each change: it stands for the refresh.
  // `takes_files`: the node takes fleet files in the answer (recorded, as a change `F`).
  WatcherHarness(const std::string& tracker_url, NoticeVersions ours,
                 std::function<void(NoticeVersions&)> on_change = nullptr, bool takes_files = false)
      : on_change_(std::move(on_change)), ours_(ours) {
    Run([&] {
      NoticeEvents events{.versions = [this] { return ours_; },
                          .changed =
                              [this](bool image, bool fleet) {
                                changes_.push_back({image, fleet});
                                if (on_change_) on_change_(ours_);
                              }};
      if (takes_files) {
        events.fleet_files = [this](CarriedFleetFiles carried) {
          carried_.push_back(std::move(carried));
          changes_.push_back({false, false});  // before the change it comes with
        };
      }
      watcher_ = std::make_unique<NoticeWatcher>(NoticeOptions{.tracker_url = tracker_url,
                                                               .http = {.connect_timeout = 2000ms},
                                                               .wait_s = 5,
                                                               .refresh_interval_s = 300,
                                                               .max_backoff_s = 600},
                                                 SystemClock::Instance(), loop_, std::move(events));
      watcher_->SetCredentials({.device_id = "dev-1", .credential = "secret-1"});
      watcher_->Start();
    });
  }
  ~WatcherHarness() {
    Run([&] { watcher_.reset(); });
  }
  void Run(const std::function<void()>& f) {
    std::promise<void> done;
    loop_.Post([&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  NoticeStatus Status() {
    NoticeStatus s;
    Run([&] { s = watcher_->status(); });
    return s;
  }
  std::vector<std::pair<bool, bool>> Changes() {
    std::vector<std::pair<bool, bool>> c;
    Run([&] { c = changes_; });
    return c;
  }
  std::vector<CarriedFleetFiles> Carried() {
    std::vector<CarriedFleetFiles> c;
    Run([&] { c = carried_; });
    return c;
  }

 private:
  std::function<void(NoticeVersions&)> on_change_;
  ThreadExecutor loop_;
  NoticeVersions ours_;
  std::unique_ptr<NoticeWatcher> watcher_;
  std::vector<std::pair<bool, bool>> changes_;
  std::vector<CarriedFleetFiles> carried_;
};

TEST(ParseNoticeAnswerTest, TakesTheTrackersAnswerAndRefusesOthers) {
  auto parsed = ParseNoticeAnswer(R"({"changed":true,"image":8,"fleet":15})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->changed);
  EXPECT_EQ(parsed->tracker, (NoticeVersions{.image = 8, .fleet = 15}));
  auto carrying = ParseNoticeAnswer(
      R"({"changed":true,"image":8,"fleet":15,"fleet_files":{"root":1,"metadata":{}}})");
  ASSERT_TRUE(carrying.ok()) << carrying.status().ToString();
  ASSERT_TRUE(carrying->fleet_files);
  EXPECT_EQ(carrying->fleet_files->root, 1u);
  EXPECT_FALSE(parsed->fleet_files);
  for (const char* bad : {"", "[]", R"({"changed":1,"image":8,"fleet":1})",
                          R"({"changed":true,"image":-8,"fleet":1})", R"({"changed":true})",
                          R"({"changed":true,"image":8,"fleet":1,"fleet_files":{"root":"1"}})"}) {
    EXPECT_FALSE(ParseNoticeAnswer(bad).ok()) << bad;
  }
}

TEST(NoticeWatcherTest, AChangeRefreshesWhatMovedThenAsksWithTheNewVersions) {
  std::atomic<int> asked{0};
  ScriptedTracker tracker([&](const std::string&) {
    if (asked++ == 0) return Answer(true, 8, 3);  // the image moved
    std::this_thread::sleep_for(1200ms);          // held, then unchanged
    return Answer(false, 8, 3);
  });
  WatcherHarness harness(tracker.url(), {.image = 7, .fleet = 3},
                         [](NoticeVersions& ours) { ours.image = 8; });
  ASSERT_TRUE(testing::WaitFor([&] { return tracker.targets().size() >= 2; }, 10s));
  const auto targets = tracker.targets();
  EXPECT_EQ(targets[0], "/api/v1/devices/dev-1/notice?image=7&fleet=3&wait=5");
  EXPECT_EQ(targets[1], "/api/v1/devices/dev-1/notice?image=8&fleet=3&wait=5");
  EXPECT_EQ(tracker.authorizations()[0], "Bearer secret-1");
  EXPECT_EQ(harness.Changes(), (std::vector<std::pair<bool, bool>>{{true, false}}));
}

// docs/tracker.md, "Notice": a node that takes fleet files asks with
// files=1 and accepts zstd; files an answer carries are handed on before
// the change they come with; an older tracker's answer (no files) is the
// change alone, and the refresh fetches as before.
TEST(NoticeWatcherTest, FilesAnAnswerCarriesAreHandedOnBeforeTheChange) {
  std::atomic<int> asked{0};
  ScriptedTracker tracker([&](const std::string&) {
    const int n = asked++;
    if (n == 0) {
      return http::Reply::Typed(http::status::ok, "application/json",
                                R"({"changed":true,"image":7,"fleet":4,"fleet_files":{"root":1,)"
                                R"("metadata":{"timestamp.json":"{}"},"targets":{}}})");
    }
    if (n == 1) return Answer(true, 7, 5);  // an older tracker's answer
    std::this_thread::sleep_for(1200ms);
    return Answer(false, 7, 5);
  });
  WatcherHarness harness(
      tracker.url(), {.image = 7, .fleet = 3}, [](NoticeVersions& ours) { ++ours.fleet; },
      /*takes_files=*/true);
  ASSERT_TRUE(testing::WaitFor([&] { return tracker.targets().size() >= 3; }, 10s));
  const auto targets = tracker.targets();
  EXPECT_EQ(targets[0], "/api/v1/devices/dev-1/notice?image=7&fleet=3&wait=5&files=1");
  EXPECT_EQ(tracker.encodings()[0], "zstd");
  EXPECT_EQ(harness.Changes(),
            (std::vector<std::pair<bool, bool>>{{false, false}, {false, true}, {false, true}}));
  const auto carried = harness.Carried();
  ASSERT_EQ(carried.size(), 1u);
  EXPECT_EQ(carried[0].root, 1u);
  EXPECT_EQ(carried[0].metadata.at("timestamp.json"), "{}");
}

TEST(NoticeWatcherTest, ANodeThatTakesNoFilesDoesNotAskForThem) {
  ScriptedTracker tracker([](const std::string&) {
    std::this_thread::sleep_for(1200ms);
    return Answer(false, 7, 3);
  });
  WatcherHarness harness(tracker.url(), {.image = 7, .fleet = 3});
  ASSERT_TRUE(testing::WaitFor([&] { return tracker.targets().size() >= 1; }, 10s));
  EXPECT_EQ(tracker.targets()[0], "/api/v1/devices/dev-1/notice?image=7&fleet=3&wait=5");
  EXPECT_EQ(tracker.encodings()[0], "");
}

TEST(NoticeWatcherTest, ARefreshThatDoesNotCatchUpIsNotALoop) {
  ScriptedTracker tracker([](const std::string&) { return Answer(true, 7, 4); });
  WatcherHarness harness(tracker.url(), {.image = 7, .fleet = 3});  // never catches up
  ASSERT_TRUE(testing::WaitFor([&] { return tracker.targets().size() >= 2; }, 10s));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(tracker.targets().size(), 2u) << "the next request waits refresh_interval_s";
  EXPECT_EQ(harness.Changes(), (std::vector<std::pair<bool, bool>>{{false, true}}));
  EXPECT_EQ(harness.Status().state, "waiting");
}

TEST(NoticeWatcherTest, ATrackerWithoutTheRouteLeavesPolling) {
  ScriptedTracker tracker(
      [](const std::string&) { return http::Reply::Text(http::status::not_found, "not found"); });
  WatcherHarness harness(tracker.url(), {.image = 7, .fleet = 3});
  ASSERT_TRUE(testing::WaitFor([&] { return harness.Status().state == "unsupported"; }, 10s));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(tracker.targets().size(), 1u);
  EXPECT_NE(harness.Status().last_error.find("HTTP 404"), std::string::npos);
  EXPECT_TRUE(harness.Changes().empty());
}

TEST(NoticeWatcherTest, StoppingDoesNotWaitForAHeldRequest) {
  std::promise<void> release;
  auto released = release.get_future().share();
  ScriptedTracker tracker([released](const std::string&) {
    released.wait_for(8s);  // held
    return Answer(false, 7, 3);
  });
  auto harness = std::make_unique<WatcherHarness>(tracker.url(), NoticeVersions{7, 3});
  ASSERT_TRUE(testing::WaitFor([&] { return tracker.targets().size() == 1; }, 10s));
  const auto stopping = std::chrono::steady_clock::now();
  harness.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 2s);
  release.set_value();
}

}  // namespace
}  // namespace flotilla::node
