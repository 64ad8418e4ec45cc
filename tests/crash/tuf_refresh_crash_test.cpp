// The TUF client's trusted state under power cuts, as a device refreshes:
// the trusted root installed, then four refreshes against a repository that
// moves on (a new target; a root rotating the timestamp key; a root rotating
// the targets key and a new target in the delegated role "apps"), each at a
// later clock and followed by a search for a target of "apps". Interrupted at
// every durable boundary and at 200 seeded write indices, then cut: the
// trusted root loads and verifies, every trusted role and the time floor are
// those of the last refresh that returned OK or of the interrupted one (never
// older), a trusted timestamp refuses an older repository, and the client
// refreshes from what is left to the repository's latest state.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <optional>

#include "core/ed25519.h"
#include "core/file_io.h"
#include "metadata/remote_repository.h"
#include "metadata/test_repository.h"
#include "metadata/trusted_store.h"
#include "metadata/tuf_client.h"
#include "tests/crash/crash_harness.h"

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;
using metadata::DirectoryRemote;
using metadata::RoleType;
using metadata::TestRepository;
using metadata::TrustedStore;
using metadata::TufClient;
using metadata::TufSigner;

constexpr size_t kRefreshes = 4;
const WallTime kStart{std::chrono::seconds(1'800'000'000)};

// Trusted versions after each refresh and search, by role (root,
// timestamp, snapshot, targets, the delegated "apps").
struct Versions {
  uint64_t root, timestamp, snapshot, targets, apps;
};
constexpr std::array<Versions, kRefreshes> kAfterRefresh = {{
    {1, 1, 1, 1, 1},
    {1, 2, 2, 2, 1},  // a new target
    {2, 3, 3, 2, 1},  // root 2 rotates the timestamp key: timestamp and snapshot forgotten
    {3, 4, 4, 3, 2},  // root 3 rotates the targets key; a new target in "apps"
}};
constexpr char kApps[] = "apps";
// What the client may hold while refresh `i` runs without its keys' old roles.
bool MayBeForgotten(size_t refresh, RoleType role) {
  if (refresh == 2) return role == RoleType::kTimestamp || role == RoleType::kSnapshot;
  return refresh == 3 && role == RoleType::kTargets;
}

WallTime ClockOf(size_t refresh) { return kStart + std::chrono::hours(1 + refresh); }

std::string RepoState(const std::string& dir, size_t refresh) {
  return dir + "/repo-" + std::to_string(refresh);
}

uint64_t VersionOf(const Versions& v, std::optional<RoleType> role) {
  if (!role) return v.apps;
  switch (*role) {
    case RoleType::kRoot:
      return v.root;
    case RoleType::kTimestamp:
      return v.timestamp;
    case RoleType::kSnapshot:
      return v.snapshot;
    case RoleType::kTargets:
      return v.targets;
  }
  return 0;
}

std::string_view Name(std::optional<RoleType> role) {
  return role ? metadata::RoleName(*role) : kApps;
}
// The trusted version of `role` ("apps" when none), nullopt when its file is missing.
std::optional<uint64_t> TrustedVersion(const TrustedStore& store, std::optional<RoleType> role) {
  auto bytes = store.Load(role ? metadata::RoleName(*role) : kApps, 1 << 20);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  if (!bytes.ok() || !bytes->has_value()) return std::nullopt;
  auto doc = metadata::ParseSignedDocument(**bytes, 1 << 20);
  EXPECT_TRUE(doc.ok()) << "trusted " << Name(role) << " is torn";
  if (!doc.ok()) return std::nullopt;
  return doc->signed_json.at("version").get<uint64_t>();
}

constexpr std::optional<RoleType> kChecked[] = {
    RoleType::kRoot, RoleType::kTimestamp, RoleType::kSnapshot, RoleType::kTargets, std::nullopt};

class TufRefreshScenario final : public CrashScenario {
 public:
  // Publishes every state the repository goes through, each copied aside.
  void SetUp(Env& env, const std::string& dir) override {
    (void)env;
    TestRepository repo(dir + "/repo", kStart);
    metadata::DelegatedRole apps;
    apps.name = kApps;
    apps.paths = std::vector<std::string>{"apps/*"};
    repo.Delegate("targets", apps, {NewKey()});
    ASSERT_TRUE(repo.AddTarget(kApps, "apps/web", "web payload").ok());
    auto publish = [&](size_t refresh) {
      ASSERT_TRUE(repo.AddTarget("targets", "app-" + std::to_string(refresh), "payload").ok());
      ASSERT_TRUE(repo.Publish().ok());
      fs::copy(repo.metadata_dir(), RepoState(dir, refresh), fs::copy_options::recursive);
    };
    publish(0);
    publish(1);
    repo.SetKeys(RoleType::kTimestamp, {NewKey()});
    ASSERT_TRUE(repo.PublishRoot().ok());
    ASSERT_TRUE(repo.Publish().ok());
    fs::copy(repo.metadata_dir(), RepoState(dir, 2), fs::copy_options::recursive);
    repo.SetKeys(RoleType::kTargets, {NewKey()});
    ASSERT_TRUE(repo.PublishRoot().ok());
    ASSERT_TRUE(repo.AddTarget(kApps, "apps/kiosk", "kiosk payload").ok());
    publish(3);
  }

  // Step 0 installs root v1; step i refreshes against repository state i - 1.
  size_t steps() const override { return 1 + kRefreshes; }

  Status RunStep(Env& env, const std::string& dir, size_t i) override {
    if (i == 0) {
      ASSIGN_OR_RETURN(std::string root,
                       ReadTextFileBounded(RepoState(dir, 0) + "/1.root.json", 1 << 20));
      return TufClient::Initialize(ClientDir(dir), root, env);
    }
    return Refresh(env, dir, i - 1, ClockOf(i - 1));
  }
  void Close() override {}

  void Check(Env& env, const std::string& dir, size_t done) override {
    TrustedStore store(ClientDir(dir));
    const std::optional<uint64_t> root = TrustedVersion(store, RoleType::kRoot);
    if (done == 0 && !root) {  // the root was being installed: none yet, or root v1
      EXPECT_TRUE(RunStep(env, dir, 0).ok()) << "the root cannot be installed again";
      return;
    }
    ASSERT_TRUE(root.has_value()) << "no trusted root after the root was installed";
    // Refreshes 0..done-2 returned OK; refresh done-1 (if any) was interrupted.
    const size_t completed = done >= 1 ? done - 1 : 0;  // refreshes that returned OK
    const bool interrupted = done >= 1 && done < steps();
    const Versions* before = completed ? &kAfterRefresh[completed - 1] : nullptr;
    const Versions* after = interrupted ? &kAfterRefresh[completed] : before;
    for (std::optional<RoleType> role : kChecked) {
      const std::optional<uint64_t> version = TrustedVersion(store, role);
      const uint64_t low = before ? VersionOf(*before, role) : (role == RoleType::kRoot ? 1 : 0);
      const uint64_t high = after ? VersionOf(*after, role) : low;
      if (!version) {
        EXPECT_TRUE(low == 0 || (interrupted && role && MayBeForgotten(completed, *role)))
            << Name(role) << " lost after " << completed << " refreshes";
        continue;
      }
      EXPECT_TRUE(*version >= low && *version <= high)
          << "trusted " << Name(role) << " version " << *version << " after " << completed
          << " refreshes (expected " << low << ".." << high << ")";
    }
    auto floor = store.LoadTimeFloor();
    ASSERT_TRUE(floor.ok()) << floor.status().ToString();
    const WallTime floor_low = completed ? ClockOf(completed - 1) : WallTime();
    const WallTime floor_high = interrupted ? ClockOf(completed) : floor_low;
    EXPECT_TRUE(*floor == floor_low || *floor == floor_high) << "the time floor moved wrongly";
    // A trusted timestamp newer than the first state's refuses that state.
    const std::optional<uint64_t> timestamp = TrustedVersion(store, RoleType::kTimestamp);
    if (timestamp && *timestamp > 1) {
      EXPECT_FALSE(Refresh(env, dir, 0, ClockOf(kRefreshes)).ok())
          << "an older timestamp was accepted past trusted version " << *timestamp;
    }
    Status latest = Refresh(env, dir, kRefreshes - 1, ClockOf(kRefreshes));
    EXPECT_TRUE(latest.ok()) << "cannot refresh from what the cut left: " << latest.ToString();
    const Versions& last = kAfterRefresh.back();
    for (std::optional<RoleType> role : kChecked) {
      EXPECT_EQ(TrustedVersion(store, role), VersionOf(last, role)) << Name(role);
    }
  }

 private:
  static TufSigner NewKey() { return TufSigner::FromEd25519(Ed25519PrivateKey::Generate()); }
  static std::string ClientDir(const std::string& dir) { return dir + "/node/tuf"; }

  Status Refresh(Env& env, const std::string& dir, size_t state, WallTime now) {
    DirectoryRemote remote(RepoState(dir, state), dir + "/targets");
    FakeClock clock(now);
    ASSIGN_OR_RETURN(auto client, TufClient::Open(ClientDir(dir), remote, clock, {}, env));
    RETURN_IF_ERROR(client->Refresh());
    return client->GetTargetInfo("apps/web").status();
  }
};

TEST(TufRefreshCrashTest, TrustedMetadataSurvivesAPowerCutAtEveryStepOfARefresh) {
  RunCrashMatrix([] { return std::make_unique<TufRefreshScenario>(); }, CrashMatrix{});
}

}  // namespace
}  // namespace flotilla::testing
