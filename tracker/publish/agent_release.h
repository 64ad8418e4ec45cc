// An agent release from flotilla-node's binaries (docs/agent-update.md,
// "Publishing an agent release"): the three binaries of one architecture,
// each checked to be an ELF file of that architecture with no debug
// sections, written as a one-layer OCI image that `publish` takes as the
// release of flotilla-agent-<arch>.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace flotilla::tracker {

// An architecture agents are published for.
struct AgentArch {
  std::string name;      // amd64, arm64, armhf: as Debian names it, and in the app's name
  std::string platform;  // the image's OCI platform: linux/amd64, linux/arm64, linux/arm/v7
  std::string app() const { return "flotilla-agent-" + name; }
};

// amd64, arm64 or armhf; anything else is refused naming the three.
Result<AgentArch> ParseAgentArch(std::string_view name);

// Refuses `path` unless it is a regular ELF executable of `arch` (class,
// byte order, machine, and for armhf the hard-float ABI) holding no debug
// sections (.debug_*, .zdebug_*). Reads at most the ELF and section headers
// and the section names, each bounded.
Status CheckAgentBinary(const std::string& path, const AgentArch& arch);

// The three binaries, by their name in the release (flotilla-node,
// flotilla-node-full, flotilla-monitor), from `inputs`: the three files
// (each named as in the release), or one directory holding them (other
// files there are ignored: a .deb unpacked with `dpkg-deb -x` gives its
// usr/bin/).
Result<std::map<std::string, std::string>> FindAgentBinaries(
    const std::vector<std::string>& inputs);

// Writes the OCI layout of the agent image into `layout_dir` (created): one
// uncompressed layer holding the three binaries at its top, mode 0755, and
// the config of `arch`'s platform.
Status WriteAgentImage(const std::map<std::string, std::string>& binaries, const AgentArch& arch,
                       const std::string& layout_dir);

// The app spec an agent release carries (never run: a node gives the
// release to its agent installer).
std::string AgentSpecJson(const AgentArch& arch);

}  // namespace flotilla::tracker
