#include "node/control/control_protocol.h"

#include <algorithm>
#include <set>

namespace flotilla::node {

// The wire form of the views: every member under its own name; a member
// absent from an answer keeps its default (an older or newer daemon), one of
// another type throws Json::type_error (caught by ViewFromJson).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AppView, name, phase, target_release, ready_release,
                                                running_release, previous_release, container_state,
                                                restarts, bytes_done, bytes_total, rate_bytes_per_s,
                                                peers, eta_s, bytes_from_peers, bytes_from_origin,
                                                last_error, desired_release, fleet_assigned,
                                                waiting, lock_until_unix, lock_reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FleetView, state, version, expires_unix,
                                                last_poll_unix, last_error)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AgentView, release, installed, ready,
                                                metadata_verified, rolled_back)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ImportView, id, bundle, source, step, bytes_done,
                                                bytes_total, app, release, message, code, lines,
                                                lines_dropped, started_unix, finished_unix)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ImportDirView, path, present, bundles_seen)
// Without `apps`, which ViewFromJson checks member by member.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NodeView, device_name, site, transfer_mode, version,
                                                enrolled, last_refresh_unix, last_refresh_error,
                                                refreshes_ok, refreshes_failed, deploys_ok,
                                                deploys_failed, hash_failures, peers_banned,
                                                bytes_wasted, disk_free_bytes, store_bytes, fleet,
                                                agent, import, import_dir)

namespace {

Json Message(std::string text) { return Json{{"message", std::move(text)}}; }

std::string Respond(const Json& json) { return DumpJson(json) + "\n"; }

// The request's "app": a non-empty string.
Result<std::string> AppOf(const Json& request) {
  auto it = request.find("app");
  if (it == request.end() || !it->is_string() || it->get<std::string>().empty()) {
    return InvalidArgument("request needs \"app\": the name of an app");
  }
  return it->get<std::string>();
}

Result<size_t> MaxBytesOf(const Json& request) {
  auto it = request.find("max_bytes");
  if (it == request.end()) return kDefaultLogBytes;
  if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > kMaxLogBytes) {
    return InvalidArgument("\"max_bytes\" must be an integer in 1.." +
                           std::to_string(kMaxLogBytes));
  }
  return static_cast<size_t>(it->get<uint64_t>());
}

Status RefuseUnknownKeys(const Json& request, const std::set<std::string>& allowed) {
  for (const auto& [key, value] : request.items()) {
    if (!allowed.count(key)) return InvalidArgument("unknown key '" + key + "' in request");
  }
  return Status::Ok();
}

// A lock's "for_s" (default kDefaultLockSeconds) and "reason" (default "").
Result<std::pair<int64_t, std::string>> LockOf(const Json& request) {
  int64_t seconds = kDefaultLockSeconds;
  if (auto it = request.find("for_s"); it != request.end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
        it->get<uint64_t>() > static_cast<uint64_t>(kMaxLockSeconds)) {
      return InvalidArgument("\"for_s\" must be an integer in 1.." +
                             std::to_string(kMaxLockSeconds) +
                             " (a lock holds at most 24 hours, then ends by itself)");
    }
    seconds = static_cast<int64_t>(it->get<uint64_t>());
  }
  std::string reason;
  if (auto it = request.find("reason"); it != request.end()) {
    if (!it->is_string()) return InvalidArgument("\"reason\" must be a string");
    reason = it->get<std::string>();
    const bool printable = std::all_of(reason.begin(), reason.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
    });
    if (reason.size() > kMaxLockReasonBytes || !printable) {
      return InvalidArgument("\"reason\" must be at most " + std::to_string(kMaxLockReasonBytes) +
                             " bytes of printable text");
    }
  }
  return std::make_pair(seconds, std::move(reason));
}

// Answers `request` through `answer`, at once or once the daemon replies.
Status Dispatch(NodeControl& control, const Json& request, const ControlAnswer& answer) {
  auto op_it = request.find("op");
  if (op_it == request.end() || !op_it->is_string()) {
    return InvalidArgument(
        "request needs \"op\": status, logs, update, rollback, lock, unlock or import");
  }
  const std::string op = op_it->get<std::string>();
  if (op == "status") {
    RETURN_IF_ERROR(RefuseUnknownKeys(request, {"op"}));
    answer(Respond(ViewToJson(control.View())));
    return Status::Ok();
  }
  if (op == "update") {
    RETURN_IF_ERROR(RefuseUnknownKeys(request, {"op"}));
    control.UpdateNow();
    answer(Respond(Message("refreshing metadata now; a newer release starts downloading at once")));
    return Status::Ok();
  }
  if (op == "rollback") {
    RETURN_IF_ERROR(RefuseUnknownKeys(request, {"op", "app"}));
    ASSIGN_OR_RETURN(std::string app, AppOf(request));
    control.Rollback(app, [answer](Result<std::string> message) {
      answer(message.ok() ? Respond(Message(std::move(*message)))
                          : ErrorResponse(message.status()));
    });
    return Status::Ok();
  }
  if (op == "lock" || op == "unlock") {
    RETURN_IF_ERROR(RefuseUnknownKeys(
        request, op == "lock" ? std::set<std::string>{"op", "app", "for_s", "reason"}
                              : std::set<std::string>{"op", "app"}));
    ASSIGN_OR_RETURN(std::string app, AppOf(request));
    auto reply = [answer](Result<std::string> message) {
      answer(message.ok() ? Respond(Message(std::move(*message)))
                          : ErrorResponse(message.status()));
    };
    if (op == "unlock") {
      control.Unlock(app, reply);
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(auto lock, LockOf(request));
    control.Lock(app, lock.first, lock.second, reply);
    return Status::Ok();
  }
  if (op == "import") {
    RETURN_IF_ERROR(RefuseUnknownKeys(request, {"op", "path"}));
    auto it = request.find("path");
    if (it == request.end() || !it->is_string() || !it->get<std::string>().starts_with("/") ||
        it->get<std::string>().size() > 4096) {
      return InvalidArgument("request needs \"path\": the bundle file's absolute path");
    }
    control.Import(it->get<std::string>(), [answer](Result<std::string> message) {
      answer(message.ok() ? Respond(Message(std::move(*message)))
                          : ErrorResponse(message.status()));
    });
    return Status::Ok();
  }
  if (op == "logs") {
    RETURN_IF_ERROR(RefuseUnknownKeys(request, {"op", "app", "max_bytes"}));
    ASSIGN_OR_RETURN(std::string app, AppOf(request));
    ASSIGN_OR_RETURN(size_t max_bytes, MaxBytesOf(request));
    control.Logs(app, max_bytes, [answer, app](Result<std::string> logs) {
      answer(logs.ok() ? Respond(Json{{"app", app}, {"logs", std::move(*logs)}})
                       : ErrorResponse(logs.status()));
    });
    return Status::Ok();
  }
  return InvalidArgument("unknown op '" + op +
                         "' (status, logs, update, rollback, lock, unlock or import)");
}

}  // namespace

std::string DumpJson(const Json& json, int indent) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json ViewToJson(const NodeView& view) {
  Json json = view;
  json["apps"] = view.apps;
  return json;
}

Result<NodeView> ViewFromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgument("status: the daemon's answer is not an object");
  NodeView v;
  try {
    v = json.get<NodeView>();
    if (auto it = json.find("apps"); it != json.end()) {
      if (!it->is_array()) return InvalidArgument("status: \"apps\" is not an array");
      for (const auto& app : *it) {
        if (!app.is_object()) return InvalidArgument("status: an app is not an object");
        v.apps.push_back(app.get<AppView>());
      }
    }
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("status: the daemon's answer has a member of the wrong "
                                       "type: ") +
                           e.what());
  }
  return v;
}

std::string ErrorResponse(const Status& status) {
  return Respond(
      Json{{"error", status.message()}, {"code", std::string(StatusCodeName(status.code()))}});
}

Status StatusFromErrorResponse(const Json& response) {
  auto error = response.find("error");
  if (error == response.end()) return Status::Ok();
  std::string message = error->is_string() ? error->get<std::string>() : error->dump();
  StatusCode code = StatusCode::kFailedPrecondition;
  if (auto c = response.find("code"); c != response.end() && c->is_string()) {
    for (int i = 1; i <= static_cast<int>(StatusCode::kInternal); ++i) {
      if (StatusCodeName(static_cast<StatusCode>(i)) == c->get<std::string>()) {
        code = static_cast<StatusCode>(i);
      }
    }
  }
  return Status(code, std::move(message));
}

void AnswerControlRequest(NodeControl& control, std::string_view request,
                          const ControlAnswer& answer) {
  auto parsed = ParseJsonStrict(request, {.max_bytes = kMaxControlRequestBytes, .max_depth = 8});
  if (!parsed.ok()) {
    return answer(ErrorResponse(InvalidArgument("bad request: " + parsed.status().message())));
  }
  if (!parsed->is_object())
    return answer(ErrorResponse(InvalidArgument("bad request: not a JSON object")));
  try {
    Status dispatched = Dispatch(control, *parsed, answer);
    if (!dispatched.ok()) answer(ErrorResponse(dispatched));
  } catch (const std::exception& e) {  // the daemon must outlive any bug behind one request
    answer(ErrorResponse(Internal(std::string("request failed: ") + e.what())));
  }
}

}  // namespace flotilla::node
