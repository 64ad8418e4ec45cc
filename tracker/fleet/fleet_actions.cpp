#include "tracker/fleet/fleet_actions.h"

#include <fmt/core.h>

#include "metadata/release_floor.h"
#include "metadata/repository.h"
#include "tracker/fleet/fleet_view.h"
#include "tracker/fleet/rollout_duty.h"

namespace flotilla::tracker {
namespace {

Result<std::string> TextMember(const Json& body, const char* name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return InvalidArgument(std::string("missing \"") + name + "\"");
    return std::string();
  }
  if (!it->is_string()) return InvalidArgument(std::string("\"") + name + "\" must be a string");
  return it->get<std::string>();
}

Result<uint64_t> ReleaseMember(const Json& body) {
  auto it = body.find("release");
  if (it == body.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
      it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgument("\"release\" must be a release number from 1");
  }
  return it->get<uint64_t>();
}

Result<PinTarget> PinTargetMember(const Json& body) {
  ASSIGN_OR_RETURN(std::string device, TextMember(body, "device", false));
  ASSIGN_OR_RETURN(std::string group, TextMember(body, "group", false));
  if (device.empty() == group.empty())
    return InvalidArgument("give one of \"device\" or \"group\"");
  if (!device.empty()) return PinTarget{PinTarget::Kind::kDevice, device};
  return PinTarget{PinTarget::Kind::kGroup, group};
}

Json PinJson(const PinTarget& target, const std::string& app) {
  return Json{{target.kind == PinTarget::Kind::kDevice ? "device" : "group", target.name},
              {"app", app}};
}

}  // namespace

Status PinAboveFloor(FleetStore& store, const ReleaseFloors& floors, const PinTarget& target,
                     const std::string& app, uint64_t release) {
  auto floor = floors.find(app);
  if (floor != floors.end() && release < floor->second) {
    return FailedPrecondition(fmt::format(
        "release {} of {} is below its floor {} (signed by the image repository's offline "
        "keys): pin {} or above",
        release, app, floor->second, floor->second));
  }
  return store.Pin(target, app, release);
}

Result<RolloutSpec> MakeRolloutSpec(const RolloutSpecText& text, std::string_view flag_prefix) {
  const std::string p(flag_prefix);
  RolloutSpec spec;
  spec.app = text.app;
  spec.release = text.release;
  spec.group = text.group;
  auto waves = ParseWaves(text.waves);
  if (!waves.ok()) return waves.status().WithContext(p + "waves");
  spec.waves = std::move(*waves);
  auto soak = ParseSeconds(text.soak);
  if (!soak.ok()) return soak.status().WithContext(p + "soak");
  spec.soak_s = *soak;
  auto timeout = ParseSeconds(text.wave_timeout);
  if (!timeout.ok()) return timeout.status().WithContext(p + "wave-timeout");
  if (*timeout == 0) return InvalidArgument(p + "wave-timeout: must be above 0");
  spec.wave_timeout_s = *timeout;
  auto max_failures = ParseShare(text.max_failures);
  if (!max_failures.ok()) return max_failures.status().WithContext(p + "max-failures");
  spec.max_failures = *max_failures;
  return spec;
}

Json RolloutViewJson(const RolloutView& view) { return RolloutToJson(ToRolloutRow(view)); }

Result<ReleaseFloors> RepositoryReleaseFloors(const std::string& repository, const Clock& clock) {
  if (repository.empty()) return ReleaseFloors{};
  ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repository, clock));
  return metadata::SignedFloors(*meta);
}

Result<std::unique_ptr<OperatorActions>> OperatorActions::Open(const std::string& database_url,
                                                               std::string repository,
                                                               const Clock& clock) {
  ASSIGN_OR_RETURN(auto fleet, FleetStore::Open(database_url, clock));
  ASSIGN_OR_RETURN(auto rollouts, RolloutStore::Open(database_url, clock));
  return std::unique_ptr<OperatorActions>(
      new OperatorActions(std::move(fleet), std::move(rollouts), std::move(repository), clock));
}

Result<DesiredByDevice> OperatorActions::DesiredOfEveryDevice(const ReleaseFloors& floors) {
  ASSIGN_OR_RETURN(FleetState state, fleet_->Load());
  ASSIGN_OR_RETURN(auto limits, rollouts_->Limits(state));
  DesiredReleases desired(state, limits.get(), &floors);
  DesiredByDevice out;
  for (const auto& [name, device] : state.devices) {
    auto& releases = out[device.device_id];
    for (const DesiredApp& app : desired.All(device)) releases.emplace(app.app, app.release);
  }
  return out;
}

Result<Json> OperatorActions::Run(std::string_view action, const Json& body,
                                  const std::string& actor, int64_t rollout_id) {
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object");
  fleet_->set_actor(actor);
  rollouts_->set_actor(actor);
  ASSIGN_OR_RETURN(ReleaseFloors floors, RepositoryReleaseFloors(repository_, clock_));
  ASSIGN_OR_RETURN(DesiredByDevice before, DesiredOfEveryDevice(floors));
  ASSIGN_OR_RETURN(Json out, Change(action, body, rollout_id));
  // The change is committed; the devices it sends another release are
  // re-signed now, as `fleet publish` would. A failure here leaves the
  // change in place and says so: `fleet publish` (or serve's next rollout
  // round, for a rollout) signs them.
  std::set<std::string> changed;
  auto after = DesiredOfEveryDevice(floors);
  if (after.ok()) {
    for (const auto& [device_id, releases] : *after) {
      auto was = before.find(device_id);
      if (was == before.end() || was->second != releases) changed.insert(device_id);
    }
  }
  auto resigned = after.ok() ? ResignDevices(repository_, *fleet_, *rollouts_, changed, clock_)
                             : Result<std::optional<FleetPublishOutcome>>(after.status());
  if (!resigned.ok()) {
    out["resign_error"] = resigned.status().ToString() + ": run fleet publish";
  } else if (resigned->has_value()) {
    out["resigned"] = (*resigned)->resigned;
  }
  return out;
}

Result<Json> OperatorActions::Change(std::string_view action, const Json& body,
                                     int64_t rollout_id) {
  if (action == "pin" || action == "unpin") {
    ASSIGN_OR_RETURN(PinTarget target, PinTargetMember(body));
    ASSIGN_OR_RETURN(std::string app, TextMember(body, "app", true));
    Json out = PinJson(target, app);
    if (action == "unpin") {
      RETURN_IF_ERROR(fleet_->Unpin(target, app));
      return out;
    }
    ASSIGN_OR_RETURN(uint64_t release, ReleaseMember(body));
    ASSIGN_OR_RETURN(ReleaseFloors floors, RepositoryReleaseFloors(repository_, clock_));
    RETURN_IF_ERROR(PinAboveFloor(*fleet_, floors, target, app, release));
    out["release"] = release;
    return out;
  }
  if (action == "recall") {
    ASSIGN_OR_RETURN(std::string app, TextMember(body, "app", true));
    ASSIGN_OR_RETURN(uint64_t release, ReleaseMember(body));
    RETURN_IF_ERROR(fleet_->Recall(app, release));
    return Json{{"app", app}, {"release", release}};
  }
  if (action == "rollout.start") {
    RolloutSpecText text;
    ASSIGN_OR_RETURN(text.app, TextMember(body, "app", true));
    ASSIGN_OR_RETURN(text.release, ReleaseMember(body));
    ASSIGN_OR_RETURN(text.group, TextMember(body, "group", false));
    ASSIGN_OR_RETURN(text.waves, TextMember(body, "waves", true));
    for (auto [member, field] :
         {std::pair{"soak", &text.soak}, std::pair{"max_failures", &text.max_failures},
          std::pair{"wave_timeout", &text.wave_timeout}}) {
      ASSIGN_OR_RETURN(std::string value, TextMember(body, member, false));
      if (!value.empty()) *field = value;
    }
    ASSIGN_OR_RETURN(RolloutSpec spec, MakeRolloutSpec(text, ""));
    ASSIGN_OR_RETURN(FleetState state, fleet_->Load());
    ASSIGN_OR_RETURN(RolloutView view, rollouts_->Start(spec, state));
    return RolloutViewJson(view);
  }
  if (action == "rollout.pause" || action == "rollout.resume" || action == "rollout.abort") {
    Result<RolloutView> view = action == "rollout.pause"    ? rollouts_->Pause(rollout_id)
                               : action == "rollout.resume" ? rollouts_->Resume(rollout_id)
                                                            : rollouts_->Abort(rollout_id);
    if (!view.ok()) return view.status();
    return RolloutViewJson(*view);
  }
  return InvalidArgument("unknown action '" + std::string(action) + "'");
}

}  // namespace flotilla::tracker
