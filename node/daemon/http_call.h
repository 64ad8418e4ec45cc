// One HTTP/1.1 exchange with the tracker or a LAN neighbour: any method,
// extra headers (Range, Authorization), a request body, http:// or https://
// (certificate and host name verified against the system store or a given
// CA file). The response body is bounded; a 2xx body streams into a sink,
// any other body is kept (at most 4 KiB) for the error message.
//
// Errors are values: connection failures -> Unavailable, timeouts ->
// DeadlineExceeded, a body over the bound -> ResourceExhausted. A non-2xx
// answer is NOT an error here: the caller reads `status`. Nothing throws.
// Thread-safety: every call is independent (its own io_context).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla::node {

struct HttpCall {
  std::string method = "GET";
  std::string url;  // http://host[:port]/target or https://...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with Content-Type: application/json when not empty
  uint64_t max_body_bytes = 1 << 20;
  std::string ca_file;  // https: trust these CAs instead of the system store
  // The defaults bound what one exchange can hold the daemon's loop for
  // (about 15 s), well inside the systemd watchdog's 30 s.
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds read_timeout{10'000};  // headers, and each body chunk
};

struct HttpReply {
  unsigned status = 0;
  std::string error_body;     // non-2xx answers: the start of the body
  std::string content_range;  // the Content-Range header, if any
};

// Performs `call`; a 2xx body goes to `sink` chunk by chunk.
Result<HttpReply> PerformHttpCall(const HttpCall& call,
                                  const std::function<Status(ByteSpan)>& sink);

// Performs `call` and returns the 2xx body; a non-2xx answer becomes an error
// (401/403 PermissionDenied, 404/410 NotFound, 4xx InvalidArgument, else Unavailable).
Result<std::string> HttpCallText(const HttpCall& call);

// The Status a non-2xx reply stands for.
Status StatusOfReply(const HttpCall& call, const HttpReply& reply);

}  // namespace flotilla::node
