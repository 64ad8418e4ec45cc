// Device identity against the real tracker (docs/identity.md): names bound
// to device keys, re-enrolment by the bound key, an operator's approval of a
// replacement, batch tokens refused once expired, used up or revoked, the
// fleet token of 0.1.0 still enrolling, and a 0.1.0 database migrated with
// its devices announcing and reporting. Requests go through the client
// library, the operator's commands through the real binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/ed25519.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::testing {
namespace {

using tracker::DeviceReport;
using tracker::EnrolRequest;
using tracker::TrackerClient;

// Unix milliseconds, as statements are signed.
int64_t Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SystemClock::Instance().Now().time_since_epoch())
      .count();
}

class IdentityE2eTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("identity-e2e");
    auto flags = ServeDatabaseFlags(GetParam(), "identity");
    ASSERT_TRUE(flags.ok()) << flags.status().ToString();
    // The operator's commands find the database as serve does.
    database_ =
        flags->empty() ? "--repository " + dir_ + "/repo" : "--database-url '" + (*flags)[1] + "'";
    serve_flags_ = *flags;
    ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", *flags)) << tracker_.Log();
  }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  CommandResult Tracker(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " " + database_ + " 2>&1");
  }
  // A device's enrolment: its key's statement signed at `signed_at_ms` (now by default).
  Result<EnrolledDevice> Enrol(const std::string& name, const Ed25519PrivateKey* key,
                               const std::string& token = TrackerProcess::FleetToken(),
                               int64_t signed_at_ms = 0) {
    EnrolRequest request{.fleet_token = token, .name = name};
    if (key != nullptr)
      tracker::SignEnrolRequest(request, *key, signed_at_ms ? signed_at_ms : Now());
    return TrackerClient(tracker_.url()).Enrol(request);
  }
  Status Report(const EnrolledDevice& device) {
    return TrackerClient(tracker_.url())
        .Report(device, DeviceReport{"web", "r1", "idle", 0, 0, 0, 0, "unknown", {}});
  }
  // The tracker's announce answer for the passkey: a failure reason or peers.
  std::string Announce(const std::string& passkey) {
    return HttpRequestTo(tracker_.port(), "GET",
                         "/announce/" + passkey + "?info_hash=" + std::string(20, 'A') +
                             "&peer_id=" + std::string(20, 'p') +
                             "&port=6881&uploaded=0&downloaded=0&left=10&compact=1")
        .body;
  }

  std::string dir_;
  std::string database_;
  std::vector<std::string> serve_flags_;
  TrackerProcess tracker_;
};

INSTANTIATE_TEST_SUITE_P(Engines, IdentityE2eTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(IdentityE2eTest, ANameIsBoundToItsKeyAndOnlyAnApprovalHandsItOver) {
  const Ed25519PrivateKey first_key = Ed25519PrivateKey::Generate();
  const Ed25519PrivateKey second_key = Ed25519PrivateKey::Generate();
  auto first = Enrol("screen-1", &first_key);
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  // A second device under the name is refused, and told what to do; so is
  // a device without a key. The enrolled one is untouched.
  auto second = Enrol("screen-1", &second_key);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("HTTP 409"), std::string::npos)
      << second.status().ToString();
  EXPECT_NE(second.status().message().find("flotilla-tracker device approve screen-1"),
            std::string::npos)
      << second.status().ToString();
  EXPECT_FALSE(Enrol("screen-1", nullptr).ok());
  EXPECT_TRUE(Report(*first).ok());

  // A statement signed by another key than the one it names; one far off
  // the tracker's clock: refused.
  EnrolRequest forged{.fleet_token = TrackerProcess::FleetToken(), .name = "screen-1"};
  tracker::SignEnrolRequest(forged, second_key, Now());
  forged.public_key = first_key.public_key().Hex();
  EXPECT_EQ(TrackerClient(tracker_.url()).Enrol(forged).status().code(),
            StatusCode::kPermissionDenied);
  auto stale = Enrol("screen-1", &first_key, TrackerProcess::FleetToken(), Now() - 3600'000);
  EXPECT_EQ(stale.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(stale.status().message().find("clock"), std::string::npos) << stale.status().ToString();

  // The same device (a wiped state, its key kept) enrols again: same id,
  // new secrets, the old ones revoked. Its request sent again is a replay.
  EnrolRequest again{.fleet_token = TrackerProcess::FleetToken(), .name = "screen-1"};
  tracker::SignEnrolRequest(again, first_key, Now() + 1);
  auto renewed = TrackerClient(tracker_.url()).Enrol(again);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(renewed->device_id, first->device_id);
  EXPECT_EQ(Report(*first).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Report(*renewed).ok());
  auto replayed = TrackerClient(tracker_.url()).Enrol(again);
  EXPECT_EQ(replayed.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(replayed.status().message().find("replayed"), std::string::npos)
      << replayed.status().ToString();

  // An approval lets the replacement bind its key, once.
  auto unknown = Tracker("device approve screen-9");
  EXPECT_NE(unknown.exit_code, 0) << unknown.output;
  auto approve = Tracker("device approve screen-1 --for 1h --json");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  EXPECT_EQ(ParseJsonStrict(approve.output).value()["device"], "screen-1") << approve.output;
  auto replacement = Enrol("screen-1", &second_key);
  ASSERT_TRUE(replacement.ok()) << replacement.status().ToString();
  EXPECT_EQ(replacement->device_id, first->device_id) << "the name keeps its id";
  EXPECT_EQ(Report(*renewed).code(), StatusCode::kPermissionDenied);
  EXPECT_NE(Announce(renewed->passkey).find("failure reason"), std::string::npos);
  EXPECT_TRUE(Report(*replacement).ok());
  EXPECT_EQ(Announce(replacement->passkey).find("failure reason"), std::string::npos)
      << Announce(replacement->passkey);
  EXPECT_FALSE(Enrol("screen-1", &first_key, TrackerProcess::FleetToken(), Now() + 2).ok())
      << "the replaced device's key no longer holds the name";
  EXPECT_FALSE(Enrol("screen-1", &first_key, TrackerProcess::FleetToken(), Now() + 3).ok())
      << "the approval was used once";
}

// Decommissioning takes a device out for good: its reports are refused at
// once, its announces once serve rechecks its secrets (a restart here, else
// within a minute), its key at any enrolment; its name waits for an approval.
TEST_P(IdentityE2eTest, ADecommissionedDeviceIsRefusedEverywhereAndItsNameWaits) {
  const Ed25519PrivateKey old_key = Ed25519PrivateKey::Generate();
  const Ed25519PrivateKey new_key = Ed25519PrivateKey::Generate();
  auto gone = Enrol("screen-1", &old_key);
  auto kept = Enrol("screen-2", nullptr);
  ASSERT_TRUE(gone.ok() && kept.ok());
  ASSERT_TRUE(Report(*gone).ok());
  ASSERT_EQ(Announce(gone->passkey).find("failure reason"), std::string::npos);
  auto token = Tracker("token create --name spare --expires 1h --json");
  ASSERT_EQ(token.exit_code, 0) << token.output;
  const std::string batch = ParseJsonStrict(token.output).value()["token"];

  auto unconfirmed = Tracker("device decommission screen-1");
  EXPECT_NE(unconfirmed.exit_code, 0);
  EXPECT_NE(unconfirmed.output.find("--yes"), std::string::npos) << unconfirmed.output;
  EXPECT_TRUE(Report(*gone).ok()) << "nothing happened without --yes";
  auto decommission = Tracker("device decommission screen-1 --yes --json");
  ASSERT_EQ(decommission.exit_code, 0) << decommission.output;
  EXPECT_EQ(ParseJsonStrict(decommission.output).value()["device_id"], gone->device_id);
  EXPECT_NE(Tracker("device decommission screen-1 --yes").exit_code, 0) << "gone already";

  EXPECT_EQ(Report(*gone).code(), StatusCode::kPermissionDenied) << "at once";
  EXPECT_TRUE(Report(*kept).ok());
  const int port = tracker_.port();
  tracker_.Stop();
  ASSERT_TRUE(tracker_.Start(dir_, dir_ + "/repo", serve_flags_, port)) << tracker_.Log();
  EXPECT_NE(Announce(gone->passkey).find("failure reason"), std::string::npos);
  EXPECT_EQ(Announce(kept->passkey).find("failure reason"), std::string::npos);

  // Its key, under its name or another, with a good token: refused.
  auto by_key = Enrol("screen-1", &old_key, batch);
  EXPECT_EQ(by_key.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(by_key.status().message().find("decommissioned"), std::string::npos)
      << by_key.status().ToString();
  EXPECT_EQ(Enrol("screen-7", &old_key, batch).status().code(), StatusCode::kPermissionDenied);
  // Another device under its name: not before an approval releases it.
  auto by_name = Enrol("screen-1", &new_key, batch);
  EXPECT_NE(by_name.status().message().find("HTTP 409"), std::string::npos)
      << by_name.status().ToString();
  auto release = Tracker("device approve screen-1 --json");
  ASSERT_EQ(release.exit_code, 0) << release.output;
  EXPECT_EQ(ParseJsonStrict(release.output).value()["name_released"], true) << release.output;
  auto next = Enrol("screen-1", &new_key, batch);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_NE(next->device_id, gone->device_id) << "a new device, nothing inherited";
  EXPECT_TRUE(Report(*next).ok());
}

// POST /api/v1/devices/ID/key: only the device's own credential, a
// statement signed by the key over its name, on time; once bound, only
// that key (a retry); then the key re-enrols the name.
TEST_P(IdentityE2eTest, AnUnkeyedDeviceBindsItsKeyByItsCredential) {
  const Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  const Ed25519PrivateKey other_key = Ed25519PrivateKey::Generate();
  auto device = Enrol("screen-1", nullptr);
  auto neighbour = Enrol("screen-2", nullptr);
  ASSERT_TRUE(device.ok() && neighbour.ok());
  TrackerClient client(tracker_.url());
  auto bind = [&](const EnrolledDevice& as, const std::string& name, const Ed25519PrivateKey& k,
                  int64_t at_ms) {
    return client.BindKey(as, tracker::SignKeyBinding(name, k, at_ms));
  };

  EnrolledDevice wrong = *device;
  wrong.credential = neighbour->credential;
  EXPECT_EQ(bind(wrong, "screen-1", key, Now()).code(), StatusCode::kPermissionDenied)
      << "another device's credential";
  wrong.credential = std::string(64, 'f');
  EXPECT_FALSE(bind(wrong, "screen-1", key, Now()).ok()) << "an unknown credential";
  EXPECT_EQ(bind(*device, "screen-2", key, Now()).code(), StatusCode::kPermissionDenied)
      << "a statement over another name";
  Status stale = bind(*device, "screen-1", key, Now() - 3600'000);
  EXPECT_EQ(stale.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(stale.message().find("clock"), std::string::npos) << stale.ToString();

  const int64_t at = Now();
  ASSERT_TRUE(bind(*device, "screen-1", key, at).ok());
  EXPECT_TRUE(bind(*device, "screen-1", key, at + 1).ok()) << "a retry of the same key";
  Status taken = bind(*device, "screen-1", other_key, at + 2);
  EXPECT_NE(taken.message().find("HTTP 409"), std::string::npos) << taken.ToString();
  auto renewed = Enrol("screen-1", &key, TrackerProcess::FleetToken(), at + 3);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(renewed->device_id, device->device_id);
  EXPECT_EQ(Enrol("screen-1", &other_key).status().code(), StatusCode::kInvalidArgument)
      << "the name is now the key's";
}

TEST_P(IdentityE2eTest, BatchTokensAreRefusedExpiredUsedUpOrRevokedAndTheFleetTokenWorks) {
  auto created = Tracker("token create --name batch-1 --expires 30d --uses 2 --json");
  ASSERT_EQ(created.exit_code, 0) << created.output;
  const std::string batch = ParseJsonStrict(created.output).value()["token"];
  auto short_lived =
      RunShell("(" + BinaryPath("flotilla-tracker") + " token create --name batch-2 --expires 1s " +
               database_ + " 2>/dev/null)");
  ASSERT_EQ(short_lived.exit_code, 0) << short_lived.output;
  // It expires at the start of the second after its creation, at the latest.
  const int64_t expired_by_s = Now() / 1000 + 1;
  const std::string expiring = short_lived.output.substr(0, short_lived.output.find('\n'));
  ASSERT_EQ(expiring.size(), 64u) << "stdout holds the token alone: " << short_lived.output;
  const std::string revoked =
      ParseJsonStrict(Tracker("token create --name batch-3 --json").output).value()["token"];
  ASSERT_EQ(Tracker("token revoke batch-3").exit_code, 0);
  EXPECT_NE(Tracker("token create --name batch-1").exit_code, 0) << "names are never reused";

  const Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  auto a = Enrol("screen-a", &key, batch);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(Enrol("screen-b", nullptr, batch).ok()) << "a 0.1.0 node uses a batch token too";
  auto used_up = Enrol("screen-c", nullptr, batch);
  EXPECT_EQ(used_up.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(used_up.status().message().find("used up"), std::string::npos)
      << used_up.status().ToString();
  auto revoked_refusal = Enrol("screen-c", nullptr, revoked);
  EXPECT_NE(revoked_refusal.status().message().find("revoked"), std::string::npos)
      << revoked_refusal.status().ToString();
  while (Now() / 1000 < expired_by_s) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto expired = Enrol("screen-c", nullptr, expiring);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos)
      << expired.status().ToString();
  auto wrong = Enrol("screen-c", nullptr, std::string(64, '7'));
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied);

  // A device's own key re-enrols it with its (used-up) token.
  EXPECT_TRUE(Enrol("screen-a", &key, batch, Now() + 1).ok());
  // The fleet token of serve's fleet_token_file, the 0.1.0 way: no expiry.
  auto fleet = Enrol("screen-c", nullptr);
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  EXPECT_EQ(Announce(fleet->passkey).find("failure reason"), std::string::npos);

  auto list = Tracker("token list --json");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  Json tokens = ParseJsonStrict(list.output).value()["tokens"];
  ASSERT_EQ(tokens.size(), 3u) << list.output;
  EXPECT_EQ(tokens[0]["state"], "used up");
  EXPECT_EQ(tokens[0]["uses"], 2);
  EXPECT_EQ(tokens[1]["state"], "expired");
  EXPECT_EQ(tokens[2]["state"], "revoked");
  EXPECT_EQ(list.output.find(batch), std::string::npos) << "a token is shown once";
}

// A tracker.db written by 0.1.0 (tracker/storage/testdata) under serve: its
// device keeps announcing and reporting with the secrets 0.1.0 gave it; its
// name, enrolled without a key, is re-enrolled only after an approval.
TEST(IdentityCompatE2eTest, A010DatabaseMigratesAndItsDeviceKeepsAnnouncing) {
  const std::string dir = MakeTempDir("identity-010");
  const std::string db = dir + "/tracker.db";
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db", db);
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir, dir + "/repo", {"--database-url", "sqlite:" + db}))
      << tracker.Log();
  EnrolledDevice old_device{"dev-0123456789abcdef", "", "", ""};
  for (int i = 0; i < 32; ++i) {
    old_device.credential += "11";
    old_device.passkey += "22";
  }
  const auto announce =
      HttpRequestTo(tracker.port(), "GET",
                    "/announce/" + old_device.passkey + "?info_hash=" + std::string(20, 'A') +
                        "&peer_id=" + std::string(20, 'p') +
                        "&port=6881&uploaded=0&downloaded=0&left=10&compact=1");
  EXPECT_EQ(announce.status, 200);
  EXPECT_EQ(announce.body.find("failure reason"), std::string::npos) << announce.body;
  TrackerClient client(tracker.url());
  EXPECT_TRUE(
      client.Report(old_device, DeviceReport{"web", "r1", "idle", 0, 0, 0, 0, "unknown", {}}).ok());

  const Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  EnrolRequest keyed{.fleet_token = TrackerProcess::FleetToken(), .name = "pi-old"};
  tracker::SignEnrolRequest(keyed, key, Now());
  EXPECT_FALSE(client.Enrol(keyed).ok()) << "no trust on first key for a 0.1.0 device";
  auto approve = RunShell(BinaryPath("flotilla-tracker") +
                          " device approve pi-old --database-url sqlite:" + db + " 2>&1");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  auto bound = client.Enrol(keyed);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_EQ(bound->device_id, old_device.device_id);
  tracker.Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
