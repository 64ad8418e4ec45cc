// The http-only fetcher against a real origin on loopback (http/'s server on
// its own thread), its retries on the fake clock: an artifact the origin
// cannot serve backs off on its own and never holds up the others.
#include "node/daemon/http_fetcher.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "http/http_server.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

class HttpFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("http-fetcher-");
    auto server = http::Server::Start(
        io_, {}, [this](const http::Request& request, const http::RequestContext&) {
          const std::string target(request.target());
          for (const auto& [digest, bytes] : served_) {
            if (target == "/artifacts/" + digest.Hex()) {
              return http::Reply::Typed(http::status::ok, "application/octet-stream", bytes);
            }
          }
          return http::Reply::Text(http::status::not_found, "no such artifact");
        });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    io_thread_ = std::thread([this] { io_.run(); });
    fetcher_ = std::make_unique<HttpFetcher>(
        HttpFetcherOptions{.dir = dir_ + "/artifacts",
                           .origin_url = "http://127.0.0.1:" + std::to_string(server_->port())},
        clock_, executor_);
  }
  void TearDown() override {
    fetcher_.reset();
    work_.reset();
    io_.stop();
    io_thread_.join();
    testing::RunShell("rm -rf " + dir_);
  }

  // An artifact the origin serves (registered before any fetch starts).
  ArtifactRequest Served(const std::string& bytes) {
    served_.emplace(Digest::Of(bytes), bytes);
    return {.sha256 = Digest::Of(bytes), .length = bytes.size()};
  }
  // An artifact the origin answers 404 for, ordered before `other`.
  static ArtifactRequest MissingBefore(const ArtifactRequest& other) {
    for (int i = 0;; ++i) {
      const std::string bytes = "not on the origin " + std::to_string(i);
      if (Digest::Of(bytes) < other.sha256) return {.sha256 = Digest::Of(bytes), .length = 64};
    }
  }
  FetchState StateOf(const ArtifactRequest& request) {
    auto progress = fetcher_->Progress(request.sha256);
    EXPECT_TRUE(progress.ok()) << progress.status().ToString();
    return progress.ok() ? progress->state : FetchState::kFailed;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::map<Digest, std::string> served_;
  std::unique_ptr<http::Server> server_;
  std::thread io_thread_;
  FakeClock clock_;
  ManualExecutor executor_{clock_};
  std::string dir_;
  std::unique_ptr<HttpFetcher> fetcher_;
};

TEST_F(HttpFetcherTest, AnArtifactTheOriginCannotServeDoesNotHoldUpTheNextOne) {
  const ArtifactRequest served = Served(std::string(100'000, 's'));
  const ArtifactRequest missing = MissingBefore(served);
  ASSERT_TRUE(fetcher_->Want(missing).ok());
  ASSERT_TRUE(fetcher_->Want(served).ok());
  executor_.RunUntilIdle();  // no time passes: the failing one's retries must not come first
  EXPECT_EQ(StateOf(served), FetchState::kComplete);
  EXPECT_EQ(StateOf(missing), FetchState::kFetching);
  EXPECT_NE(fetcher_->Progress(missing.sha256)->error.find("404"), std::string::npos)
      << fetcher_->Progress(missing.sha256)->error;
  auto path = fetcher_->CompletedPath(served.sha256);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(HashFile(*path).value(), served.sha256);
}

TEST_F(HttpFetcherTest, ANewArtifactStartsAtOnceWhileAnotherWaitsOutItsBackoff) {
  const ArtifactRequest served = Served(std::string(50'000, 'n'));
  const ArtifactRequest missing = MissingBefore(served);
  ASSERT_TRUE(fetcher_->Want(missing).ok());
  executor_.AdvanceBy(std::chrono::minutes(5));  // its backoff grows to 60 s
  ASSERT_EQ(StateOf(missing), FetchState::kFetching);
  ASSERT_TRUE(fetcher_->Want(served).ok());
  executor_.RunUntilIdle();
  EXPECT_EQ(StateOf(served), FetchState::kComplete);
  // And the failing one keeps its own backoff: still retried, not given up.
  executor_.AdvanceBy(std::chrono::minutes(2));
  EXPECT_EQ(StateOf(missing), FetchState::kFetching);
}

}  // namespace
}  // namespace flotilla::node
