// A resume checkpoint of one torrent: libtorrent writes pieces into the
// payload file without syncing them, so the payload is synced first and the
// resume data (which names those pieces) replaces the previous checkpoint
// atomically after it, both through the Env. A power cut leaves the old
// checkpoint or the new one, and every piece either names is on disk.
#pragma once

#include <string>

#include "core/bytes.h"
#include "core/env.h"
#include "core/status.h"

namespace flotilla::node {

// A payload file that does not exist yet has nothing to sync.
Status SaveResumeCheckpoint(Env& env, const std::string& payload_path,
                            const std::string& resume_path, ByteSpan resume_data);

}  // namespace flotilla::node
