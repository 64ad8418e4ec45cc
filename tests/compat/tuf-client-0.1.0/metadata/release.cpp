#include "metadata/release.h"

#include <set>

#include "metadata/json_fields.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {
namespace jf = json_fields;
namespace {

bool IsAppName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '.' || c == '_' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

bool IsPlatform(std::string_view platform) {
  if (platform.empty() || platform.size() > 64 || platform.front() == '/' ||
      platform.back() == '/' || platform.find('/') == std::string_view::npos) {
    return false;
  }
  for (char c : platform) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '_')) return false;
  }
  return true;
}

Result<Digest> GetDigest(const Json& object, std::string_view key) {
  ASSIGN_OR_RETURN(std::string text, jf::GetString(object, key));
  auto digest = Digest::Parse(text);
  if (!digest.ok()) return digest.status().WithContext(std::string(key));
  return digest;
}

Result<LayerRef> ParseLayer(const Json& layer_json) {
  RETURN_IF_ERROR(jf::RequireObject(layer_json, "layer"));
  RETURN_IF_ERROR(jf::OnlyKeys(layer_json, {"diff_id", "length"}, "layer"));
  LayerRef layer;
  ASSIGN_OR_RETURN(layer.diff_id, GetDigest(layer_json, "diff_id"));
  ASSIGN_OR_RETURN(layer.length, jf::GetUint(layer_json, "length"));
  return layer;
}

Result<ImageRef> ParseImage(const Json& image_json) {
  RETURN_IF_ERROR(jf::OnlyKeys(image_json, {"manifest", "config", "platform", "layers"}, "image"));
  ImageRef image;
  ASSIGN_OR_RETURN(image.manifest, GetDigest(image_json, "manifest"));
  ASSIGN_OR_RETURN(image.config, GetDigest(image_json, "config"));
  ASSIGN_OR_RETURN(image.platform, jf::GetString(image_json, "platform"));
  ASSIGN_OR_RETURN(const Json* layers, jf::GetArray(image_json, "layers"));
  for (const Json& layer_json : *layers) {
    ASSIGN_OR_RETURN(LayerRef layer, ParseLayer(layer_json));
    image.layers.push_back(layer);
  }
  return image;
}

Result<std::vector<Digest>> ParseBases(const Json& artifact_json) {
  std::vector<Digest> bases;
  ASSIGN_OR_RETURN(const Json* list, jf::GetArray(artifact_json, "bases"));
  for (const Json& base : *list) {
    if (!base.is_string()) return InvalidArgument("bases must be digest strings");
    ASSIGN_OR_RETURN(Digest digest, Digest::Parse(base.get<std::string>()));
    bases.push_back(digest);
  }
  return bases;
}

Result<Artifact> ParseArtifact(const Json& artifact_json) {
  RETURN_IF_ERROR(jf::RequireObject(artifact_json, "artifact"));
  RETURN_IF_ERROR(jf::OnlyKeys(
      artifact_json, {"layer", "kind", "bases", "sha256", "length", "infohash", "compression"},
      "artifact"));
  Artifact artifact;
  ASSIGN_OR_RETURN(artifact.layer, GetDigest(artifact_json, "layer"));
  ASSIGN_OR_RETURN(std::string kind, jf::GetString(artifact_json, "kind"));
  if (kind == "full") {
    artifact.kind = ArtifactKind::kFull;
    if (jf::Has(artifact_json, "bases")) return InvalidArgument("a full artifact has no bases");
  } else if (kind == "delta") {
    artifact.kind = ArtifactKind::kDelta;
    ASSIGN_OR_RETURN(artifact.bases, ParseBases(artifact_json));
  } else {
    return InvalidArgument("artifact kind must be full or delta, got '" + kind.substr(0, 16) + "'");
  }
  ASSIGN_OR_RETURN(artifact.sha256, GetDigest(artifact_json, "sha256"));
  ASSIGN_OR_RETURN(artifact.length, jf::GetUint(artifact_json, "length"));
  ASSIGN_OR_RETURN(std::string info_hash, jf::GetString(artifact_json, "infohash"));
  auto info_hash_digest = Digest::ParseHex(info_hash);
  if (!info_hash_digest.ok()) return InvalidArgument("infohash must be 64 lower-case hex digits");
  artifact.info_hash = info_hash_digest->bytes();
  ASSIGN_OR_RETURN(artifact.compression, jf::GetString(artifact_json, "compression"));
  return artifact;
}

Status ValidateArtifact(const Artifact& artifact, const std::set<Digest>& layers) {
  if (!layers.contains(artifact.layer)) {
    return InvalidArgument("artifact for layer " + artifact.layer.ToString() +
                           ", which the image does not have");
  }
  if (artifact.compression != "zstd" && artifact.compression != "none") {
    return InvalidArgument("artifact compression must be zstd or none");
  }
  if (artifact.length == 0) return InvalidArgument("artifact length must be positive");
  if (artifact.kind == ArtifactKind::kFull) {
    if (!artifact.bases.empty()) return InvalidArgument("a full artifact has no bases");
    return Status::Ok();
  }
  if (artifact.bases.empty()) return InvalidArgument("a delta names at least one base layer");
  std::set<Digest> bases(artifact.bases.begin(), artifact.bases.end());
  if (bases.size() != artifact.bases.size() || bases.contains(artifact.layer)) {
    return InvalidArgument("a delta's bases must be distinct and differ from its own layer");
  }
  return Status::Ok();
}

Json DigestsToJson(const std::vector<Digest>& digests) {
  Json out = Json::array();
  for (const auto& d : digests) out.push_back(d.ToString());
  return out;
}

}  // namespace

std::string ReleaseTargetName(const std::string& app, uint64_t version) {
  return "apps/" + app + "/release-" + std::to_string(version) + ".json";
}

Status ValidateRelease(const Release& release) {
  if (!IsAppName(release.app)) {
    return InvalidArgument("app name '" + PercentEncode(release.app.substr(0, 64)) +
                           "' is not [a-z0-9][a-z0-9._-]{0,62}");
  }
  if (release.version == 0) return InvalidArgument("release version must be >= 1");
  if (!IsPlatform(release.image.platform)) {
    return InvalidArgument("platform must look like os/arch[/variant]");
  }
  if (release.image.layers.empty()) return InvalidArgument("an image has at least one layer");
  if (!release.app_spec.is_object()) return InvalidArgument("app_spec must be a JSON object");
  std::set<Digest> layers;
  for (const auto& layer : release.image.layers) {
    if (!layers.insert(layer.diff_id).second) return InvalidArgument("layer listed twice");
  }
  std::map<Digest, int> full_per_layer;
  std::set<Digest> info_hashes;
  for (const auto& artifact : release.artifacts) {
    RETURN_IF_ERROR(ValidateArtifact(artifact, layers));
    if (!info_hashes.insert(Digest(artifact.info_hash)).second) {
      return InvalidArgument("two artifacts share an info-hash");
    }
    if (artifact.kind == ArtifactKind::kFull) ++full_per_layer[artifact.layer];
  }
  for (const auto& layer : release.image.layers) {
    if (full_per_layer[layer.diff_id] != 1) {
      return InvalidArgument("layer " + layer.diff_id.ToString() +
                             " needs exactly one full artifact");
    }
  }
  return Status::Ok();
}

Result<Release> ParseRelease(const Json& custom) {
  RETURN_IF_ERROR(jf::RequireObject(custom, "custom"));
  ASSIGN_OR_RETURN(const Json* body, jf::GetObject(custom, "flotilla"));
  RETURN_IF_ERROR(jf::OnlyKeys(
      *body, {"schema", "app", "release", "image", "artifacts", "app_spec"}, "release"));
  ASSIGN_OR_RETURN(uint64_t schema, jf::GetUint(*body, "schema"));
  if (schema != kReleaseSchemaVersion) {
    return InvalidArgument("release schema " + std::to_string(schema) + " is not supported");
  }
  Release release;
  ASSIGN_OR_RETURN(release.app, jf::GetString(*body, "app"));
  ASSIGN_OR_RETURN(release.version, jf::GetUint(*body, "release"));
  ASSIGN_OR_RETURN(const Json* image, jf::GetObject(*body, "image"));
  ASSIGN_OR_RETURN(release.image, ParseImage(*image));
  ASSIGN_OR_RETURN(const Json* artifacts, jf::GetArray(*body, "artifacts"));
  for (const Json& artifact_json : *artifacts) {
    ASSIGN_OR_RETURN(Artifact artifact, ParseArtifact(artifact_json));
    release.artifacts.push_back(std::move(artifact));
  }
  ASSIGN_OR_RETURN(const Json* app_spec, jf::GetObject(*body, "app_spec"));
  release.app_spec = *app_spec;
  RETURN_IF_ERROR(ValidateRelease(release));
  return release;
}

Json ReleaseToJson(const Release& release) {
  Json layers = Json::array();
  for (const auto& layer : release.image.layers) {
    layers.push_back(Json{{"diff_id", layer.diff_id.ToString()}, {"length", layer.length}});
  }
  Json artifacts = Json::array();
  for (const auto& a : release.artifacts) {
    Json entry{{"layer", a.layer.ToString()},
               {"kind", a.kind == ArtifactKind::kFull ? "full" : "delta"},
               {"sha256", a.sha256.ToString()},
               {"length", a.length},
               {"infohash", HexEncode(a.info_hash)},
               {"compression", a.compression}};
    if (a.kind == ArtifactKind::kDelta) entry["bases"] = DigestsToJson(a.bases);
    artifacts.push_back(std::move(entry));
  }
  Json image{{"manifest", release.image.manifest.ToString()},
             {"config", release.image.config.ToString()},
             {"platform", release.image.platform},
             {"layers", layers}};
  return Json{{"flotilla",
               {{"schema", kReleaseSchemaVersion},
                {"app", release.app},
                {"release", release.version},
                {"image", image},
                {"artifacts", artifacts},
                {"app_spec", release.app_spec}}}};
}

Result<std::map<std::string, Release>> LatestReleases(const TargetsMetadata& targets) {
  std::map<std::string, Release> latest;
  for (const auto& [name, target] : targets.targets) {
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    auto release = ParseRelease(target.custom);
    if (!release.ok()) return release.status().WithContext("target " + PercentEncode(name));
    if (name != ReleaseTargetName(release->app, release->version)) {
      return Corruption("target " + PercentEncode(name) + " carries release " +
                        std::to_string(release->version) + " of app " + release->app);
    }
    auto it = latest.find(release->app);
    if (it == latest.end() || it->second.version < release->version) {
      latest.insert_or_assign(release->app, std::move(release).value());
    }
  }
  return latest;
}

Status CheckReleasesMonotonic(const TargetsMetadata& trusted, const TargetsMetadata& fresh) {
  ASSIGN_OR_RETURN(auto before, LatestReleases(trusted));
  ASSIGN_OR_RETURN(auto after, LatestReleases(fresh));
  for (const auto& [app, old_release] : before) {
    auto it = after.find(app);
    if (it != after.end() && it->second.version < old_release.version) {
      return Corruption("release rollback for app " + app + ": " +
                        std::to_string(it->second.version) + " < trusted " +
                        std::to_string(old_release.version));
    }
  }
  return Status::Ok();
}

Status PublishRelease(Repository& repo, const Release& release, const KeyRing& signers) {
  RETURN_IF_ERROR(ValidateRelease(release));
  ASSIGN_OR_RETURN(auto latest, LatestReleases(repo.targets()));
  auto it = latest.find(release.app);
  if (it != latest.end() && it->second.version >= release.version) {
    return FailedPrecondition("app " + release.app + " already has release " +
                              std::to_string(it->second.version) + "; versions must increase");
  }
  Json custom = ReleaseToJson(release);
  ASSIGN_OR_RETURN(std::string content, CanonicalJson(custom));
  return repo.AddTargets({TargetInput{ReleaseTargetName(release.app, release.version),
                                      std::move(content), std::move(custom)}},
                         signers);
}

}  // namespace flotilla::metadata
