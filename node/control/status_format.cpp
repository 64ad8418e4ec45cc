#include "node/control/status_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace flotilla::node {
namespace {

std::string Release(uint64_t release) { return release == 0 ? "-" : std::to_string(release); }

// Left-aligned columns separated by two spaces; the last column unpadded.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += i + 1 == row.size() ? row[i] : fmt::format("{:<{}}  ", row[i], widths[i]);
    }
    out += '\n';
  }
  return out;
}

std::string Progress(const AppView& a, bool terminal) {
  const int percent = a.bytes_total == 0 ? 0 : static_cast<int>(a.bytes_done * 100 / a.bytes_total);
  std::string figures = fmt::format("{:>3}%  {} / {}  {}/s  {} peer{}  ETA {}", percent,
                                    FormatBytes(a.bytes_done), FormatBytes(a.bytes_total),
                                    FormatBytes(static_cast<uint64_t>(a.rate_bytes_per_s)), a.peers,
                                    a.peers == 1 ? "" : "s", FormatDuration(a.eta_s));
  if (!terminal) return fmt::format("  release {} {}: {}\n", a.target_release, a.phase, figures);
  return fmt::format("  release {} {}  {}\n", a.target_release,
                     ProgressBar(a.bytes_done, a.bytes_total, 30), figures);
}

std::string NodeLines(const NodeView& v, int64_t now_unix) {
  std::string out =
      fmt::format("{} (site {}, {}, flotilla {}){}\n", v.device_name, v.site.empty() ? "-" : v.site,
                  v.transfer_mode, v.version, v.enrolled ? "" : ", not enrolled yet");
  if (v.last_refresh_unix > 0) {
    out += fmt::format("last refresh: {} UTC ({} ago)\n", FormatUtc(v.last_refresh_unix),
                       FormatDuration(std::max<int64_t>(0, now_unix - v.last_refresh_unix)));
  } else {
    out += "last refresh: never\n";
  }
  if (!v.last_refresh_error.empty()) out += "refresh error: " + v.last_refresh_error + "\n";
  out += fmt::format(
      "store {}, disk free {}; refreshes {} ok / {} failed; deploys {} ok / {} failed; hash "
      "failures {}\n",
      FormatBytes(v.store_bytes), FormatBytes(v.disk_free_bytes), v.refreshes_ok,
      v.refreshes_failed, v.deploys_ok, v.deploys_failed, v.hash_failures);
  if (v.fleet.state != "local" || !v.fleet.last_error.empty()) {
    out += fmt::format("fleet: {}", v.fleet.state);
    if (v.fleet.version > 0) {
      out += fmt::format(", document v{}, expires {} UTC", v.fleet.version,
                         FormatUtc(v.fleet.expires_unix));
    }
    out += "\n";
    if (!v.fleet.last_error.empty()) out += "fleet error: " + v.fleet.last_error + "\n";
  }
  if (!v.import_dir.path.empty()) {
    out += fmt::format("import_dir {}: {}, {} bundle(s) tried\n", v.import_dir.path,
                       v.import_dir.present ? "present" : "absent", v.import_dir.bundles_seen);
  }
  if (v.import.id > 0) {
    const ImportView& i = v.import;
    out += fmt::format("import {}: {}", i.bundle, i.step);
    if (i.finished_unix == 0 && i.bytes_total > 0) {
      out += fmt::format(" {} of {}", FormatBytes(i.bytes_done), FormatBytes(i.bytes_total));
    }
    out += (i.message.empty() ? "" : ": " + i.message) + "\n";
  }
  if (v.peers_banned > 0 || v.bytes_wasted > 0) {
    out += fmt::format("peers banned for bad data {}, bytes wasted {}\n", v.peers_banned,
                       FormatBytes(v.bytes_wasted));
  }
  return out;
}

bool IsTransferPhase(const std::string& phase) {
  return phase == "downloading" || phase == "verifying";
}

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, units[unit]);
}

std::string FormatUtc(int64_t unix_seconds) {
  // The calendar of <chrono>, not gmtime: time_t is 32-bit on armhf.
  using namespace std::chrono;
  const sys_seconds t{seconds(unix_seconds)};
  const sys_days day = floor<days>(t);
  const year_month_day date{day};
  const hh_mm_ss<seconds> time{t - day};
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     time.hours().count(), time.minutes().count(), time.seconds().count());
}

std::string FormatDuration(int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
}

std::string ProgressBar(uint64_t done, uint64_t total, int width) {
  int filled = total == 0 ? 0 : static_cast<int>(std::min(done, total) * width / total);
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

bool Transferring(const NodeView& view) {
  return std::any_of(view.apps.begin(), view.apps.end(),
                     [](const AppView& a) { return IsTransferPhase(a.phase); });
}

std::string FormatStatus(const NodeView& view, int64_t now_unix, bool terminal) {
  std::string out = NodeLines(view, now_unix);
  if (view.apps.empty()) return out + "\nno apps followed\n";
  const bool fleet = view.fleet.state != "local";
  std::vector<std::vector<std::string>> rows = {
      {"APP", "STATE", "RUNNING", "PREVIOUS", "READY", "TARGET", "CONTAINER", "RESTARTS"}};
  if (fleet) rows[0].insert(rows[0].begin() + 2, "DESIRED");
  for (const auto& a : view.apps) {
    rows.push_back({a.name, a.phase, Release(a.running_release), Release(a.previous_release),
                    Release(a.ready_release), Release(a.target_release), a.container_state,
                    std::to_string(a.restarts)});
    // "not assigned": the fleet document does not name the app.
    if (fleet) {
      rows.back().insert(rows.back().begin() + 2,
                         a.fleet_assigned ? Release(a.desired_release) : "not assigned");
    }
  }
  // The table, with each app's progress and last error under its row.
  std::string table = Table(rows);
  out += "\n";
  size_t line_start = table.find('\n') + 1;
  out += table.substr(0, line_start);
  for (const auto& a : view.apps) {
    size_t line_end = table.find('\n', line_start) + 1;
    out += table.substr(line_start, line_end - line_start);
    line_start = line_end;
    if (IsTransferPhase(a.phase) && a.bytes_total > 0) out += Progress(a, terminal);
    if (a.lock_until_unix > now_unix) {
      out += "  locked until " + FormatUtc(a.lock_until_unix) + " UTC" +
             (a.lock_reason.empty() ? "" : ": " + a.lock_reason) + "\n";
    }
    if (!a.waiting.empty()) {
      out += "  release " + Release(a.ready_release) + " " + a.waiting + "\n";
    }
    if (!a.last_error.empty()) out += "  last error: " + a.last_error + "\n";
  }
  return out;
}

std::string FormatApps(const NodeView& view) {
  std::vector<std::vector<std::string>> rows = {
      {"APP", "RUNNING", "STATE", "CONTAINER", "RESTARTS"}};
  for (const auto& a : view.apps) {
    rows.push_back({a.name, Release(a.running_release), a.phase, a.container_state,
                    std::to_string(a.restarts)});
  }
  return Table(rows);
}

}  // namespace flotilla::node
