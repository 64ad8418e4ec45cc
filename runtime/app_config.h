// An app's fleet configuration as the container sees it (docs/config.md,
// "To the app"): the values declared `env` in its environment, those
// declared `file` in /run/flotilla/config/config.json and config.env, a
// directory the node writes and the runtime bind-mounts read-only.
#pragma once

#include <map>
#include <string>

#include "appspec/app_spec.h"
#include "core/env.h"
#include "core/status.h"

namespace flotilla::runtime {

// Where the configuration files appear inside the container.
inline constexpr char kConfigMountPoint[] = "/run/flotilla/config";

// The first 12 hex digits of the SHA-256 of the canonical JSON of `values`
// or, with secrets, of {"config":values,"secrets":secret_boxes} (NAME ->
// sealed box: the ciphertext, so that no hash of a clear secret is ever
// written); "" for neither.
std::string ConfigId(const appspec::ConfigValues& values,
                     const std::map<std::string, std::string>& secret_boxes = {});

// config.json: {"NAME":"value",...} (canonical JSON) of the values declared `file`.
std::string ConfigJsonFile(const appspec::AppSpec& spec, const appspec::ConfigValues& values);
// config.env: NAME='value' lines (a ' written as '\''), for `. config.env`.
std::string ConfigEnvFile(const appspec::AppSpec& spec, const appspec::ConfigValues& values);

// `spec` given `values` (checked first: appspec::CheckConfigValues): each
// value declared `env` replaces or joins the spec's `env`; when `values` is
// not empty, the files are written durably into `files_dir` (made 0555, the
// files 0444) and bind-mounted read-only at kConfigMountPoint.
Result<appspec::AppSpec> ApplyConfig(const appspec::AppSpec& spec,
                                     const appspec::ConfigValues& values,
                                     const std::string& files_dir, Env& env = Env::Default());

}  // namespace flotilla::runtime
