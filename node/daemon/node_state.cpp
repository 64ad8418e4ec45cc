#include "node/daemon/node_state.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>

#include "core/canonical_json.h"
#include "core/enum_names.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"

namespace flotilla::node {
namespace {

constexpr EnumName<AppPhase> kPhaseNames[] = {
    {AppPhase::kIdle, "idle"},           {AppPhase::kDownloading, "downloading"},
    {AppPhase::kVerifying, "verifying"}, {AppPhase::kReady, "ready"},
    {AppPhase::kFailed, "failed"},       {AppPhase::kDeploying, "deploying"},
    {AppPhase::kRunning, "running"}};

Result<std::vector<Digest>> DigestsFrom(const std::vector<std::string>& texts) {
  std::vector<Digest> out;
  for (const auto& text : texts) {
    ASSIGN_OR_RETURN(Digest d, Digest::Parse(text));
    out.push_back(d);
  }
  return out;
}

Json DigestsToJson(const std::vector<Digest>& digests) {
  Json out = Json::array();
  for (const auto& d : digests) out.push_back(d.ToString());
  return out;
}

Status ReadKept(JsonObjectReader& r, KeptRelease& kept) {
  r.Require({"version", "layers", "artifacts"});
  std::vector<std::string> layers, artifacts;
  r.Unsigned("version", kept.version);
  r.Strings("layers", layers);
  r.Strings("artifacts", artifacts);
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(kept.layers, DigestsFrom(layers));
  ASSIGN_OR_RETURN(kept.artifacts, DigestsFrom(artifacts));
  return Status::Ok();
}

void ReadApp(JsonObjectReader& r, AppState& a) {
  r.Require({"target_release", "ready_release", "failed_release", "phase", "bytes_from_peers",
             "bytes_from_origin", "last_error"});
  r.Unsigned("target_release", a.target_release);
  r.Unsigned("ready_release", a.ready_release);
  r.Unsigned("failed_release", a.failed_release);
  r.Choice("phase", kPhaseNames, a.phase);
  r.Unsigned("bytes_from_peers", a.bytes_from_peers);
  r.Unsigned("bytes_from_origin", a.bytes_from_origin);
  r.String("last_error", a.last_error);
  // Optional: a file without them loads with nothing running or kept.
  r.Unsigned("running_release", a.running_release);
  r.Unsigned("previous_release", a.previous_release);
  r.String("failure", a.failure);
  // Optional: a file an older node wrote ran no configuration.
  r.String("config_id", a.config_id);
  r.String("previous_config_id", a.previous_config_id);
  r.String("failed_config_id", a.failed_config_id);
  r.Objects("kept", [&](JsonObjectReader& k) { return ReadKept(k, a.kept.emplace_back()); });
}

}  // namespace

std::string_view AppPhaseName(AppPhase phase) { return NameOf(kPhaseNames, phase); }

Result<NodeState> LoadNodeState(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NodeState{};
    return IOErrorFromErrno("stat " + path, errno);
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, 1 << 20));
  auto json = ParseJsonStrict(text);
  if (!json.ok()) return json.status().WithContext(path);
  NodeState state;
  // Members a newer version added are ignored: a downgraded node still starts.
  JsonObjectReader r(*json, "", UnknownKeys::kIgnore);
  r.Require({"format", "apps"});
  uint64_t format = 0;
  r.Unsigned("format", format);
  const Json* apps = r.Object("apps");
  r.Unsigned("report_seq", state.report_seq);
  if (Status read = r.Finish(); !read.ok()) return Corruption(path + ": " + read.message());
  if (format != 1) return Corruption(path + ": unknown format");
  for (auto it = apps->begin(); it != apps->end(); ++it) {
    JsonObjectReader app(it.value(), "apps." + it.key(), UnknownKeys::kIgnore);
    ReadApp(app, state.apps[it.key()]);
    if (Status read = app.Finish(); !read.ok()) return Corruption(path + ": " + read.message());
  }
  return state;
}

Status SaveNodeState(const std::string& path, const NodeState& state, Env& env) {
  Json apps = Json::object();
  for (const auto& [app, a] : state.apps) {
    apps[app] = {{"target_release", a.target_release},
                 {"ready_release", a.ready_release},
                 {"failed_release", a.failed_release},
                 {"phase", std::string(AppPhaseName(a.phase))},
                 {"bytes_from_peers", a.bytes_from_peers},
                 {"bytes_from_origin", a.bytes_from_origin},
                 {"last_error", a.last_error},
                 {"running_release", a.running_release},
                 {"previous_release", a.previous_release}};
    Json kept = Json::array();
    for (const auto& k : a.kept) {
      kept.push_back({{"version", k.version},
                      {"layers", DigestsToJson(k.layers)},
                      {"artifacts", DigestsToJson(k.artifacts)}});
    }
    apps[app]["kept"] = kept;
    if (!a.failure.empty()) apps[app]["failure"] = a.failure;
    if (!a.config_id.empty()) apps[app]["config_id"] = a.config_id;
    if (!a.previous_config_id.empty()) apps[app]["previous_config_id"] = a.previous_config_id;
    if (!a.failed_config_id.empty()) apps[app]["failed_config_id"] = a.failed_config_id;
  }
  Json doc = {{"format", 1}, {"apps", apps}};
  if (state.report_seq != 0) doc["report_seq"] = state.report_seq;
  return WriteFileAtomic(path, doc.dump(2) + "\n", 0644, env).WithContext("save state");
}

Result<std::unique_ptr<StateFile>> StateFile::Open(std::string path,
                                                   const std::vector<std::string>& apps) {
  ASSIGN_OR_RETURN(NodeState state, LoadNodeState(path));
  for (const auto& app : apps) state.apps.try_emplace(app);
  RETURN_IF_ERROR(SaveNodeState(path, state));
  return std::unique_ptr<StateFile>(new StateFile(std::move(path), std::move(state)));
}

void StateFile::Save() {
  spdlog::debug("writing state.json");
  Status st = SaveNodeState(path_, state_);
  if (!st.ok()) return spdlog::error("{}", st.ToString());
  spdlog::debug("state.json written");
}

Status StateFile::SaveReportSeq(uint64_t report_seq) {
  state_.report_seq = report_seq;
  return SaveNodeState(path_, state_);
}

}  // namespace flotilla::node
