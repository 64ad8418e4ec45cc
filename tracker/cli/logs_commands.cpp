// `flotilla-tracker logs DEVICE APP` (docs/logs.md): asks a device for its
// app's recent log, waits for the upload and prints it; --follow asks again
// every few seconds and prints what is new.
#include <fmt/core.h>

#include <chrono>
#include <memory>
#include <thread>

#include "core/clock.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/fleet/rollout.h"
#include "tracker/storage/device_db.h"
#include "tracker/storage/log_store.h"
#include "tracker/storage/operator_store.h"

namespace flotilla::tracker {
namespace {

struct LogsFlags {
  DatabaseFlags database;
  std::string device;
  std::string app;
  std::string since;
  bool follow = false;
  bool json = false;
  int64_t wait_s = 120;
  int64_t interval_s = 5;
};

// Asks once and waits for the answer; nullopt when the wait passed.
Result<std::optional<LogRequest>> AskAndWait(SqlEngine& db, const LogDevice& device,
                                             const LogsFlags& flags, int64_t since_s) {
  ASSIGN_OR_RETURN(const int64_t id,
                   CreateLogRequest(db, LocalActor(), device.device_id, device.name, flags.app,
                                    since_s, UnixSeconds(SystemClock::Instance())));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(flags.wait_s);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSIGN_OR_RETURN(auto request, GetLogRequest(db, id, UnixSeconds(SystemClock::Instance())));
    if (!request.has_value()) return NotFound("log request " + std::to_string(id) + " expired");
    if (request->uploaded_at != 0) return request;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return std::optional<LogRequest>();
}

// The part of `now` after the longest suffix of `before` that begins it:
// what a later upload of the same ring added.
std::string NewPart(const std::string& before, const std::string& now) {
  for (size_t start = 0; start < before.size(); ++start) {
    const std::string_view tail = std::string_view(before).substr(start);
    if (std::string_view(now).starts_with(tail)) return now.substr(tail.size());
  }
  return now;
}

int RunLogs(const LogsFlags& flags) {
  const char* cmd = "logs";
  int64_t since_s = 0;
  if (!flags.since.empty()) {
    auto parsed = ParseSeconds(flags.since);
    if (!parsed.ok()) return FailCommand(cmd, InvalidArgument("--since: a duration (10m, 2h)"));
    since_s = *parsed;
  }
  auto url = FleetDatabaseUrl(flags.database);
  if (!url.ok()) return FailCommand(cmd, url.status());
  auto db = SqlEngine::Open(*url);
  if (!db.ok()) return FailCommand(cmd, db.status());
  if (Status st = MigrateTrackerSchema(**db); !st.ok()) return FailCommand(cmd, st);
  auto device = FindLogDevice(**db, flags.device);
  if (!device.ok()) return FailCommand(cmd, device.status());
  std::string shown;
  for (bool first = true; first || flags.follow; first = false) {
    if (!first) std::this_thread::sleep_for(std::chrono::seconds(flags.interval_s));
    auto answer = AskAndWait(**db, *device, flags, since_s);
    if (!answer.ok()) return FailCommand(cmd, answer.status());
    if (!answer->has_value()) {
      return FailCommand(
          cmd, Unavailable(fmt::format("device '{}' did not upload within {} s (it uploads at its "
                                       "next contact; the request stays open for 10 min)",
                                       device->name, flags.wait_s)));
    }
    const LogRequest& got = **answer;
    if (flags.json) {
      fmt::print("{}\n", Json{{"id", got.id},
                              {"device", device->name},
                              {"app", got.app},
                              {"uploaded_at", got.uploaded_at},
                              {"log", got.log}}
                             .dump());
    } else {
      fmt::print("{}", first ? got.log : NewPart(shown, got.log));
    }
    std::fflush(stdout);
    shown = got.log;
  }
  return 0;
}

}  // namespace

CommandAction RegisterLogsCommands(CLI::App& app) {
  auto f = std::make_shared<LogsFlags>();
  auto* cmd = app.add_subcommand("logs", "Fetch an app's recent log from a device (docs/logs.md)");
  cmd->footer(
      "\nStores a request the device answers at its next contact (within seconds when\n"
      "it holds a notice request), waits for its upload and prints it. Audited as\n"
      "logs.request by local:<unix user>. The log is the device's in-memory ring of the\n"
      "app's output, at most 256 KiB (older bytes are cut, with a marker line), with\n"
      "every secret value the device holds replaced by [redacted].\n"
      "  flotilla-tracker logs screen-12 web --since 10m --repository R\n"
      "  flotilla-tracker logs screen-12 web --follow --repository R\n"
      "Database: --repository DIR, --database-url URL or --config FILE.");
  cmd->add_option("device", f->device, "Device name (or id)")->required();
  cmd->add_option("app", f->app, "App name")->required();
  cmd->add_option("--since", f->since,
                  "Only lines of this recent window (10m, 1h), when the "
                  "device keeps line times; else the whole ring");
  cmd->add_flag("--follow", f->follow, "Ask again every --interval seconds, print what is new");
  cmd->add_option("--wait", f->wait_s, "Seconds to wait for each upload (120)")
      ->check(CLI::Range(int64_t{1}, int64_t{600}));
  cmd->add_option("--interval", f->interval_s, "Seconds between --follow requests (5)")
      ->check(CLI::Range(int64_t{1}, int64_t{3600}));
  cmd->add_flag("--json", f->json, "Print one JSON document per upload");
  cmd->add_option("--repository", f->database.repository,
                  "Tracker repository directory (its tracker.db is the database)");
  cmd->add_option("--database-url", f->database.database_url,
                  "sqlite:PATH or postgresql://... (as serve's database_url)");
  cmd->add_option("--config", f->database.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  return [f, cmd] { return *cmd ? RunLogs(*f) : -1; };
}

}  // namespace flotilla::tracker
