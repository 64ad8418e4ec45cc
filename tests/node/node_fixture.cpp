#include "tests/node/node_fixture.h"

#include <sched.h>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
bool NodeProcess::Start(const std::string& dir, const Json& config) {
  dir_ = dir;
  const std::string path = dir + "/node.json";
  if (!WriteFileAtomic(path, config.dump(2)).ok()) return false;
  return process_.Start({BinaryPath("flotilla-node"), "run", "--config", path}, dir + "/node.log");
}

std::string NodeProcess::Log() const {
  auto text = ReadTextFileBounded(dir_ + "/node.log", 16 << 20);
  return text.ok() ? *text : "";
}

Json AppState(const std::string& data_dir, const std::string& app) {
  auto text = ReadTextFileBounded(data_dir + "/state.json", 1 << 20);
  if (!text.ok()) return nullptr;
  auto json = Json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.contains("apps") || !json["apps"].contains(app)) return nullptr;
  return json["apps"][app];
}

std::string QueryTrackerDb(const std::string& db, const std::string& sql) {
  auto r = RunShell(
      "python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
      "[print(*row, sep=\"|\") for row in c.execute(sys.argv[2])]' '" +
      db + "' \"" + sql + "\" 2>&1");
  return r.output;
}

uint64_t ArtifactBytesServed(int port, const std::string& sha256) {
  auto r = RunShell("curl -sf http://127.0.0.1:" + std::to_string(port) +
                    "/metrics | grep 'flotilla_artifact_bytes_served_total{artifact=\"" + sha256 +
                    "\"}' | awk '{print $2}'");
  return std::strtoull(r.output.c_str(), nullptr, 10);
}

bool InitRepository(const std::string& dir, const std::string& repo) {
  auto r = RunShell(BinaryPath("flotilla-tracker") + " init " + repo +
                    " --public-url http://127.0.0.1:1 > " + dir + "/init.log 2>&1");
  return r.exit_code == 0;
}

namespace {
// flotilla-tracker ARGS, its output appended to <dir>/offline.log; true on success.
bool Tracker(const std::string& dir, const std::string& args) {
  return RunShell(BinaryPath("flotilla-tracker") + " " + args + " >> " + dir + "/offline.log 2>&1")
             .exit_code == 0;
}
}  // namespace

bool InitOfflineRepository(const std::string& dir, const std::string& repo, const std::string& app,
                           bool ecdsa) {
  const std::string key = dir + "/" + app;
  const std::string algorithm =
      ecdsa ? "EC -pkeyopt ec_paramgen_curve:P-256" : std::string("ed25519");
  return Tracker(dir, "init " + repo + " --public-url http://127.0.0.1:1 --offline-keys " + dir +
                          "/off") &&
         RunShell("openssl genpkey -algorithm " + algorithm + " -out " + key +
                  ".pem && openssl pkey -in " + key + ".pem -pubout -out " + key + ".pub")
                 .exit_code == 0 &&
         Tracker(dir, "stage-app --repository " + repo + " --app " + app + " --key-pub " + key +
                          ".pub") &&
         Tracker(dir,
                 "sign " + repo + "/pending/2.targets.json --key " + dir + "/off/targets.key") &&
         Tracker(dir, "accept --repository " + repo + " " + repo + "/pending/2.targets.json");
}

bool SignRelease(const std::string& dir, const std::string& repo, const std::string& app,
                 int release) {
  const std::string pending =
      "'" + repo + "/pending/" + std::to_string(release) + ".apps%2F" + app + ".json'";
  return Tracker(dir, "sign " + pending + " --key " + dir + "/" + app + ".pem") &&
         Tracker(dir, "accept --repository " + repo + " " + pending);
}

bool PublishImage(const std::string& dir, const std::string& repo, const std::string& app,
                  int random_kib, const std::string& seed, const std::string& variant,
                  const Json& app_spec, const std::string& architecture,
                  const std::string& extra_args) {
  const std::string image = dir + "/image-" + seed + "-" + variant + architecture + ".tar";
  const std::string spec = dir + "/" + app + ".json";
  const Json sleeper = {{"name", app}, {"command", {"/bin/sh", "-c", "sleep 1000"}}};
  if (!WriteFileAtomic(spec, (app_spec.is_null() ? sleeper : app_spec).dump()).ok()) return false;
  auto made = RunShell(
      "python3 " + std::string(FLOTILLA_SOURCE_DIR) + "/tests/node/make_node_image.py " + image +
      " " + std::to_string(random_kib) + " " + seed + " " + variant + " " + architecture + " 2>&1");
  if (made.exit_code != 0) return false;
  const std::string platform = architecture.empty() ? "" : " --platform linux/" + architecture;
  auto r =
      RunShell(BinaryPath("flotilla-tracker") + " publish --repository " + repo + " --app " + app +
               " --spec " + spec + platform + (extra_args.empty() ? "" : " " + extra_args) + " " +
               image + " >> " + dir + "/publish.log 2>&1");
  return r.exit_code == 0;
}

Json NodeConfigFor(const std::string& name, const std::string& data_dir,
                   const std::string& tracker_url, const std::string& root,
                   const std::string& app) {
  return Json{{"tracker_url", tracker_url},
              {"enrolment_token", "fleet-token-for-tests-0123456789"},
              {"device_name", name},
              {"data_dir", data_dir},
              {"root_of_trust", root},
              {"apps", {app}},
              {"transfer_mode", "http-only"},
              {"refresh_interval_s", 1},
              {"report_interval_s", 1},
              {"log_level", "debug"},
              {"deploy", false},
              {"lan", {{"enabled", false}}}};
}

std::optional<CommandResult> EnterNetnsWithLoopbackMulticast() {
  if (::unshare(CLONE_NEWNET) != 0) return std::nullopt;
  return RunShell(
      "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo 2>&1");
}

uint64_t FullArtifactBytes(const std::string& repo, const std::string& app, uint64_t release) {
  auto text = ReadTextFileBounded(repo + "/metadata/targets.json", 16 << 20);
  if (!text.ok()) return 0;
  Json targets = Json::parse(*text, nullptr, false);
  const std::string name = "apps/" + app + "/release-" + std::to_string(release) + ".json";
  if (targets.is_discarded() || !targets["signed"]["targets"].contains(name)) return 0;
  uint64_t total = 0;
  for (const Json& a : targets["signed"]["targets"][name]["custom"]["flotilla"]["artifacts"]) {
    if (a["kind"] == "full") total += a["length"].get<uint64_t>();
  }
  return total;
}

}  // namespace flotilla::testing
