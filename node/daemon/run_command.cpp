// `flotilla-node run --config FILE`: the daemon's process. The daemon runs on
// one ThreadExecutor; this thread only waits for SIGINT/SIGTERM and then
// stops the daemon on the executor's own thread.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <future>

#include "node/commands.h"
#include "node/daemon/node_config.h"
#include "node/daemon/node_daemon.h"

namespace flotilla::node {
namespace {

// Runs `task` on `executor` and waits for it.
void RunOn(Executor& executor, const std::function<void()>& task) {
  std::promise<void> done;
  executor.Post([&] {
    task();
    done.set_value();
  });
  done.get_future().wait();
}

int RunDaemon(const std::string& config_path) {
  auto config = LoadNodeConfig(config_path);
  if (!config.ok()) {
    fmt::print(stderr, "run: {}\n", config.status().ToString());
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("flotilla-node");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + config->device_name + ": %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // the executor's thread inherits it
  signal(SIGPIPE, SIG_IGN);

  ThreadExecutor executor;
  std::unique_ptr<NodeDaemon> daemon;
  Status created;
  RunOn(executor, [&] {
    auto made = NodeDaemon::Create(*config, SystemClock::Instance(), executor);
    if (!made.ok()) {
      created = made.status();
      return;
    }
    daemon = std::move(*made);
    daemon->Start();
  });
  if (!created.ok()) {
    spdlog::error("run: {}", created.ToString());
    return 1;
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("stopping on signal {}", signal_number);
  RunOn(executor, [&] { daemon.reset(); });
  return 0;
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
