// The tracker serving each device its own fleet repository over real HTTP:
// `fleet init` and `fleet publish` with the real binary, then GETs as the
// device, as another device, without a credential, and with names that try
// to leave the device's directory; and the fleet root as the image
// repository's target.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/storage/device_state.h"

namespace flotilla::testing {
namespace {

class FleetServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("fleet-serve");
    ASSERT_FALSE(dir_.empty());
    repo_ = dir_ + "/repo";
    auto init = Run("init " + repo_ + " --public-url http://127.0.0.1:9");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
    a_ = EnrolDevice(tracker_.port(), "screen-a", "shop-1");
    b_ = EnrolDevice(tracker_.port(), "screen-b", "shop-1");
    ASSERT_FALSE(a_.device_id.empty());
    ASSERT_FALSE(b_.device_id.empty());
    auto fleet = Run("fleet init --offline-keys " + dir_ + "/off --repository " + repo_);
    ASSERT_EQ(fleet.exit_code, 0) << fleet.output;
    auto published = Run("fleet publish --repository " + repo_);
    ASSERT_EQ(published.exit_code, 0) << published.output;
  }
  void TearDown() override {
    tracker_.Stop();
    std::filesystem::remove_all(dir_);
  }

  CommandResult Run(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " 2>&1");
  }
  HttpResponse Get(const std::string& target, const std::string& credential) {
    std::vector<std::string> headers;
    if (!credential.empty()) headers.push_back("Authorization: Bearer " + credential);
    return HttpRequestTo(tracker_.port(), "GET", target, headers);
  }
  std::string DevicePath(const EnrolledDevice& d, const std::string& rest) {
    return "/fleet/devices/" + d.device_id + "/" + rest;
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  EnrolledDevice a_, b_;
};

// Tags a device sends at its first enrolment put it in the groups that
// select them; enrolled again (a replacement an operator approved), it
// keeps the tags the tracker has.
TEST_F(FleetServeTest, TagsGivenAtEnrolmentSelectTheDevice) {
  const EnrolledDevice tagged = EnrolDevice(tracker_.port(), "screen-c", "shop-2", {"portrait"});
  ASSERT_FALSE(tagged.device_id.empty());
  auto group = Run("group create portraits --select tag=portrait --json --repository " + repo_);
  ASSERT_EQ(group.exit_code, 0) << group.output;
  EXPECT_EQ(ParseJsonStrict(group.output).value()["devices"], 1) << group.output;
  auto approve = Run("device approve screen-c --repository " + repo_);
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  const EnrolledDevice again = EnrolDevice(tracker_.port(), "screen-c", "shop-2", {"landscape"});
  EXPECT_EQ(again.device_id, tagged.device_id);
  auto shown = Run("group show portraits --json --repository " + repo_);
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  Json devices = ParseJsonStrict(shown.output).value()["devices"];
  ASSERT_EQ(devices.size(), 1u) << shown.output;
  EXPECT_EQ(devices[0]["device"], "screen-c");
}

TEST_F(FleetServeTest, EachDeviceGetsItsOwnRepositoryAndNothingElse) {
  // The device's own files, byte for byte as its state file holds them, and
  // the fleet root it is signed under.
  auto state = tracker::ReadDeviceState(repo_ + "/fleet/devices/" + a_.device_id);
  ASSERT_TRUE(state.ok() && *state) << state.status().ToString();
  const std::string targets_name = std::to_string((*state)->targets) + ".targets.json";
  const std::string snapshot_name = std::to_string((*state)->snapshot) + ".snapshot.json";
  const std::string root = ReadTextFileBounded(repo_ + "/fleet/root.json", 1 << 20).value();
  const std::pair<std::string, std::string> expected[] = {
      {"timestamp.json", *(*state)->Find("timestamp.json")},
      {targets_name, *(*state)->Find(targets_name)},
      {snapshot_name, *(*state)->Find(snapshot_name)},
      {"1.root.json", root},
      {"root.json", root}};
  for (const auto& [name, bytes] : expected) {
    auto got = Get(DevicePath(a_, "metadata/" + name), a_.credential);
    ASSERT_EQ(got.status, 200) << name << ": " << got.raw;
    EXPECT_EQ(got.body, bytes) << name;
  }
  // A root newer than the one its roles are signed under is not offered.
  EXPECT_EQ(Get(DevicePath(a_, "metadata/2.root.json"), a_.credential).status, 404);
  auto timestamp = Get(DevicePath(a_, "metadata/timestamp.json"), a_.credential);
  EXPECT_EQ(timestamp.headers["cache-control"], "no-store");
  EXPECT_EQ(Get(DevicePath(a_, "metadata/" + targets_name), a_.credential).headers["cache-control"],
            "private, max-age=86400");

  // The fleet document, named by its hash as the targets metadata lists it.
  auto targets =
      ParseJsonStrict(Get(DevicePath(a_, "metadata/" + targets_name), a_.credential).body);
  ASSERT_TRUE(targets.ok());
  const std::string hash = (*targets)["signed"]["targets"]["device.json"]["hashes"]["sha256"];
  auto document = Get(DevicePath(a_, "targets/" + hash + ".device.json"), a_.credential);
  ASSERT_EQ(document.status, 200) << document.raw;
  EXPECT_EQ(Digest::Of(document.body).Hex(), hash);
  auto parsed = ParseJsonStrict(document.body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)["device"], a_.device_id);

  // No credential, an unknown one, another device's.
  auto anonymous = Get(DevicePath(a_, "metadata/timestamp.json"), "");
  EXPECT_EQ(anonymous.status, 401) << anonymous.raw;
  EXPECT_EQ(anonymous.headers["www-authenticate"], "Bearer");
  EXPECT_EQ(Get(DevicePath(a_, "metadata/timestamp.json"), "not-a-credential").status, 401);
  EXPECT_EQ(Get(DevicePath(a_, "metadata/timestamp.json"), b_.credential).status, 403);
  EXPECT_EQ(Get(DevicePath(a_, "targets/" + hash + ".device.json"), b_.credential).status, 403);
  EXPECT_EQ(Get(DevicePath(b_, "metadata/timestamp.json"), b_.credential).status, 200);

  // Names outside the layout's forms, even for the device itself.
  for (const std::string& rest : std::vector<std::string>{
           "metadata/..", "metadata/%2e%2e%2ftracker.db", "metadata/01.root.json",
           "metadata/timestamp.json.tmp", "metadata/x.timestamp.json", "metadata/1.device.json",
           "targets/" + hash + ".root.json", "targets/device.json", "keys/fleet-targets.key",
           "metadata", "metadata/2.targets.json/x", "metadata/targets.json",
           "metadata/snapshot.json"}) {
    auto got = Get(DevicePath(a_, rest), a_.credential);
    EXPECT_EQ(got.status, 404) << rest << ": " << got.raw;
  }
  EXPECT_EQ(Get("/fleet/devices/../metadata/timestamp.json", a_.credential).status, 403);
  EXPECT_EQ(Get("/fleet/root.json", a_.credential).status, 404);
  auto post = HttpRequestTo(tracker_.port(), "POST", DevicePath(a_, "metadata/timestamp.json"),
                            {"Authorization: Bearer " + a_.credential}, "{}");
  EXPECT_EQ(post.status, 405);
}

TEST_F(FleetServeTest, FleetRootIsServedAsTheImageRepositorysTarget) {
  auto root = ReadTextFileBounded(repo_ + "/fleet/root.json", 1 << 20);
  ASSERT_TRUE(root.ok());
  const std::string hex = Digest::Of(*root).Hex();
  auto got = Get("/targets/fleet/" + hex + ".root.json", "");
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.body, *root);
  EXPECT_EQ(Get("/targets/fleet/" + std::string(64, '0') + ".root.json", "").status, 404);
  EXPECT_EQ(Get("/targets/fleet/root.json", "").status, 404);
  EXPECT_EQ(Get("/targets/apps/" + hex + ".root.json", "").status, 404);
}

}  // namespace
}  // namespace flotilla::testing
