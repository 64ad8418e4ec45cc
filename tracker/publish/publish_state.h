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

#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/repository.h"
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

// REQUIRES: the PublishLock. Runs `write` (which signs or accepts metadata)
// on the repository opened with the versions its database (tracker.json)
// records, so that every role's next version is above both its file and its
// highest recorded version. Each targets, snapshot and timestamp document
// `write` makes is recorded in the database under the operator epoch
// (OperatorPublication) before any of its files is written, in one
// transaction that holds the signing lease row from before the versions are
// read until after the timestamp made them current. When `write` fails (a
// version already recorded with another document: AlreadyExists), nothing
// is recorded and the repository is put back as it was.
Status WriteRecorded(const RepositoryLayout& repo, const Clock& clock,
                     metadata::RepositoryOptions options,
                     const std::function<Status(metadata::Repository&)>& write);

}  // namespace flotilla::tracker
