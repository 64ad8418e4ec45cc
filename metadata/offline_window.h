// The offline validity window (docs/metadata.md, "The offline validity
// window"): how long a release may be used while the device cannot reach its
// tracker, after its timestamp and snapshot expired. The release's signer
// sets it in the target's `custom.offline_window`; root caps its length
// (RootMetadata::offline_window_max_days).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/status.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

struct Release;
class TufClient;

// Whether a release's window may stand in for expired metadata: only while
// the device cannot reach its tracker (TufClient::AllowOfflineWindow).
enum class OfflineWindowUse { kIgnored, kAllowed };

struct OfflineWindow {
  WallTime start;  // the signer vouches this time has passed
  WallTime end;    // exclusive
  bool operator==(const OfflineWindow&) const = default;
};

// {"start": "YYYY-MM-DDTHH:MM:SSZ", "end": ...}, start < end; unknown members
// are ignored (a newer signer may add some).
Result<OfflineWindow> ParseOfflineWindow(const Json& json);
Json OfflineWindowToJson(const OfflineWindow& window);

// A window of `days` from `start`.
OfflineWindow OfflineWindowOfDays(WallTime start, uint32_t days);

// Refuses a window longer than `root` allows (no cap: none allowed). What the
// tracker checks before it stages or accepts a release with a window.
Status CheckWindowAllowed(const OfflineWindow& window, const RootMetadata& root);

// CheckWindowAllowed for the newest release of each app `targets` lists (what
// `accept` checks of a signed targets or app role version).
Status CheckReleaseWindowsAllowed(const TargetsMetadata& targets, const RootMetadata& root);

// The device's rule: `release` may be used offline at `now` when it carries
// a window that root allows and start <= now < end. The message names the
// release and what fails (the window's end when it has passed).
Status CheckOfflineWindow(const Release& release, const RootMetadata& root, WallTime now);

// After client.Refresh() with the offline window allowed: Ok when nothing had
// expired; else CheckOfflineWindow on each of `used` at the refresh's start
// time, and the time floor raised to the earliest window start (never past
// it). REQUIRES: client.Refresh() succeeded.
Status ApplyOfflineWindow(TufClient& client, const std::vector<const Release*>& used);

}  // namespace flotilla::metadata
