// What devices see of a tracker repository, and keeping it whole across
// crashes (docs/publish.md, "Crash safety").
//
// The commit point of a publish is the rename of metadata/timestamp.json. The
// metadata writer also keeps unversioned copies (targets.json, snapshot.json)
// that a publish killed before its timestamp leaves ahead of the timestamp;
// RecoverUnpublishedMetadata puts them back to what the timestamp names, so
// that metadata::Repository::Open and the next publish start from the
// published state. Every metadata writer (publish, the serve refresher) holds
// the PublishLock while it reads and writes metadata.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "metadata/tuf_types.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

// An exclusive flock on <root>/publish.lock, released on destruction.
class PublishLock {
 public:
  // wait=false: FailedPrecondition at once when another process holds it.
  static Result<PublishLock> Acquire(const RepositoryLayout& repo, bool wait);
  PublishLock(PublishLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  PublishLock& operator=(PublishLock&&) = delete;
  ~PublishLock();

 private:
  explicit PublishLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The metadata a client following timestamp.json reaches (consistent
// snapshots: N.snapshot.json, M.targets.json), each checked against the
// length and hash its parent names. Signatures are not checked here: these
// are the repository's own files (clients check them).
struct PublishedMetadata {
  metadata::TimestampMetadata timestamp;
  metadata::SnapshotMetadata snapshot;
  metadata::TargetsMetadata targets;
  std::string snapshot_bytes;
  std::string targets_bytes;
};
Result<PublishedMetadata> ReadPublishedMetadata(const RepositoryLayout& repo);

// REQUIRES: the PublishLock. Rewrites snapshot.json and targets.json (atomically)
// when they differ from the versions timestamp.json names; adds one sentence
// per file it put back to `notes`.
Status RecoverUnpublishedMetadata(const RepositoryLayout& repo, std::vector<std::string>& notes);

}  // namespace flotilla::tracker
