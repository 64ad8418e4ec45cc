#include "node/daemon/node_state.h"

#include <sys/stat.h>

#include <cerrno>

#include "core/canonical_json.h"
#include "core/file_io.h"

namespace flotilla::node {
namespace {

constexpr std::string_view kPhaseNames[] = {"idle",   "downloading", "verifying", "ready",
                                            "failed", "deploying",   "running"};

Result<std::vector<Digest>> DigestsFrom(const Json& list) {
  std::vector<Digest> out;
  for (const auto& item : list) {
    ASSIGN_OR_RETURN(Digest d, Digest::Parse(item.get<std::string>()));
    out.push_back(d);
  }
  return out;
}

Json DigestsToJson(const std::vector<Digest>& digests) {
  Json out = Json::array();
  for (const auto& d : digests) out.push_back(d.ToString());
  return out;
}

Result<AppPhase> PhaseFromName(const std::string& name) {
  for (size_t i = 0; i < std::size(kPhaseNames); ++i) {
    if (kPhaseNames[i] == name) return static_cast<AppPhase>(i);
  }
  return Corruption("unknown phase '" + name + "'");
}

}  // namespace

std::string_view AppPhaseName(AppPhase phase) { return kPhaseNames[static_cast<int>(phase)]; }

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
  try {
    if (json->at("format").get<int>() != 1) return Corruption(path + ": unknown format");
    for (const auto& [app, value] : json->at("apps").items()) {
      AppState a;
      a.target_release = value.at("target_release").get<uint64_t>();
      a.ready_release = value.at("ready_release").get<uint64_t>();
      a.failed_release = value.at("failed_release").get<uint64_t>();
      ASSIGN_OR_RETURN(a.phase, PhaseFromName(value.at("phase").get<std::string>()));
      a.bytes_from_peers = value.at("bytes_from_peers").get<uint64_t>();
      a.bytes_from_origin = value.at("bytes_from_origin").get<uint64_t>();
      a.last_error = value.at("last_error").get<std::string>();
      // Optional: a file without them loads with nothing running or kept.
      a.running_release = value.value("running_release", uint64_t{0});
      a.previous_release = value.value("previous_release", uint64_t{0});
      for (const auto& k : value.value("kept", Json::array())) {
        KeptRelease kept;
        kept.version = k.at("version").get<uint64_t>();
        ASSIGN_OR_RETURN(kept.layers, DigestsFrom(k.at("layers")));
        ASSIGN_OR_RETURN(kept.artifacts, DigestsFrom(k.at("artifacts")));
        a.kept.push_back(std::move(kept));
      }
      state.apps[app] = a;
    }
  } catch (const std::exception& e) {
    return Corruption(path + ": " + e.what());
  }
  return state;
}

Status SaveNodeState(const std::string& path, const NodeState& state) {
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
  }
  Json doc = {{"format", 1}, {"apps", apps}};
  return WriteFileAtomic(path, doc.dump(2) + "\n", 0644).WithContext("save state");
}

}  // namespace flotilla::node
