// `flotilla-node status|apps|logs|update|rollback|lock|unlock`: clients of the daemon's
// control API (docs/node.md, "Control API"). Exit codes: 0 ok, 1 error, 2 usage.
#include "node/control/control_commands.h"

#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "node/control/control_protocol.h"
#include "node/control/control_server.h"
#include "node/control/status_format.h"

namespace flotilla::node {
namespace {

using namespace std::chrono_literals;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// Where the daemon listens: --socket, else control_socket of --config.
struct Target {
  std::string config = "/etc/flotilla/node.json";
  std::string socket;
  SocketOfConfig socket_of_config;
};

struct ControlFlags {
  Target target;
  bool json = false;
  bool watch = false;
  bool now = false;
  std::string app;
  std::string bytes;     // parsed here: a usage error must exit with 2
  std::string lock_for;  // lock --for, parsed here for the same reason
  std::string reason;
};

void AddTargetOptions(CLI::App* command, Target& target) {
  command->add_option("--config", target.config,
                      "Node configuration to read control_socket from (default "
                      "/etc/flotilla/node.json)");
  command->add_option("--socket", target.socket,
                      "The daemon's control socket (instead of --config)");
  command->allow_extras();  // unknown arguments are refused by Usage() with exit code 2
}

Result<std::string> SocketPath(const Target& target) {
  if (!target.socket.empty()) return target.socket;
  auto socket = target.socket_of_config(target.config);
  if (!socket.ok()) {
    return Status(socket.status().code(),
                  "cannot find the control socket: " + socket.status().message() +
                      " (pass --config FILE or --socket PATH)");
  }
  return socket;
}

Result<Json> Ask(const Target& target, const Json& request, Duration timeout) {
  ASSIGN_OR_RETURN(std::string path, SocketPath(target));
  return ControlRequest(path, request, timeout);
}

int Fail(std::string_view command, const Status& status) {
  fmt::print(stderr, "flotilla-node {}: {}\n", command, status.message());
  return kExitError;
}

// Non-zero when `command` got arguments it does not know.
int Usage(const CLI::App* command) {
  if (command->remaining().empty()) return 0;
  fmt::print(stderr, "flotilla-node {}: unexpected argument '{}'\n\n{}", command->get_name(),
             command->remaining().front(), command->help());
  return kExitUsage;
}

Result<NodeView> FetchView(const Target& target) {
  ASSIGN_OR_RETURN(Json json, Ask(target, {{"op", "status"}}, 10s));
  return ViewFromJson(json);
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

size_t CountLines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

// Redraws the status in place about once a second: until interrupted with
// --watch, else until no transfer runs. Plain blocks, one after another, when
// stdout is not a terminal.
int WatchStatus(const Target& target, bool forever, bool terminal) {
  size_t drawn_lines = 0;
  for (bool first = true;; first = false) {
    auto view = FetchView(target);
    if (!view.ok()) return Fail("status", view.status());
    std::string text = FormatStatus(*view, NowUnix(), terminal);
    if (terminal && drawn_lines > 0) fmt::print("\x1b[{}F\x1b[J", drawn_lines);
    if (!terminal && !first) fmt::print("\n");
    fmt::print("{}", text);
    std::fflush(stdout);
    drawn_lines = CountLines(text);
    if (!forever && !Transferring(*view)) return 0;
    std::this_thread::sleep_for(1s);
  }
}

int RunStatus(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  if (f.json) {
    auto json = Ask(f.target, {{"op", "status"}}, 10s);
    if (!json.ok()) return Fail("status", json.status());
    fmt::print("{}\n", DumpJson(*json, 2));
    return 0;
  }
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  if (f.watch || terminal) return WatchStatus(f.target, f.watch, terminal);
  auto view = FetchView(f.target);
  if (!view.ok()) return Fail("status", view.status());
  fmt::print("{}", FormatStatus(*view, NowUnix(), false));
  return 0;
}

int RunApps(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  auto view = FetchView(f.target);
  if (!view.ok()) return Fail("apps", view.status());
  fmt::print("{}", FormatApps(*view));
  return 0;
}

// Non-zero when `command` was given no app.
int NeedApp(const ControlFlags& f, const CLI::App* command) {
  if (!f.app.empty()) return 0;
  fmt::print(stderr, "flotilla-node {}: which app?\n\n{}", command->get_name(), command->help());
  return kExitUsage;
}

int RunLogs(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  if (int usage = NeedApp(f, command)) return usage;
  uint64_t bytes = kDefaultLogBytes;
  if (!f.bytes.empty()) {
    char* end = nullptr;
    bytes = std::strtoull(f.bytes.c_str(), &end, 10);
    if (*end != '\0' || f.bytes[0] == '-' || bytes == 0 || bytes > kMaxLogBytes) {
      fmt::print(stderr, "flotilla-node logs: --bytes must be a number in 1..{}\n", kMaxLogBytes);
      return kExitUsage;
    }
  }
  auto r = Ask(f.target, {{"op", "logs"}, {"app", f.app}, {"max_bytes", bytes}}, 10s);
  if (!r.ok()) return Fail("logs", r.status());
  const auto it = r->find("logs");
  if (it == r->end() || !it->is_string()) return Fail("logs", Internal("answer without logs"));
  const std::string& text = it->get_ref<const std::string&>();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

// update and rollback: one request, the daemon's message printed.
int RunMessage(std::string_view name, const ControlFlags& f, const Json& request,
               Duration timeout) {
  auto r = Ask(f.target, request, timeout);
  if (!r.ok()) return Fail(name, r.status());
  fmt::print("{}\n", r->value("message", std::string("done")));
  return 0;
}

int RunUpdate(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  if (!f.now) {
    fmt::print(stderr,
               "flotilla-node update: say --now (the daemon otherwise refreshes every "
               "refresh_interval_s)\n");
    return kExitUsage;
  }
  return RunMessage("update", f, {{"op", "update"}}, 10s);
}

// The switch back waits for the previous release's health check.
int RunRollback(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  if (int usage = NeedApp(f, command)) return usage;
  return RunMessage("rollback", f, {{"op", "rollback"}, {"app", f.app}}, 600s);
}

// "90s", "30m", "2h" or plain seconds; nullopt when malformed.
std::optional<int64_t> ParseLockDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's':
      digits.pop_back();
      break;
    case 'm':
      unit = 60, digits.pop_back();
      break;
    case 'h':
      unit = 3600, digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoll(digits) * unit;
}

// lock: the daemon defers the app's switch until the lock ends.
int RunLock(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  if (int usage = NeedApp(f, command)) return usage;
  Json request = {{"op", "lock"}, {"app", f.app}};
  if (!f.lock_for.empty()) {
    const std::optional<int64_t> seconds = ParseLockDuration(f.lock_for);
    if (!seconds || *seconds <= 0 || *seconds > kMaxLockSeconds) {
      fmt::print(stderr,
                 "flotilla-node lock: --for must be a duration from 1s to 24h (90s, 30m, 2h): "
                 "a lock ends by itself so that a forgotten one cannot block updates\n");
      return kExitUsage;
    }
    request["for_s"] = *seconds;
  }
  if (!f.reason.empty()) request["reason"] = f.reason;
  return RunMessage("lock", f, request, 10s);
}

int RunUnlock(const ControlFlags& f, const CLI::App* command) {
  if (int usage = Usage(command)) return usage;
  if (int usage = NeedApp(f, command)) return usage;
  return RunMessage("unlock", f, {{"op", "unlock"}, {"app", f.app}}, 10s);
}

CLI::App* AddCommand(CLI::App& app, const char* name, const char* help, const char* footer,
                     ControlFlags& flags) {
  CLI::App* command = app.add_subcommand(name, help);
  AddTargetOptions(command, flags.target);
  command->footer(footer);
  return command;
}

}  // namespace

std::function<int()> RegisterControlCommands(CLI::App& app, SocketOfConfig socket_of_config) {
  auto f = std::make_shared<ControlFlags>();
  f->target.socket_of_config = std::move(socket_of_config);
  auto* status = AddCommand(
      app, "status", "Show the node: apps, releases, state, errors; live progress while fetching",
      "In a terminal, a running transfer is shown as a progress bar redrawn every second\n"
      "until it ends (--watch: until Ctrl-C). Exit codes: 0 ok, 1 error, 2 usage.\n\n"
      "Examples:\n"
      "  flotilla-node status\n"
      "  flotilla-node status --watch\n"
      "  flotilla-node status --json | jq '.apps[] | {name, running_release}'\n"
      "  flotilla-node status --socket /var/lib/flotilla/control.sock",
      *f);
  status->add_flag("--json", f->json, "Print the daemon's view as JSON (docs/node.md)");
  status->add_flag("--watch", f->watch, "Redraw every second until interrupted");
  auto* apps =
      AddCommand(app, "apps", "One line per app: name, running release, state, container, restarts",
                 "Example:\n  flotilla-node apps --config /etc/flotilla/node.json", *f);
  auto* logs = AddCommand(app, "logs", "Print the end of an app's log (its current release)",
                          "Examples:\n  flotilla-node logs signage\n"
                          "  flotilla-node logs signage --bytes 4096",
                          *f);
  logs->add_option("app", f->app, "The app");
  logs->add_option("--bytes", f->bytes, "At most this many bytes, from the end (default 65536)");
  auto* update =
      AddCommand(app, "update", "Refresh the signed metadata now; a newer release starts at once",
                 "Without it the daemon refreshes every refresh_interval_s.\n\n"
                 "Example:\n  flotilla-node update --now",
                 *f);
  update->add_flag("--now", f->now, "Required: refresh now");
  auto* rollback =
      AddCommand(app, "rollback", "Switch an app back to its previous release (health-checked)",
                 "The release rolled back from is not deployed again; a newer one is.\n\n"
                 "Example:\n  flotilla-node rollback signage",
                 *f);
  rollback->add_option("app", f->app, "The app");
  auto* lock = AddCommand(
      app, "lock", "Defer an app's switch to a new release (the screen is in use)",
      "While the lock holds the app keeps running what it runs; new releases are still\n"
      "fetched. It ends by itself after --for (default 1h, at most 24h); locking again\n"
      "replaces it. Not deferred: a first install, replacing an app that is not\n"
      "running, a rollback.\n\n"
      "Example:\n  flotilla-node lock signage --for 30m --reason \"customer at the screen\"",
      *f);
  lock->add_option("app", f->app, "The app");
  lock->add_option("--for", f->lock_for, "How long: 90s, 30m, 2h (default 1h, at most 24h)");
  lock->add_option("--reason", f->reason, "Why, shown by status (at most 200 bytes)");
  auto* unlock = AddCommand(app, "unlock", "End an app's update lock; a held release switches",
                            "Example:\n  flotilla-node unlock signage", *f);
  unlock->add_option("app", f->app, "The app");
  return [=]() -> int {
    if (*status) return RunStatus(*f, status);
    if (*apps) return RunApps(*f, apps);
    if (*logs) return RunLogs(*f, logs);
    if (*update) return RunUpdate(*f, update);
    if (*rollback) return RunRollback(*f, rollback);
    if (*lock) return RunLock(*f, lock);
    if (*unlock) return RunUnlock(*f, unlock);
    return -1;
  };
}

}  // namespace flotilla::node
