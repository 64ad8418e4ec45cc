// A tracker's signed metadata over its HTTP API (GET /metadata/NAME), as a
// device's TUF client fetches it, for end-to-end tests that refresh a
// metadata::TufClient against a running tracker. Targets are not fetched.
// Header-only: the tests that use it link flotilla_metadata themselves.
#pragma once

#include <string>

#include "metadata/remote_repository.h"
#include "tests/support/raw_http.h"

namespace flotilla::testing {

class TrackerMetadataRemote final : public metadata::RemoteRepository {
 public:
  explicit TrackerMetadataRemote(int port) : port_(port) {}
  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    HttpResponse r = HttpRequestTo(port_, "GET", "/metadata/" + name);
    if (r.status == 404) return NotFound(name);
    if (r.status != 200) return Unavailable(name + ": HTTP " + std::to_string(r.status));
    if (r.body.size() > max_bytes) return ResourceExhausted(name);
    return r.body;
  }
  Status FetchTarget(const std::string& url_path, uint64_t, const std::string&) override {
    return NotFound("targets are not fetched in this test: " + url_path);
  }

 private:
  int port_;
};

}  // namespace flotilla::testing
