#include "tracker/publish/publish_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/digest.h"
#include "core/file_io.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_signing.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/signing_lease.h"

namespace flotilla::tracker {
namespace {

constexpr uint64_t kMaxMetadataFile = 64 << 20;

Result<metadata::SignedDocument> ReadDocument(const std::string& path, std::string* bytes_out) {
  ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(path, kMaxMetadataFile));
  auto doc = metadata::ParseSignedDocument(bytes, kMaxMetadataFile);
  if (!doc.ok()) return doc.status().WithContext(path);
  if (bytes_out != nullptr) *bytes_out = std::move(bytes);
  return doc;
}

// Reads `name` and checks it against the length and sha256 its parent signed.
Result<metadata::SignedDocument> ReadNamedFile(const std::string& path,
                                               const metadata::MetaFileInfo& info,
                                               std::string& bytes) {
  ASSIGN_OR_RETURN(auto doc, ReadDocument(path, &bytes));
  RETURN_IF_ERROR_CTX(metadata::CheckLengthAndHashes(path, AsBytes(bytes), info.length, info.hashes,
                                                     /*require_hash=*/true),
                      "published metadata");
  return doc;
}

// Replaces `copy` with `versioned`'s bytes unless they are equal already.
Status RestoreCopy(const std::string& copy, const std::string& bytes,
                   std::vector<std::string>& notes) {
  auto current = ReadTextFileBounded(copy, kMaxMetadataFile);
  if (current.ok() && *current == bytes) return Status::Ok();
  RETURN_IF_ERROR(WriteFileAtomic(copy, bytes, 0644));
  notes.push_back(copy + " was ahead of timestamp.json (an unfinished publish); put back");
  return Status::Ok();
}

}  // namespace

Result<PublishLock> PublishLock::Acquire(const RepositoryLayout& repo, bool wait) {
  const std::string path = repo.root + "/publish.lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return IOErrorFromErrno("open " + path, errno);
  int rc;
  do {
    rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return FailedPrecondition("another publish holds " + path);
    }
    return IOErrorFromErrno("flock " + path, err);
  }
  return PublishLock(fd);
}

PublishLock::~PublishLock() {
  if (fd_ >= 0) close(fd_);
}

Result<PublishedMetadata> ReadPublishedMetadata(const RepositoryLayout& repo) {
  const std::string md = repo.metadata_dir();
  PublishedMetadata out;
  ASSIGN_OR_RETURN(auto ts_doc, ReadDocument(md + "/timestamp.json", nullptr));
  ASSIGN_OR_RETURN(out.timestamp, metadata::ParseTimestamp(ts_doc.signed_json));
  const auto& snap_info = out.timestamp.snapshot;
  ASSIGN_OR_RETURN(auto snap_doc,
                   ReadNamedFile(md + "/" + std::to_string(snap_info.version) + ".snapshot.json",
                                 snap_info, out.snapshot_bytes));
  ASSIGN_OR_RETURN(out.snapshot, metadata::ParseSnapshot(snap_doc.signed_json));
  auto targets_info = out.snapshot.meta.find("targets.json");
  if (targets_info == out.snapshot.meta.end()) {
    return Corruption("published snapshot names no targets.json");
  }
  ASSIGN_OR_RETURN(
      auto targets_doc,
      ReadNamedFile(md + "/" + std::to_string(targets_info->second.version) + ".targets.json",
                    targets_info->second, out.targets_bytes));
  ASSIGN_OR_RETURN(out.targets, metadata::ParseTargets(targets_doc.signed_json));
  return out;
}

Status RecoverUnpublishedMetadata(const RepositoryLayout& repo, std::vector<std::string>& notes) {
  ASSIGN_OR_RETURN(PublishedMetadata published, ReadPublishedMetadata(repo));
  const std::string md = repo.metadata_dir();
  RETURN_IF_ERROR(RestoreCopy(md + "/snapshot.json", published.snapshot_bytes, notes));
  return RestoreCopy(md + "/targets.json", published.targets_bytes, notes);
}

Status WriteRecorded(const RepositoryLayout& repo, const Clock& clock,
                     metadata::RepositoryOptions options,
                     const std::function<Status(metadata::Repository&)>& write) {
  ASSIGN_OR_RETURN(const std::string database, RepositoryDatabaseUrl(repo));
  ASSIGN_OR_RETURN(auto publication, OperatorPublication::Begin(database, clock));
  for (metadata::RoleType role : {metadata::RoleType::kTargets, metadata::RoleType::kSnapshot,
                                  metadata::RoleType::kTimestamp}) {
    auto recorded = publication->latest().find(std::string(metadata::RoleName(role)));
    if (recorded != publication->latest().end()) {
      options.published_versions[role] = recorded->second;
    }
  }
  // The versioned files this write adds (not current until the timestamp
  // names them): removed again when it fails.
  std::vector<std::string> added;
  options.before_write = [&](const std::string& role, uint64_t version,
                             const std::string& bytes) -> Status {
    if (role == metadata::RoleName(metadata::RoleType::kRoot)) return Status::Ok();
    RETURN_IF_ERROR(publication->Record({role, version, Digest::Of(bytes).Hex()}));
    if (role == metadata::RoleName(metadata::RoleType::kTimestamp)) return Status::Ok();
    const std::string path = repo.metadata_dir() + "/" + std::to_string(version) + "." +
                             metadata::PercentEncode(role) + ".json";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) added.push_back(path);
    return Status::Ok();
  };
  Status written = [&]() -> Status {
    ASSIGN_OR_RETURN(auto meta, metadata::Repository::Open(repo.root, clock, options));
    return write(*meta);
  }();
  if (written.ok()) {
    // After the timestamp's rename: a commit that fails (or never happens)
    // leaves current documents unrecorded, which the holder's next turn
    // records as they are; never recorded versions that were not current.
    RETURN_IF_ERROR_CTX(publication->Commit(),
                        "the metadata is published; the signing lease holder's next turn "
                        "records its versions");
    return Status::Ok();
  }
  // The timestamp was not written: nothing is current. Put the copies back.
  std::error_code ec;
  for (const std::string& path : added) std::filesystem::remove(path, ec);
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(repo, notes));
  if (written.code() == StatusCode::kAlreadyExists) {
    return std::move(written).WithContext(
        "nothing published, the repository is unchanged (the database records another "
        "document under this version: is this the repository every replica serves?)");
  }
  return written;
}

}  // namespace flotilla::tracker
