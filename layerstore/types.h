// Value types of the layer store's public API.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace flotilla::layerstore {

// An OCI platform: "linux/arm64", "linux/arm/v7", "linux/amd64".
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;  // may be empty

  // "os/arch[/variant]".
  std::string ToString() const;
  static Result<Platform> Parse(std::string_view text);
  // The platform of the machine this runs on (uname), as OCI names it.
  static Platform Host();
  // True if an image built for `offered` runs where `*this` is wanted
  // (an empty wanted variant accepts any; arm64 treats "" and "v8" alike).
  bool Accepts(const Platform& offered) const;
  // True if a machine of this platform runs an image built for `image`
  // (docs/node.md, "Platforms"): the same os and architecture; arm runs its
  // own variant and older ones (v7 runs v6 and v5; no variant means v7);
  // arm64 takes "" and "v8" alike, amd64 "" and "v1". Another architecture
  // never runs, even one the CPU could execute (arm on arm64, 386 on amd64):
  // the kernel may lack 32-bit support, and a fleet publishes each platform.
  bool Runs(const Platform& image) const;
  friend bool operator==(const Platform&, const Platform&) = default;
};

enum class LayerState { kReady, kQuarantined };
std::string_view LayerStateName(LayerState state);

struct LayerInfo {
  Digest diff_id;
  uint64_t length = 0;  // bytes of the uncompressed tar
  uint64_t entries = 0;
  LayerState state = LayerState::kReady;
};

struct ImageLayer {
  Digest diff_id;
  // The blob as the image carried it (compressed, or the tar itself), and its media type.
  Digest blob_digest;
  uint64_t blob_size = 0;
  std::string media_type;
};

struct ImageRecord {
  Digest config_digest;                   // the image ID, as Docker shows it
  std::optional<Digest> manifest_digest;  // absent for legacy docker-archive images
  Platform platform;
  std::string source_format;       // "oci", "docker-archive"
  std::vector<ImageLayer> layers;  // bottom first
  std::vector<std::string> refs;   // names that point at this image
};

// Long work reports where it is. Phases of an import, in order.
enum class Phase { kReading, kUnpacking, kPromoting, kIndexing, kVerifying, kDone };
std::string_view PhaseName(Phase phase);

struct Progress {
  Phase phase = Phase::kReading;
  size_t item = 0;        // 1-based layer (or blob) being worked on; 0 when none
  size_t items = 0;       // how many there are
  uint64_t bytes = 0;     // bytes done within the item
  std::string_view what;  // e.g. a digest
};
using ProgressFn = std::function<void(const Progress&)>;

struct UnpackOptions {
  // Character and block devices in a layer are refused unless allowed.
  bool allow_devices = false;
  // Bound on a layer's uncompressed size when no exact length is known.
  uint64_t max_layer_bytes = 8ull << 30;
};

struct ImportOptions {
  UnpackOptions unpack;
  // Which platform to take from a multi-platform index; default: the host's.
  std::optional<Platform> platform;
  // Which image of an archive holding several (a RepoTag or OCI ref name).
  std::string select;
  // Name to record for the image; default: the name the archive gives it.
  std::string name;
  ProgressFn progress;
};

struct VerifyReport {
  size_t layers_ok = 0;
  size_t blobs_ok = 0;
  std::vector<std::string> problems;  // one sentence per corrupt or missing thing
  bool ok() const { return problems.empty(); }
};

struct GcReport {
  size_t layers_removed = 0;
  size_t blobs_removed = 0;
};

}  // namespace flotilla::layerstore
