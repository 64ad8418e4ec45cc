// The MetadataRefresher `serve` runs (tracker/metadata_refresher.h): re-signs
// the repository's timestamp (and snapshot, targets) before they expire,
// with the online keys in <root>/keys (docs/publish.md).
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "metadata/repository.h"
#include "tracker/publish/metadata_refresher.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

class RepositoryRefresher final : public MetadataRefresher {
 public:
  // `clock` signs the new expiries; it must outlive the refresher.
  RepositoryRefresher(RepositoryLayout repo, const Clock& clock,
                      metadata::RepositoryOptions options = {})
      : repo_(std::move(repo)), clock_(clock), options_(options) {}

  // Under the publish lock (when a publish holds it: try again in 30 s),
  // re-signs each role whose remaining validity is under half its lifetime:
  // targets (and everything below it), else snapshot (+ timestamp), else the
  // timestamp. The timestamp is also re-signed when it expires later than
  // its lifetime from now (signed by `publish`, or before the lifetime was
  // shortened). The timestamp key is required; targets and snapshot keys are
  // used when present. Returns when the next role reaches half its lifetime
  // (at least a minute or a quarter of the timestamp's lifetime, at most an
  // hour).
  Result<Duration> Refresh(WallTime now) override { return RefreshAbove(now, {}); }
  // Refresh with versions above `published`; a timestamp whose version is
  // below the published one (devices may have seen the newer one) is
  // re-signed at once.
  Result<Duration> RefreshAbove(WallTime now,
                                const std::map<std::string, uint64_t>& published) override;

 private:
  RepositoryLayout repo_;
  const Clock& clock_;
  metadata::RepositoryOptions options_;
};

// A refresher for `repository` when it has a timestamp key (made by `init`);
// null (serve then runs without re-signing) when it has none. `options`
// gives the lifetimes of the versions it signs.
std::unique_ptr<MetadataRefresher> MakeRepositoryRefresher(
    const std::string& repository, const Clock& clock, metadata::RepositoryOptions options = {});

}  // namespace flotilla::tracker
