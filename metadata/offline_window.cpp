#include "metadata/offline_window.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/json_object_reader.h"
#include "metadata/release.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata {
namespace {

constexpr std::chrono::seconds kDay{86400};

std::string NameOf(const Release& release) {
  return "release " + std::to_string(release.version) + " of " + release.app;
}

// Whole days, rounded up: a window one second over the cap is over it.
int64_t DaysOf(const OfflineWindow& window) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(window.end - window.start);
  return (seconds.count() + kDay.count() - 1) / kDay.count();
}

}  // namespace

Result<OfflineWindow> ParseOfflineWindow(const Json& json) {
  JsonObjectReader r(json, "offline_window", UnknownKeys::kIgnore);
  r.Require({"start", "end"});
  std::string start, end;
  r.String("start", start);
  r.String("end", end);
  RETURN_IF_ERROR(r.status());
  OfflineWindow window;
  ASSIGN_OR_RETURN(window.start, ParseTufTime(start).WithContext("offline_window.start"));
  ASSIGN_OR_RETURN(window.end, ParseTufTime(end).WithContext("offline_window.end"));
  if (window.end <= window.start) {
    return InvalidArgument("offline_window: end " + end + " is not after start " + start);
  }
  return window;
}

Json OfflineWindowToJson(const OfflineWindow& window) {
  return Json{{"start", FormatTufTime(window.start)}, {"end", FormatTufTime(window.end)}};
}

OfflineWindow OfflineWindowOfDays(WallTime start, uint32_t days) {
  const WallTime whole = std::chrono::floor<std::chrono::seconds>(start);
  return {whole, whole + kDay * days};
}

Status CheckWindowAllowed(const OfflineWindow& window, const RootMetadata& root) {
  if (!root.offline_window_max_days) {
    return FailedPrecondition("root allows no offline window (it sets no " +
                              std::string(kOfflineWindowCapField) + ")");
  }
  const int64_t days = DaysOf(window);
  if (days > *root.offline_window_max_days) {
    return FailedPrecondition("an offline window of " + std::to_string(days) +
                              " days is longer than the " +
                              std::to_string(*root.offline_window_max_days) +
                              " days root allows (" + std::string(kOfflineWindowCapField) + ")");
  }
  return Status::Ok();
}

Status CheckReleaseWindowsAllowed(const TargetsMetadata& targets, const RootMetadata& root) {
  ASSIGN_OR_RETURN(auto latest, LatestReleases(targets));
  for (const auto& [app, release] : latest) {
    if (!release.offline_window) continue;
    Status allowed = CheckWindowAllowed(*release.offline_window, root);
    if (!allowed.ok()) return FailedPrecondition(NameOf(release) + ": " + allowed.message());
  }
  return Status::Ok();
}

Status CheckOfflineWindow(const Release& release, const RootMetadata& root, WallTime now) {
  if (!release.offline_window) {
    return FailedPrecondition(NameOf(release) + " has no offline validity window");
  }
  const OfflineWindow& window = *release.offline_window;
  Status allowed = CheckWindowAllowed(window, root);
  if (!allowed.ok()) return FailedPrecondition(NameOf(release) + ": " + allowed.message());
  if (now < window.start) {
    return FailedPrecondition(NameOf(release) + " may be used offline only from " +
                              FormatTufTime(window.start) + " (now " + FormatTufTime(now) + ")");
  }
  if (now >= window.end) {
    return FailedPrecondition(NameOf(release) + " may be used offline only until " +
                              FormatTufTime(window.end) + " (now " + FormatTufTime(now) + ")");
  }
  return Status::Ok();
}

Status ApplyOfflineWindow(TufClient& client, const std::vector<const Release*>& used) {
  const auto& stale = client.stale_since();
  if (!stale) return Status::Ok();
  const std::string why = "metadata expired at " + FormatTufTime(*stale) + "; ";
  if (used.empty()) return FailedPrecondition(why + "it names no release to use offline");
  std::optional<WallTime> earliest_start;
  for (const Release* release : used) {
    Status usable = CheckOfflineWindow(*release, client.root(), client.update_start());
    if (!usable.ok()) return FailedPrecondition(why + usable.message());
    const WallTime start = release->offline_window->start;
    earliest_start = earliest_start ? std::min(*earliest_start, start) : start;
  }
  return client.RaiseTimeFloorTo(*earliest_start);
}

}  // namespace flotilla::metadata
