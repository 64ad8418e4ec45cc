// Raw HTTP/1.1 over loopback sockets for end-to-end tests: requests a real
// client library would refuse to send (malformed, slow, oversized) and
// replies read byte for byte.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flotilla::testing {

struct HttpResponse {
  int status = 0;                              // 0: no parsable response (connection dropped)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string raw;
};

// Sends `request` bytes to 127.0.0.1:port and reads until the server closes
// or `timeout` passes. Returns everything read.
std::string SendRaw(int port, const std::string& request,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
HttpResponse ParseResponse(const std::string& raw);

// A TCP connection to 127.0.0.1:port from the loopback address `source`
// (the whole of 127/8 is local); -1 on failure.
int ConnectFrom(const std::string& source, int port);
// One GET with Connection: close from `source`; the parsed response.
HttpResponse GetFrom(const std::string& source, int port, const std::string& target);

// One HTTP/1.1 request with Connection: close.
HttpResponse HttpRequestTo(int port, const std::string& method, const std::string& target,
                           const std::vector<std::string>& headers = {},
                           const std::string& body = "");

// A TCP port on 127.0.0.1 that was free a moment ago (for an address the
// test must know, such as metrics_listen).
uint16_t FreePort();
// GET `path` from 127.0.0.1:`port` (one request per connection): the whole
// response, head included; "" when nothing answered within `timeout`.
std::string HttpGet(uint16_t port, const std::string& path,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Percent-encodes every byte.
std::string PercentEncodeAll(const std::string& bytes);

}  // namespace flotilla::testing
