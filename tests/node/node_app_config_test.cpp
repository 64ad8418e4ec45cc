// Per-device configuration end to end (docs/config.md): the real tracker
// (publish, fleet init, config set, fleet publish, serve) and real
// flotilla-node daemons deploying into their built-in runtimes on loopback.
// A change of configuration reaches two devices without any artifact
// served, each with the value of its most specific level, in the app's
// environment and in /run/flotilla/config; a configuration the app exits
// with is rolled back on the device to the one before, which runs on, and
// the device reports it; a variable the spec does not accept is refused by
// `config set`, and by the node when a document signed with the tracker's
// own fleet keys carries it.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "tests/node/fleet_node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_util.h"
#include "tracker/fleet/fleet_repository.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

constexpr char kApp[] = "web";

class NodeAppConfigTest : public FleetNodeTest {
 protected:
  NodeAppConfigTest() : FleetNodeTest("appconfig", kApp) {}
  void SetUp() override {
    FleetNodeTest::SetUp();
    // Prints what it sees, then runs; with MODE=crash it exits at once.
    const std::string command =
        "echo \"seen URL=$PLAYLIST_URL MODE=$MODE\"; "
        "echo \"file $(cat /run/flotilla/config/config.json 2>&1)\"; "
        "[ \"$MODE\" = crash ] && exit 3; exec sleep 1000";
    Json spec = {{"name", kApp},
                 {"command", {"/bin/sh", "-c", command}},
                 {"health", {{"type", "running"}, {"seconds", 1}}},
                 {"restart", {{"policy", "always"}}},
                 {"switch", {{"healthy_deadline_ms", 8000}}},
                 {"config",
                  {{{"name", "PLAYLIST_URL"}, {"pattern", "https://[^ ]+"}},
                   {{"name", "MODE"}, {"pattern", "[a-z]+"}, {"file", false}}}}};
    ASSERT_TRUE(PublishImage(dir_, repo_, kApp, 64, name_, "1", spec))
        << Text(dir_ + "/publish.log");
    StartTrackerWithFleet();
    Fleet("group create all --select all");
    Fleet("app assign web --group all");
  }
  void TearDown() override {
    if (second_started_) {
      second_.Stop();
      RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + SecondData() +
               "/runtime web >/dev/null 2>&1");
    }
    FleetNodeTest::TearDown();
  }
  std::string SecondData() const { return dir_ + "/node2/data"; }
  void StartSecond(const std::string& name, const std::string& site) {
    std::filesystem::create_directories(dir_ + "/node2");
    Json config =
        NodeConfigFor(name, SecondData(), tracker_.url(), repo_ + "/metadata/1.root.json", kApp);
    config["deploy"] = true;
    config["site"] = site;
    config["max_backoff_s"] = 2;
    second_started_ = true;
    ASSERT_TRUE(second_.Start(dir_ + "/node2", config));
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(SecondData() + "/credentials.json"); },
                        seconds(30)))
        << second_.Log();
  }
  void StartFirst(const std::string& name, const std::string& site) {
    Json config = NodeConfig(name);
    config["site"] = site;
    config["max_backoff_s"] = 2;
    StartNode(config);
  }
  static std::string ConfigIdOf(const std::string& data) {
    Json a = AppState(data, kApp);
    return a.is_object() ? a.value("config_id", std::string()) : "";
  }
  static std::string Logs(const std::string& data) {
    return RunShell(BinaryPath("flotilla-node") + " app logs web --state-dir " + data +
                    "/runtime 2>&1")
        .output;
  }
  // flotilla-tracker ARGS --repository <repo>, whatever its exit status.
  CommandResult TrackerCommand(const std::string& args) {
    return RunShell(BinaryPath("flotilla-tracker") + " " + args + " --repository " + repo_ +
                    " 2>&1");
  }
  // Every artifact byte the tracker has served.
  uint64_t ArtifactBytes() {
    auto r = RunShell("curl -sf http://127.0.0.1:" + std::to_string(tracker_.port()) +
                      "/metrics | awk '/^flotilla_artifact_bytes_served_total/ {s += $2} "
                      "END {printf \"%d\", s}'");
    return std::strtoull(r.output.c_str(), nullptr, 10);
  }
  // The runtime's current release id of the app in `data`.
  static std::string Current(const std::string& data) {
    auto ls = RunShell(BinaryPath("flotilla-node") + " app ls --json --state-dir " + data +
                       "/runtime 2>&1");
    auto apps = ParseJsonStrict(ls.output);
    if (!apps.ok() || apps->empty()) return "";
    return (*apps)[0].value("current", std::string()) + " " +
           (*apps)[0].value("state", std::string());
  }

  NodeProcess second_;
  bool second_started_ = false;
};

TEST_F(NodeAppConfigTest, AChangeReachesTwoDevicesWithoutArtifactsMostSpecificLevelFirst) {
  StartFirst("screen-1", "shop-1");
  StartSecond("screen-2", "shop-1");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Running() == 1 && AppState(SecondData(), kApp).value("running_release", 0) == 1;
      },
      seconds(90)))
      << node_.Log() << second_.Log();
  EXPECT_EQ(ConfigIdOf(data_), "");
  const uint64_t served = ArtifactBytes();
  EXPECT_GT(served, 0u);

  // Every level; only the last change signs (screen-1's), fleet publish the rest.
  Fleet("config set --fleet MODE=fleet --no-publish");
  Fleet("config set --app web --site shop-1 MODE=site --no-publish");
  Fleet("config set --app web --group all MODE=group --no-publish");
  Fleet("config set --app web PLAYLIST_URL=https://cdn.example/a.m3u --no-publish");
  const std::string set = Fleet("config set --app web --device screen-1 MODE=device --json");
  EXPECT_EQ(Json::parse(set)["devices"], 1) << set;
  EXPECT_EQ(Json::parse(set)["resigned"], 1) << set;
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Logs(data_).find("seen URL=https://cdn.example/a.m3u MODE=device") !=
                   std::string::npos &&
               Logs(SecondData()).find("seen URL=https://cdn.example/a.m3u MODE=group") !=
                   std::string::npos;
      },
      seconds(90)))
      << Logs(data_) << Logs(SecondData()) << node_.Log();
  // The file holds what is declared `file` (MODE is env only).
  EXPECT_NE(Logs(data_).find(R"(file {"PLAYLIST_URL":"https://cdn.example/a.m3u"})"),
            std::string::npos)
      << Logs(data_);
  ASSERT_TRUE(
      WaitFor([&] { return !ConfigIdOf(data_).empty() && !ConfigIdOf(SecondData()).empty(); },
              seconds(30)));
  EXPECT_NE(ConfigIdOf(data_), ConfigIdOf(SecondData()));
  EXPECT_EQ(Running(), 1u);
  EXPECT_EQ(Current(data_), "r1-c" + ConfigIdOf(data_) + " running");
  EXPECT_EQ(AppState(data_, kApp)["target_release"], 0);
  EXPECT_EQ(ArtifactBytes(), served) << "a change of configuration fetches no artifact";
  EXPECT_NE(node_.Log().find("app web: configuration " + ConfigIdOf(data_) +
                             " of release 1 (health-gated switch from none)"),
            std::string::npos)
      << node_.Log();

  // Where each value comes from.
  Json shown = Json::parse(Fleet("config show --device screen-1 --json"));
  ASSERT_EQ(shown["apps"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["apps"][0]["release"], 1);
  Json values = shown["apps"][0]["config"];
  ASSERT_EQ(values.size(), 2u) << shown.dump();
  EXPECT_EQ(values[0]["name"], "MODE");
  EXPECT_EQ(values[0]["level"], "device");
  EXPECT_EQ(values[0]["scope"], "screen-1");
  EXPECT_EQ(values[1]["name"], "PLAYLIST_URL");
  EXPECT_EQ(values[1]["level"], "app");
  Json second = Json::parse(Fleet("config show --device screen-2 --json"));
  EXPECT_EQ(second["apps"][0]["config"][0]["level"], "group") << second.dump();

  // The device value removed: the group's comes back on screen-1, without an artifact.
  Fleet("config unset --app web --device screen-1 MODE");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Logs(data_).find("seen URL=https://cdn.example/a.m3u MODE=group") !=
               std::string::npos;
      },
      seconds(60)))
      << Logs(data_) << node_.Log();
  ASSERT_TRUE(WaitFor([&] { return ConfigIdOf(data_) == ConfigIdOf(SecondData()); }, seconds(30)));
  EXPECT_EQ(ArtifactBytes(), served);
}

TEST_F(NodeAppConfigTest, AConfigurationTheAppFailsWithIsRolledBackAndReported) {
  Fleet("config set --app web MODE=good PLAYLIST_URL=https://cdn.example/good.m3u");
  StartFirst("screen-1", "shop-1");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Running() == 1 && !ConfigIdOf(data_).empty(); }, seconds(90)))
      << node_.Log();
  const std::string good = ConfigIdOf(data_);
  ASSERT_TRUE(
      WaitFor([&] { return Logs(data_).find("MODE=good") != std::string::npos; }, seconds(30)));

  // The app exits with MODE=crash: the switch rolls back to the good one.
  Fleet("config set --app web MODE=crash");
  ASSERT_TRUE(WaitFor(
      [&] { return !AppState(data_, kApp).value("failed_config_id", std::string()).empty(); },
      seconds(90)))
      << AppState(data_, kApp).dump() << node_.Log();
  Json a = AppState(data_, kApp);
  EXPECT_EQ(a["config_id"], good) << a.dump();
  EXPECT_NE(a["failed_config_id"], good);
  EXPECT_EQ(a["running_release"], 1);
  EXPECT_EQ(a["failed_release"], 0) << "the release did not fail";
  EXPECT_EQ(a["failure"], "health");
  EXPECT_NE(a["last_error"].get<std::string>().find("not applied: rolled back"), std::string::npos)
      << a.dump();
  EXPECT_EQ(Current(data_), "r1-c" + good + " running");
  EXPECT_NE(node_.Log().find("app web configuration " + a["failed_config_id"].get<std::string>() +
                             " not applied"),
            std::string::npos)
      << node_.Log();
  // Reported: rolled back, the kind health, the message in the failures.
  ASSERT_TRUE(WaitFor(
      [&] {
        return QueryTrackerDb(repo_ + "/tracker.db",
                              "SELECT state || ' ' || failure FROM device_status") ==
               "rolled_back health\n";
      },
      seconds(30)))
      << QueryTrackerDb(repo_ + "/tracker.db", "SELECT * FROM device_status");
  EXPECT_NE(QueryTrackerDb(repo_ + "/tracker.db", "SELECT message FROM failures")
                .find("not applied: rolled back"),
            std::string::npos);
  // Not tried again at the next polls; a fixed configuration is.
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(ConfigIdOf(data_), good);
  Fleet("config set --app web MODE=fixed");
  ASSERT_TRUE(
      WaitFor([&] { return Logs(data_).find("MODE=fixed") != std::string::npos; }, seconds(60)))
      << node_.Log();
  ASSERT_TRUE(WaitFor(
      [&] { return AppState(data_, kApp).value("failed_config_id", std::string()).empty(); },
      seconds(30)));
}

TEST_F(NodeAppConfigTest, AVariableTheSpecDoesNotAcceptIsRefusedAtTheTrackerAndTheNode) {
  StartFirst("screen-1", "shop-1");
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Running() == 1; }, seconds(90))) << node_.Log();

  const std::pair<std::string, std::string> refused[] = {
      {"--app web VOLUME=3", "does not accept VOLUME (its spec accepts PLAYLIST_URL, MODE)"},
      {"--app web LD_PRELOAD=/tmp/x.so", "LD_PRELOAD is reserved"},
      {"--app web --device screen-1 PLAYLIST_URL=http://plain.example/", "does not match"},
      {"--fleet --app web A=1", "--fleet sets a value for every app"},
  };
  for (const auto& [args, why] : refused) {
    auto run = TrackerCommand("config set " + args);
    EXPECT_EQ(run.exit_code, 2) << args << "\n" << run.output;
    EXPECT_NE(run.output.find(why), std::string::npos) << args << "\n" << run.output;
  }
  auto vol = TrackerCommand("config set --app web VOLUME=3");
  EXPECT_NE(vol.output.find("device screen-1: web release 1: "), std::string::npos) << vol.output;
  EXPECT_EQ(QueryTrackerDb(repo_ + "/tracker.db", "SELECT count(*) FROM config_values"), "0\n");

  // A document carrying VOLUME, signed with the tracker's fleet keys by hand
  // (a database the thief wrote to, or a tracker bug): the node refuses it.
  const std::string id = Json::parse(Text(data_ + "/credentials.json"))["device_id"];
  Json targets = Json::parse(Text(repo_ + "/metadata/targets.json"));
  const std::string name = "apps/web/release-1.json";
  Json target = targets["signed"]["targets"][name];
  Json doc = {{"device", id},
              {"format", 1},
              {"apps",
               {{kApp,
                 {{"release", 1},
                  {"target", name},
                  {"length", target["length"]},
                  {"hashes", target["hashes"]},
                  {"config", {{"VOLUME", "3"}}}}}}}};
  auto signer =
      tracker::FleetSigner::Open(tracker::RepositoryLayout{repo_}, SystemClock::Instance());
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  ASSERT_TRUE((*signer)->Publish(id, *CanonicalJson(doc)).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return node_.Log().find("configuration refused: its signed spec does not accept VOLUME") !=
               std::string::npos;
      },
      seconds(30)))
      << node_.Log();
  std::this_thread::sleep_for(seconds(2));
  EXPECT_EQ(ConfigIdOf(data_), "");
  EXPECT_EQ(Current(data_), "r1 running");
  EXPECT_EQ(Logs(data_).find("VOLUME"), std::string::npos);
}

// A device replaced (docs/identity.md: `device approve`, then a new node
// enrolling under the name with its own key) keeps its id, so the new node
// takes over what the old one was given: its device-level configuration
// and the app its group assigns.
TEST_F(NodeAppConfigTest, AReplacementTakesOverTheDevicesConfiguration) {
  StartFirst("screen-1", "shop-1");
  Fleet("config set --app web --device screen-1 MODE=mine");
  Fleet("fleet publish");
  ASSERT_TRUE(
      WaitFor([&] { return Logs(data_).find("MODE=mine") != std::string::npos; }, seconds(90)))
      << Logs(data_) << node_.Log();
  const std::string id = Json::parse(Text(data_ + "/credentials.json"))["device_id"];
  node_.Stop();
  RunShell(BinaryPath("flotilla-node") + " app stop --state-dir " + data_ +
           "/runtime web >/dev/null 2>&1");

  auto approve = TrackerCommand("device approve screen-1");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  StartSecond("screen-1", "shop-1");
  EXPECT_EQ(Json::parse(Text(SecondData() + "/credentials.json"))["device_id"], id);
  ASSERT_TRUE(WaitFor([&] { return Logs(SecondData()).find("MODE=mine") != std::string::npos; },
                      seconds(90)))
      << Logs(SecondData()) << second_.Log();
  EXPECT_TRUE(WaitFor([&] { return AppState(SecondData(), kApp).value("running_release", 0) == 1; },
                      seconds(30)))
      << second_.Log();
}

// The wire cost of a configuration change (docs/config.md, "Wire cost"):
// every frame to and from the tracker's TLS port while a device-level
// change of one variable reaches an idle node over connections already
// established (no polling: the held notice request wakes it and carries the
// fleet files; no periodic report), counted by a packet socket: Ethernet,
// IP and TCP headers, TLS records and payload. The breakdown per exchange
// is printed (docs/bench/config-wire.md); the total must stay within 2 KB.
TEST_F(NodeAppConfigTest, WireCostOfAChangeToOneDevice) {
  // The tracker again, over TLS with a certificate the node is told to trust.
  auto gen = RunShell(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      dir_ + "/tls-key.pem -out " + dir_ + "/tls-cert.pem 2>&1");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  tracker_.Stop();
  ASSERT_TRUE(tracker_.Start(
      dir_, repo_, {"--tls-cert", dir_ + "/tls-cert.pem", "--tls-key", dir_ + "/tls-key.pem"}))
      << tracker_.Log();
  const std::string url = "https://127.0.0.1:" + std::to_string(tracker_.port());

  Fleet("config set --app web MODE=before");
  Json config = NodeConfigFor("screen-1", data_, url, repo_ + "/metadata/1.root.json", kApp);
  config["deploy"] = true;
  config["tls_ca_file"] = dir_ + "/tls-cert.pem";
  config["refresh_interval_s"] = 300;
  config["report_interval_s"] = 300;
  StartNode(config);
  Fleet("fleet publish");
  ASSERT_TRUE(WaitFor([&] { return Running() == 1 && !ConfigIdOf(data_).empty(); }, seconds(90)))
      << node_.Log();
  std::this_thread::sleep_for(seconds(3));  // the reports after the switch, a held notice

  const std::string out = dir_ + "/wire.json";
  ChildProcess counter;
  ASSERT_TRUE(counter.Start({std::string(FLOTILLA_SOURCE_DIR) + "/tests/node/count_port_bytes.py",
                             std::to_string(tracker_.port()), "30"},
                            out));
  ASSERT_TRUE(WaitFor([&] { return Text(out).find("ready") != std::string::npos; }, seconds(10)));
  const std::string before = ConfigIdOf(data_);
  Fleet("config set --app web --device screen-1 MODE=after");
  ASSERT_TRUE(
      WaitFor([&] { return Logs(data_).find("MODE=after") != std::string::npos; }, seconds(10)))
      << node_.Log();
  ASSERT_TRUE(WaitFor([&] { return ConfigIdOf(data_) != before; }, seconds(10)));
  std::this_thread::sleep_for(seconds(2));  // the report the switch makes due
  ASSERT_EQ(counter.Stop(seconds(5)), 0) << Text(out);
  const std::string text = Text(out);
  Json counts = Json::parse(text.substr(text.find('{')));
  const uint64_t bytes =
      counts["up"]["bytes"].get<uint64_t>() + counts["down"]["bytes"].get<uint64_t>();
  std::printf("config change, one device, TLS: %llu frame bytes up + down\n",
              static_cast<unsigned long long>(bytes));
  for (const Json& exchange : counts["exchanges"]) {
    std::printf("  connection %d %-16s up %5llu down %5llu\n", exchange["connection"].get<int>(),
                exchange["request"].get<std::string>().c_str(),
                static_cast<unsigned long long>(exchange["up"].get<uint64_t>()),
                static_cast<unsigned long long>(exchange["down"].get<uint64_t>()));
  }
  std::printf("%s\n", counts.dump().c_str());
  EXPECT_GT(counts["down"]["payload"].get<uint64_t>(), 400u) << "the document came";
  EXPECT_LE(bytes, 2048u) << counts.dump();
}

}  // namespace
}  // namespace flotilla::testing
