#include "tracker/fleet/rollout.h"

#include <algorithm>
#include <charconv>
#include <queue>

namespace flotilla::tracker {
namespace {

constexpr std::pair<RolloutState, std::string_view> kStateNames[] = {
    {RolloutState::kRunning, "running"},
    {RolloutState::kPaused, "paused"},
    {RolloutState::kHalted, "halted"},
    {RolloutState::kAborted, "aborted"},
    {RolloutState::kCompleted, "completed"}};

// FNV-1a, 64 bits: a stable order that does not depend on the standard library.
uint64_t StableHash(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// What failed, with the kind the report named, if any.
std::string Describe(const ReportSeen& r, uint64_t release) {
  const std::string on = " on release " + std::to_string(release);
  const std::string kind = r.failure == "verification"      ? "verification failed"
                           : r.failure == "deploy"          ? "deployment failed"
                           : r.failure == "health"          ? "health check failed"
                           : r.failure == "agent-probation" ? "the new agent did not prove itself"
                                                            : "";
  if (r.state == "rolled_back") {
    return "switch rolled back" + (kind.empty() ? "" : ", " + kind) + " (runs release " +
           r.release + ")";
  }
  if (r.state == "failed") return (kind.empty() ? "failed" : kind) + on;
  return "health check failed" + on;
}

}  // namespace

bool IsRetriedFailure(std::string_view kind) { return kind == "transfer" || kind == "disk"; }

std::string_view RolloutStateName(RolloutState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "unknown";
}

std::optional<RolloutState> ParseRolloutState(std::string_view name) {
  for (const auto& [s, n] : kStateNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

Result<uint32_t> ParseShare(std::string_view text) {
  const std::string shown(text);
  if (text.empty() || text.back() != '%') {
    return InvalidArgument("'" + shown + "' is not a percentage such as 5% or 2.5%");
  }
  text.remove_suffix(1);
  const size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  uint32_t w = 0;
  uint32_t f = 0;
  auto parse = [](std::string_view s, uint32_t& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size();
  };
  const bool ok = !whole.empty() && parse(whole, w) && fraction.size() <= 2 &&
                  (dot == std::string_view::npos || (!fraction.empty() && parse(fraction, f)));
  if (!ok) return InvalidArgument("'" + shown + "' is not a percentage such as 5% or 2.5%");
  if (fraction.size() == 1) f *= 10;
  if (w > 100 || (w == 100 && f != 0)) {
    return InvalidArgument("'" + shown + "' is more than 100%");
  }
  return w * 100 + f;
}

std::string ShareText(uint32_t bp) {
  std::string text = std::to_string(bp / 100);
  if (bp % 100 != 0) {
    text += "." + std::to_string(bp % 100 / 10);
    if (bp % 10 != 0) text += std::to_string(bp % 10);
  }
  return text + "%";
}

Result<std::vector<uint32_t>> ParseWaves(std::string_view text) {
  std::vector<uint32_t> waves;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == std::string_view::npos ? comma : comma - start);
    ASSIGN_OR_RETURN(uint32_t share, ParseShare(item));
    if (share == 0) return InvalidArgument("a wave of 0% holds no device");
    if (!waves.empty() && share <= waves.back()) {
      return InvalidArgument("waves are cumulative shares and must increase: " + ShareText(share) +
                             " follows " + ShareText(waves.back()));
    }
    waves.push_back(share);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (waves.back() != kWholeShare) {
    return InvalidArgument("the last wave must be 100% (every device), not " +
                           ShareText(waves.back()));
  }
  if (waves.size() > 20) return InvalidArgument("at most 20 waves");
  return waves;
}

Result<int64_t> ParseSeconds(std::string_view text) {
  const std::string shown(text);
  int64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        unit = 1;
        text.remove_suffix(1);
        break;
      case 'm':
        unit = 60;
        text.remove_suffix(1);
        break;
      case 'h':
        unit = 3600;
        text.remove_suffix(1);
        break;
      case 'd':
        unit = 86400;
        text.remove_suffix(1);
        break;
      default:
        break;
    }
  }
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 0 ||
      value > 365 * 86400 / unit) {
    return InvalidArgument("'" + shown + "' is not a duration such as 90s, 30m, 1h or 0");
  }
  return value * unit;
}

size_t CumulativeSize(uint32_t share, size_t total) {
  return static_cast<size_t>((static_cast<uint64_t>(share) * total + kWholeShare - 1) /
                             kWholeShare);
}

std::map<std::string, size_t> AssignWaves(int64_t rollout_id, const std::vector<uint32_t>& waves,
                                          const std::vector<FleetDevice>& devices) {
  // Each site's devices in their rollout order.
  std::map<std::string, std::vector<std::pair<uint64_t, std::string>>> sites;
  const std::string salt = std::to_string(rollout_id) + ":";
  for (const FleetDevice& d : devices) {
    sites[d.site].emplace_back(StableHash(salt + d.device_id), d.device_id);
  }
  struct Site {
    std::string name;
    std::vector<std::string> order;
    size_t taken = 0;
  };
  std::vector<Site> list;
  for (auto& [name, entries] : sites) {
    std::sort(entries.begin(), entries.end());
    Site site{name, {}, 0};
    for (auto& e : entries) site.order.push_back(std::move(e.second));
    list.push_back(std::move(site));
  }
  std::map<std::string, size_t> wave_of;
  size_t assigned = 0;
  for (size_t w = 0; w < waves.size(); ++w) {
    const size_t target = CumulativeSize(waves[w], devices.size());
    // Deficit of a site, scaled by kWholeShare: its share of the wave's
    // cumulative size minus what it has given. Largest first, then the
    // larger site, then the name.
    auto deficit = [&](size_t i) {
      return static_cast<int64_t>(waves[w]) * static_cast<int64_t>(list[i].order.size()) -
             static_cast<int64_t>(kWholeShare) * static_cast<int64_t>(list[i].taken);
    };
    auto less = [&](size_t a, size_t b) {
      if (deficit(a) != deficit(b)) return deficit(a) < deficit(b);
      if (list[a].order.size() != list[b].order.size()) {
        return list[a].order.size() < list[b].order.size();
      }
      return list[a].name > list[b].name;
    };
    std::priority_queue<size_t, std::vector<size_t>, decltype(less)> heap(less);
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].taken < list[i].order.size()) heap.push(i);
    }
    while (assigned < target && !heap.empty()) {
      const size_t i = heap.top();
      heap.pop();
      wave_of[list[i].order[list[i].taken++]] = w;
      ++assigned;
      if (list[i].taken < list[i].order.size()) heap.push(i);
    }
  }
  return wave_of;
}

bool RolloutCovers(const Rollout& rollout, const FleetState& state, const FleetDevice& device) {
  if (rollout.group.empty()) return true;
  auto group = state.groups.find(rollout.group);
  return group != state.groups.end() && group->second.selector.Matches(device);
}

std::optional<RolloutLimits::Placement> RolloutLimits::PlacementOf(const FleetDevice& device,
                                                                   std::string_view app) const {
  for (const Rollout& r : rollouts_) {
    if (r.app != app) continue;
    if (r.state == RolloutState::kCompleted) return std::nullopt;
    const auto members = members_.find(r.id);
    const auto member = members == members_.end() ? std::map<std::string, size_t>::const_iterator{}
                                                  : members->second.find(device.device_id);
    const bool is_member = members != members_.end() && member != members->second.end();
    if (!is_member && !RolloutCovers(r, state_, device)) return std::nullopt;
    return Placement{&r, is_member ? member->second : r.waves.size() - 1};
  }
  return std::nullopt;
}

std::optional<uint64_t> RolloutLimits::Ceiling(const FleetDevice& device,
                                               std::string_view app) const {
  const std::optional<Placement> placed = PlacementOf(device, app);
  if (!placed) return std::nullopt;
  const Rollout& r = *placed->rollout;
  if (r.state != RolloutState::kAborted && placed->wave <= r.current_wave) return r.release;
  return r.release - 1;  // 0: nothing below the rollout's release
}

RolloutStep EvaluateRollout(Rollout& rollout, std::vector<RolloutMember>& members,
                            const std::map<std::string, ReportSeen>& reports, int64_t now) {
  const std::string release = std::to_string(rollout.release);
  for (RolloutMember& m : members) {
    auto it = reports.find(m.device_id);
    if (m.sent_at == 0 || it == reports.end()) continue;
    const ReportSeen& r = it->second;
    // A report of another app says nothing of this one; a report from
    // before the device was sent the release is about an earlier switch.
    if (r.app != rollout.app || r.reported_at < m.sent_at) continue;
    m.last_report_at = r.reported_at;
    const bool on_release = r.release == release;
    if (on_release && r.state == "running" && r.health == "healthy") {
      if (m.healthy_since == 0) m.healthy_since = r.reported_at;
      m.failure.clear();
    } else if ((on_release && r.state == "running" && r.health == "unhealthy") ||
               (on_release && r.state == "failed" && !IsRetriedFailure(r.failure)) ||
               r.state == "rolled_back") {
      m.healthy_since = 0;
      m.failure = Describe(r, rollout.release);
    } else {  // fetching (or retrying it), verifying, switching, idle: no verdict yet
      m.healthy_since = 0;
      m.failure.clear();
    }
  }

  RolloutStep step;
  auto count = [&]() {
    step.waves.assign(rollout.waves.size(), WaveCounts{});
    for (size_t w = 0; w < step.waves.size(); ++w) {
      step.waves[w].started = w <= rollout.current_wave;
    }
    for (const RolloutMember& m : members) {
      if (m.wave >= step.waves.size()) continue;
      WaveCounts& c = step.waves[m.wave];
      ++c.size;
      if (!c.started) {
        ++c.pending;
      } else if (!m.failure.empty()) {
        ++c.failed;
      } else if (m.healthy_since != 0) {
        ++(now - m.healthy_since >= rollout.soak_s ? c.healthy : c.soaking);
      } else {
        ++c.pending;
        if (m.last_report_at == 0 || m.last_report_at < m.sent_at) ++c.silent;
      }
    }
  };
  count();
  if (rollout.state != RolloutState::kRunning) return step;

  // Halt: a started wave past the threshold.
  for (size_t w = 0; w <= rollout.current_wave && w < step.waves.size(); ++w) {
    const WaveCounts& c = step.waves[w];
    if (c.failed * kWholeShare <= static_cast<uint64_t>(rollout.max_failures) * c.size) continue;
    std::string why = "wave " + std::to_string(w + 1) + ": " + std::to_string(c.failed) + " of " +
                      std::to_string(c.size) + " devices failed (at most " +
                      ShareText(rollout.max_failures) + " may):";
    size_t named = 0;
    for (const RolloutMember& m : members) {
      if (m.wave != w || m.failure.empty()) continue;
      if (++named > 10) {
        why += " ...";
        break;
      }
      why += std::string(named > 1 ? ";" : "") + " " + m.name + ": " + m.failure;
    }
    rollout.state = RolloutState::kHalted;
    rollout.reason = why;
    rollout.updated_at = now;
    step.changed = true;
    return step;
  }

  // Advance through every wave that is done (an empty wave is done at once).
  while (true) {
    const WaveCounts& c = step.waves[rollout.current_wave];
    const bool timed_out = now - rollout.wave_started_at >= rollout.wave_timeout_s;
    const size_t counted = c.size - (timed_out ? c.silent : 0);
    const uint64_t need = static_cast<uint64_t>(kWholeShare - rollout.max_failures) * counted;
    const bool done =
        c.size == 0 || (c.healthy > 0 && static_cast<uint64_t>(c.healthy) * kWholeShare >= need);
    if (!done) break;
    step.changed = true;
    rollout.updated_at = now;
    if (rollout.current_wave + 1 == rollout.waves.size()) {
      rollout.state = RolloutState::kCompleted;
      rollout.reason.clear();
      for (const RolloutMember& m : members) step.released.push_back(m.device_id);
      break;
    }
    ++rollout.current_wave;
    rollout.wave_started_at = now;
    for (RolloutMember& m : members) {
      if (m.wave != rollout.current_wave) continue;
      m.sent_at = now;
      step.released.push_back(m.device_id);
    }
    count();
  }
  return step;
}

}  // namespace flotilla::tracker
