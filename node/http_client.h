// Plain GETs for metadata and artifacts, on top of the node's one HTTP
// client (node/daemon/http_call.h: http:// or https://): a connect timeout, a
// per-read timeout, and a hard bound on the body so a hostile or broken
// server cannot fill memory or the SD card.
//
// Errors are values: 404/410 -> NotFound; other non-2xx -> Unavailable; a
// body over the bound -> ResourceExhausted (reading stops there); a timeout ->
// DeadlineExceeded; connection failures -> Unavailable. Nothing throws.
// Thread-safety: every call is independent (its own io_context).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla::node {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};  // for the headers and for each body chunk
};

// Joins a base URL and a relative path with exactly one '/' between them.
std::string JoinUrl(std::string_view base, std::string_view relative);

// Calls `sink` with each chunk of the body of GET `url`, at most `max_bytes` in total.
Status HttpGetStream(const std::string& url, uint64_t max_bytes, const HttpOptions& options,
                     const std::function<Status(ByteSpan)>& sink);

// The whole body, at most `max_bytes`.
Result<std::string> HttpGet(const std::string& url, uint64_t max_bytes,
                            const HttpOptions& options = {});

// Writes the body into the new file `path` (mode 0644), at most `max_bytes`;
// removes the partial file on any error.
Status HttpGetToFile(const std::string& url, uint64_t max_bytes, const std::string& path,
                     const HttpOptions& options = {});

}  // namespace flotilla::node
