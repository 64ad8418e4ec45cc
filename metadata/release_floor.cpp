#include "metadata/release_floor.h"

#include <algorithm>

#include "core/json_object_reader.h"
#include "metadata/release.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {
namespace {

constexpr char kFloorMember[] = "floor";
constexpr std::string_view kFloorSuffix = "/floor.json";

Json FloorBody(const ReleaseFloor& floor) {
  return Json{{"app", floor.app}, {"floor", floor.floor}, {"format", kFloorFormat}};
}

// The floor `targets` lists for `app`, 0 when none.
Result<uint64_t> FloorIn(const TargetsMetadata& targets, const std::string& app) {
  auto it = targets.targets.find(FloorTargetName(app));
  if (it == targets.targets.end()) return uint64_t{0};
  ASSIGN_OR_RETURN(ReleaseFloor floor,
                   ParseFloor(it->second.custom).WithContext("target " + PercentEncode(it->first)));
  if (floor.app != app) {
    return Corruption("target " + PercentEncode(it->first) + " carries the floor of app " +
                      floor.app);
  }
  return floor.floor;
}

}  // namespace

std::string FloorTargetName(const std::string& app) { return "apps/" + app + "/floor.json"; }

bool IsFloorTargetName(std::string_view name) {
  return name.starts_with("apps/") && name.ends_with(kFloorSuffix) &&
         name.size() > 5 + kFloorSuffix.size();
}

Json FloorToJson(const ReleaseFloor& floor) { return Json{{kFloorMember, FloorBody(floor)}}; }

Result<std::string> FloorFileBytes(const ReleaseFloor& floor) {
  return CanonicalJson(FloorBody(floor));
}

Result<ReleaseFloor> ParseFloor(const Json& custom) {
  JsonObjectReader outer(custom, "custom", UnknownKeys::kIgnore);
  outer.Require({kFloorMember});
  const Json* body = outer.Object(kFloorMember);
  RETURN_IF_ERROR(outer.status());
  JsonObjectReader r(*body, "floor", UnknownKeys::kIgnore);
  r.Require({"app", "floor"});
  ReleaseFloor floor;
  uint64_t format = 1;
  r.String("app", floor.app);
  r.Unsigned("floor", floor.floor, 1, uint64_t{std::numeric_limits<int64_t>::max()});
  r.Unsigned("format", format, 1);
  RETURN_IF_ERROR(r.Finish());
  if (format > kFloorFormat) {
    return FailedPrecondition("floor format " + std::to_string(format) +
                              " is newer than this program reads (" + std::to_string(kFloorFormat) +
                              "): update it");
  }
  if (!IsAppName(floor.app)) return InvalidArgument("floor: bad app name '" + floor.app + "'");
  return floor;
}

Result<std::map<std::string, uint64_t>> FloorsOf(const TargetsMetadata& targets) {
  std::map<std::string, uint64_t> floors;
  for (const auto& [name, target] : targets.targets) {
    if (!IsFloorTargetName(name)) continue;
    ASSIGN_OR_RETURN(ReleaseFloor floor,
                     ParseFloor(target.custom).WithContext("target " + PercentEncode(name)));
    if (name != FloorTargetName(floor.app)) {
      return Corruption("target " + PercentEncode(name) + " carries the floor of app " + floor.app);
    }
    floors[floor.app] = floor.floor;
  }
  return floors;
}

Status CheckFloorsMonotonic(const TargetsMetadata* current, const TargetsMetadata& next) {
  ASSIGN_OR_RETURN(auto after, FloorsOf(next));
  if (current == nullptr) return Status::Ok();
  ASSIGN_OR_RETURN(auto before, FloorsOf(*current));
  for (const auto& [app, floor] : before) {
    auto it = after.find(app);
    if (it == after.end()) {
      return PermissionDenied("the floor of app " + app + " (release " + std::to_string(floor) +
                              ") may not be removed");
    }
    if (it->second < floor) {
      return PermissionDenied("the floor of app " + app + " may only go up: " +
                              std::to_string(it->second) + " < " + std::to_string(floor));
    }
  }
  return Status::Ok();
}

Result<std::map<std::string, uint64_t>> SignedFloors(const Repository& repo) {
  ASSIGN_OR_RETURN(auto floors, FloorsOf(repo.targets()));
  const auto& delegations = repo.targets().delegations;
  if (!delegations) return floors;
  for (const auto& role : delegations->roles) {
    if (!role.name.starts_with("apps/")) continue;
    const TargetsMetadata* targets = repo.DelegatedTargets(role.name);
    if (targets == nullptr) continue;
    const std::string app = role.name.substr(5);
    if (!role.Covers(FloorTargetName(app))) continue;
    ASSIGN_OR_RETURN(uint64_t floor, FloorIn(*targets, app));
    if (floor > 0) floors[app] = std::max(floors[app], floor);
  }
  return floors;
}

Result<uint64_t> TrustedFloor(TufClient& client, const std::string& app) {
  const TargetsMetadata& top = *client.targets();
  ASSIGN_OR_RETURN(uint64_t floor, FloorIn(top, app));
  if (!top.delegations) return floor;
  const std::string role = AppRoleName(app);
  for (const auto& delegation : top.delegations->roles) {
    if (delegation.name != role || !delegation.Covers(FloorTargetName(app))) continue;
    // A role delegated before its first version was accepted signs nothing yet.
    if (!client.snapshot()->meta.contains(role + ".json")) break;
    ASSIGN_OR_RETURN(const TargetsMetadata* targets,
                     client.DelegatedTargets(role, *top.delegations));
    ASSIGN_OR_RETURN(uint64_t in_role, FloorIn(*targets, app));
    floor = std::max(floor, in_role);
    break;
  }
  return floor;
}

std::string FloorRoleOf(const Repository& repo, const std::string& app) {
  const auto& delegations = repo.targets().delegations;
  if (delegations && delegations->KeysOf(AppRoleName(app))) return AppRoleName(app);
  return std::string(RoleName(RoleType::kTargets));
}

Status CheckFloorRaise(const Repository& repo, const ReleaseFloor& floor) {
  if (!IsAppName(floor.app)) return InvalidArgument("bad app name '" + floor.app + "'");
  if (floor.floor == 0) return InvalidArgument("the floor is a release version (1 or more)");
  ASSIGN_OR_RETURN(auto floors, SignedFloors(repo));
  const uint64_t current = floors.contains(floor.app) ? floors.at(floor.app) : 0;
  if (floor.floor <= current) {
    return FailedPrecondition("the floor of " + floor.app + " is " + std::to_string(current) +
                              " already; a floor only goes up");
  }
  const TargetsMetadata all = repo.AllTargets();
  if (!all.targets.contains(ReleaseTargetName(floor.app, floor.floor))) {
    return NotFound("no release " + std::to_string(floor.floor) + " of " + floor.app +
                    " is signed: the floor must be a published release");
  }
  return Status::Ok();
}

Result<SignedDocument> StageFloor(Repository& repo, const ReleaseFloor& floor, Duration expiry) {
  RETURN_IF_ERROR(CheckFloorRaise(repo, floor));
  const std::string role = FloorRoleOf(repo, floor.app);
  const bool top = role == RoleName(RoleType::kTargets);
  const TargetsMetadata* current = top ? &repo.targets() : repo.DelegatedTargets(role);
  TargetsMetadata next = current ? *current : TargetsMetadata{};
  ASSIGN_OR_RETURN(std::string bytes, FloorFileBytes(floor));
  return repo.StageTargets(
      role, std::move(next),
      {TargetInput{FloorTargetName(floor.app), std::move(bytes), FloorToJson(floor)}}, expiry);
}

Status PublishFloor(Repository& repo, const ReleaseFloor& floor, const KeyRing& signers) {
  RETURN_IF_ERROR(CheckFloorRaise(repo, floor));
  ASSIGN_OR_RETURN(std::string bytes, FloorFileBytes(floor));
  return repo.AddTargets(
      {TargetInput{FloorTargetName(floor.app), std::move(bytes), FloorToJson(floor)}}, signers);
}

}  // namespace flotilla::metadata
