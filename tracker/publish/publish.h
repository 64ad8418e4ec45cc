// `flotilla-tracker publish` and `releases` (docs/publish.md).
//
// PublishImage: validates the app spec (runtime/app_spec.h), imports the
// image into the repository's layer store, makes a full artifact and torrent
// for each layer no published release already carries, then signs the release
// as the next version of the app: targets, snapshot and timestamp last. A
// SIGKILL at any point leaves the previous release published and a re-run
// completes (artifacts first, metadata last, each atomic; see publish_state.h).
// Delta artifacts from the app's last K releases are made after the full ones
// (docs/publish.md), the same way: complete on disk before they are signed.
// An app the top-level targets delegates to apps/<app> (docs/signing.md) is
// staged instead of signed: its role's next version goes to pending/, to be
// signed where the app key lives and accepted (offline.h).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "metadata/release.h"
#include "tracker/publish/publish_artifacts.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

// An image fetched from elsewhere (a registry, docs/registry.md) for a publish.
struct FetchedImage {
  std::string platform;                           // the platform to take ("": the request's)
  std::optional<metadata::ReleaseSource> source;  // recorded in the signed release
};
// Writes the image as an OCI layout into `layout_dir` (absent, inside the
// repository's staging/), saying what it does through `progress`.
using FetchImageFn = std::function<Result<FetchedImage>(const std::string& layout_dir,
                                                        const PublishProgressFn& progress)>;

struct PublishRequest {
  std::string repository;  // the repository root (made by `init`)
  std::string app;         // [a-z0-9][a-z0-9._-]{0,62}; must equal the spec's name
  std::string spec_path;   // APP.json
  // When set, the spec names this app instead (the default platform's app,
  // "kiosk" for "kiosk.amd64": docs/registry.md, "Platforms"); the release
  // carries the spec with `name` set to `app` (and `hostname`, unless given,
  // to this name, so every platform's container has the same).
  std::string spec_app;
  std::string image_path;  // docker save tarball, OCI layout directory or oci-archive
  // When set, the image comes from here instead of image_path: called under
  // the publish lock once staging/ is emptied, its layout is imported and
  // then removed (a killed publish leaves it in staging/ for the next one).
  FetchImageFn fetch_image;
  std::string public_url;  // for the torrents' announce and web seed URLs
  std::string platform;    // "os/arch[/variant]" to take from an index; empty: the host's
  std::string select;      // which image of an archive holding several; empty: the only one
  int piece_size = 256 << 10;
  int zstd_level = 19;
  // Delta artifacts (docs/delta.md): each new layer gets a delta from each of
  // the last `delta_releases` releases of the app (0: none), kept only when
  // smaller than `delta_max_ratio` x the layer's full artifact.
  int delta_releases = 3;
  double delta_max_ratio = 0.9;
  int delta_threads = 2;
  Duration role_expiry = std::chrono::hours(24 * 365);  // of a staged app role version
  // For an app signed offline: also stage the release into the top-level
  // targets (pending/<W>.targets.json, for the offline targets key), which
  // is all a node running 0.1.0 reads (docs/signing.md).
  bool also_top_level = false;
  // When > 0: the release's offline validity window, from now for this many
  // days (docs/metadata.md); at most what the repository's root allows.
  uint32_t offline_valid_days = 0;
};

struct PublishOutcome {
  metadata::Release release;
  std::string target_name;             // apps/<app>/release-<version>.json
  std::string pending_path;            // the staged, unsigned app role version ("": signed online)
  std::string pending_top_level_path;  // with also_top_level: the staged top-level targets
  size_t artifacts_made = 0;
  size_t artifacts_reused = 0;
  size_t deltas_made = 0;
  size_t deltas_skipped = 0;                // not smaller than delta_max_ratio x the full artifact
  std::vector<std::string> recovery_notes;  // what an earlier crash left and was cleaned
};

// Reads and validates an app spec for `app`; returns its JSON as written.
Result<Json> LoadAppSpec(const std::string& path, const std::string& app);

Result<PublishOutcome> PublishImage(const PublishRequest& request, const Clock& clock,
                                    const PublishProgressFn& progress);

// Tells the dashboard's releases table about every signed release in
// `targets` (idempotent).
Status RecordReleases(const RepositoryLayout& repo, const metadata::TargetsMetadata& targets,
                      const Clock& clock);

// Every release devices can see now (following timestamp.json), by app, in
// version order.
Result<std::map<std::string, std::vector<metadata::Release>>> ListPublishedReleases(
    const RepositoryLayout& repo);

}  // namespace flotilla::tracker
