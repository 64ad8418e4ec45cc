// Secrets in the tracker's database (docs/config.md, "Secrets"): boxes per
// device on both engines, their precedence, what a decommission and a key
// change delete, no clear value in the database file, and the 0.1.0
// database migrated.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "core/sealed_box.h"
#include "tests/support/engine_test.h"
#include "tracker/fleet/config.h"
#include "tracker/fleet/fleet_store.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/identity_store.h"

namespace flotilla::tracker {
namespace {

constexpr int64_t kNowMs = 1'700'000'000'000;

class SecretStoreTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("secretstore"));
    auto devices = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(devices.ok()) << devices.status().ToString();
    devices_ = std::move(*devices);
    auto keyed = devices_->Enroll(
        "screen-7", "shop-12", {},
        EnrolAdmission{
            .fleet_token = true, .public_key = key_.public_key().Hex(), .signed_at_ms = kNowMs});
    ASSERT_TRUE(keyed.ok()) << keyed.status().ToString();
    screen7_ = keyed->device_id;
    ASSERT_TRUE(devices_->Enroll("screen-8", "shop-12").ok()) << "no key bound";
    auto store = FleetStore::Open(url_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto identity = IdentityStore::Open(url_, clock_);
    ASSERT_TRUE(identity.ok()) << identity.status().ToString();
    identity_ = std::move(*identity);
    auto raw = SqlEngine::Open(url_);
    ASSERT_TRUE(raw.ok()) << raw.status().ToString();
    raw_ = std::move(*raw);
  }

  SecretChange Set(ConfigLevel level, const std::string& scope, const std::string& value) {
    SecretChange change{"kiosk", level, scope, "API_TOKEN", false, {}};
    change.boxes.push_back(
        {screen7_, key_.public_key().Hex(), SealToKey(key_.public_key(), value).value()});
    return change;
  }
  // The value screen-7's kiosk opens, "" when it has no box.
  std::string Opened() {
    auto state = store_->Load();
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    if (!state.ok()) return "";
    auto effective = EffectiveSecrets(*state, state->devices.at("screen-7"), "kiosk");
    if (effective.empty()) return "";
    return key_.Open(effective.front().value).value();
  }
  size_t Boxes() { return store_->Load().value().secrets.size(); }

  FakeClock clock_;
  SealedBoxOpener key_ = SealedBoxOpener::FromSeed(Bytes(32, 7)).value();
  std::string screen7_;
  std::unique_ptr<DeviceDb> devices_;
  std::unique_ptr<FleetStore> store_;
  std::unique_ptr<IdentityStore> identity_;
  std::unique_ptr<SqlEngine> raw_;  // to look at the tables themselves
};

TEST_P(SecretStoreTest, LevelsFollowThePrecedenceOfConfiguration) {
  ASSERT_TRUE(store_->CommitSecretChange(Set(ConfigLevel::kApp, "", "app-value")).ok());
  EXPECT_EQ(Opened(), "app-value");
  ASSERT_TRUE(store_->CommitSecretChange(Set(ConfigLevel::kSite, "shop-12", "site-value")).ok());
  EXPECT_EQ(Opened(), "site-value");
  ASSERT_TRUE(store_->CommitSecretChange(Set(ConfigLevel::kDevice, "screen-7", "dev-value")).ok());
  EXPECT_EQ(Opened(), "dev-value");
  // Set again: replaced, not added.
  ASSERT_TRUE(store_->CommitSecretChange(Set(ConfigLevel::kDevice, "screen-7", "dev-2")).ok());
  EXPECT_EQ(Opened(), "dev-2");
  EXPECT_EQ(Boxes(), 3u);
  auto state = store_->Load().value();
  EXPECT_TRUE(EffectiveSecrets(state, state.devices.at("screen-8"), "kiosk").empty())
      << "nothing sealed for a device without a key";
  EXPECT_EQ(state.device_keys.count(screen7_), 1u);

  SecretChange unset{"kiosk", ConfigLevel::kDevice, "screen-7", "API_TOKEN", true, {}};
  ASSERT_TRUE(store_->CommitSecretChange(unset).ok());
  EXPECT_EQ(Opened(), "site-value");
  Status again = store_->CommitSecretChange(unset);
  EXPECT_EQ(again.code(), StatusCode::kNotFound) << again.ToString();

  // A box sealed to a key the device does not hold is refused, and the
  // change writes nothing.
  SecretChange stale = Set(ConfigLevel::kApp, "", "stale");
  stale.boxes.front().public_key = Ed25519PrivateKey::Generate().public_key().Hex();
  EXPECT_EQ(store_->CommitSecretChange(stale).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Opened(), "site-value");
  EXPECT_EQ(store_->CommitSecretChange(Set(ConfigLevel::kDevice, "screen-9", "x")).code(),
            StatusCode::kNotFound);
  SecretChange reserved = Set(ConfigLevel::kApp, "", "x");
  reserved.name = "LD_PRELOAD";
  EXPECT_FALSE(store_->CommitSecretChange(reserved).ok());
  EXPECT_EQ(Boxes(), 2u);
}

TEST_P(SecretStoreTest, TheDatabaseHoldsNoClearValueAndTheAuditNoBox) {
  const std::string value = "Zq8pX2vLm4Rt7Yw1Kc9Nb3Hd6Fs0Gj5E";
  SecretChange change = Set(ConfigLevel::kDevice, "screen-7", value);
  const std::string box = change.boxes.front().box;
  ASSERT_TRUE(store_->CommitSecretChange(change).ok());
  auto audit = raw_->Query("SELECT action, detail FROM audit_log");
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  bool audited = false;
  for (size_t i = 0; i < audit->size(); ++i) {
    if (audit->Text(i, 0) != "secret.set") continue;
    audited = true;
    EXPECT_EQ(audit->Text(i, 1).find(box.substr(0, 24)), std::string::npos);
    EXPECT_NE(audit->Text(i, 1).find(screen7_), std::string::npos) << "the devices sealed for";
  }
  EXPECT_TRUE(audited);
  if (!sqlite()) return;  // PostgreSQL's files are the server's
  for (const char* suffix : {"", "-wal"}) {
    auto bytes = ReadFileBounded(url_ + suffix, 64 << 20);
    if (!bytes.ok()) continue;
    const std::string text(bytes->begin(), bytes->end());
    EXPECT_EQ(text.find(value), std::string::npos) << "the value in tracker.db" << suffix;
    EXPECT_EQ(text.find(value.substr(0, 12)), std::string::npos);
  }
}

TEST_P(SecretStoreTest, DecommissionAndANewKeyDeleteTheBoxes) {
  ASSERT_TRUE(store_->CommitSecretChange(Set(ConfigLevel::kApp, "", "app-value")).ok());
  ASSERT_TRUE(store_->CommitSecretChange(Set(ConfigLevel::kDevice, "screen-7", "dev")).ok());
  ASSERT_EQ(Boxes(), 2u);
  // A replacement binds a new key: the boxes sealed to the old one go.
  ASSERT_TRUE(identity_->ApproveReplacement("screen-7", 3600).ok());
  const SealedBoxOpener replacement = SealedBoxOpener::FromSeed(Bytes(32, 8)).value();
  auto replaced = devices_->Enroll("screen-7", "shop-12", {},
                                   EnrolAdmission{.fleet_token = true,
                                                  .public_key = replacement.public_key().Hex(),
                                                  .signed_at_ms = kNowMs + 1000});
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ(replaced->device_id, screen7_);
  EXPECT_EQ(Boxes(), 0u);
  auto rows = raw_->Query("SELECT COUNT(*) FROM secret_boxes");
  EXPECT_EQ(rows->Int(0, 0), 0) << "deleted, not only hidden";

  // Sealed again to the new key, then decommissioned: deleted.
  SecretChange change{"kiosk", ConfigLevel::kApp, "", "API_TOKEN", false, {}};
  change.boxes.push_back(
      {screen7_, replacement.public_key().Hex(), SealToKey(replacement.public_key(), "v").value()});
  ASSERT_TRUE(store_->CommitSecretChange(change).ok());
  ASSERT_EQ(Boxes(), 1u);
  ASSERT_TRUE(identity_->Decommission("screen-7").ok());
  auto after = raw_->Query("SELECT COUNT(*) FROM secret_boxes");
  EXPECT_EQ(after->Int(0, 0), 0);
}

FLOTILLA_ON_BOTH_ENGINES(SecretStoreTest);

// The tracker.db 0.1.0 wrote migrates to the secrets table; its device (no
// key bound) gets no box until a key binds, then one.
TEST(SecretCompatTest, MigratesWhat010Wrote) {
  const std::string dir = ::testing::TempDir() + "/secrets-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  FakeClock clock;
  auto store = FleetStore::Open(db, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_TRUE(state->secrets.empty());
  EXPECT_EQ(state->device_keys.count("dev-0123456789abcdef"), 0u) << "0.1.0 bound no key";
  const SealedBoxOpener key = SealedBoxOpener::FromSeed(Bytes(32, 9)).value();
  auto devices = DeviceDb::Open(db, clock);
  ASSERT_TRUE(devices.ok());
  ASSERT_TRUE((*devices)->BindKey("dev-0123456789abcdef", key.public_key().Hex(), kNowMs).ok());
  SecretChange change{"web", ConfigLevel::kDevice, "pi-old", "TOKEN", false, {}};
  change.boxes.push_back(
      {"dev-0123456789abcdef", key.public_key().Hex(), SealToKey(key.public_key(), "t").value()});
  ASSERT_TRUE((*store)->CommitSecretChange(change).ok());
  state = (*store)->Load();
  auto effective = EffectiveSecrets(*state, state->devices.at("pi-old"), "web");
  ASSERT_EQ(effective.size(), 1u);
  EXPECT_EQ(key.Open(effective.front().value).value(), "t");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
