// The node's secrets files (docs/config.md, "Secrets", "On the node"): a
// real tmpfs mounted where there is none, files of the app's user made from
// real sealed boxes, made again from secrets.json as after a reboot, and
// nothing written for a box another key sealed. Runs as root (mounts, chown).
#include "node/daemon/secret_files.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/ed25519.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::node {
namespace {

constexpr char kValue[] = "s3cret-Value-of-32-characters-xx";

class SecretFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("secret-files-");
    secrets_ = dir_ + "/run/secrets";
    key_file_ = dir_ + "/device-key";
    ASSERT_TRUE(key_.SaveFile(key_file_).ok());
  }
  void TearDown() override {
    while (::umount(secrets_.c_str()) == 0) {
    }
    std::filesystem::remove_all(dir_);
  }
  // How many mounts sit on `path`.
  static int MountsOn(const std::string& where) {
    const std::string path = std::filesystem::path(where).lexically_normal().string();
    std::ifstream mountinfo("/proc/self/mountinfo");
    int n = 0;
    for (std::string line; std::getline(mountinfo, line);) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, point;
      fields >> id >> parent >> dev >> root >> point;
      n += point == path;
    }
    return n;
  }
  SecretBoxes Boxes(const std::string& value) {
    auto box = SealToKey(key_.public_key(), value);
    EXPECT_TRUE(box.ok());
    return {{"API_TOKEN", box.value_or("")}};
  }

  std::string dir_, secrets_, key_file_;
  Ed25519PrivateKey key_ = Ed25519PrivateKey::Generate();
};

TEST_F(SecretFilesTest, ATmpfsIsMountedWhereThereIsNoneAndOnlyOnce) {
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir_.c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << dir_ << " is a tmpfs already";
  ASSERT_TRUE(EnsureSecretsTmpfs(secrets_).ok());
  ASSERT_EQ(::statfs(secrets_.c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, TMPFS_MAGIC);
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(secrets_.c_str(), &vfs), 0);
  EXPECT_TRUE(vfs.f_flag & ST_NOSUID);
  EXPECT_TRUE(vfs.f_flag & ST_NODEV);
  EXPECT_TRUE(vfs.f_flag & ST_NOEXEC);
  struct stat st {};
  ASSERT_EQ(::stat(secrets_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_TRUE(EnsureSecretsTmpfs(secrets_).ok());
  EXPECT_EQ(MountsOn(secrets_), 1) << "a second start mounts nothing more";
}

TEST_F(SecretFilesTest, FilesOfTheAppsUserMadeAgainFromTheBoxesAfterAReboot) {
  ASSERT_TRUE(EnsureSecretsTmpfs(secrets_).ok());
  const std::string files = dir_ + "/config/web/abc";
  const std::string app_dir = secrets_ + "/web/abc";
  const appspec::UserSpec owner{.uid = 1000, .gid = 1001};
  ASSERT_TRUE(SaveSealedBoxes(files, owner, Boxes(kValue)).ok());
  auto kept = ReadTextFileBounded(files + "/secrets.json", 1 << 20);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->find(kValue), std::string::npos) << "ciphertext only";
  EXPECT_NE(kept->find("\"uid\":1000"), std::string::npos) << *kept;

  // As after a reboot: made from secrets.json with the device key file.
  ASSERT_TRUE(RestoreSecrets(files, app_dir, key_file_).ok());
  struct stat st {};
  ASSERT_EQ(::stat((app_dir + "/API_TOKEN").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  ASSERT_EQ(::stat(app_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0500u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(ReadTextFileBounded(app_dir + "/API_TOKEN", 1 << 10).value_or(""), kValue);
  EXPECT_EQ(SecretValuesUnder(secrets_), std::vector<std::string>{kValue});

  // A directory already there is left alone (a container may mount it).
  ASSERT_EQ(::stat(app_dir.c_str(), &st), 0);
  const ino_t inode = st.st_ino;
  ASSERT_TRUE(RestoreSecrets(files, app_dir, key_file_).ok());
  ASSERT_EQ(::stat(app_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, inode);
  // No secrets.json: a configuration without secrets; nothing to do.
  EXPECT_TRUE(RestoreSecrets(dir_ + "/config/web/none", secrets_ + "/web/none", key_file_).ok());
  EXPECT_FALSE(std::filesystem::exists(secrets_ + "/web/none"));
}

TEST_F(SecretFilesTest, ABoxAnotherKeySealedWritesNothing) {
  ASSERT_TRUE(EnsureSecretsTmpfs(secrets_).ok());
  auto other = SealedBoxOpener::FromSeed(
      ByteSpan(reinterpret_cast<const uint8_t*>("0123456789abcdef0123456789abcdef"), 32));
  ASSERT_TRUE(other.ok());
  const std::string app_dir = secrets_ + "/web/abc";
  Status refused = MaterialiseSecrets(app_dir, {}, Boxes(kValue), *other);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("secret API_TOKEN"), std::string::npos) << refused.ToString();
  EXPECT_EQ(refused.ToString().find(kValue), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(app_dir));
  EXPECT_TRUE(SecretValuesUnder(secrets_).empty());

  // A name is a file name: never a path out of the directory.
  auto mine = SealedBoxOpener::LoadFile(key_file_);
  ASSERT_TRUE(mine.ok());
  SecretBoxes escaping = {{"../escape", Boxes(kValue).at("API_TOKEN")}};
  EXPECT_FALSE(MaterialiseSecrets(app_dir, {}, escaping, *mine).ok());
  EXPECT_FALSE(std::filesystem::exists(secrets_ + "/web/escape"));
  EXPECT_FALSE(std::filesystem::exists(app_dir));
}

}  // namespace
}  // namespace flotilla::node
