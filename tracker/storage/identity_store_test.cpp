// Device identity in the database on both engines: keys bound at enrolment,
// re-enrolment by the bound key, approvals, batch tokens; and a 0.1.0
// tracker.db migrated.
#include "tracker/storage/identity_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/engine_test.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

constexpr int64_t kNowS = 1'800'000'000;  // FakeClock's start
constexpr int64_t kNow = kNowS * 1000;    // in ms, as statements are signed

class IdentityStoreTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("identity"));
    auto db = DeviceDb::Open(url_, clock_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto store = IdentityStore::Open(url_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  Result<DeviceCredentials> Enrol(const std::string& name, const std::string& key,
                                  int64_t signed_at_ms, const std::string& token = "") {
    EnrolAdmission admission{.fleet_token = token.empty(),
                             .token_sha256 = token.empty() ? "" : HashSecret(token),
                             .public_key = key,
                             .signed_at_ms = key.empty() ? 0 : signed_at_ms};
    return db_->Enroll(name, "", {}, admission);
  }

  FakeClock clock_;
  std::unique_ptr<DeviceDb> db_;
  std::unique_ptr<IdentityStore> store_;
};

const std::string kKeyA(64, 'a');
const std::string kKeyB(64, 'b');
const std::string kKeyC(64, 'c');

TEST_P(IdentityStoreTest, ANameIsBoundToTheKeyOfItsFirstEnrolment) {
  auto first = Enrol("pi-1", kKeyA, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(store_->BoundKey("pi-1").value(), kKeyA);

  // Another device, keyed or not, cannot take the name.
  auto other = Enrol("pi-1", kKeyB, kNow + 1);
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(other.status().message().find("flotilla-tracker device approve pi-1"),
            std::string::npos)
      << other.status().ToString();
  EXPECT_EQ(Enrol("pi-1", "", 0).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(db_->AuthenticateCredential(first->credential).ok()) << "nothing changed";

  // The same key, with a newer statement: same id, new secrets, old ones revoked.
  auto again = Enrol("pi-1", kKeyA, kNow + 2);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->device_id, first->device_id);
  EXPECT_FALSE(db_->AuthenticateCredential(first->credential).ok());
  EXPECT_TRUE(db_->AuthenticateCredential(again->credential).ok());

  // The same statement again (a replay), or an older one: refused.
  auto replay = Enrol("pi-1", kKeyA, kNow + 2);
  EXPECT_EQ(replay.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(replay.status().message().find("replayed"), std::string::npos);
  EXPECT_EQ(Enrol("pi-1", kKeyA, kNow + 1).status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(db_->AuthenticateCredential(again->credential).ok());
}

TEST_P(IdentityStoreTest, AnApprovalLetsOneReplacementBindItsKey) {
  auto old_device = Enrol("pi-1", kKeyA, kNow).value();
  EXPECT_EQ(store_->ApproveReplacement("pi-9", 3600).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ApproveReplacement("pi-1", 3600).value(), kNowS + 3600);

  auto replacement = Enrol("pi-1", kKeyB, kNow + 5);
  ASSERT_TRUE(replacement.ok()) << replacement.status().ToString();
  EXPECT_EQ(replacement->device_id, old_device.device_id) << "the name keeps its id";
  EXPECT_EQ(store_->BoundKey("pi-1").value(), kKeyB);
  EXPECT_FALSE(db_->AuthenticatePasskey(old_device.passkey).ok());
  // Used up: neither a third device nor the replaced one gets the name.
  EXPECT_EQ(Enrol("pi-1", kKeyC, kNow + 6).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Enrol("pi-1", kKeyA, kNow + 7).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Enrol("pi-1", kKeyB, kNow + 8).ok()) << "the new key re-enrols";

  // An approval lapses unused.
  ASSERT_TRUE(store_->ApproveReplacement("pi-1", 60).ok());
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_EQ(Enrol("pi-1", kKeyC, kNow + 70).status().code(), StatusCode::kAlreadyExists);
}

TEST_P(IdentityStoreTest, ADecommissionedDeviceIsRevokedItsKeyNeverEnrolsAndItsNameWaits) {
  auto kept = Enrol("pi-2", kKeyB, kNow);
  auto gone = Enrol("pi-1", kKeyA, kNow);
  ASSERT_TRUE(gone.ok() && kept.ok());
  auto engine = SqlEngine::Open(url_);
  ASSERT_TRUE(engine.ok());
  for (const char* sql :
       {"INSERT INTO device_tags(device_id, tag) VALUES(?, 'lobby')",
        "INSERT INTO device_pins(device_id, app, release) VALUES(?, 'kiosk', 3)"}) {
    ASSERT_TRUE((*engine)->Query(sql, {gone->device_id}).ok()) << sql;
  }
  DeviceReport report{.app = "kiosk",
                      .release = "3",
                      .state = "failed",
                      .health = "unknown",
                      .errors = {"boom"},
                      .seq = 4};
  ASSERT_TRUE(db_->RecordReport(gone->device_id, report).ok());

  auto id = store_->Decommission("pi-1");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, gone->device_id);
  EXPECT_EQ(store_->Decommission("pi-1").status().code(), StatusCode::kNotFound);
  for (const char* table :
       {"devices", "device_tags", "device_pins", "device_status", "failures", "report_sequence"}) {
    auto rows = (*engine)->Query(
        std::string("SELECT COUNT(*) FROM ") + table + " WHERE device_id = ?", {gone->device_id});
    ASSERT_TRUE(rows.ok()) << table;
    EXPECT_EQ(rows->Int(0, 0), 0) << table;
  }
  // Its secrets work nowhere (a new replica; this one within kSecretRecheck).
  auto fresh = DeviceDb::Open(url_, clock_);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->AuthenticateCredential(gone->credential).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ((*fresh)->AuthenticatePasskey(gone->passkey).status().code(),
            StatusCode::kPermissionDenied);
  clock_.Advance(DeviceDb::kSecretRecheck + std::chrono::seconds(1));
  EXPECT_FALSE(db_->AuthenticateCredential(gone->credential).ok());
  EXPECT_TRUE(db_->AuthenticateCredential(kept->credential).ok()) << "others go on";

  // Its key is refused under any name, with any token; the name waits.
  ASSERT_TRUE(store_->CreateToken("batch", 3600, 0).ok());
  auto token = store_->CreateToken("batch-2", 3600, 0);
  ASSERT_TRUE(token.ok());
  const int64_t later = kNow + 120'000;
  auto by_key = Enrol("pi-1", kKeyA, later);
  EXPECT_EQ(by_key.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(by_key.status().message().find("decommissioned"), std::string::npos);
  EXPECT_EQ(Enrol("pi-9", kKeyA, later, *token).status().code(), StatusCode::kPermissionDenied);
  auto by_name = Enrol("pi-1", kKeyC, later, *token);
  EXPECT_EQ(by_name.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(by_name.status().message().find("device approve pi-1"), std::string::npos)
      << by_name.status().ToString();

  // Released by an approval: a new device takes the name, with a new id.
  EXPECT_EQ(store_->ApproveReplacement("pi-1", 3600).value(), 0);
  auto next = Enrol("pi-1", kKeyC, later, *token);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_NE(next->device_id, gone->device_id);
  EXPECT_EQ(store_->BoundKey("pi-1").value(), kKeyC);
  EXPECT_EQ(Enrol("pi-8", kKeyA, later + 1, *token).status().code(), StatusCode::kPermissionDenied)
      << "the old key stays refused";
}

TEST_P(IdentityStoreTest, ADeviceEnrolledWithoutAKeyBindsOneByItsCredentialOnce) {
  auto unkeyed = Enrol("pi-1", "", 0);
  ASSERT_TRUE(unkeyed.ok());
  EXPECT_EQ(db_->BindKey("dev-unknown", kKeyA, kNow).code(), StatusCode::kNotFound);
  ASSERT_TRUE(db_->BindKey(unkeyed->device_id, kKeyA, kNow).ok());
  EXPECT_EQ(store_->BoundKey("pi-1").value(), kKeyA);
  EXPECT_TRUE(db_->BindKey(unkeyed->device_id, kKeyA, kNow + 5).ok()) << "a retry";
  EXPECT_EQ(db_->BindKey(unkeyed->device_id, kKeyB, kNow + 6).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->BoundKey("pi-1").value(), kKeyA);
  // The binding's statement is the newest accepted: replayed as an
  // enrolment it is refused; a newer one re-enrols with no approval.
  EXPECT_EQ(Enrol("pi-1", kKeyA, kNow).status().code(), StatusCode::kPermissionDenied);
  auto again = Enrol("pi-1", kKeyA, kNow + 1);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->device_id, unkeyed->device_id);
  // A decommissioned key binds nothing.
  auto other = Enrol("pi-2", "", 0);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(store_->Decommission("pi-1").ok());
  EXPECT_EQ(db_->BindKey(other->device_id, kKeyA, kNow + 9).code(), StatusCode::kPermissionDenied);
}

TEST_P(IdentityStoreTest, BatchTokensExpireAreUsedUpAndRevoked) {
  const std::string twice = store_->CreateToken("batch-1", 86400, 2).value();
  const std::string month = store_->CreateToken("batch-2", 30 * 86400, 0).value();
  EXPECT_EQ(store_->CreateToken("batch-1", 60, 0).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(twice.size(), 64u);

  EXPECT_TRUE(Enrol("pi-1", kKeyA, kNow, twice).ok());
  EXPECT_TRUE(Enrol("pi-2", "", 0, twice).ok()) << "a keyless device uses a token too";
  auto used_up = Enrol("pi-3", kKeyC, kNow, twice);
  EXPECT_EQ(used_up.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(used_up.status().message().find("used up"), std::string::npos);
  // A device's own key needs no valid token to enrol again.
  EXPECT_TRUE(Enrol("pi-1", kKeyA, kNow + 1, twice).ok());

  EXPECT_EQ(Enrol("pi-4", "", 0, std::string(64, '0')).status().code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(store_->RevokeToken("batch-2").ok());
  EXPECT_EQ(store_->RevokeToken("batch-9").code(), StatusCode::kNotFound);
  auto revoked = Enrol("pi-4", "", 0, month);
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos)
      << revoked.status().ToString();

  const std::string day = store_->CreateToken("batch-3", 86400, 0).value();
  clock_.Advance(std::chrono::seconds(86400));
  auto expired = Enrol("pi-5", "", 0, day);
  EXPECT_EQ(expired.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);

  auto tokens = store_->Tokens().value();
  ASSERT_EQ(tokens.size(), 3u);
  const int64_t now = kNowS + 86400;
  EXPECT_EQ(tokens[0].name, "batch-1");
  EXPECT_EQ(tokens[0].uses, 2);
  EXPECT_EQ(tokens[0].StateAt(now), "expired");
  EXPECT_EQ(tokens[1].StateAt(now), "revoked");
  EXPECT_EQ(tokens[2].StateAt(now), "expired");
  EXPECT_EQ(tokens[1].StateAt(kNowS), "revoked");
  EXPECT_EQ(tokens[0].StateAt(kNowS), "used up");
}

FLOTILLA_ON_BOTH_ENGINES(IdentityStoreTest);

// The devices of a 0.1.0 tracker.db have no key bound: each keeps its
// secrets, and its name is enrolled again only after an approval.
TEST(IdentityCompatTest, DevicesOf010AreUnboundAndNeedAnApproval) {
  const std::string dir = ::testing::TempDir() + "/identity-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db",
      dir + "/tracker.db");
  FakeClock clock;
  auto db = DeviceDb::Open(dir + "/tracker.db", clock);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto store = IdentityStore::Open(dir + "/tracker.db", clock).value();
  EXPECT_EQ(store->BoundKey("pi-old").value(), "");
  EXPECT_TRUE((*db)->AuthenticatePasskey(std::string(64, '2')).ok());
  EnrolAdmission keyed{.fleet_token = true, .public_key = kKeyA, .signed_at_ms = kNow};
  EXPECT_EQ((*db)->Enroll("pi-old", "", {}, keyed).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ((*db)->Enroll("pi-old", "", {}, EnrolAdmission{.fleet_token = true}).status().code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(store->ApproveReplacement("pi-old", 3600).ok());
  auto bound = (*db)->Enroll("pi-old", "", {}, keyed);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_EQ(bound->device_id, "dev-0123456789abcdef");
  EXPECT_EQ(store->BoundKey("pi-old").value(), kKeyA);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
