// The node's state under power cuts, as the release pipeline changes it: a
// release's layer goes into the store, then the state names the release
// ready (and keeps it). Interrupted at every durable boundary and at 200
// seeded write indices, then cut: the state loads, it is the last one saved
// with OK or the one being saved, and every layer it names is in the store.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "layerstore/layer_store.h"
#include "layerstore/test_tar_builder.h"
#include "node/daemon/node_state.h"
#include "tests/crash/crash_harness.h"

namespace flotilla::testing {
namespace {

using layerstore::LayerStore;
using node::NodeState;

constexpr size_t kReleases = 3;

Bytes ReleaseLayer(size_t release) {
  std::mt19937_64 rng(release);
  layerstore::testing::TarBuilder tar;
  tar.Dir("app");
  for (int i = 0; i < 50; ++i) {
    tar.File("app/f" + std::to_string(i), std::string(512 + rng() % 4096, 'a' + release));
  }
  return tar.Finish();
}

// The state once `release` is ready: it and the one before it are kept.
NodeState StateWithReady(size_t release) {
  NodeState state;
  node::AppState& app = state.apps["web"];
  app.ready_release = release;
  app.phase = node::AppPhase::kReady;
  for (size_t r = release > 1 ? release - 1 : 1; r <= release; ++r) {
    app.kept.push_back({r, {Digest::Of(ReleaseLayer(r))}, {}});
  }
  return state;
}

class NodeStateScenario final : public CrashScenario {
 public:
  // Step 0 opens the store; then, per release, unpack its layer and save the state.
  size_t steps() const override { return 1 + 2 * kReleases; }

  Status RunStep(Env& env, const std::string& dir, size_t i) override {
    if (i == 0) {
      ASSIGN_OR_RETURN(store_, LayerStore::Open(dir + "/store", env));
      return Status::Ok();
    }
    const size_t release = (i + 1) / 2;
    if (i % 2 == 1) {
      const Bytes tar = ReleaseLayer(release);
      layerstore::MemoryByteSource source(tar);
      return store_->UnpackLayer(source, Digest::Of(tar), tar.size(), {}).status();
    }
    return node::SaveNodeState(dir + "/state.json", StateWithReady(release), env);
  }
  void Close() override { store_.reset(); }

  void Check(Env& env, const std::string& dir, size_t done) override {
    auto loaded = node::LoadNodeState(dir + "/state.json");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    const uint64_t ready = loaded->apps.count("web") ? loaded->apps["web"].ready_release : 0;
    // Saves are steps 2, 4, 6: those before step `done` returned OK.
    const uint64_t saved = done == 0 ? 0 : (done - 1) / 2;
    const uint64_t in_flight = done >= 2 && done % 2 == 0 && done < steps() ? saved + 1 : saved;
    EXPECT_TRUE(ready == saved || ready == in_flight)
        << done << " steps returned OK; the state names release " << ready << " ready";
    if (done == 0 && !std::filesystem::exists(dir + "/store")) return;
    auto store = LayerStore::Open(dir + "/store", env);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto report = (*store)->Verify();
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->problems.empty()) << report->problems.front();
    for (const auto& kept : ready ? loaded->apps["web"].kept : std::vector<node::KeptRelease>{}) {
      for (const Digest& layer : kept.layers) {
        auto held = (*store)->FindLayer(layer);
        EXPECT_TRUE(held.ok() && held->has_value())
            << "the state keeps release " << kept.version << ", whose layer is not in the store";
      }
    }
    EXPECT_TRUE(node::SaveNodeState(dir + "/state.json", StateWithReady(1), env).ok());
  }

 private:
  std::unique_ptr<LayerStore> store_;
};

TEST(NodeStateCrashTest, StateAndTheLayersItNamesSurviveAPowerCutAtEveryStep) {
  RunCrashMatrix([] { return std::make_unique<NodeStateScenario>(); }, CrashMatrix{});
}

}  // namespace
}  // namespace flotilla::testing
