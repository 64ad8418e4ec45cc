#include "runtime/app_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::runtime {
namespace {

appspec::AppSpec Spec() {
  auto spec = appspec::ParseAppSpecText(
      R"({"name":"kiosk","command":["/bin/app"],"env":["MODE=spec","KEEP=1"],
          "config":[{"name":"MODE"},{"name":"URL","env":false},{"name":"ID","file":false}]})");
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return *spec;
}

TEST(AppConfigTest, EnvFilesAndMountFollowTheDeclarations) {
  const std::string dir = flotilla::testing::MakeTempDir("app-config-");
  const std::string files = dir + "/config/kiosk/x";
  auto applied = ApplyConfig(Spec(), {{"MODE", "it's"}, {"URL", "https://a"}, {"ID", "7"}}, files);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  // MODE replaces the spec's entry; URL is file-only; ID env-only.
  EXPECT_EQ(applied->env, (std::vector<std::string>{"KEEP=1", "ID=7", "MODE=it's"}));
  ASSERT_EQ(applied->mounts.size(), 1u);
  EXPECT_EQ(applied->mounts[0].type, "bind");
  EXPECT_EQ(applied->mounts[0].source,
            std::filesystem::absolute(files).lexically_normal().string());
  EXPECT_EQ(applied->mounts[0].destination, "/run/flotilla/config");
  EXPECT_TRUE(applied->mounts[0].read_only);
  EXPECT_EQ(ReadTextFileBounded(files + "/config.json", 4096).value_or(""),
            "{\"MODE\":\"it's\",\"URL\":\"https://a\"}\n");
  EXPECT_EQ(ReadTextFileBounded(files + "/config.env", 4096).value_or(""),
            "MODE='it'\\''s'\nURL='https://a'\n");
  struct stat st {};
  ASSERT_EQ(::stat((files + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  ASSERT_EQ(::stat(files.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  // The spec with its mount parses again (the runtime stores it as JSON).
  auto reparsed = appspec::ParseAppSpec(appspec::AppSpecToJson(*applied));
  EXPECT_TRUE(reparsed.ok()) << reparsed.status().ToString();
  // Written again (a second switch to the same configuration): no error.
  EXPECT_TRUE(ApplyConfig(Spec(), {{"MODE", "b"}}, files).ok());
  std::filesystem::permissions(files, std::filesystem::perms::owner_all);
  std::filesystem::remove_all(dir);
}

TEST(AppConfigTest, NoValuesChangeNothingAndBadValuesAreRefused) {
  auto same = ApplyConfig(Spec(), {}, "/nonexistent/never-written");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(appspec::AppSpecToJson(*same), appspec::AppSpecToJson(Spec()));
  EXPECT_EQ(ConfigId({}), "");
  EXPECT_EQ(ConfigId({{"A", "1"}}).size(), 12u);
  EXPECT_NE(ConfigId({{"A", "1"}}), ConfigId({{"A", "2"}}));
  // Secrets count by their sealed boxes; values alone keep their old id.
  EXPECT_EQ(ConfigId({{"A", "1"}}, {}), ConfigId({{"A", "1"}}));
  EXPECT_EQ(ConfigId({}, {{"S", "box1"}}).size(), 12u);
  EXPECT_NE(ConfigId({{"A", "1"}}, {{"S", "box1"}}), ConfigId({{"A", "1"}}));
  EXPECT_NE(ConfigId({{"A", "1"}}, {{"S", "box1"}}), ConfigId({{"A", "1"}}, {{"S", "box2"}}));
  auto refused = ApplyConfig(Spec(), {{"LD_PRELOAD", "/x.so"}}, "/nonexistent/never-written");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("reserved"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists("/nonexistent/never-written"));
}

}  // namespace
}  // namespace flotilla::runtime
