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
