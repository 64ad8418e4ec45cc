// LayerStore::ImportImage: OCI layouts (directory or oci-archive), docker
// save archives (legacy and OCI-layout forms), multi-platform indexes.
#include <map>
#include <set>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "layerstore/image_source.h"
#include "layerstore/layer_store.h"
#include "layerstore/store_index.h"

namespace flotilla::layerstore {
namespace {

constexpr uint64_t kMaxMetadataBytes = 4 << 20;
constexpr int kMaxIndexDepth = 4;
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kLegacyLayerType = "application/vnd.docker.image.rootfs.diff.tar";

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::optional<Platform> platform;
  std::string ref;  // from annotations, for --select
};

// JSON fields are checked by type; nlohmann throws on a wrong one, so every
// access goes through these.
Result<std::string> StringField(const Json& j, const char* key, bool required = true) {
  if (!j.is_object() || !j.contains(key)) {
    if (!required) return std::string();
    return Corruption(std::string("image metadata lacks \"") + key + "\"");
  }
  if (!j[key].is_string()) return Corruption(std::string("\"") + key + "\" is not a string");
  return j[key].get<std::string>();
}

Result<Descriptor> ParseDescriptor(const Json& j) {
  Descriptor d;
  ASSIGN_OR_RETURN(d.media_type, StringField(j, "mediaType", false));
  ASSIGN_OR_RETURN(std::string digest, StringField(j, "digest"));
  ASSIGN_OR_RETURN(d.digest, Digest::Parse(digest));
  if (!j.contains("size") || !j["size"].is_number_unsigned()) {
    return Corruption("descriptor " + digest + " has no valid size");
  }
  d.size = j["size"].get<uint64_t>();
  if (j.contains("platform") && j["platform"].is_object()) {
    Platform p;
    ASSIGN_OR_RETURN(p.os, StringField(j["platform"], "os"));
    ASSIGN_OR_RETURN(p.architecture, StringField(j["platform"], "architecture"));
    ASSIGN_OR_RETURN(p.variant, StringField(j["platform"], "variant", false));
    d.platform = p;
  }
  if (j.contains("annotations") && j["annotations"].is_object()) {
    for (const char* key : {"org.opencontainers.image.ref.name", "io.containerd.image.name"}) {
      ASSIGN_OR_RETURN(std::string ref, StringField(j["annotations"], key, false));
      if (!ref.empty()) d.ref = ref;
    }
  }
  return d;
}

Result<Json> ParseJson(const Bytes& bytes, std::string_view what) {
  return ParseJsonStrict(AsStringView(bytes), JsonLimits{kMaxMetadataBytes, 32}).WithContext(what);
}

std::string BlobPath(const Digest& d) { return "blobs/sha256/" + d.Hex(); }

bool RefMatches(const std::string& ref, const std::string& select) {
  if (select.empty()) return true;
  if (ref == select) return true;
  // "docker.io/library/busybox:1.36" is also "busybox:1.36" and a bare tag "1.36".
  return ref.size() > select.size() &&
         ref.compare(ref.size() - select.size(), select.size(), select) == 0 &&
         (ref[ref.size() - select.size() - 1] == '/' || ref[ref.size() - select.size() - 1] == ':');
}

}  // namespace

// What an image archive says, checked, before any layer is read.
struct ImagePlan {
  ImageRecord record;
  std::vector<std::string> layer_paths;  // in the image source, per layer
  std::vector<bool> blob_is_layer_tar;   // legacy: the blob digest is the diff_id
  Bytes config;
  std::optional<Bytes> manifest;
  std::string ref;
};

// Reads what an image holds (index, manifest, config: no layer) and picks
// the one image the options choose.
class ImagePlanReader {
 public:
  ImagePlanReader(ImageSource& source, const ImportOptions& options)
      : source_(source), options_(options) {}

  Result<ImagePlan> Read() {
    ImagePlan plan;
    if (source_.Exists("oci-layout") && source_.Exists("index.json")) {
      RETURN_IF_ERROR(ReadOciPlan(plan));
    } else if (source_.Exists("manifest.json")) {
      RETURN_IF_ERROR(ReadDockerPlan(plan));
    } else {
      return InvalidArgument(
          "not an OCI image layout or docker archive (no index.json or "
          "manifest.json)");
    }
    if (!options_.name.empty()) plan.ref = options_.name;
    return plan;
  }

 private:
  Result<Bytes> ReadVerifiedBlob(const Descriptor& d) {
    if (d.size > kMaxMetadataBytes) {
      return ResourceExhausted("metadata blob " + d.digest.ToString() + " is too large");
    }
    ASSIGN_OR_RETURN(Bytes bytes, source_.ReadSmall(BlobPath(d.digest), d.size));
    if (bytes.size() != d.size || Digest::Of(bytes) != d.digest) {
      return Corruption("blob " + d.digest.ToString() + " does not match its digest or size");
    }
    return bytes;
  }

  // Expands indexes into the manifests they list, with their platforms.
  Status CollectManifests(const Json& index, int depth, const std::string& ref,
                          std::vector<Descriptor>& out) {
    if (depth > kMaxIndexDepth) return InvalidArgument("image indexes nest too deeply");
    if (!index.contains("manifests") || !index["manifests"].is_array()) {
      return Corruption("image index has no manifests list");
    }
    for (const auto& entry : index["manifests"]) {
      ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(entry));
      if (d.ref.empty()) d.ref = ref;
      if (d.media_type == kOciIndex || d.media_type == kDockerList) {
        ASSIGN_OR_RETURN(Bytes nested, ReadVerifiedBlob(d));
        ASSIGN_OR_RETURN(Json j, ParseJson(nested, "nested index"));
        RETURN_IF_ERROR(CollectManifests(j, depth + 1, d.ref, out));
        continue;
      }
      out.push_back(d);
    }
    return Status::Ok();
  }

  Status ReadOciPlan(ImagePlan& plan) {
    ASSIGN_OR_RETURN(Bytes index_bytes, source_.ReadSmall("index.json", kMaxMetadataBytes));
    ASSIGN_OR_RETURN(Json index, ParseJson(index_bytes, "index.json"));
    std::vector<Descriptor> manifests;
    RETURN_IF_ERROR(CollectManifests(index, 0, "", manifests));
    const Platform wanted = options_.platform.value_or(Platform::Host());
    std::vector<Descriptor> chosen;
    std::set<std::string> seen_platforms;
    for (const auto& d : manifests) {
      if (!RefMatches(d.ref, options_.select)) continue;
      if (d.platform) {
        seen_platforms.insert(d.platform->ToString());
        if (d.platform->os == "unknown" || !wanted.Accepts(*d.platform)) continue;
      }
      chosen.push_back(d);
    }
    if (chosen.empty()) {
      std::string offered;
      for (const auto& p : seen_platforms) offered += " " + p;
      return NotFound("no image for platform " + wanted.ToString() +
                      (options_.select.empty() ? "" : " named " + options_.select) +
                      (offered.empty() ? "" : "; the index offers" + offered));
    }
    std::set<Digest> distinct;
    for (const auto& d : chosen) distinct.insert(d.digest);
    if (distinct.size() > 1 && !chosen.front().platform) {
      return InvalidArgument("the archive holds " + std::to_string(distinct.size()) +
                             " images; choose one with --select <name>");
    }
    const Descriptor& pick = chosen.front();
    ASSIGN_OR_RETURN(Bytes manifest, ReadVerifiedBlob(pick));
    ASSIGN_OR_RETURN(Json m, ParseJson(manifest, "manifest"));
    if (!m.contains("config") || !m.contains("layers") || !m["layers"].is_array()) {
      return Corruption("manifest " + pick.digest.ToString() + " lacks config or layers");
    }
    ASSIGN_OR_RETURN(Descriptor config, ParseDescriptor(m["config"]));
    ASSIGN_OR_RETURN(plan.config, ReadVerifiedBlob(config));
    plan.record.config_digest = config.digest;
    plan.record.manifest_digest = pick.digest;
    plan.record.source_format = "oci";
    plan.manifest = std::move(manifest);
    plan.ref = pick.ref;
    std::vector<ImageLayer> layers;
    for (const auto& l : m["layers"]) {
      ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(l));
      if (d.media_type.find("encrypted") != std::string::npos) {
        return InvalidArgument("layer " + d.digest.ToString() + " is encrypted (" + d.media_type +
                               ")");
      }
      layers.push_back(ImageLayer{Digest(), d.digest, d.size, d.media_type});
      plan.layer_paths.push_back(BlobPath(d.digest));
      plan.blob_is_layer_tar.push_back(false);
    }
    return ApplyConfig(plan, std::move(layers));
  }

  Status ReadDockerPlan(ImagePlan& plan) {
    ASSIGN_OR_RETURN(Bytes bytes, source_.ReadSmall("manifest.json", kMaxMetadataBytes));
    ASSIGN_OR_RETURN(Json list, ParseJson(bytes, "manifest.json"));
    if (!list.is_array() || list.empty()) return Corruption("manifest.json lists no image");
    const Json* pick = nullptr;
    std::string ref;
    for (const auto& entry : list) {
      std::vector<std::string> tags;
      if (entry.contains("RepoTags") && entry["RepoTags"].is_array()) {
        for (const auto& t : entry["RepoTags"]) {
          if (t.is_string()) tags.push_back(t.get<std::string>());
        }
      }
      for (const auto& t : tags) {
        if (!options_.select.empty() && RefMatches(t, options_.select) && !pick) {
          pick = &entry;
          ref = t;
        }
      }
      if (options_.select.empty()) {
        if (list.size() > 1) {
          return InvalidArgument("the archive holds " + std::to_string(list.size()) +
                                 " images; choose one with --select <name>");
        }
        pick = &entry;
        ref = tags.empty() ? "" : tags.front();
      }
    }
    if (!pick) return NotFound("the archive holds no image named " + options_.select);
    ASSIGN_OR_RETURN(std::string config_path, StringField(*pick, "Config"));
    ASSIGN_OR_RETURN(plan.config, source_.ReadSmall(config_path, kMaxMetadataBytes));
    plan.record.config_digest = Digest::Of(plan.config);
    plan.record.source_format = "docker-archive";
    plan.ref = ref;
    if (!(*pick).contains("Layers") || !(*pick)["Layers"].is_array()) {
      return Corruption("manifest.json entry lacks Layers");
    }
    std::vector<ImageLayer> layers;
    for (const auto& l : (*pick)["Layers"]) {
      if (!l.is_string()) return Corruption("manifest.json: a layer path is not a string");
      ASSIGN_OR_RETURN(std::string layer_path, NormalizeRelativePath(l.get<std::string>()));
      layers.push_back(ImageLayer{Digest(), Digest(), 0, std::string(kLegacyLayerType)});
      plan.layer_paths.push_back(layer_path);
      plan.blob_is_layer_tar.push_back(true);
    }
    return ApplyConfig(plan, std::move(layers));
  }

  // Reads diff_ids and platform from the config.
  Status ApplyConfig(ImagePlan& plan, std::vector<ImageLayer> layers) {
    ASSIGN_OR_RETURN(Json config, ParseJson(plan.config, "image config"));
    ASSIGN_OR_RETURN(plan.record.platform.os, StringField(config, "os"));
    ASSIGN_OR_RETURN(plan.record.platform.architecture, StringField(config, "architecture"));
    ASSIGN_OR_RETURN(plan.record.platform.variant, StringField(config, "variant", false));
    if (options_.platform && !options_.platform->Accepts(plan.record.platform)) {
      return NotFound("image is for " + plan.record.platform.ToString() + ", not " +
                      options_.platform->ToString());
    }
    if (!config.contains("rootfs") || !config["rootfs"].contains("diff_ids") ||
        !config["rootfs"]["diff_ids"].is_array()) {
      return Corruption("image config lacks rootfs.diff_ids");
    }
    const Json& ids = config["rootfs"]["diff_ids"];
    if (ids.size() != layers.size()) {
      return Corruption("image lists " + std::to_string(layers.size()) + " layers but its config " +
                        std::to_string(ids.size()) + " diff_ids");
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      if (!ids[i].is_string()) return Corruption("a diff_id is not a string");
      ASSIGN_OR_RETURN(layers[i].diff_id, Digest::Parse(ids[i].get<std::string>()));
    }
    plan.record.layers = std::move(layers);
    return Status::Ok();
  }

  ImageSource& source_;
  const ImportOptions& options_;
};

class ImageImporter {
 public:
  ImageImporter(LayerStore& store, const ImportOptions& options)
      : store_(store), options_(options) {}

  Result<ImageRecord> Run(const std::string& path) {
    Report(Phase::kReading, 0, 0);
    ASSIGN_OR_RETURN(source_, ImageSource::Open(path));
    ASSIGN_OR_RETURN(ImagePlan plan, ImagePlanReader(*source_, options_).Read());
    RETURN_IF_ERROR(UnpackLayers(plan));
    const size_t n = staged_.size();
    Report(Phase::kPromoting, 0, n);
    std::vector<StagedLayer*> staged;
    for (auto& [id, layer] : staged_) staged.push_back(layer.get());
    RETURN_IF_ERROR(store_.Promote(staged));
    RETURN_IF_ERROR(store_.WriteBlob(plan.record.config_digest, plan.config));
    if (plan.manifest)
      RETURN_IF_ERROR(store_.WriteBlob(*plan.record.manifest_digest, *plan.manifest));
    Report(Phase::kIndexing, 0, n);
    RETURN_IF_ERROR(Index(plan));
    Report(Phase::kDone, n, n);
    if (!plan.ref.empty()) plan.record.refs.push_back(plan.ref);
    return plan.record;
  }

 private:
  void Report(Phase phase, size_t item, size_t items, uint64_t bytes = 0) {
    if (options_.progress) options_.progress(Progress{phase, item, items, bytes, {}});
  }

  Status UnpackLayers(ImagePlan& plan) {
    std::vector<std::string> paths;
    std::map<std::string, size_t> layer_of_path;
    for (size_t i = 0; i < plan.record.layers.size(); ++i) {
      const Digest& id = plan.record.layers[i].diff_id;
      ASSIGN_OR_RETURN(auto row, store_.index_->GetLayer(id));
      bool present = row && row->info.state == LayerState::kReady;
      if (present && plan.blob_is_layer_tar[i]) {
        plan.record.layers[i].blob_digest = id;
        plan.record.layers[i].blob_size = row->info.length;
      }
      if (present || staged_.count(id) || layer_of_path.count(plan.layer_paths[i])) continue;
      staged_[id] = nullptr;
      layer_of_path[plan.layer_paths[i]] = i;
      paths.push_back(plan.layer_paths[i]);
    }
    size_t done = 0;
    const size_t total = paths.size();
    Report(Phase::kUnpacking, 0, total);
    RETURN_IF_ERROR(source_->StreamBlobs(paths, [&](const std::string& path, ByteSource& blob) {
      size_t i = layer_of_path.at(path);
      return UnpackOne(plan, i, blob, ++done, total)
          .WithContext("layer " + std::to_string(i + 1) + " (" + path + ")");
    }));
    // Duplicate blobs (same layer twice): fill in what the first copy learned.
    for (auto& layer : plan.record.layers) {
      for (const auto& other : plan.record.layers) {
        if (other.diff_id == layer.diff_id && layer.blob_size == 0) {
          layer.blob_digest = other.blob_digest;
          layer.blob_size = other.blob_size;
        }
      }
    }
    return Status::Ok();
  }

  Status UnpackOne(ImagePlan& plan, size_t i, ByteSource& blob, size_t item, size_t items) {
    Report(Phase::kUnpacking, item, items);
    ImageLayer& layer = plan.record.layers[i];
    const bool legacy = plan.blob_is_layer_tar[i];
    const uint64_t max_blob = legacy ? options_.unpack.max_layer_bytes : layer.blob_size;
    HashingByteSource hashed(blob, max_blob);
    ASSIGN_OR_RETURN(auto tar,
                     DecompressingByteSource::Open(hashed, options_.unpack.max_layer_bytes));
    UnpackLimits limits;
    limits.max_length = options_.unpack.max_layer_bytes;
    limits.expected_diff_id = layer.diff_id;
    limits.allow_devices = options_.unpack.allow_devices;
    ASSIGN_OR_RETURN(auto staged, store_.Stage(*tar, limits, options_.progress, item, items));
    ASSIGN_OR_RETURN(Digest blob_digest, hashed.DrainAndFinish());
    if (legacy) {
      layer.blob_digest = blob_digest;
      layer.blob_size = hashed.bytes_read();
    } else if (blob_digest != layer.blob_digest || hashed.bytes_read() != layer.blob_size) {
      return Corruption("blob digest " + blob_digest.ToString() +
                        " does not match the manifest's " + layer.blob_digest.ToString());
    }
    staged_[layer.diff_id] = std::move(staged);
    return Status::Ok();
  }

  Status Index(const ImagePlan& plan) {
    ASSIGN_OR_RETURN(SqliteTransaction transaction, store_.index_->Begin());
    for (const auto& [id, staged] : staged_) {
      LayerRow row;
      row.info = LayerInfo{id, staged->result.length, staged->result.entries, LayerState::kReady};
      row.tarsplit_bytes = staged->result.tarsplit_logical_bytes;
      RETURN_IF_ERROR(store_.index_->UpsertLayer(row));
    }
    RETURN_IF_ERROR(store_.index_->UpsertBlob(
        BlobRow{plan.record.config_digest, plan.config.size(), "config", false}));
    if (plan.manifest) {
      RETURN_IF_ERROR(store_.index_->UpsertBlob(
          BlobRow{*plan.record.manifest_digest, plan.manifest->size(), "manifest", false}));
    }
    RETURN_IF_ERROR(store_.index_->PutImage(plan.record, plan.ref));
    return transaction.Commit();
  }

  LayerStore& store_;
  const ImportOptions& options_;
  std::unique_ptr<ImageSource> source_;
  std::map<Digest, std::unique_ptr<StagedLayer>> staged_;
};

Status CheckImageChoice(const std::string& path, const ImportOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> source, ImageSource::Open(path));
  return ImagePlanReader(*source, options).Read().status().WithContext(path);
}

Result<ImageRecord> LayerStore::ImportImage(const std::string& path, const ImportOptions& options) {
  ImageImporter importer(*this, options);
  return importer.Run(path).WithContext("import " + path);
}

}  // namespace flotilla::layerstore
