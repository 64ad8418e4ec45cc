// The control API's messages (docs/node.md, "Control API"): one JSON request
// and one JSON response per connection on the daemon's Unix socket.
//
//   {"op":"status"}                              -> the NodeView (ViewToJson)
//   {"op":"logs","app":"x","max_bytes":65536}     -> {"app":"x","logs":"..."}
//   {"op":"update"}                              -> {"message":"..."}
//   {"op":"rollback","app":"x"}                  -> {"message":"..."}
//   {"op":"lock","app":"x","for_s":1800,"reason":"in use"} -> {"message":"..."}
//   {"op":"unlock","app":"x"}                    -> {"message":"..."}
//   {"op":"import","path":"/abs/x.bundle"}        -> {"message":"..."} (started; see status)
//   anything refused                             -> {"error":"...","code":"NotFound"}
//
// A request is at most kMaxControlRequestBytes, ends with a newline (or with
// the client shutting down its side of the socket) and has no other keys.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/canonical_json.h"
#include "core/status.h"
#include "node/control/node_control.h"

namespace flotilla::node {

inline constexpr size_t kMaxControlRequestBytes = 64 << 10;
inline constexpr size_t kDefaultLogBytes = 64 << 10;
inline constexpr size_t kMaxLogBytes = 1 << 20;
// Bound of a response a client accepts (a log of kMaxLogBytes, escaped).
inline constexpr size_t kMaxControlResponseBytes = 8 << 20;

Json ViewToJson(const NodeView& view);
// Missing members keep their defaults (an older or newer daemon); a member
// of the wrong type is InvalidArgument.
Result<NodeView> ViewFromJson(const Json& json);

// Receives the response's bytes (always one JSON object, newline-terminated).
using ControlAnswer = std::function<void(std::string response)>;

// Runs one request against `control`; `answer` gets the response, at once
// (status, update, any error in the request) or once the daemon replies
// (rollback, logs). Called on the loop thread.
void AnswerControlRequest(NodeControl& control, std::string_view request,
                          const ControlAnswer& answer);

// {"error": message, "code": StatusCodeName} and back.
std::string ErrorResponse(const Status& status);
Status StatusFromErrorResponse(const Json& response);

// JSON text that never throws: invalid UTF-8 (a log may hold any bytes) is
// replaced with U+FFFD.
std::string DumpJson(const Json& json, int indent = -1);

}  // namespace flotilla::node
