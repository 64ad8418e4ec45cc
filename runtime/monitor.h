// flotilla-monitor: one small process per running container (see
// docs/runtime.md). It starts the container, holds its output pipe and a
// bounded log ring, serves the ring on <release dir>/monitor.sock, records
// running.json when the container runs and exit.json when it is gone, and
// needs nothing from flotilla-node meanwhile: the node may crash, restart
// or be upgraded and re-adopts the container from those files.
#pragma once

#include <string>
#include <vector>

namespace flotilla::runtime {

// `flotilla-monitor run DIR READY_FD [attached]`: detaches (forks; the
// parent exits at once), writes "monitor <pid>\n" to READY_FD, starts the
// container of DIR/launch.json, then writes "ok <init pid>\n" or
// "error <message>\n". `attached` (the one-shot `app run`, whose caller
// waits for the end anyway): no detaching fork, the monitor stays the
// caller's child.
int RunMonitor(const std::string& dir, int ready_fd, bool detach = true);

// `flotilla-monitor exec DIR -- ARGV...`: runs ARGV inside the running
// container of DIR (its namespaces, cgroups, user, capabilities, seccomp),
// and exits with its exit code (128+signal when killed).
int RunExecInContainer(const std::string& dir, const std::vector<std::string>& argv);

// `flotilla-monitor http-get DIR PORT PATH TIMEOUT_MS`: GET from the
// container's network namespace; exit 0 on a 2xx answer.
int RunHttpProbe(const std::string& dir, int port, const std::string& path, int timeout_ms);

}  // namespace flotilla::runtime
