// cgroup drivers. v1 runs for real on this host's v1 controllers. The v2
// limit files are checked against a temporary directory laid out like
// cgroupfs (this host's v2 mount has no controllers), and the v2 device
// filter (eBPF) runs for real on the host's cgroup2 mount, which enforces
// it whether or not any controller is enabled there.
#include "runtime/cgroup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/file_io.h"

namespace flotilla::runtime {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  auto text = ReadTextFileBounded(path, 65536);
  if (!text.ok()) return "<" + text.status().ToString() + ">";
  std::string s = *text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

void Touch(const std::string& path) { std::ofstream(path).flush(); }

class FakeCgroup2Tree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("fake-cgroup2-" + std::to_string(::getpid()));
    fs::create_directories(root_ + "/flotilla-t/app_r1");
    std::ofstream(root_ + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
    // The files the kernel would create in each cgroup directory.
    for (const std::string& dir : {root_, root_ + "/flotilla-t", root_ + "/flotilla-t/app_r1"}) {
      for (const char* f : {"cgroup.subtree_control", "cgroup.procs", "memory.max",
                            "memory.swap.max", "pids.max", "cpu.max", "memory.events"}) {
        Touch(dir + "/" + f);
      }
    }
  }
  void TearDown() override { fs::remove_all(root_); }
  std::unique_ptr<CgroupDriver> Driver() {
    return MakeCgroupV2Driver({root_, CgroupVersion::kV2, "flotilla-t", false});
  }
  std::string root_;
};

TEST_F(FakeCgroup2Tree, WritesLimitsAndEnablesControllers) {
  auto placement = Driver()->Create("app_r1", {64 << 20, 32, 500}, DefaultDeviceRules());
  ASSERT_TRUE(placement.ok()) << placement.status().ToString();
  const std::string dir = root_ + "/flotilla-t/app_r1";
  EXPECT_EQ(Read(dir + "/memory.max"), "67108864");
  EXPECT_EQ(Read(dir + "/memory.swap.max"), "0");
  EXPECT_EQ(Read(dir + "/pids.max"), "32");
  EXPECT_EQ(Read(dir + "/cpu.max"), "50000 100000");
  EXPECT_EQ(Read(root_ + "/cgroup.subtree_control"), "+memory +pids +cpu");
  EXPECT_EQ(Read(root_ + "/flotilla-t/cgroup.subtree_control"), "+memory +pids +cpu");
  EXPECT_EQ(placement->procs_files, std::vector<std::string>{dir + "/cgroup.procs"});
  EXPECT_EQ(placement->oom_events_file, dir + "/memory.events");
  EXPECT_TRUE(placement->warnings.empty());
}

TEST_F(FakeCgroup2Tree, MissingControllerIsReportedAndFatalOnlyWhenAskedFor) {
  std::ofstream(root_ + "/cgroup.controllers") << "cpu memory\n";
  auto relaxed = Driver()->Create("app_r1", {64 << 20, 0, 0}, {});
  ASSERT_TRUE(relaxed.ok()) << relaxed.status().ToString();
  ASSERT_EQ(relaxed->warnings.size(), 1u);
  EXPECT_NE(relaxed->warnings[0].find("pids"), std::string::npos);
  auto strict = Driver()->Create("app_r1", {0, 16, 0}, {});
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(strict.status().message().find("pids"), std::string::npos);
}

TEST(CgroupV1, CreatesLimitsForRealAndDestroys) {
  if (!fs::exists("/sys/fs/cgroup/memory/cgroup.procs")) {
    GTEST_SKIP() << "no cgroup v1 memory controller on this host";
  }
  const std::string parent = "flotilla-unit-" + std::to_string(::getpid());
  auto driver = MakeCgroupV1Driver({"/sys/fs/cgroup", CgroupVersion::kV1, parent, true});
  auto placement = driver->Create("c1", {48 << 20, 10, 250}, DefaultDeviceRules());
  ASSERT_TRUE(placement.ok()) << placement.status().ToString();
  const std::string base = "/sys/fs/cgroup/";
  EXPECT_EQ(Read(base + "memory/" + parent + "/c1/memory.limit_in_bytes"), "50331648");
  EXPECT_EQ(Read(base + "pids/" + parent + "/c1/pids.max"), "10");
  EXPECT_EQ(Read(base + "cpu/" + parent + "/c1/cpu.cfs_quota_us"), "25000");
  std::string devices = Read(base + "devices/" + parent + "/c1/devices.list");
  EXPECT_NE(devices.find("c 1:3 rwm"), std::string::npos) << devices;
  EXPECT_EQ(devices.find("a *:* rwm"), std::string::npos) << devices;
  EXPECT_EQ(placement->procs_files.size(), 4u);
  // A second container's cgroup keeps the parent; the last one takes it along.
  ASSERT_TRUE(driver->Create("c2", {}, DefaultDeviceRules()).ok());
  ASSERT_TRUE(driver->Destroy("c1").ok());
  for (const char* ctrl : {"memory", "pids", "cpu", "devices"}) {
    EXPECT_FALSE(fs::exists(base + ctrl + "/" + parent + "/c1"));
    EXPECT_TRUE(fs::exists(base + ctrl + "/" + parent + "/c2"));
  }
  ASSERT_TRUE(driver->Destroy("c2").ok());
  for (const char* ctrl : {"memory", "pids", "cpu", "devices"}) {
    EXPECT_FALSE(fs::exists(base + ctrl + "/" + parent)) << ctrl;
  }
}

// The cgroup2 mount of this host: /sys/fs/cgroup on a v2 host, the
// "unified" mount on a hybrid one.
std::string Cgroup2Mount() {
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) return "/sys/fs/cgroup";
  if (fs::exists("/sys/fs/cgroup/unified/cgroup.procs")) return "/sys/fs/cgroup/unified";
  return "";
}

// Forks a child into `procs_file`, which opens each path and reports 1 bit per success.
int OpenFromInside(const std::string& procs_file, const std::vector<std::string>& paths) {
  pid_t child = ::fork();
  if (child == 0) {
    if (WriteControlFile(procs_file, std::to_string(::getpid())).ok() == false) ::_exit(100);
    int bits = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
      int fd = ::open(paths[i].c_str(), O_RDWR);
      if (fd >= 0) bits |= 1 << i, ::close(fd);
    }
    ::_exit(bits);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CgroupV2DeviceFilter, EbpfProgramAllowsOnlyTheListedDevices) {
  const std::string mount = Cgroup2Mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this host";
  const std::string parent = "flotilla-unit-" + std::to_string(::getpid());
  auto driver = MakeCgroupV2Driver({mount, CgroupVersion::kV2, parent, true});
  // /dev/null allowed read-write, /dev/zero read-only, /dev/full not at all.
  std::vector<DeviceRule> rules = {{'c', 1, 3, "rw"}, {'c', 1, 5, "r"}};
  auto placement = driver->Create("dev", {}, rules);
  ASSERT_TRUE(placement.ok()) << placement.status().ToString();
  int bits = OpenFromInside(placement->procs_files[0], {"/dev/null", "/dev/zero", "/dev/full"});
  EXPECT_EQ(bits, 0b001);  // zero refused for writing, full refused
  // Outside the cgroup, all three open.
  ASSERT_TRUE(driver->Destroy("dev").ok());
  ::rmdir((mount + "/" + parent).c_str());
  EXPECT_FALSE(fs::exists(mount + "/" + parent));
}

// The default rules plus grants make a program whose verifier log is longer
// than a small log buffer: loading with such a buffer failed with ENOSPC.
TEST(CgroupV2DeviceFilter, DefaultRulesWithGrantsLoad) {
  const std::string mount = Cgroup2Mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this host";
  const std::string parent = "flotilla-unit-" + std::to_string(::getpid());
  auto driver = MakeCgroupV2Driver({mount, CgroupVersion::kV2, parent, true});
  auto rules = DefaultDeviceRules();
  for (int minor = 0; minor < 8; ++minor) rules.push_back({'c', 29, minor, "rw"});
  auto placement = driver->Create("many", {}, rules);
  ASSERT_TRUE(placement.ok()) << placement.status().ToString();
  EXPECT_EQ(OpenFromInside(placement->procs_files[0], {"/dev/null", "/dev/full"}), 0b11);
  ASSERT_TRUE(driver->Destroy("many").ok());
  ::rmdir((mount + "/" + parent).c_str());
}

TEST(DeviceRules, V1SyntaxAndDefaults) {
  EXPECT_EQ(DeviceRuleToV1({'c', 136, -1, "rwm"}), "c 136:* rwm");
  EXPECT_EQ(DeviceRuleToV1({'b', -1, -1, "m"}), "b *:* m");
  auto defaults = DefaultDeviceRules();
  EXPECT_EQ(defaults.size(), 10u);
  EXPECT_GT(BuildDeviceFilter(defaults).size(), 10u * 3);
}

}  // namespace
}  // namespace flotilla::runtime
