#include "metadata/release.h"

#include <algorithm>
#include <set>

#include "core/json_object_reader.h"
#include "metadata/release_floor.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {

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

namespace {

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

// The digest member `key` ("sha256:<hex>").
Result<Digest> GetDigest(JsonObjectReader& r, std::string_view key) {
  std::string text;
  r.String(key, text);
  RETURN_IF_ERROR(r.status());
  return Digest::Parse(text).WithContext(r.PathOf(key));
}

Result<LayerRef> ParseLayer(const Json& layer_json, const std::string& path) {
  JsonObjectReader r(layer_json, path);
  r.Require({"diff_id", "length"});
  LayerRef layer;
  ASSIGN_OR_RETURN(layer.diff_id, GetDigest(r, "diff_id"));
  r.Unsigned("length", layer.length);
  RETURN_IF_ERROR(r.Finish());
  return layer;
}

Result<ImageRef> ParseImage(const Json& image_json) {
  JsonObjectReader r(image_json, "image");
  r.Require({"manifest", "config", "platform", "layers"});
  ImageRef image;
  ASSIGN_OR_RETURN(image.manifest, GetDigest(r, "manifest"));
  ASSIGN_OR_RETURN(image.config, GetDigest(r, "config"));
  r.String("platform", image.platform);
  const Json* layers = r.Array("layers");
  RETURN_IF_ERROR(r.Finish());
  for (size_t i = 0; i < layers->size(); ++i) {
    ASSIGN_OR_RETURN(LayerRef layer,
                     ParseLayer((*layers)[i], "image.layers[" + std::to_string(i) + "]"));
    image.layers.push_back(layer);
  }
  return image;
}

Result<std::vector<Digest>> ParseBases(const std::vector<std::string>& texts) {
  std::vector<Digest> bases;
  for (const std::string& text : texts) {
    ASSIGN_OR_RETURN(Digest digest, Digest::Parse(text));
    bases.push_back(digest);
  }
  return bases;
}

Result<Artifact> ParseArtifact(const Json& artifact_json, const std::string& path) {
  JsonObjectReader r(artifact_json, path);
  r.Require({"layer", "kind", "sha256", "length", "infohash", "compression"});
  Artifact artifact;
  std::string kind, info_hash;
  std::vector<std::string> bases;
  ASSIGN_OR_RETURN(artifact.layer, GetDigest(r, "layer"));
  ASSIGN_OR_RETURN(artifact.sha256, GetDigest(r, "sha256"));
  r.String("kind", kind);
  r.Strings("bases", bases);
  r.Unsigned("length", artifact.length);
  r.String("infohash", info_hash);
  r.String("compression", artifact.compression);
  const bool has_bases = r.Find("bases") != nullptr;
  RETURN_IF_ERROR(r.Finish());
  if (kind == "full") {
    artifact.kind = ArtifactKind::kFull;
    if (has_bases) return InvalidArgument("a full artifact has no bases");
  } else if (kind == "delta") {
    artifact.kind = ArtifactKind::kDelta;
    r.Require({"bases"});
    RETURN_IF_ERROR(r.status());
    ASSIGN_OR_RETURN(artifact.bases, ParseBases(bases));
  } else {
    return InvalidArgument("artifact kind must be full or delta, got '" + kind.substr(0, 16) + "'");
  }
  auto info_hash_digest = Digest::ParseHex(info_hash);
  if (!info_hash_digest.ok()) return InvalidArgument("infohash must be 64 lower-case hex digits");
  artifact.info_hash = info_hash_digest->bytes();
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
  JsonObjectReader custom_reader(custom, "custom");
  custom_reader.Require({"flotilla"});
  const Json* body = custom_reader.Object("flotilla");
  const Json* source = custom_reader.Object("source");
  const Json* offline_window = custom_reader.Object("offline_window");
  RETURN_IF_ERROR(custom_reader.status());
  JsonObjectReader r(*body, "release");
  r.Require({"schema", "app", "release", "image", "artifacts", "app_spec"});
  uint64_t schema = 0;
  r.Unsigned("schema", schema);
  RETURN_IF_ERROR(r.status());
  if (schema != kReleaseSchemaVersion) {
    return InvalidArgument("release schema " + std::to_string(schema) + " is not supported");
  }
  Release release;
  r.String("app", release.app);
  r.Unsigned("release", release.version);
  const Json* image = r.Object("image");
  const Json* artifacts = r.Array("artifacts");
  const Json* app_spec = r.Object("app_spec");
  RETURN_IF_ERROR(r.Finish());
  ASSIGN_OR_RETURN(release.image, ParseImage(*image));
  for (size_t i = 0; i < artifacts->size(); ++i) {
    ASSIGN_OR_RETURN(
        Artifact artifact,
        ParseArtifact((*artifacts)[i], "release.artifacts[" + std::to_string(i) + "]"));
    release.artifacts.push_back(std::move(artifact));
  }
  release.app_spec = *app_spec;
  if (source != nullptr) {
    JsonObjectReader s(*source, "source", UnknownKeys::kIgnore);
    s.Require({"reference", "digest"});
    ReleaseSource parsed;
    std::string digest;
    s.String("reference", parsed.reference);
    s.String("digest", digest);
    RETURN_IF_ERROR(s.status());
    if (parsed.reference.empty() || parsed.reference.size() > 1024) {
      return InvalidArgument("source.reference must be 1-1024 characters");
    }
    auto d = Digest::Parse(digest);
    if (!d.ok()) return InvalidArgument("source.digest: " + d.status().message());
    parsed.digest = *d;
    release.source = std::move(parsed);
  }
  if (offline_window != nullptr) {
    ASSIGN_OR_RETURN(release.offline_window, ParseOfflineWindow(*offline_window));
  }
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
  Json custom{{"flotilla",
               {{"schema", kReleaseSchemaVersion},
                {"app", release.app},
                {"release", release.version},
                {"image", image},
                {"artifacts", artifacts},
                {"app_spec", release.app_spec}}}};
  if (release.source) {
    custom["source"] = {{"reference", release.source->reference},
                        {"digest", release.source->digest.ToString()}};
  }
  if (release.offline_window)
    custom["offline_window"] = OfflineWindowToJson(*release.offline_window);
  return custom;
}

Result<std::map<std::string, Release>> LatestReleases(const TargetsMetadata& targets) {
  std::map<std::string, Release> latest;
  for (const auto& [name, target] : targets.targets) {
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    ASSIGN_OR_RETURN(auto release,
                     ParseRelease(target.custom).WithContext("target " + PercentEncode(name)));
    if (name != ReleaseTargetName(release.app, release.version)) {
      return Corruption("target " + PercentEncode(name) + " carries release " +
                        std::to_string(release.version) + " of app " + release.app);
    }
    auto it = latest.find(release.app);
    if (it == latest.end() || it->second.version < release.version) {
      latest.insert_or_assign(release.app, std::move(release));
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

namespace {

// A release's offline window must fit the cap of the root it is published under.
Status CheckWindowFits(const Repository& repo, const Release& release) {
  if (!release.offline_window) return Status::Ok();
  return CheckWindowAllowed(*release.offline_window, repo.root())
      .WithContext("release " + std::to_string(release.version) + " of " + release.app);
}

}  // namespace

Status PublishRelease(Repository& repo, const Release& release, const KeyRing& signers) {
  RETURN_IF_ERROR(ValidateRelease(release));
  RETURN_IF_ERROR(CheckWindowFits(repo, release));
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

std::string AppRoleName(const std::string& app) { return "apps/" + app; }

Result<SignedDocument> StageAppDelegation(Repository& repo, const std::string& app,
                                          const std::vector<TufKey>& keys, uint32_t threshold,
                                          Duration expiry) {
  if (keys.empty() || threshold == 0 || threshold > keys.size()) {
    return InvalidArgument("threshold must be 1.." + std::to_string(keys.size()));
  }
  TargetsMetadata next = repo.targets();
  Delegations& delegations = next.delegations ? *next.delegations : next.delegations.emplace();
  if (delegations.succinct_roles) {
    return FailedPrecondition("the top-level targets delegates to hash bins");
  }
  const std::string role = AppRoleName(app);
  std::erase_if(delegations.roles, [&](const DelegatedRole& r) { return r.name == role; });
  DelegatedRole delegation;
  delegation.name = role;
  delegation.terminating = true;
  delegation.paths = std::vector<std::string>{"apps/" + app + "/*"};
  delegation.keys.threshold = threshold;
  for (const auto& key : keys) {
    delegation.keys.keyids.push_back(key.keyid);
    delegations.keys[key.keyid] = key;
  }
  delegations.roles.push_back(std::move(delegation));
  std::set<std::string> used;
  for (const auto& r : delegations.roles) used.insert(r.keys.keyids.begin(), r.keys.keyids.end());
  std::erase_if(delegations.keys, [&](const auto& entry) { return !used.contains(entry.first); });
  return repo.StageTargets(std::string(RoleName(RoleType::kTargets)), std::move(next), {}, expiry);
}

Result<SignedDocument> StageRelease(Repository& repo, const Release& release, Duration expiry,
                                    StageIn where) {
  RETURN_IF_ERROR(ValidateRelease(release));
  RETURN_IF_ERROR(CheckWindowFits(repo, release));
  const std::string name = ReleaseTargetName(release.app, release.version);
  const std::string role = where == StageIn::kTopLevel ? std::string(RoleName(RoleType::kTargets))
                                                       : AppRoleName(release.app);
  const TargetsMetadata* current =
      where == StageIn::kTopLevel ? &repo.targets() : repo.DelegatedTargets(role);
  const TargetsMetadata* app_role = repo.DelegatedTargets(AppRoleName(release.app));
  const bool in_app_role = app_role && app_role->targets.contains(name);
  ASSIGN_OR_RETURN(auto latest, LatestReleases(repo.AllTargets()));
  auto it = latest.find(release.app);
  if (it != latest.end() && it->second.version >= release.version &&
      !(where == StageIn::kTopLevel && in_app_role)) {
    return FailedPrecondition("app " + release.app + " already has release " +
                              std::to_string(it->second.version) + "; versions must increase");
  }
  if (current && current->targets.contains(name)) {
    return FailedPrecondition(PercentEncode(role) + " already lists " + name);
  }
  TargetsMetadata next = current ? *current : TargetsMetadata{};
  Json custom = ReleaseToJson(release);
  ASSIGN_OR_RETURN(std::string content, CanonicalJson(custom));
  ASSIGN_OR_RETURN(
      SignedDocument staged,
      repo.StageTargets(role, std::move(next),
                        {TargetInput{name, std::move(content), std::move(custom)}}, expiry));
  if (where == StageIn::kTopLevel) {
    ASSIGN_OR_RETURN(TargetsMetadata parsed, ParseTargets(staged.signed_json));
    RETURN_IF_ERROR(CheckSameAsAppRoles(repo, parsed));
  }
  return staged;
}

Status CheckSameAsAppRoles(const Repository& repo, const TargetsMetadata& next) {
  for (const auto& [name, target] : next.targets) {
    if (repo.targets().targets.contains(name)) continue;
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    ASSIGN_OR_RETURN(Release release, ParseRelease(target.custom));
    const TargetsMetadata* role = repo.DelegatedTargets(AppRoleName(release.app));
    if (role == nullptr) continue;
    auto in_role = role->targets.find(name);
    if (in_role != role->targets.end() &&
        (in_role->second.length != target.length || in_role->second.hashes != target.hashes)) {
      return InvalidArgument("top-level target " + PercentEncode(name) + " differs from " +
                             AppRoleName(release.app) + "'s");
    }
  }
  return Status::Ok();
}

Status CheckAppRole(const std::string& app, const TargetsMetadata* current,
                    const TargetsMetadata& next) {
  ASSIGN_OR_RETURN(auto latest, LatestReleases(next));
  for (const auto& [name, target] : next.targets) {
    if (name == FloorTargetName(app)) continue;  // checked below
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) {
      return InvalidArgument("target " + PercentEncode(name) + " of " + AppRoleName(app) +
                             " is neither a release nor the app's floor");
    }
  }
  if (latest.size() > 1 || (latest.size() == 1 && !latest.contains(app))) {
    return PermissionDenied("role " + AppRoleName(app) + " lists releases of another app");
  }
  RETURN_IF_ERROR(CheckFloorsMonotonic(current, next));
  return current ? CheckReleasesMonotonic(*current, next) : Status::Ok();
}

Result<std::map<std::string, Release>> TrustedReleases(TufClient& client,
                                                       std::vector<Status>* refused) {
  std::set<std::string> names;
  std::vector<const DelegatedRole*> failed;
  const TargetsMetadata& top = *client.targets();
  for (const auto& [name, target] : top.targets) names.insert(name);
  if (top.delegations) {
    for (const auto& role : top.delegations->roles) {
      // A role delegated before its first version was accepted signs nothing yet.
      if (!client.snapshot()->meta.contains(role.name + ".json")) continue;
      auto delegated = client.DelegatedTargets(role.name, *top.delegations);
      if (!delegated.ok()) {
        failed.push_back(&role);
        if (refused) refused->push_back(delegated.status());
        continue;
      }
      for (const auto& [name, target] : (*delegated)->targets) names.insert(name);
    }
  }
  TargetsMetadata resolved;
  for (const auto& name : names) {
    if (std::any_of(failed.begin(), failed.end(), [&](auto* r) { return r->Covers(name); })) {
      continue;
    }
    auto target = client.GetTargetInfo(name);
    if (target.ok()) {
      resolved.targets.emplace(name, std::move(target).value());
    } else if (target.status().code() != StatusCode::kNotFound) {
      return target.status();
    }
  }
  return LatestReleases(resolved);
}

}  // namespace flotilla::metadata
