// The repository directory that `serve` serves (layout: docs/tracker.md).
//
//   <root>/metadata/<name>            signed metadata files, served as bytes
//   <root>/artifacts/<64 hex>         content-addressed artifacts (SHA-256 of the bytes)
//   <root>/torrents/<64 hex>.torrent  one v2-only single-file torrent per artifact
//   <root>/tracker.db                 SQLite: devices, reports, releases (default place)
//
// Names that come from a request are checked by the functions below before any
// path is built from them; nothing a client sends can name a path outside
// these directories.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flotilla::tracker {

struct RepositoryLayout {
  std::string root;

  std::string metadata_dir() const { return root + "/metadata"; }
  std::string artifacts_dir() const { return root + "/artifacts"; }
  std::string torrents_dir() const { return root + "/torrents"; }
  std::string artifact_path(std::string_view hex) const {
    return artifacts_dir() + "/" + std::string(hex);
  }
  std::string torrent_path(std::string_view hex) const {
    return torrents_dir() + "/" + std::string(hex) + ".torrent";
  }
  std::string default_db_path() const { return root + "/tracker.db"; }
  // The fleet repository (docs/fleet.md, "Layout"): fleet/<V>.root.json,
  // each fleet root version; fleet/devices/<id>/state, a device's repository
  // (device_state.h). `id` must be a label (tracker/fleet checks it).
  std::string fleet_dir() const { return root + "/fleet"; }
  std::string fleet_root_version_path(uint64_t version) const {
    return fleet_dir() + "/" + std::to_string(version) + ".root.json";
  }
  std::string fleet_device_dir(std::string_view id) const {
    return fleet_dir() + "/devices/" + std::string(id);
  }
};

// 64 lower-case hex digits: an artifact's SHA-256, its file name and torrent name.
bool IsArtifactHex(std::string_view name);

// A metadata file name: 1-128 characters of [A-Za-z0-9._-], not starting with '.'.
bool IsMetadataName(std::string_view name);

}  // namespace flotilla::tracker
