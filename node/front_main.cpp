// flotilla-node's front end: a small static binary. `flotilla-node app ...`
// (the container runtime, driven directly) runs here; every other command
// is exec'd, unchanged and in the same process, into flotilla-node-full, the
// daemon binary with libtorrent, SQLite, libarchive and the rest. Starting a
// container from the command line then costs one exec of a static binary
// instead of loading two dozen shared libraries (docs/runtime.md, "Where the
// time goes").
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "node/commands.h"

namespace {

int RunAppCommands(int argc, char** argv) {
  CLI::App app{"flotilla-node: the device daemon (its `app` commands: the container runtime)"};
  app.name("flotilla-node");
  return flotilla::RunCommandGroups(app, "flotilla-node",
                                    {flotilla::node::RegisterAppCommands(app)}, argc, argv);
}

// Beside this binary (an install, a build tree), else the packaged place.
std::vector<std::filesystem::path> FullNodeCandidates() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  return {self / "flotilla-node-full", "/usr/libexec/flotilla/flotilla-node-full"};
}

int ExecFullNode(char** argv) {
  std::string tried;
  bool denied = false;
  for (const auto& candidate : FullNodeCandidates()) {
    ::execv(candidate.c_str(), argv);
    denied = denied || errno == EACCES;
    tried += (tried.empty() ? "" : ", ") + candidate.string() + " (" + std::strerror(errno) + ")";
  }
  // A user who may not run it (a build tree under another user's home, a
  // root-only install) needs other advice than a missing file.
  const char* advice = denied ? "This user may not execute it: run flotilla-node as root, or "
                                "from a directory this user can reach."
                              : "Reinstall flotilla-node.";
  std::fprintf(stderr,
               "flotilla-node: cannot start flotilla-node-full, which runs every command but "
               "`app`; tried %s. %s\n",
               tried.c_str(), advice);
  return 127;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "app") return RunAppCommands(argc, argv);
  return ExecFullNode(argv);
}
