// Where the client gets metadata and targets from: an interface, so that the
// metadata library needs no HTTP. flotilla-node wires it to HTTP
// (http/http_client.h); DirectoryRemote reads a repository copied to a local
// directory (a USB stick, a mirror). Trust never depends on which one is used.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"

namespace flotilla::metadata {

class RemoteRepository {
 public:
  virtual ~RemoteRepository() = default;

  // Returns the metadata file `name` ("3.root.json", "timestamp.json"; built
  // by the client from validated parts). NotFound when the repository does not
  // have it; ResourceExhausted as soon as it is longer than `max_bytes`.
  virtual Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) = 0;

  // Writes the target at `url_path` (percent-encoded, '/'-separated, relative
  // to the target base) into the new file `dest_path`. NotFound when absent;
  // ResourceExhausted as soon as it is longer than `max_bytes`.
  virtual Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                             const std::string& dest_path) = 0;
};

// A repository laid out as <metadata_dir>/<percent-encoded name> (so
// "1.a/b.json", the metadata of role "a/b", is the file "1.a%2Fb.json") and
// <targets_dir>/<path>. url_path is percent-decoded and must not climb out of
// targets_dir.
class DirectoryRemote final : public RemoteRepository {
 public:
  DirectoryRemote(std::string metadata_dir, std::string targets_dir)
      : metadata_dir_(std::move(metadata_dir)), targets_dir_(std::move(targets_dir)) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override;

  // How many FetchTarget calls were made (to show that cached targets are not fetched again).
  int target_fetches() const { return target_fetches_; }

 private:
  std::string metadata_dir_;
  std::string targets_dir_;
  int target_fetches_ = 0;
};

// Passes every call to `inner` and remembers each metadata file it served,
// under its percent-encoded name (the file name a DirectoryRemote reads).
// `inner` must outlive it.
class RecordingRemote final : public RemoteRepository {
 public:
  explicit RecordingRemote(RemoteRepository& inner) : inner_(inner) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override {
    return inner_.FetchTarget(url_path, max_bytes, dest_path);
  }
  const std::map<std::string, std::string>& files() const { return files_; }

 private:
  RemoteRepository& inner_;
  std::map<std::string, std::string> files_;
};

// Metadata files held in memory, by percent-encoded name (a RecordingRemote's
// files()): the same bytes verified again, against another trusted directory.
// No targets. `files` must outlive it.
class MemoryRemote final : public RemoteRepository {
 public:
  explicit MemoryRemote(const std::map<std::string, std::string>& files) : files_(files) {}

  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override;
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override;

 private:
  const std::map<std::string, std::string>& files_;
};

}  // namespace flotilla::metadata
