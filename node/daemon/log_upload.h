// What a node sends of an app's log ring when an operator asks for it
// (docs/logs.md): every secret value the node holds replaced, then the
// newest bytes within the upload bound.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::node {

// The largest log upload a node sends and the tracker accepts: under the
// tracker's default request body bound (max_body_bytes, 64 KiB).
inline constexpr size_t kMaxLogUploadBytes = 48 * 1024;

// What replaces each secret value in an uploaded log.
inline constexpr std::string_view kRedactedMarker = "[redacted]";

// `text` with every occurrence of every non-empty value of `secrets`
// replaced by kRedactedMarker. Where two values overlap at one position the
// longer one is replaced, so a secret that begins with another secret never
// leaves its tail behind.
std::string RedactSecrets(std::string_view text, const std::vector<std::string>& secrets);

// The newest bytes of `text` within `max_bytes`. A longer text loses its
// oldest side, cut at a line start when there is one, and begins with the
// marker line "[flotilla: N earlier bytes not sent]" (N: the bytes left
// out); the marker counts against `max_bytes`.
std::string BoundLog(std::string_view text, size_t max_bytes = kMaxLogUploadBytes);

}  // namespace flotilla::node
