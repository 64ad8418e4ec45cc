// Per-device configuration (docs/config.md): the precedence of the levels
// (device, then group, then site, then app, then fleet; the first group by
// name among several), and the check of a device's values against the spec
// of the release it is to run, which both `config set` and the signing of
// fleet documents apply.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appspec/app_spec.h"
#include "core/status.h"
#include "metadata/tuf_types.h"
#include "tracker/fleet/desired.h"

namespace flotilla::tracker {

std::string_view ConfigLevelName(ConfigLevel level);
std::optional<ConfigLevel> ParseConfigLevel(std::string_view name);

// One effective value of an app on a device, and where it comes from.
struct EffectiveConfigValue {
  std::string name;
  std::string value;
  ConfigLevel level = ConfigLevel::kApp;
  std::string scope;  // as stored (a device level's is the device id)
  // Other groups of the device that set the name (a group level won).
  std::vector<std::string> shadowed;
};

// The effective values of `app` on `device`, by name. A fleet-level value
// counts only when `fleet_accepts(name)` (the app's spec declares it; null:
// every name).
std::vector<EffectiveConfigValue> EffectiveConfig(
    const FleetState& state, const FleetDevice& device, const std::string& app,
    const std::function<bool(const std::string&)>& fleet_accepts = nullptr);
appspec::ConfigValues ValuesOf(const std::vector<EffectiveConfigValue>& effective);

// Whether a value at `level`/`scope` (stored scope: a device's id) reaches
// `app` on `device` (for a fleet-level one: whether the app declares it is
// the caller's check).
bool LevelApplies(const FleetState& state, const FleetDevice& device, const std::string& app,
                  ConfigLevel level, const std::string& scope);

// The effective secrets of `app` on `device`: the same precedence among the
// boxes sealed for this device (each value is a box, never a clear value).
// A fleet-level secret counts only when `fleet_accepts(name)`.
std::vector<EffectiveConfigValue> EffectiveSecrets(
    const FleetState& state, const FleetDevice& device, const std::string& app,
    const std::function<bool(const std::string&)>& fleet_accepts = nullptr);

// The app specs of the image repository's releases, each parsed once.
class ReleaseSpecs {
 public:
  explicit ReleaseSpecs(const metadata::TargetsMetadata& image_targets) : targets_(image_targets) {}
  // FailedPrecondition when the image repository has no such release.
  Result<const appspec::AppSpec*> Of(const std::string& app, uint64_t release);

 private:
  const metadata::TargetsMetadata& targets_;
  std::map<std::string, Result<appspec::AppSpec>> parsed_;  // by target name
};

// Each app of `desired` with a release and a configuration on `device`: its
// values, checked against that release's spec. FailedPrecondition naming
// the device, the app and the release when the spec does not accept one.
Result<std::map<std::string, appspec::ConfigValues>> DeviceConfig(
    const FleetState& state, const FleetDevice& device, const std::vector<DesiredApp>& desired,
    ReleaseSpecs& specs);

// Each app of `desired` with a release and secrets for `device`: its boxes
// by name. FailedPrecondition naming the device, the app and the release
// when that release's spec does not declare one as a secret.
Result<std::map<std::string, appspec::ConfigValues>> DeviceSecrets(
    const FleetState& state, const FleetDevice& device, const std::vector<DesiredApp>& desired,
    ReleaseSpecs& specs);

}  // namespace flotilla::tracker
