// How `flotilla-node status` and `apps` show a NodeView to a person.
// Plain functions of the view (and of the time, passed in), so the text is
// tested without a daemon.
#pragma once

#include <cstdint>
#include <string>

#include "node/control/node_control.h"

namespace flotilla::node {

// "512 B", "12.3 KiB", "45.8 MiB", "2.8 GiB".
std::string FormatBytes(uint64_t bytes);
// "12s", "4m05s", "1h02m"; "?" when negative (unknown).
std::string FormatDuration(int64_t seconds);
// "YYYY-MM-DD HH:MM:SS" (UTC) of a Unix time, past 2038 on 32-bit systems too.
std::string FormatUtc(int64_t unix_seconds);
// "[#######.............]" of `width` cells between the brackets.
std::string ProgressBar(uint64_t done, uint64_t total, int width);

// Whether any app is downloading or verifying (a progress display is live).
bool Transferring(const NodeView& view);

// The whole status: node line, refresh, disk and counters, then one block per
// app with its releases, container, progress (a bar when `terminal`) and last
// error. Ends with a newline.
std::string FormatStatus(const NodeView& view, int64_t now_unix, bool terminal);

// One line per app under a header: name, running release, phase, container
// state, restarts.
std::string FormatApps(const NodeView& view);

}  // namespace flotilla::node
