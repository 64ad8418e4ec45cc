// An app's secrets on the node (docs/config.md, "Secrets"): the sealed boxes
// the fleet document carries are kept, as they came (ciphertext only), in
// <config_dir>/<app>/<config id>/secrets.json; their values exist only in
// memory and in files on a tmpfs, <secrets_dir>/<app>/<config id>/NAME
// (0400, owned by the app's user), which the runtime bind-mounts read-only
// at /run/flotilla/secrets. A reboot empties the tmpfs: the files are made
// again from secrets.json before the runtime starts the container.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "appspec/app_spec.h"
#include "core/sealed_box.h"
#include "core/status.h"

namespace flotilla::node {

// Where an app's secrets appear inside its container.
inline constexpr char kSecretsMountPoint[] = "/run/flotilla/secrets";
// The file beside the configuration files that keeps the sealed boxes.
inline constexpr char kSealedBoxesFile[] = "secrets.json";
// The tmpfs the node mounts where secrets_dir is not one already.
inline constexpr char kSecretsTmpfsOptions[] = "size=4m,mode=0700";

// NAME -> base64 sealed box (core/sealed_box.h), as in the fleet document.
using SecretBoxes = std::map<std::string, std::string>;

// Makes `dir` (mode 0700) a tmpfs: when statfs says it is not one, mounts a
// small one there (nosuid, nodev, noexec). Values never reach a disk.
Status EnsureSecretsTmpfs(const std::string& dir);

// Writes secrets.json ({"boxes":{NAME:box},"gid":G,"uid":U}, 0400)
// durably into `config_files_dir` (created 0555 when missing).
Status SaveSealedBoxes(const std::string& config_files_dir, const appspec::UserSpec& owner,
                       const SecretBoxes& boxes);

// Opens each box with `opener` and writes its value into `dir`/NAME (0400,
// owned by `owner`; `dir` 0500, owned by `owner`), all at once (a directory
// beside it renamed into place). Nothing when `dir` exists already: it holds
// the same values (a configuration id covers the boxes), and a container may
// have it mounted. Errors never hold a value.
Status MaterialiseSecrets(const std::string& dir, const appspec::UserSpec& owner,
                          const SecretBoxes& boxes, const SealedBoxOpener& opener);

// MaterialiseSecrets from `config_files_dir`/secrets.json into `dir`, with
// the device key file `device_key`. OK with nothing done when there is no
// secrets.json (a configuration without secrets).
Status RestoreSecrets(const std::string& config_files_dir, const std::string& dir,
                      const std::string& device_key);

// Every value under `secrets_dir` (<app>/<config id>/NAME): the secrets the
// node holds, for the log uploader's redaction.
std::vector<std::string> SecretValuesUnder(const std::string& secrets_dir);

}  // namespace flotilla::node
