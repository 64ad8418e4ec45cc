#include "appspec/app_spec.h"

#include <gtest/gtest.h>

namespace flotilla::appspec {
namespace {

TEST(AppSpec, MinimalSpecGetsDocumentedDefaults) {
  auto spec = ParseAppSpecText(R"({"name":"screen","command":["/bin/app"]})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->hostname, "screen");
  EXPECT_EQ(spec->cwd, "/");
  EXPECT_EQ(spec->network, "host");
  EXPECT_EQ(spec->capabilities, DefaultCapabilities());
  EXPECT_EQ(spec->restart.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(spec->health.type, HealthType::kRunning);
  EXPECT_EQ(spec->health.recheck_interval_ms, 10000u);
  EXPECT_EQ(spec->health.failure_threshold, 3u);
  EXPECT_EQ(spec->switch_mode.mode, SwitchMode::kParallel);
  EXPECT_EQ(spec->log_ring_bytes, 256u * 1024);
}

TEST(AppSpec, RoundTripsThroughJson) {
  auto spec = ParseAppSpecText(R"({
    "name": "kiosk", "image": "registry.example/kiosk@sha256:ab", "command": ["/kiosk", "-f"],
    "env": ["A=1"], "cwd": "/srv", "hostname": "k1", "user": {"uid": 1000, "gid": 1000,
    "additional_gids": [44]}, "network": "none",
    "devices": [{"path": "/dev/fb0", "access": "rw"}],
    "mounts": [{"type": "volume", "name": "data", "destination": "/data"},
               {"type": "bind", "source": "/etc/ssl", "destination": "/etc/ssl", "read_only": true}],
    "capabilities": ["CAP_NET_BIND_SERVICE"],
    "resources": {"memory_bytes": 134217728, "pids": 64, "cpu_millis": 500},
    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}],
    "oom_score_adj": 100, "read_only_rootfs": true,
    "restart": {"policy": "always", "backoff_initial_ms": 500, "backoff_max_ms": 30000},
    "health": {"type": "http", "port": 8080, "path": "/healthz", "interval_ms": 1000,
               "recheck_interval_ms": 5000, "failure_threshold": 2},
    "switch": {"mode": "stop-first", "healthy_deadline_ms": 60000},
    "stop_grace_ms": 5000, "logs": {"ring_bytes": 65536, "persist": false}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  Json once = AppSpecToJson(*spec);
  auto again = ParseAppSpec(once);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(AppSpecToJson(*again), once);
  EXPECT_EQ(again->devices[0].path, "/dev/fb0");
  EXPECT_EQ(again->mounts[1].read_only, true);
  EXPECT_EQ(again->health.port, 8080);
  EXPECT_EQ(again->health.recheck_interval_ms, 5000u);
  EXPECT_EQ(again->health.failure_threshold, 2u);
  EXPECT_EQ(again->switch_mode.mode, SwitchMode::kStopFirst);
}

TEST(AppSpec, RefusesWhatTheRuntimeCouldNotHonourSafely) {
  const char* bad[] = {
      R"({"name":"a","command":["/x"],"colour":"red"})",  // unknown field
      R"({"name":"../a","command":["/x"]})",              // name
      R"({"name":"a","command":["x"]})",                  // relative program
      R"({"name":"a","command":[]})",                     // no command
      R"({"name":"a","command":["/x"],"mounts":[{"name":"d","destination":"/a/../etc"}]})",
      R"({"name":"a","command":["/x"],"mounts":[{"name":"d","destination":"/"}]})",
      R"({"name":"a","command":["/x"],"mounts":[{"type":"bind","source":"rel","destination":"/a"}]})",
      R"({"name":"a","command":["/x"],"devices":[{"path":"/etc/passwd"}]})",  // not under /dev
      R"({"name":"a","command":["/x"],"devices":[{"path":"/dev/fb0","access":"rwx"}]})",
      R"({"name":"a","command":["/x"],"capabilities":["CAP_FLY"]})",
      R"({"name":"a","command":["/x"],"rlimits":[{"type":"RLIMIT_NOPE","soft":1,"hard":1}]})",
      R"({"name":"a","command":["/x"],"rlimits":[{"type":"RLIMIT_NOFILE","soft":9,"hard":1}]})",
      R"({"name":"a","command":["/x"],"health":{"type":"http"}})",  // no port
      R"({"name":"a","command":["/x"],"health":{"type":"exec"}})",  // no command
      R"({"name":"a","command":["/x"],"health":{"type":"exec","command":["/x"],"failure_threshold":0}})",
      R"({"name":"a","command":["/x"],"health":{"type":"exec","command":["/x"],"recheck_interval_ms":50}})",
      R"({"name":"a","command":["/x"],"env":["NOVALUE"]})",
      R"({"name":"a","command":["/x"],"network":"bridge"})",
      R"({"name":"a","command":["/x"],"restart":{"policy":"sometimes"}})",
      R"({"name":"a","command":["/x"],"resources":{"memory_bytes":-1}})",
      R"({"name":"a","command":["/x"],"name":"b"})",  // duplicate key
  };
  for (const char* text : bad) {
    auto spec = ParseAppSpecText(text);
    EXPECT_FALSE(spec.ok()) << text;
    if (!spec.ok()) {
      EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
}

TEST(AppSpec, CleanPathsAndNames) {
  EXPECT_TRUE(IsCleanAbsolutePath("/data/x"));
  EXPECT_FALSE(IsCleanAbsolutePath("data"));
  EXPECT_FALSE(IsCleanAbsolutePath("/a//b"));
  EXPECT_FALSE(IsCleanAbsolutePath("/a/./b"));
  EXPECT_FALSE(IsCleanAbsolutePath("/a/.."));
  EXPECT_TRUE(IsValidName("web-1.2_x"));
  EXPECT_FALSE(IsValidName("-web"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName(std::string(64, 'a')));
}

}  // namespace
}  // namespace flotilla::appspec

namespace flotilla::appspec {
namespace {

AppSpec SpecWithConfig(const std::string& config) {
  auto spec =
      ParseAppSpecText(R"({"name":"kiosk","command":["/bin/app"],"config":)" + config + "}");
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : AppSpec{};
}

TEST(AppSpecConfig, DeclarationsParseWithDefaultsAndRoundTrip) {
  AppSpec spec = SpecWithConfig(
      R"([{"name":"PLAYLIST_URL","pattern":"https://[^ ]+"},{"name":"STORE_ID","env":false}])");
  ASSERT_EQ(spec.config.size(), 2u);
  EXPECT_EQ(spec.config[0].name, "PLAYLIST_URL");
  EXPECT_TRUE(spec.config[0].env && spec.config[0].file);
  EXPECT_EQ(spec.config[1].pattern, ".*");
  EXPECT_FALSE(spec.config[1].env);
  auto again = ParseAppSpec(AppSpecToJson(spec));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(AppSpecToJson(*again), AppSpecToJson(spec));
  // A spec without declarations keeps its canonical form: no config member.
  auto plain = ParseAppSpecText(R"({"name":"kiosk","command":["/bin/app"]})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(AppSpecToJson(*plain).contains("config"));
}

TEST(AppSpecConfig, BadDeclarationsAreRefusedNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([{"name":"LD_PRELOAD"}])", "reserved"},
      {R"([{"name":"PATH"}])", "reserved"},
      {R"([{"name":"FLOTILLA_X"}])", "reserved"},
      {R"([{"name":"1ABC"}])", "is not [A-Za-z_]"},
      {R"([{"name":"A-B"}])", "is not [A-Za-z_]"},
      {R"([{"name":"A","pattern":"(("}])", "POSIX extended"},
      {R"([{"name":"A","env":false,"file":false}])", "or file must be true"},
      {R"([{"name":"A"},{"name":"A"}])", "declares A twice"},
      {R"([{"name":"A","entrypoint":"/bin/sh"}])", "entrypoint"},
  };
  for (const auto& [config, why] : cases) {
    auto spec = ParseAppSpecText(R"({"name":"kiosk","command":["/bin/app"],"config":)" +
                                 std::string(config) + "}");
    ASSERT_FALSE(spec.ok()) << config;
    EXPECT_NE(spec.status().message().find(why), std::string::npos)
        << config << ": " << spec.status().ToString();
  }
}

TEST(AppSpecSecret, ASecretIsNeitherEnvNorFileAndRoundTrips) {
  AppSpec spec = SpecWithConfig(
      R"([{"name":"API_TOKEN","pattern":"[A-Za-z0-9]{32}","secret":true},{"name":"URL"}])");
  ASSERT_EQ(spec.config.size(), 2u);
  EXPECT_TRUE(spec.config[0].secret);
  EXPECT_FALSE(spec.config[0].env) << "a secret is never in the environment";
  EXPECT_FALSE(spec.config[0].file);
  EXPECT_FALSE(spec.config[1].secret);
  EXPECT_TRUE(DeclaresSecret(spec, "API_TOKEN"));
  EXPECT_FALSE(DeclaresSecret(spec, "URL"));
  const std::string canonical = AppSpecToJson(spec).dump();
  EXPECT_NE(canonical.find(R"("secret":true)"), std::string::npos);
  EXPECT_EQ(canonical.find(R"("secret":false)"), std::string::npos)
      << "a spec without secrets keeps its canonical form";
  auto again = ParseAppSpec(AppSpecToJson(spec));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(AppSpecToJson(*again), AppSpecToJson(spec));

  for (const char* config :
       {R"([{"name":"T","secret":true,"env":true}])", R"([{"name":"T","secret":true,"file":true}])",
        R"([{"name":"LD_PRELOAD","secret":true}])"}) {
    auto refused = ParseAppSpecText(R"({"name":"kiosk","command":["/bin/app"],"config":)" +
                                    std::string(config) + "}");
    EXPECT_FALSE(refused.ok()) << config;
  }
}

TEST(AppSpecSecret, ValuesAreCheckedWithoutNamingThem) {
  AppSpec spec = SpecWithConfig(
      R"([{"name":"API_TOKEN","pattern":"[A-Za-z0-9]{32}","secret":true},{"name":"URL"}])");
  const std::string good(32, 'a');
  EXPECT_TRUE(CheckSecretValue(spec, "API_TOKEN", good).ok());
  Status short_one = CheckSecretValue(spec, "API_TOKEN", "hunter2-short");
  ASSERT_FALSE(short_one.ok());
  EXPECT_EQ(short_one.message().find("hunter2"), std::string::npos) << short_one.ToString();
  EXPECT_EQ(CheckSecretValue(spec, "URL", good).message(),
            "does not declare the secret URL (its spec declares API_TOKEN)");
  EXPECT_FALSE(CheckSecretValue(spec, "API_TOKEN", std::string(4097, 'a')).ok());
  // Configuration never sets a secret's name.
  EXPECT_EQ(CheckConfigValues(spec, {{"API_TOKEN", good}}).message(),
            "API_TOKEN is a secret: flotilla-tracker secret set");
  EXPECT_EQ(CheckConfigValues(spec, {{"X", "1"}}).message(),
            "does not accept X (its spec accepts URL)");
}

TEST(AppSpecConfig, ValuesAreCheckedAgainstTheDeclarations) {
  AppSpec spec = SpecWithConfig(
      R"([{"name":"PLAYLIST_URL","pattern":"https://[^ ]+"},{"name":"ORIENTATION","pattern":"landscape|portrait"}])");
  EXPECT_TRUE(CheckConfigValues(spec, {}).ok());
  EXPECT_TRUE(CheckConfigValues(spec, {{"PLAYLIST_URL", "https://cdn.example/a.m3u"},
                                       {"ORIENTATION", "portrait"}})
                  .ok());
  auto undeclared = CheckConfigValues(spec, {{"VOLUME", "3"}});
  EXPECT_EQ(undeclared.message(),
            "does not accept VOLUME (its spec accepts PLAYLIST_URL, ORIENTATION)");
  // The whole value must match: a prefix or an alternative's part is not enough.
  EXPECT_FALSE(CheckConfigValues(spec, {{"PLAYLIST_URL", "http://cdn.example/a"}}).ok());
  EXPECT_FALSE(CheckConfigValues(spec, {{"PLAYLIST_URL", "https://a b"}}).ok());
  EXPECT_FALSE(CheckConfigValues(spec, {{"ORIENTATION", "portraits"}}).ok());
  EXPECT_FALSE(CheckConfigValues(spec, {{"ORIENTATION", "xlandscape"}}).ok());
  EXPECT_NE(CheckConfigValues(spec, {{"LD_PRELOAD", "/x.so"}}).message().find("reserved"),
            std::string::npos);
  EXPECT_NE(CheckConfigValues(spec, {{"ORIENTATION", std::string("portrait\0x", 10)}})
                .message()
                .find("NUL"),
            std::string::npos);
  AppSpec any = SpecWithConfig(R"([{"name":"A"},{"name":"B"},{"name":"C"},{"name":"D"}])");
  EXPECT_TRUE(CheckConfigValues(any, {{"A", std::string(4096, 'x')}}).ok());
  EXPECT_NE(CheckConfigValues(any, {{"A", std::string(4097, 'x')}}).message().find("longer"),
            std::string::npos);
  EXPECT_NE(CheckConfigValues(any, {{"A", std::string(4096, 'x')},
                                    {"B", std::string(4096, 'x')},
                                    {"C", std::string(4096, 'x')},
                                    {"D", std::string(4096, 'x')}})
                .message()
                .find("at most 16384"),
            std::string::npos);
  AppSpec none = SpecWithConfig("[]");
  EXPECT_EQ(CheckConfigValues(none, {{"A", "1"}}).message(),
            "does not accept A (its spec accepts no configuration)");
}

}  // namespace
}  // namespace flotilla::appspec
