// The JSON replies of the tracker's HTTP routes: a body, or {"error": ...}.
#pragma once

#include <string>

#include "core/canonical_json.h"
#include "http/http_reply.h"

namespace flotilla::tracker {

inline http::Reply JsonReply(http::status status, const Json& body) {
  return http::Reply::Typed(status, "application/json", body.dump() + "\n");
}

inline http::Reply JsonError(http::status status, const std::string& message) {
  return JsonReply(status, Json{{"error", message}});
}

}  // namespace flotilla::tracker
