// flotilla-monitor: the per-container process (see runtime/monitor.h). It is
// started by the runtime library, never by hand; its arguments are not a
// stable interface.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/monitor.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if ((args.size() == 3 || (args.size() == 4 && args[3] == "attached")) && args[0] == "run") {
    return flotilla::runtime::RunMonitor(args[1], std::atoi(args[2].c_str()), args.size() == 3);
  }
  if (args.size() >= 4 && args[0] == "exec" && args[2] == "--") {
    return flotilla::runtime::RunExecInContainer(
        args[1], std::vector<std::string>(args.begin() + 3, args.end()));
  }
  if (args.size() == 5 && args[0] == "http-get") {
    return flotilla::runtime::RunHttpProbe(args[1], std::atoi(args[2].c_str()), args[3],
                                           std::atoi(args[4].c_str()));
  }
  std::fputs(
      "usage: flotilla-monitor run DIR READY_FD [attached] | exec DIR -- ARGV... |\n"
      "       http-get DIR PORT PATH TIMEOUT_MS\n"
      "(started by flotilla's runtime, not by hand)\n",
      stderr);
  return 2;
}
