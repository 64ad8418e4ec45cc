// The deployer with the real runtime (containers, cgroups, mounts: LOCK
// runtime) and a real layer store, driven on a ManualExecutor: deployments
// wait for the first supervision pass, a healthy release runs, an unhealthy
// one is rolled back, the operator's rollback replies once its switch is done.
#include "node/daemon/deployer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "layerstore/byte_source.h"
#include "node/daemon/node_parts_test_support.h"
#include "node/daemon/reporter.h"
#include "runtime/app_config.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

// A layer holding busybox: enough to run `sh -c ...` in a container.
Result<layerstore::LayerInfo> UnpackBusybox(layerstore::LayerStore& store, Digest& diff_id) {
  ASSIGN_OR_RETURN(std::string busybox, ReadTextFileBounded("/bin/busybox", 8 << 20));
  layerstore::testing::TarBuilder tar;
  for (const char* dir : {"bin/", "dev/", "proc/", "sys/", "tmp/", "etc/"}) tar.Dir(dir);
  tar.File("bin/busybox", busybox, 0755).Symlink("bin/sh", "busybox");
  const Bytes bytes = tar.Finish();
  diff_id = Digest::Of(bytes);
  layerstore::MemoryByteSource source(bytes);
  return store.UnpackLayer(source, diff_id, bytes.size(), layerstore::UnpackOptions{});
}

Json Spec(bool healthy) {
  Json spec = {{"name", "web"},
               {"command", {"/bin/busybox", "sh", "-c", "echo up; exec /bin/busybox sleep 1000"}},
               {"health", {{"type", "running"}, {"seconds", 1u}}}};
  spec["config"] = Json::array({Json{{"name", "MODE"}}});
  if (!healthy) {
    spec["health"] = {{"type", "exec"},
                      {"command", {"/bin/busybox", "sh", "-c", "exit 1"}},
                      {"interval_ms", 200u}};
    spec["switch"] = {{"healthy_deadline_ms", 1500u}};
  }
  return spec;
}

class DeployerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Clean and absolute: the runtime takes no other lower paths.
    dir_ = std::filesystem::canonical(flotilla::testing::MakeTempDir("deployer-")).string();
    auto store = layerstore::LayerStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto unpacked = UnpackBusybox(**store, layer_.diff_id);
    ASSERT_TRUE(unpacked.ok()) << unpacked.status().ToString();
    layer_.length = unpacked->length;
    store_ = std::make_unique<StoreWorker>(std::move(*store), dir_ + "/tmp", loop_, loop_);
    auto state = StateFile::Open(dir_ + "/state.json", {"web"});
    ASSERT_TRUE(state.ok());
    state_ = std::move(*state);
    runtime::RuntimeOptions options;
    options.state_dir = dir_ + "/runtime";
    options.monitor_path = runtime::DefaultMonitorPath();  // $FLOTILLA_MONITOR under TSan
    auto runtime = runtime::Runtime::Open(options, SystemClock::Instance());
    ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
    runtime_ = std::move(*runtime);
    deployer_ = std::make_unique<Deployer>(
        std::vector<std::string>{"web"}, *state_, *store_, *runtime_,
        [this](const std::string&) -> Executor& { return loop_; }, loop_,
        DeployerEvents{.changed = [] {},
                       .error = [this](const std::string& e) { errors_.push_back(e); },
                       .collect = [this] { ++collections_; }},
        dir_ + "/config");
  }
  void TearDown() override {
    deployer_.reset();
    if (runtime_) runtime_->Stop("web").IgnoreError();
    runtime_.reset();
    store_.reset();
    flotilla::testing::RunShell("rm -rf " + dir_);
  }
  metadata::Release Release(uint64_t version, bool healthy) {
    metadata::Release r;
    r.app = "web";
    r.version = version;
    r.image.layers = {layer_};
    r.app_spec = Spec(healthy);
    state_->app("web").ready_release = version;  // as the pipeline leaves it
    return r;
  }
  const AppState& App() { return state_->app("web"); }

  std::string dir_;
  FakeClock clock_;
  ManualExecutor loop_{clock_};
  metadata::LayerRef layer_;
  std::unique_ptr<StoreWorker> store_;
  std::unique_ptr<StateFile> state_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<Deployer> deployer_;
  std::vector<std::string> errors_;
  int collections_ = 0;
};

TEST_F(DeployerTest, AHealthyReleaseRunsAndAnUnhealthyOneIsRolledBack) {
  deployer_->Deploy("web", Release(1, true));
  loop_.RunUntilIdle();
  EXPECT_EQ(App().running_release, 0u);  // waits for the first supervision pass
  EXPECT_FALSE(deployer_->Awaits("web", 1));

  deployer_->Start();
  loop_.RunUntilIdle();
  EXPECT_EQ(App().running_release, 1u);
  EXPECT_EQ(App().phase, AppPhase::kRunning);
  EXPECT_EQ(deployer_->deploys_ok(), 1u);
  EXPECT_EQ(deployer_->Container("web").state, "running");
  EXPECT_EQ(collections_, 2);  // at resume, and after the switch
  auto saved = LoadNodeState(dir_ + "/state.json");
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->apps.at("web").phase, AppPhase::kRunning);

  deployer_->Deploy("web", Release(2, false));
  loop_.RunUntilIdle();
  EXPECT_EQ(App().running_release, 1u);
  EXPECT_EQ(App().failed_release, 2u);
  EXPECT_EQ(App().phase, AppPhase::kRunning);
  EXPECT_EQ(App().last_error.rfind("rolled back: ", 0), 0u) << App().last_error;
  EXPECT_EQ(App().failure, "health");
  const AppReport report = ReportOf("web", App(), 0, 0);
  EXPECT_EQ(report.state, "rolled_back");
  EXPECT_EQ(report.failure, "health") << "the switch did not end healthy: the rollout counts it";
  EXPECT_EQ(deployer_->deploys_failed(), 1u);
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("release 1 runs"), std::string::npos) << errors_[0];
  EXPECT_EQ(collections_, 2);
}

TEST_F(DeployerTest, TheOperatorsRollbackRepliesOnceItsSwitchIsDone) {
  deployer_->Start();
  deployer_->Deploy("web", Release(1, true));
  loop_.RunUntilIdle();
  deployer_->Deploy("web", Release(2, true));
  loop_.RunUntilIdle();
  ASSERT_EQ(App().running_release, 2u);
  ASSERT_EQ(App().previous_release, 1u);

  std::optional<Result<std::string>> reply;
  deployer_->Rollback("web", [&](Result<std::string> r) { reply = std::move(r); });
  EXPECT_FALSE(reply.has_value());  // the switch runs on the app's lane
  loop_.RunUntilIdle();
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->ok()) << reply->status().ToString();
  EXPECT_EQ(**reply, "web: release 1 runs (rolled back from 2)");
  EXPECT_EQ(App().running_release, 1u);
  EXPECT_EQ(App().failed_release, 2u);  // not deployed again; a newer one is
  EXPECT_FALSE(deployer_->Awaits("web", 2));

  std::optional<Result<std::string>> logs;
  deployer_->Logs("web", 1 << 10, 0, [&](Result<std::string> r) { logs = std::move(r); });
  loop_.RunUntilIdle();
  ASSERT_TRUE(logs && logs->ok());
  EXPECT_NE((*logs)->find("up"), std::string::npos) << **logs;
  deployer_->Rollback("nope", [&](Result<std::string> r) { reply = std::move(r); });
  EXPECT_EQ(reply->status().code(), StatusCode::kNotFound);
}

// A change of configuration alone is a switch of its own (r1-c<id>), the
// previous configuration's directory is kept, and the operator's rollback
// goes back to it; the configuration left is not wanted again.
TEST_F(DeployerTest, AConfigurationIsASwitchOfItsOwnAndTheOperatorRollsItBack) {
  deployer_->Start();
  deployer_->Deploy("web", Release(1, true), {{"MODE", "a"}});
  loop_.RunUntilIdle();
  ASSERT_EQ(App().running_release, 1u);
  const std::string a = runtime::ConfigId({{"MODE", "a"}});
  const std::string b = runtime::ConfigId({{"MODE", "b"}});
  EXPECT_EQ(App().config_id, a);
  EXPECT_FALSE(deployer_->WantsConfig("web", {{"MODE", "a"}}));
  ASSERT_TRUE(deployer_->WantsConfig("web", {{"MODE", "b"}}));
  deployer_->Deploy("web", Release(1, true), {{"MODE", "b"}});
  loop_.RunUntilIdle();
  EXPECT_EQ(App().running_release, 1u);
  EXPECT_EQ(App().config_id, b);
  EXPECT_EQ(App().previous_config_id, a);
  EXPECT_EQ(runtime_->Inspect("web")->current, "r1-c" + b);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/config/web/" + a + "/config.json"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/config/web/" + b + "/config.json"));

  std::optional<Result<std::string>> reply;
  deployer_->Rollback("web", [&](Result<std::string> r) { reply = std::move(r); });
  loop_.RunUntilIdle();
  ASSERT_TRUE(reply.has_value() && reply->ok()) << (reply ? reply->status().ToString() : "");
  EXPECT_EQ(**reply, "web: release 1 runs with configuration " + a +
                         " (rolled back from configuration " + b + ")");
  EXPECT_EQ(App().config_id, a);
  EXPECT_EQ(App().failed_config_id, b);
  EXPECT_FALSE(deployer_->WantsConfig("web", {{"MODE", "b"}}));
  EXPECT_TRUE(deployer_->WantsConfig("web", {{"MODE", "c"}}));
  EXPECT_EQ(ReportOf("web", App(), 0, 0).state, "rolled_back");
}

}  // namespace
}  // namespace flotilla::node
