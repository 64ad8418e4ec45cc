// The node's HTTP fetch under power cuts: an artifact fetched from a real
// origin on loopback in rate-limited ranges, one range per step, then
// verified and renamed. Interrupted at every durable boundary and at 200
// seeded write indices, then cut: a partial file holds a prefix of the
// artifact at least as long as the ranges that returned OK, a complete one
// is the artifact, and a restarted fetcher asks the origin for exactly the
// bytes that are missing.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <random>
#include <thread>

#include "core/file_io.h"
#include "http/byte_range.h"
#include "http/http_server.h"
#include "node/daemon/http_fetcher.h"
#include "tests/crash/crash_harness.h"

namespace flotilla::testing {
namespace {

using node::FetchState;
using node::HttpFetcher;

constexpr uint64_t kRange = 16 << 10;
constexpr uint64_t kLength = 7 * kRange + 5000;
constexpr size_t kRanges = (kLength + kRange - 1) / kRange;

const std::string& Artifact() {
  static const std::string bytes = [] {
    std::mt19937_64 rng(3);
    std::string all(kLength, '\0');
    for (char& c : all) c = static_cast<char>(rng());
    return all;
  }();
  return bytes;
}

const node::ArtifactRequest& Request() {
  static const node::ArtifactRequest request{.sha256 = Digest::Of(Artifact()), .length = kLength};
  return request;
}

// The origin: the artifact, whole or the one byte range asked for.
http::Reply Serve(const http::Request& request, const http::RequestContext&) {
  if (std::string(request.target()) != "/artifacts/" + Request().sha256.Hex()) {
    return http::Reply::Text(http::status::not_found, "no such artifact");
  }
  auto header = request.find(http::field::range);
  auto range = http::ResolveRange(
      header == request.end() ? std::nullopt : std::optional<std::string_view>(header->value()),
      kLength);
  if (!range.ok() || !range->has_value()) {
    return http::Reply::Typed(http::status::ok, "application/octet-stream", Artifact());
  }
  const http::ByteRange r = **range;
  http::Reply reply = http::Reply::Typed(http::status::partial_content, "application/octet-stream",
                                         Artifact().substr(r.offset, r.length));
  reply.headers.emplace_back("Content-Range", "bytes " + std::to_string(r.offset) + "-" +
                                                  std::to_string(r.offset + r.length - 1) + "/" +
                                                  std::to_string(kLength));
  return reply;
}

class HttpFetchScenario final : public CrashScenario {
 public:
  HttpFetchScenario() {
    auto server = http::Server::Start(io_, {}, &Serve);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    if (server.ok()) server_ = std::move(*server);
    io_thread_ = std::thread([this] { io_.run(); });
  }
  ~HttpFetchScenario() override {
    fetcher_.reset();
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  // Step 0 wants the artifact and fetches its first range; each next step
  // lets a second pass (one range); the last one verifies and renames.
  size_t steps() const override { return kRanges + 1; }

  Status RunStep(Env& env, const std::string& dir, size_t i) override {
    if (i == 0 && !fetcher_) {
      fetcher_ = MakeFetcher(env, dir, clock_, executor_, kRange);
      RETURN_IF_ERROR(fetcher_->Want(Request()));
      executor_.RunUntilIdle();
    } else {
      executor_.AdvanceBy(std::chrono::seconds(1));
    }
    ASSIGN_OR_RETURN(node::FetchProgress progress, fetcher_->Progress(Request().sha256));
    if (!progress.error.empty()) return Unavailable(progress.error);
    if (i + 1 == steps() && progress.state != FetchState::kComplete) {
      return Unavailable("not complete after every range");
    }
    return Status::Ok();
  }
  void Close() override { fetcher_.reset(); }

  void Check(Env& env, const std::string& dir, size_t done) override {
    const std::string artifacts = dir + "/artifacts/";
    const std::string final_path = artifacts + Request().sha256.Hex();
    uint64_t have = 0;
    if (std::filesystem::exists(final_path)) {
      EXPECT_EQ(ReadTextFileBounded(final_path, kLength).value_or(""), Artifact());
      EXPECT_GE(done, kRanges) << "a complete file before its last range";
      have = kLength;
    } else if (auto part =
                   ReadTextFileBounded(artifacts + Request().sha256.Hex() + ".part", kLength);
               part.ok()) {
      EXPECT_EQ(*part, Artifact().substr(0, part->size())) << "the partial file is not a prefix";
      have = part->size();
    }
    EXPECT_GE(have, std::min<uint64_t>(done * kRange, kLength))
        << done << " ranges returned OK, " << have << " bytes survived the cut";
    // A restarted node asks for exactly what is missing.
    FakeClock clock;
    ManualExecutor executor(clock);
    auto fetcher = MakeFetcher(env, dir, clock, executor, 0);
    ASSERT_TRUE(fetcher->Want(Request()).ok());
    executor.RunUntilIdle();
    auto progress = fetcher->Progress(Request().sha256);
    ASSERT_TRUE(progress.ok());
    EXPECT_EQ(progress->state, FetchState::kComplete) << progress->error;
    EXPECT_EQ(progress->bytes_from_origin, kLength - have);
  }

 private:
  std::unique_ptr<HttpFetcher> MakeFetcher(Env& env, const std::string& dir, FakeClock& clock,
                                           ManualExecutor& executor, uint64_t rate) {
    return std::make_unique<HttpFetcher>(
        node::HttpFetcherOptions{
            .dir = dir + "/artifacts",
            .origin_url = "http://127.0.0.1:" + std::to_string(server_ ? server_->port() : 0),
            .chunk_bytes = kRange,
            .rate_bytes_per_s = rate,
            .env = &env},
        clock, executor);
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<http::Server> server_;
  std::thread io_thread_;
  FakeClock clock_;
  ManualExecutor executor_{clock_};
  std::unique_ptr<HttpFetcher> fetcher_;
};

TEST(HttpFetchCrashTest, PartialArtifactsSurviveAPowerCutAndResumeWhereTheyStopped) {
  RunCrashMatrix([] { return std::make_unique<HttpFetchScenario>(); }, CrashMatrix{});
}

}  // namespace
}  // namespace flotilla::testing
