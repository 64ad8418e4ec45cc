// Names of everything a run creates, all derived from its run id, so that
// several runs (and test cases) on one machine never collide and a leftover
// can always be traced to the run that made it.
//
// Namespaces: "fsim-<run>-<role>", e.g. fsim-k3x9q2-inet, fsim-k3x9q2-s0
// (router of site 0), fsim-k3x9q2-s0d2 (device 2 of site 0), fsim-k3x9q2-lw0
// (the delay line of site 0's WAN). Interfaces live only inside these
// namespaces, under short fixed names (wan, br0, eth0...), so none is ever
// created in the host's namespace.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla::sim {

inline constexpr std::string_view kNetnsPrefix = "fsim-";
inline constexpr size_t kRunIdLength = 6;

// A fresh random run id: kRunIdLength characters of [a-z0-9].
std::string NewRunId();

// Run ids are exactly kRunIdLength characters of [a-z0-9].
Status ValidateRunId(std::string_view run_id);

// "fsim-<run>-<role>".
std::string NetnsName(std::string_view run_id, std::string_view role);

// The run id inside a namespace name made by NetnsName, if it is one.
std::optional<std::string> RunIdOfNetns(std::string_view netns_name);

}  // namespace flotilla::sim
