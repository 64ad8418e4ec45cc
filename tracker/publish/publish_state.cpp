#include "tracker/publish/publish_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "core/file_io.h"
#include "metadata/tuf_signing.h"

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

}  // namespace flotilla::tracker
