// `flotilla-node run --config FILE`: the daemon's process. The daemon runs on
// one ThreadExecutor; this thread only waits for SIGINT/SIGTERM and then
// stops the daemon on the executor's own thread.
//
// Under systemd (Type=notify, docs/node.md "Running under systemd") it sends
// READY=1 once the daemon is created and started, STOPPING=1 on a stop
// signal, and keeps the watchdog fed: while waiting for a signal this thread
// posts a ping task to the executor every half watchdog period (at most
// 30 s), and the task sends WATCHDOG=1 and a STATUS= summary. A stuck event
// loop runs no ping, so systemd restarts the node; the loop never waits for
// blocking work (the daemon's worker lanes do), so a healthy loop pings on time.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <future>

#include "node/commands.h"
#include "node/daemon/node_config.h"
#include "node/daemon/node_daemon.h"
#include "node/systemd/sd_notify.h"

namespace flotilla::node {
namespace {

constexpr std::chrono::seconds kMaxStatusPeriod(30);

// Runs `task` on `executor` and waits for it.
void RunOn(Executor& executor, const std::function<void()>& task) {
  std::promise<void> done;
  executor.Post([&] {
    task();
    done.set_value();
  });
  done.get_future().wait();
}

// One line for `systemctl status`: "kiosk-1 (p2p): signage running release 3;
// clock downloading release 2 (45%, 3 peers)".
std::string Summary(const NodeView& view) {
  std::string line = view.device_name + " (" + view.transfer_mode + "):";
  for (const AppView& app : view.apps) {
    line += (&app == &view.apps.front() ? " " : "; ") + app.name + " " + app.phase;
    if (app.target_release != 0 && app.bytes_total != 0) {
      line += fmt::format(" release {} ({}%, {} peers)", app.target_release,
                          app.bytes_done * 100 / app.bytes_total, app.peers);
    } else if (app.running_release != 0) {
      line += " release " + std::to_string(app.running_release);
    } else if (app.ready_release != 0) {
      line += " release " + std::to_string(app.ready_release);
    }
  }
  if (!view.last_refresh_error.empty()) line += "; cannot update: " + view.last_refresh_error;
  if (!view.agent.rolled_back.empty()) line += "; agent rolled back " + view.agent.rolled_back;
  return line;
}

// Waits for a signal of `signals`; with a watchdog, ticks it every `period`.
int WaitForStopSignal(const sigset_t& signals, ExecutorWatchdog* watchdog, Duration period) {
  if (watchdog == nullptr) {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    return signal_number;
  }
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(period);
  const timespec timeout{static_cast<time_t>(seconds.count()),
                         static_cast<long>(std::chrono::nanoseconds(period - seconds).count())};
  for (;;) {
    const int signal_number = sigtimedwait(&signals, nullptr, &timeout);
    if (signal_number > 0) return signal_number;
    if (errno == EAGAIN) watchdog->Tick();  // EINTR: wait again
  }
}

// No core dump of the daemon and no ptrace of it by its own user: it holds
// the device key and the secrets it opens for its apps (docs/config.md,
// "Secrets"). Its children get dumpable back when they exec.
Status DisableCoreDumps() {
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0)
    return IOErrorFromErrno("setrlimit(RLIMIT_CORE)", errno);
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return IOErrorFromErrno("prctl(PR_SET_DUMPABLE)", errno);
  }
  return Status::Ok();
}

void Notify(const SdNotifier& notifier, const std::string& state) {
  Status sent = notifier.Notify(state);
  if (!sent.ok()) spdlog::warn("systemd: {}", sent.ToString());
}

int RunDaemon(const std::string& config_path) {
  // First: a SIGTERM while starting stops the daemon cleanly once it is up.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // the executor's thread inherits it
  signal(SIGPIPE, SIG_IGN);
  Status notify_problem;
  const SdNotifier notifier =
      SdNotifier::FromEnvironment(/*unset_environment=*/true, &notify_problem);
  auto config = LoadNodeConfig(config_path);
  if (!config.ok()) {
    fmt::print(stderr, "run: {}\n", config.status().ToString());
    notifier.Notify(StatusLine("bad configuration: " + config.status().ToString())).IgnoreError();
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("flotilla-node");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + config->device_name + ": %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  if (!notify_problem.ok()) spdlog::warn("systemd: {}", notify_problem.ToString());
  if (Status undumpable = DisableCoreDumps(); !undumpable.ok()) {
    spdlog::warn("core dumps stay on: {}", undumpable.ToString());
  }

  ThreadExecutor executor;
  std::unique_ptr<NodeDaemon> daemon;
  Status created;
  std::string summary;
  std::atomic<bool> restart = false;
  RunOn(executor, [&] {
    auto made = NodeDaemon::Create(*config, SystemClock::Instance(), executor);
    if (!made.ok()) {
      created = made.status();
      return;
    }
    daemon = std::move(*made);
    // A staged agent release: stop as on SIGTERM (the apps keep running),
    // then exit with the code that makes systemd start the unit again.
    daemon->SetRestart([&restart] {
      restart = true;
      ::kill(::getpid(), SIGTERM);
    });
    daemon->Start();
    summary = Summary(daemon->View());
  });
  if (!created.ok()) {
    spdlog::error("run: {}", created.ToString());
    Notify(notifier, StatusLine("could not start: " + created.ToString()));
    return 1;
  }
  Notify(notifier, "READY=1\n" + StatusLine(summary));

  std::optional<ExecutorWatchdog> watchdog;
  Duration tick = kMaxStatusPeriod;
  if (notifier.enabled()) {
    // Runs on the executor, before the task that resets `daemon`.
    watchdog.emplace(notifier, executor, [&daemon] { return Summary(daemon->View()); });
    if (auto period = notifier.watchdog_period()) tick = std::min<Duration>(tick, *period / 2);
  }
  const int signal_number = WaitForStopSignal(stop_signals, watchdog ? &*watchdog : nullptr, tick);
  const std::string why = restart ? "restarting into the staged agent release"
                                  : "stopping on signal " + std::to_string(signal_number);
  spdlog::info("{}", why);
  Notify(notifier, "STOPPING=1\n" + StatusLine(why));
  RunOn(executor, [&] { daemon.reset(); });
  return restart ? kAgentRestartExitCode : 0;
}

}  // namespace

CommandAction RegisterRunCommand(CLI::App& app) {
  auto config_path = std::make_shared<std::string>();
  auto* run = app.add_subcommand(
      "run", "Run the daemon: follow the configured apps' signed releases and fetch them");
  run->add_option("--config", *config_path, "Configuration file (JSON, docs/node.md)")->required();
  return [=] {
    if (!*run) return -1;
    return RunDaemon(*config_path);
  };
}

}  // namespace flotilla::node
