// The node's device key, end to end (docs/identity.md): a real tracker and
// real flotilla-node processes. The key is made at the first enrolment,
// 0600, and bound by the tracker; the node enrols again with it after
// losing its credentials; a second node under the same name is refused
// until an operator approves it, then binds its own key.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/ed25519.h"
#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/api/enrolment.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("node-identity-");
    repo_ = dir_ + "/repo";
    ASSERT_TRUE(InitRepository(dir_, repo_)) << RunShell("cat " + dir_ + "/init.log").output;
    ASSERT_TRUE(tracker_.Start(dir_, repo_));
  }
  void TearDown() override {
    tracker_.Stop();
    RunShell("rm -rf " + dir_);
  }

  // Runs a node named kiosk-1 on `data` until it has enrolled (true) or
  // logged a refusal of its enrolment (false), then stops it.
  bool RunUntilEnrolled(const std::string& data, std::string* log) {
    NodeProcess node;
    const std::string node_dir = data + "-run" + std::to_string(++runs_);
    std::filesystem::create_directories(node_dir);
    EXPECT_TRUE(node.Start(node_dir, NodeConfigFor("kiosk-1", data, tracker_.url(),
                                                   repo_ + "/metadata/1.root.json", "kiosk")));
    const std::string credentials = data + "/credentials.json";
    WaitFor(
        [&] {
          return std::filesystem::exists(credentials) ||
                 node.Log().find("refused") != std::string::npos;
        },
        seconds(20));
    node.Stop();
    *log = node.Log();
    return std::filesystem::exists(credentials);
  }
  std::string DeviceId(const std::string& data) {
    auto text = ReadTextFileBounded(data + "/credentials.json", 4096);
    return text.ok() ? Json::parse(*text)["device_id"].get<std::string>() : "";
  }
  // The public half of the node's key, in hex.
  std::string PublicKey(const std::string& data) {
    auto key = Ed25519PrivateKey::LoadFile(data + "/device-key");
    return key.ok() ? key->public_key().Hex() : key.status().ToString();
  }
  std::string BoundKey() {
    return QueryTrackerDb(repo_ + "/tracker.db",
                          "SELECT public_key FROM devices WHERE name = 'kiosk-1'");
  }

  std::string dir_, repo_;
  TrackerProcess tracker_;
  int runs_ = 0;
};

TEST_F(NodeIdentityTest, ANodeKeepsItsNameWithItsKeyAndAReplacementNeedsAnApproval) {
  const std::string first = dir_ + "/first", second = dir_ + "/second";
  std::string log;
  ASSERT_TRUE(RunUntilEnrolled(first, &log)) << log;
  struct stat st {};
  ASSERT_EQ(::stat((first + "/device-key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  EXPECT_EQ(BoundKey(), PublicKey(first) + "\n");
  const std::string id = DeviceId(first);

  // A second device (its own key) under the same name is refused, and says why.
  EXPECT_FALSE(RunUntilEnrolled(second, &log)) << log;
  EXPECT_NE(log.find("flotilla-tracker device approve kiosk-1"), std::string::npos) << log;
  EXPECT_EQ(BoundKey(), PublicKey(first) + "\n");

  // The first node, its credentials lost, enrols again with its key.
  std::filesystem::remove(first + "/credentials.json");
  ASSERT_TRUE(RunUntilEnrolled(first, &log)) << log;
  EXPECT_EQ(DeviceId(first), id);

  // Approved, the second node takes the name with its own key.
  auto approve = RunShell(BinaryPath("flotilla-tracker") + " device approve kiosk-1 --repository " +
                          repo_ + " 2>&1");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  ASSERT_TRUE(RunUntilEnrolled(second, &log)) << log;
  EXPECT_EQ(DeviceId(second), id);
  EXPECT_EQ(BoundKey(), PublicKey(second) + "\n");
}

// A device enrolled without a key (by 0.1.0), its node upgraded: the node
// makes its key and binds it by its credential, with no operator; from then
// on it re-enrols with that key like any keyed device.
TEST_F(NodeIdentityTest, ANodeEnrolledWithoutAKeyBindsOneByItsCredential) {
  const std::string data = dir_ + "/upgraded";
  std::filesystem::create_directories(data);
  EnrolledDevice old = EnrolDevice(tracker_.port(), "kiosk-1");  // no key, as 0.1.0 enrols
  ASSERT_FALSE(old.device_id.empty());
  ASSERT_TRUE(WriteFileAtomic(data + "/credentials.json",
                              tracker::DeviceCredentialsToJson(old).dump(), 0600)
                  .ok());
  EXPECT_EQ(BoundKey(), "\n");

  NodeProcess node;
  std::filesystem::create_directories(data + "-run");
  ASSERT_TRUE(node.Start(data + "-run", NodeConfigFor("kiosk-1", data, tracker_.url(),
                                                      repo_ + "/metadata/1.root.json", "kiosk")));
  ASSERT_TRUE(WaitFor([&] { return BoundKey() != "\n"; }, seconds(20))) << node.Log();
  EXPECT_EQ(BoundKey(), PublicKey(data) + "\n");
  ASSERT_TRUE(
      WaitFor([&] { return node.Log().find("bound to") != std::string::npos; }, seconds(10)))
      << node.Log();
  node.Stop();
  EXPECT_EQ(DeviceId(data), old.device_id) << "its credentials kept";

  // Its credentials lost, it enrols again with its key: no approval needed.
  std::filesystem::remove(data + "/credentials.json");
  std::string log;
  ASSERT_TRUE(RunUntilEnrolled(data, &log)) << log;
  EXPECT_EQ(DeviceId(data), old.device_id);
}

}  // namespace
}  // namespace flotilla::testing
