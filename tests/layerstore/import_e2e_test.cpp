// Images made by third-party tools (busybox-static -> umoci -> skopeo),
// imported by the real flotilla-node/flotilla-tracker binaries, unpacked,
// stacked with overlayfs and checked file by file; every layer's regenerated
// tar must hash to its diff_id.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <regex>

#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

const std::string kMakeImage = std::string(FLOTILLA_SOURCE_DIR) + "/tests/layerstore/make_image.sh";

class LayerStoreImportTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("lsimport");
    ASSERT_FALSE(dir_.empty());
    // tmpfs: each import's syncfs would otherwise wait on the whole machine's writes.
    ASSERT_EQ(::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=256m"), 0) << std::strerror(errno);
    auto made = RunShell("bash " + kMakeImage + " " + dir_);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    store_ = dir_ + "/store";
  }
  void TearDown() override {
    if (!merged_.empty()) ::umount2(merged_.c_str(), MNT_DETACH);
    ::umount2(dir_.c_str(), MNT_DETACH);
    std::filesystem::remove_all(dir_);
  }

  CommandResult Node(const std::string& args) {
    return RunShell(BinaryPath("flotilla-node") + " store --store " + store_ + " " + args);
  }

  // The diff_ids an import printed, bottom layer first.
  static std::vector<std::string> DiffIds(const std::string& output) {
    std::vector<std::string> ids;
    std::regex line(R"(  layer \d+ (sha256:[0-9a-f]{64}) blob)");
    for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) {
      ids.push_back((*it)[1]);
    }
    return ids;
  }

  std::string dir_, store_, merged_;
};

std::string ImagePath(const std::string& dir, const std::string& form) {
  if (form == "oci-dir") return dir + "/oci --select img";
  return dir + "/" + form + ".tar";
}

TEST_P(LayerStoreImportTest, ImportUnpackMountAndRegenerate) {
  auto import = Node("import " + ImagePath(dir_, GetParam()));
  ASSERT_EQ(import.exit_code, 0) << import.output;
  EXPECT_NE(import.output.find("progress phase=unpacking"), std::string::npos);
  EXPECT_NE(import.output.find("platform linux/amd64"), std::string::npos) << import.output;
  auto ids = DiffIds(import.output);
  ASSERT_EQ(ids.size(), 3u) << import.output;
  // Quiet: the image ID alone on stdout, nothing on stderr (the same import again).
  auto quiet = RunShell(BinaryPath("flotilla-node") + " store -q --store " + store_ + " import " +
                        ImagePath(dir_, GetParam()) + " 2>" + dir_ + "/quiet.err");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  const std::string id = import.output.substr(import.output.find("image sha256:") + 6, 71);
  EXPECT_EQ(quiet.output, id + "\n");
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/quiet.err"), 0u);

  std::string lower;
  for (const auto& id : ids) {
    auto tar = RunShell(BinaryPath("flotilla-node") + " store -q --store " + store_ + " tar " + id +
                        " | sha256sum");
    ASSERT_EQ(tar.exit_code, 0) << tar.output;
    EXPECT_EQ("sha256:" + tar.output.substr(0, 64), id) << "regenerated tar differs";
    auto path = Node("-q path " + id);
    ASSERT_EQ(path.exit_code, 0) << path.output;
    lower = path.output.substr(0, path.output.size() - 1) + (lower.empty() ? "" : ":" + lower);
  }

  merged_ = dir_ + "/merged";
  std::filesystem::create_directory(merged_);
  std::string opts = "lowerdir=" + lower;
  ASSERT_EQ(::mount("overlay", merged_.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0)
      << std::strerror(errno) << " " << opts;
  auto read = [&](const std::string& p) { return RunShell("cat " + merged_ + "/" + p).output; };
  EXPECT_EQ(read("etc/motd"), "v2\n");
  EXPECT_EQ(read("data/keep"), "keep\n");
  EXPECT_EQ(read("opq/o2"), "o2\n");
  EXPECT_FALSE(std::filesystem::exists(merged_ + "/data/old"));   // whiteout of a directory
  EXPECT_FALSE(std::filesystem::exists(merged_ + "/data/rmme"));  // whiteout of a file
  EXPECT_FALSE(std::filesystem::exists(merged_ + "/opq/o1"));
  struct stat l1, l2;
  ASSERT_EQ(::stat((merged_ + "/data/l1").c_str(), &l1), 0);
  ASSERT_EQ(::stat((merged_ + "/data/l2").c_str(), &l2), 0);
  EXPECT_EQ(l1.st_ino, l2.st_ino);
  EXPECT_EQ(l1.st_nlink, 2u);
  EXPECT_TRUE(std::filesystem::is_fifo(merged_ + "/data/fifo"));
  EXPECT_TRUE(std::filesystem::is_symlink(merged_ + "/bin/sh"));
  auto run = RunShell("chroot " + merged_ +
                      " /bin/sh -c '/bin/busybox cat /etc/motd /data/l2; /bin/busybox ls /data'");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "v2\nlinked\nfifo\nkeep\nl1\nl2\n");
  ASSERT_EQ(::umount2(merged_.c_str(), 0), 0);
  merged_.clear();

  auto verify = Node("verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_TRUE(
      std::regex_search(verify.output, std::regex("3 layers and [12] blobs intact, 0 problems")))
      << verify.output;
}

INSTANTIATE_TEST_SUITE_P(Forms, LayerStoreImportTest,
                         ::testing::Values("oci-dir", "docker", "oci"));

TEST_F(LayerStoreImportTest, MultiPlatformIndexImportsThePlatformAsked) {
  auto arm = Node("import " + dir_ + "/oci --select multi --platform linux/arm64");
  ASSERT_EQ(arm.exit_code, 0) << arm.output;
  EXPECT_NE(arm.output.find("platform linux/arm64"), std::string::npos) << arm.output;
  auto host = Node("import " + dir_ + "/oci --select multi --name multi-host");
  ASSERT_EQ(host.exit_code, 0) << host.output;
  EXPECT_NE(host.output.find("platform linux/amd64"), std::string::npos) << host.output;
  auto none = Node("import " + dir_ + "/oci --select multi --platform linux/arm/v7");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.output.find("no image for platform linux/arm/v7"), std::string::npos)
      << none.output;
  auto ls = Node("ls");
  EXPECT_NE(ls.output.find("linux/arm64"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("multi-host"), std::string::npos) << ls.output;
  // Both share every layer: three layers in the store, not six.
  auto layers = Node("layers");
  EXPECT_EQ(std::count(layers.output.begin(), layers.output.end(), '\n'), 4) << layers.output;
}

TEST_F(LayerStoreImportTest, TrackerImportsListsAndRemoves) {
  const std::string tracker = BinaryPath("flotilla-tracker") + " image --store " + store_;
  auto import = RunShell(tracker + " import " + dir_ + "/docker.tar");
  ASSERT_EQ(import.exit_code, 0) << import.output;
  const std::string id = import.output.substr(import.output.find("image sha256:") + 6, 71);
  auto quiet = RunShell(BinaryPath("flotilla-tracker") + " image -q --store " + store_ +
                        " import " + dir_ + "/docker.tar 2>&1");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output, id + "\n") << "quiet: the image ID alone";
  auto ls = RunShell(tracker + " ls");
  EXPECT_NE(ls.output.find("test/img:1"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("docker-archive"), std::string::npos) << ls.output;
  auto rm = RunShell(tracker + " rm test/img:1");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
  EXPECT_NE(rm.output.find("freed 3 layers and 1 blobs"), std::string::npos) << rm.output;
  EXPECT_TRUE(std::filesystem::is_empty(store_ + "/layers"));
}

// The documented way from a root filesystem directory to a release
// (scripts/image-from-dir.sh): the image publish takes, of this machine's
// platform or the one asked, its tree as given but /dev's nodes.
TEST_F(LayerStoreImportTest, AnImageFromADirectoryIsPublished) {
  const std::string rootfs = dir_ + "/rootfs";
  auto made = RunShell("mkdir -p " + rootfs + "/bin " + rootfs + "/dev && cp /usr/bin/busybox " +
                       rootfs + "/bin/ && ln -s busybox " + rootfs + "/bin/sh && echo kiosk > " +
                       rootfs + "/motd && mknod " + rootfs + "/dev/null c 1 3 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string script = std::string(FLOTILLA_SOURCE_DIR) + "/scripts/image-from-dir.sh ";
  auto built = RunShell(script + rootfs + " " + dir_ + "/kiosk.tar 2>&1");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  built = RunShell(script + rootfs + " " + dir_ + "/kiosk-arm64.tar arm64 2>&1");
  ASSERT_EQ(built.exit_code, 0) << built.output;

  const std::string tracker = BinaryPath("flotilla-tracker");
  const std::string repo = dir_ + "/repo";
  auto init = RunShell(tracker + " init " + repo + " --public-url http://127.0.0.1:9 2>&1");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_EQ(
      RunShell("echo '{\"name\": \"kiosk\", \"command\": [\"/bin/sh\"]}' > " + dir_ + "/kiosk.json")
          .exit_code,
      0);
  auto publish = [&](const std::string& image) {
    return RunShell(tracker + " publish --repository " + repo + " --app kiosk --spec " + dir_ +
                    "/kiosk.json --json " + image + " 2>/dev/null");
  };
  auto host = publish(dir_ + "/kiosk.tar");
  ASSERT_EQ(host.exit_code, 0) << host.output;
  const std::string uname = RunShell("uname -m").output;
  EXPECT_NE(host.output.find(uname == "aarch64\n" ? "\"platform\":\"linux/arm64\""
                                                  : "\"platform\":\"linux/amd64\""),
            std::string::npos)
      << host.output;
  auto arm = publish("--platform linux/arm64 " + dir_ + "/kiosk-arm64.tar");
  ASSERT_EQ(arm.exit_code, 0) << arm.output;
  EXPECT_NE(arm.output.find("\"platform\":\"linux/arm64\""), std::string::npos) << arm.output;

  // The layer holds the tree, /dev empty.
  auto import = Node("-q import " + dir_ + "/kiosk.tar");
  ASSERT_EQ(import.exit_code, 0) << import.output;
  auto layers = Node("layers");
  ASSERT_EQ(layers.exit_code, 0) << layers.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(layers.output, m, std::regex("sha256:[0-9a-f]{64}")))
      << layers.output;
  auto path = Node("-q path " + m.str());
  ASSERT_EQ(path.exit_code, 0) << path.output;
  const std::string tree = path.output.substr(0, path.output.size() - 1);
  EXPECT_EQ(RunShell("cat " + tree + "/motd").output, "kiosk\n");
  EXPECT_TRUE(std::filesystem::is_symlink(tree + "/bin/sh"));
  EXPECT_TRUE(std::filesystem::is_directory(tree + "/dev"));
  EXPECT_TRUE(std::filesystem::is_empty(tree + "/dev")) << "the runtime provides /dev's nodes";
}

// A file's content streams to the tree: unpack memory does not grow with the
// largest file (it once buffered a whole file: 277 MB of RSS for a 200 MB file).
TEST(LayerStoreUnpackMemoryTest, A96MiBFileUnpacksInBoundedMemory) {
  std::string dir = MakeTempDir("unpack-mem");
  auto made = RunShell("mkdir -p " + dir + "/d && head -c 96M /dev/urandom > " + dir +
                       "/d/big.bin && tar -cf " + dir + "/layer.tar -C " + dir + "/d big.bin");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::string tar = dir + "/layer.tar";
  auto digest = RunShell("sha256sum " + tar + " | cut -d' ' -f1 | tr -d '\\n'");
  uint64_t length = std::filesystem::file_size(tar);
  auto r = RunShell("/usr/bin/time -f 'maxrss_kb=%M' " + BinaryPath("flotilla-node") +
                    " store --store " + dir + "/store -q unpack --diff-id sha256:" + digest.output +
                    " --length " + std::to_string(length) + " " + tar);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("maxrss_kb=([0-9]+)"))) << r.output;
  EXPECT_LT(std::stol(m[1]), 48 * 1024) << "peak RSS of the unpack, KB";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
