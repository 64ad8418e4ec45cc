// The release pipeline on the fake clock, against a scripted fetcher and a
// real layer store (on a ManualExecutor lane): a release is planned,
// fetched, rebuilt on the store's lane and made ready; a stalled transfer
// moves to its fallback path only once stall_timeout_s has passed; a release
// that failed for a passing reason waits before it is tried again, longer
// each time; one over the disk budget is refused before any byte moves.
#include "node/daemon/release_pipeline.h"

#include <gtest/gtest.h>

#include "node/daemon/node_parts_test_support.h"
#include "node/daemon/reporter.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

using parts_testing::MadeLayer;
using parts_testing::MakeSmallLayer;
using parts_testing::ReleaseOf;
using parts_testing::ScriptedFetcher;
using std::chrono::seconds;

class ReleasePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = flotilla::testing::MakeTempDir("release-pipeline-");
    auto store = layerstore::LayerStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::make_unique<StoreWorker>(std::move(*store), dir_ + "/tmp", lane_, loop_);
    auto state = StateFile::Open(dir_ + "/state.json", {"web"});
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    state_ = std::move(*state);
  }
  void TearDown() override {
    pipeline_.reset();
    store_.reset();
    flotilla::testing::RunShell("rm -rf " + dir_);
  }
  void MakePipeline(PipelineOptions options = {}) {
    options.data_dir = dir_;
    options.refresh_interval_s = 60;
    options.max_backoff_s = 300;
    options.stall_timeout_s = 30;
    auto fetcher = std::make_unique<ScriptedFetcher>();
    fetcher_ = fetcher.get();
    pipeline_ = std::make_unique<ReleasePipeline>(
        options, *state_, *store_, std::move(fetcher), clock_, loop_,
        PipelineEvents{.ready = [this](const std::string&,
                                       const metadata::Release& r) { ready_.push_back(r.version); },
                       .error = [this](const std::string& e) { errors_.push_back(e); },
                       .changed = [] {}});
    pipeline_->Start();
  }
  // One second of the loop, then whatever the store's lane has to do.
  void Step() {
    loop_.AdvanceBy(seconds(1));
    lane_.RunUntilIdle();
    loop_.RunUntilIdle();
  }
  const AppState& App() { return state_->app("web"); }

  std::string dir_;
  FakeClock clock_;
  ManualExecutor loop_{clock_};
  ManualExecutor lane_{clock_};
  std::unique_ptr<StoreWorker> store_;
  std::unique_ptr<StateFile> state_;
  ScriptedFetcher* fetcher_ = nullptr;
  std::unique_ptr<ReleasePipeline> pipeline_;
  std::vector<uint64_t> ready_;
  std::vector<std::string> errors_;
};

TEST_F(ReleasePipelineTest, AReleaseIsFetchedRebuiltOnTheStoreLaneAndReady) {
  MakePipeline();
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  pipeline_->Offer("web", ReleaseOf("web", 1, layer));
  EXPECT_TRUE(fetcher_->Wanted(layer.artifact.sha256));
  EXPECT_EQ(App().phase, AppPhase::kDownloading);
  EXPECT_EQ(App().target_release, 1u);

  fetcher_->Complete(layer.artifact.sha256, layer.artifact_path);
  loop_.AdvanceBy(seconds(1));
  // The rebuild waits for the store's lane: the loop is free meanwhile.
  EXPECT_EQ(App().phase, AppPhase::kVerifying);
  EXPECT_TRUE(ready_.empty());
  EXPECT_TRUE(store_->ReadyLayers().empty());
  lane_.RunUntilIdle();
  loop_.RunUntilIdle();
  EXPECT_EQ(ready_, std::vector<uint64_t>{1});
  EXPECT_EQ(App().phase, AppPhase::kReady);
  EXPECT_EQ(App().ready_release, 1u);
  EXPECT_EQ(App().target_release, 0u);
  EXPECT_EQ(App().bytes_from_origin, layer.artifact.length);
  ASSERT_EQ(App().kept.size(), 1u);
  EXPECT_EQ(App().kept[0].layers, std::vector<Digest>{layer.layer.diff_id});
  EXPECT_EQ(store_->ReadyLayers(), std::vector<Digest>{layer.layer.diff_id});
  EXPECT_EQ(store_->bytes(), layer.layer.length);
  EXPECT_TRUE(fetcher_->forgotten.count(layer.artifact.sha256));  // http-only: not kept
  EXPECT_FALSE(pipeline_->Fetching("web"));

  // Saved: a restarted node reads the same.
  auto reloaded = LoadNodeState(dir_ + "/state.json");
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->apps.at("web").ready_release, 1u);
  // Offered again (the next refresh): nothing to do.
  pipeline_->Offer("web", ReleaseOf("web", 1, layer));
  EXPECT_FALSE(pipeline_->Fetching("web"));
}

// Peers the fetcher banned reach the next report once each, and the view
// counts them with the bytes they wasted.
TEST_F(ReleasePipelineTest, BannedPeersAreTakenOnceForTheReport) {
  MakePipeline();
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  pipeline_->Offer("web", ReleaseOf("web", 1, layer));
  FetchProgress p;
  p.state = FetchState::kFetching;
  p.bytes_total = layer.artifact.length;
  p.bytes_wasted = 16384;
  p.bad_peers = {BadPeer{.swarm = "ab", .ip = "192.0.2.9", .port = 6881, .hash_failures = 2}};
  fetcher_->SetProgress(layer.artifact.sha256, p);
  loop_.AdvanceBy(seconds(1));
  const auto view = pipeline_->Transfer("web");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->peers_banned, 1u);
  EXPECT_EQ(view->bytes_wasted, 16384u);
  const auto taken = pipeline_->TakeBadPeers("web");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].ip, "192.0.2.9");
  EXPECT_EQ(taken[0].hash_failures, 2u);
  loop_.AdvanceBy(seconds(1));
  EXPECT_TRUE(pipeline_->TakeBadPeers("web").empty());
}

TEST_F(ReleasePipelineTest, AStalledTransferTakesItsFallbackPathOnlyAfterTheStallTimeout) {
  MakePipeline();
  // Release 1 in the store; release 2 offers a delta from it (best) and the
  // full layer (fallback).
  const MadeLayer base = MakeSmallLayer(dir_, "1");
  pipeline_->Offer("web", ReleaseOf("web", 1, base));
  fetcher_->Complete(base.artifact.sha256, base.artifact_path);
  Step();
  ASSERT_EQ(ready_, std::vector<uint64_t>{1});
  const MadeLayer next = MakeSmallLayer(dir_, "2");
  metadata::Release release = ReleaseOf("web", 2, next);
  metadata::Artifact delta = next.artifact;
  delta.kind = metadata::ArtifactKind::kDelta;
  delta.bases = {base.layer.diff_id};
  delta.sha256 = Digest::Of(std::string_view("a delta that never comes"));
  delta.length = next.artifact.length / 4;
  release.artifacts.push_back(delta);
  pipeline_->Offer("web", release);
  ASSERT_TRUE(fetcher_->Wanted(delta.sha256));
  EXPECT_FALSE(fetcher_->Wanted(next.artifact.sha256));

  // No byte moves: nothing happens for 30 s...
  loop_.AdvanceBy(seconds(30));
  EXPECT_FALSE(fetcher_->Wanted(next.artifact.sha256));
  EXPECT_TRUE(errors_.empty());
  // ...then the layer switches to the full artifact, and says why.
  loop_.AdvanceBy(seconds(2));
  EXPECT_TRUE(fetcher_->forgotten.count(delta.sha256));
  ASSERT_TRUE(fetcher_->Wanted(next.artifact.sha256));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("transfer stalled for 30 s"), std::string::npos) << errors_[0];
  EXPECT_NE(errors_[0].find("using the fallback path"), std::string::npos) << errors_[0];
  fetcher_->Complete(next.artifact.sha256, next.artifact_path);
  Step();
  EXPECT_EQ(ready_, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(App().ready_release, 2u);
}

TEST_F(ReleasePipelineTest, AFailedReleaseIsRetriedAfterTheIntervalThenTwiceAsLongUpToTheCap) {
  MakePipeline();
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  const metadata::Release release = ReleaseOf("web", 1, layer);
  auto fail_the_fetch = [&] {
    FetchProgress full;
    full.state = FetchState::kFetching;
    full.error = "write artifact: No space left on device";
    fetcher_->SetProgress(layer.artifact.sha256, full);
    Step();
  };
  // Offers come as often as refreshes do; count when the fetch starts again.
  std::vector<double> retried_after;
  MonoTime failed_at{};
  for (int attempt = 0; attempt < 5; ++attempt) {
    pipeline_->Offer("web", release);
    ASSERT_TRUE(pipeline_->Fetching("web"));
    if (attempt > 0) {
      retried_after.push_back(
          std::chrono::duration<double>(clock_.MonotonicNow() - failed_at).count());
    }
    fail_the_fetch();
    ASSERT_FALSE(pipeline_->Fetching("web"));
    EXPECT_EQ(App().phase, AppPhase::kFailed);
    EXPECT_EQ(App().failed_release, 0u);  // not failed for good
    EXPECT_EQ(App().failure, "disk");
    EXPECT_TRUE(fetcher_->forgotten.count(layer.artifact.sha256));  // its bytes reclaimed
    failed_at = clock_.MonotonicNow();
    while (!pipeline_->Fetching("web")) {
      loop_.AdvanceBy(seconds(5));
      pipeline_->Offer("web", release);
    }
  }
  // 60 s, 120 s, 240 s, then the 300 s cap (offers every 5 s).
  const std::vector<double> expected = {60, 120, 240, 300};
  ASSERT_EQ(retried_after.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_GE(retried_after[i], expected[i]) << i;
    EXPECT_LE(retried_after[i], expected[i] + 5) << i;
  }
  // update --now: at once.
  fail_the_fetch();
  pipeline_->Offer("web", release);
  EXPECT_FALSE(pipeline_->Fetching("web"));
  pipeline_->RetryNow();
  pipeline_->Offer("web", release);
  EXPECT_TRUE(pipeline_->Fetching("web"));
}

TEST_F(ReleasePipelineTest, AWrongLayerFailsTheReleaseForGoodAndANewerOneIsFetched) {
  MakePipeline();
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  metadata::Release release = ReleaseOf("web", 1, layer);
  const MadeLayer other = MakeSmallLayer(dir_, "2");  // as long as layer 1
  pipeline_->Offer("web", release);
  fetcher_->Complete(layer.artifact.sha256, other.artifact_path);  // verified bytes, wrong layer
  Step();
  EXPECT_TRUE(ready_.empty());
  EXPECT_EQ(App().failed_release, 1u);
  EXPECT_EQ(App().phase, AppPhase::kFailed);
  const AppReport report = ReportOf("web", App(), 0, 0);
  EXPECT_EQ(report.state, "failed");
  EXPECT_EQ(report.failure, "verification") << "the release itself is bad: the rollout counts it";
  pipeline_->Offer("web", release);
  EXPECT_FALSE(pipeline_->Fetching("web"));  // never again
  pipeline_->Offer("web", ReleaseOf("web", 2, other));
  EXPECT_TRUE(pipeline_->Fetching("web"));
}

TEST_F(ReleasePipelineTest, AReleaseOverTheDiskBudgetIsRefusedBeforeAnyByteMoves) {
  MakePipeline(PipelineOptions{.disk_budget_bytes = 1024});
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  pipeline_->Offer("web", ReleaseOf("web", 1, layer));
  EXPECT_TRUE(fetcher_->wants.empty());
  EXPECT_EQ(App().phase, AppPhase::kFailed);
  EXPECT_NE(App().last_error.find("disk_budget_mib"), std::string::npos) << App().last_error;
  EXPECT_EQ(App().failure, "disk");
}

// A release of another platform is refused for good before anything is
// wanted from the fetcher, with an error that names both platforms; what is
// ready stays ready, and a newer release of this platform is fetched.
TEST_F(ReleasePipelineTest, AReleaseOfAnotherPlatformIsRefusedBeforeAnyByteMoves) {
  MakePipeline(PipelineOptions{.platform = {"linux", "amd64", ""}});
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  pipeline_->Offer("web", ReleaseOf("web", 1, layer));
  fetcher_->Complete(layer.artifact.sha256, layer.artifact_path);
  Step();
  ASSERT_EQ(ready_, std::vector<uint64_t>{1});
  fetcher_->wants.clear();

  metadata::Release arm = ReleaseOf("web", 2, MakeSmallLayer(dir_, "2"));
  arm.image.platform = "linux/arm64";
  pipeline_->Offer("web", arm);
  EXPECT_TRUE(fetcher_->wants.empty());
  EXPECT_FALSE(pipeline_->Fetching("web"));
  EXPECT_EQ(App().failed_release, 2u);
  EXPECT_EQ(App().ready_release, 1u);
  EXPECT_EQ(
      App().last_error,
      "FailedPrecondition: release 2 of web is for linux/arm64; this device runs linux/amd64");
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("is for linux/arm64"), std::string::npos) << errors_[0];
  EXPECT_EQ(ReportOf("web", App(), 0, 0).failure, "verification");
  pipeline_->OfferChosen("web", arm);
  EXPECT_TRUE(fetcher_->wants.empty()) << "a fleet's choice of it is refused as well";

  metadata::Release amd = ReleaseOf("web", 3, MakeSmallLayer(dir_, "3"));
  amd.image.platform = "linux/amd64/v1";
  pipeline_->Offer("web", amd);
  EXPECT_TRUE(pipeline_->Fetching("web"));
}

// The artifacts an offline bundle's import hands over to be seeded are
// forgotten (their files deleted by the fetcher) when their release fails
// for good, or when a newer release of the app is fetched: they would
// otherwise stay on the card, seeded, with no release to keep them.
TEST_F(ReleasePipelineTest, ImportedArtifactsOfAReleaseRefusedOrSupersededAreForgotten) {
  MakePipeline(PipelineOptions{.platform = {"linux", "amd64", ""}, .keep_artifacts = true});
  metadata::Release arm = ReleaseOf("web", 1, MakeSmallLayer(dir_, "1"));
  arm.image.platform = "linux/arm64";
  const Digest arm_artifact = arm.artifacts[0].sha256;
  pipeline_->Seed("web", 1, {RequestOf(arm.artifacts[0])});
  EXPECT_TRUE(fetcher_->Wanted(arm_artifact));
  pipeline_->Offer("web", arm);  // refused for good: another platform
  EXPECT_EQ(App().failed_release, 1u);
  EXPECT_TRUE(fetcher_->forgotten.count(arm_artifact));

  const MadeLayer two = MakeSmallLayer(dir_, "2");
  const metadata::Release imported = ReleaseOf("web", 2, two);
  pipeline_->Seed("web", 2, {RequestOf(imported.artifacts[0])});
  const MadeLayer three = MakeSmallLayer(dir_, "3");
  pipeline_->Offer("web", ReleaseOf("web", 3, three));  // supersedes release 2
  EXPECT_TRUE(pipeline_->Fetching("web"));
  EXPECT_TRUE(fetcher_->forgotten.count(two.artifact.sha256));
  EXPECT_FALSE(fetcher_->forgotten.count(three.artifact.sha256));
  fetcher_->Complete(three.artifact.sha256, three.artifact_path);
  Step();
  ASSERT_EQ(ready_, std::vector<uint64_t>{3});
  ASSERT_EQ(App().kept.size(), 1u);
  EXPECT_EQ(App().kept[0].artifacts, std::vector<Digest>{three.artifact.sha256});
}

// A transfer that fails for a reason that may pass is reported failed with
// the kind "transfer" (a rollout keeps such a device pending), saved with
// the state; the retry clears it.
TEST_F(ReleasePipelineTest, ATransferFailureIsReportedAsOneAndClearedByTheRetry) {
  MakePipeline();
  const MadeLayer layer = MakeSmallLayer(dir_, "1");
  const metadata::Release release = ReleaseOf("web", 1, layer);
  fetcher_->want_status = Unavailable("the swarm's session is not running");
  pipeline_->Offer("web", release);
  EXPECT_FALSE(pipeline_->Fetching("web"));
  EXPECT_EQ(App().phase, AppPhase::kFailed);
  EXPECT_EQ(App().failed_release, 0u);
  AppReport report = ReportOf("web", App(), 0, 0);
  EXPECT_EQ(report.state, "failed");
  EXPECT_EQ(report.release, 1u);
  EXPECT_EQ(report.failure, "transfer");
  auto saved = LoadNodeState(dir_ + "/state.json");
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->apps.at("web").failure, "transfer") << "a restart still reports its kind";

  fetcher_->want_status = Status::Ok();
  loop_.AdvanceBy(seconds(61));
  pipeline_->Offer("web", release);
  ASSERT_TRUE(pipeline_->Fetching("web"));
  report = ReportOf("web", App(), 0, 0);
  EXPECT_EQ(report.state, "downloading");
  EXPECT_EQ(report.failure, "");
  EXPECT_EQ(App().failure, "");
}

}  // namespace
}  // namespace flotilla::node
