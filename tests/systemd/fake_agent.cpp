// A bad agent for the agent update tests (docs/agent-update.md, "Tests"):
// installed as an agent release's flotilla-node-full, it passes the install's
// self-check (`--version` prints "flotilla-node ...") and then misbehaves as
// FLOTILLA_FAKE_AGENT says, so that the launcher and the check must restore
// the previous agent. A test binary: nothing of it is in the product.
//
//   exit                 exits 1 at once
//   hang                 never sends READY=1, never exits
//   crash-after-ready    sends READY=1, then aborts a second later
//   ready-without-proof  sends READY=1 and serves no control API
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "node/systemd/sd_notify.h"

namespace {

void SendReady() {
  flotilla::Status problem;
  const auto notifier = flotilla::node::SdNotifier::FromEnvironment(true, &problem);
  notifier.Notify("READY=1\nSTATUS=fake agent").IgnoreError();
}

[[noreturn]] void Forever() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "--version") {
    std::printf("flotilla-node 0.0.0-fake\n");
    return 0;
  }
  const char* mode_env = std::getenv("FLOTILLA_FAKE_AGENT");
  const std::string mode = mode_env == nullptr ? "" : mode_env;
  std::fprintf(stderr, "fake agent %d: %s\n", static_cast<int>(::getpid()), mode.c_str());
  if (mode == "hang") Forever();
  if (mode == "crash-after-ready") {
    SendReady();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::abort();
  }
  if (mode == "ready-without-proof") {
    SendReady();
    Forever();
  }
  return 1;  // "exit", or no mode
}
