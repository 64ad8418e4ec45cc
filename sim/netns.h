// Network namespaces and the processes, sysctls and counters inside them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::sim {

// Creates a named namespace (ip netns add) with loopback up and IPv6 off
// (no router solicitations or DAD traffic to disturb counters and loss).
Status CreateNetns(const std::string& name);

// Kills every process in the namespace (SIGTERM, then SIGKILL after
// `grace_ms`), waits until none is left, then deletes it. A namespace that
// does not exist is not an error.
Status DestroyNetns(const std::string& name, int grace_ms = 1000);

// Names under /run/netns.
Result<std::vector<std::string>> ListNetns();

// Pids of processes whose network namespace is `name`.
Result<std::vector<pid_t>> NetnsPids(const std::string& name);

// Writes a sysctl inside the namespace, e.g. ("net.ipv4.ip_forward", "1").
Status SetSysctl(const std::string& ns, const std::string& key, const std::string& value);

struct InterfaceCounters {
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
};

// The kernel's 64-bit counters of interface `ifname` in namespace `ns`
// (from its /proc/net/dev; no process is spawned). Changes the calling
// thread's network namespace for the moment of an open(), and back.
Result<InterfaceCounters> ReadInterfaceCounters(const std::string& ns, const std::string& ifname);

// Calls `f` with the calling thread in namespace `ns`, then steps back.
// Sockets `f` opens stay in `ns` for their life.
Status RunInNetns(const std::string& ns, const std::function<void()>& f);

// The text of /proc/net/dev in namespace `ns`, and its parser.
Result<std::string> ReadNetDevOf(const std::string& ns);
Result<InterfaceCounters> ParseNetDev(const std::string& proc_net_dev, const std::string& ifname);

}  // namespace flotilla::sim
