#include "tracker/publish/publish_artifacts.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/zstd_stream.h"

namespace flotilla::tracker {
namespace {

constexpr uint64_t kProgressStep = 16 << 20;

// An fd opened for writing, closed (and its file removed) on destruction.
class ScratchFile {
 public:
  static Result<ScratchFile> Create(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return IOErrorFromErrno("create " + path, errno);
    return ScratchFile(path, fd);
  }
  ScratchFile(ScratchFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }
  ScratchFile& operator=(ScratchFile&&) = delete;
  ~ScratchFile() {
    if (fd_ >= 0) {
      close(fd_);
      unlink(path_.c_str());
    }
  }
  Status Write(ByteSpan data) {
    while (!data.empty()) {
      ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return IOErrorFromErrno("write " + path_, errno);
      data = data.subspan(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  const std::string& path() const { return path_; }

 private:
  ScratchFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

std::string Mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

}  // namespace

Result<metadata::Artifact> MakeFullArtifact(layerstore::LayerStore& store, const Digest& diff_id,
                                            uint64_t length, const RepositoryLayout& repo,
                                            const FullArtifactOptions& options,
                                            const PublishProgressFn& progress) {
  ASSIGN_OR_RETURN(ScratchFile scratch,
                   ScratchFile::Create(options.staging_dir + "/" + diff_id.Hex() + ".zst"));
  ZstdCompressOptions zstd;
  zstd.level = options.zstd_level;
  ZstdCompressor compressor(zstd, [&scratch](ByteSpan out) { return scratch.Write(out); });
  uint64_t done = 0;
  uint64_t next_report = kProgressStep;
  Status written = store.WriteLayerTar(diff_id, [&](ByteSpan in) -> Status {
    RETURN_IF_ERROR(compressor.Write(in));
    done += in.size();
    if (progress && done >= next_report) {
      progress(fmt::format("  compressed {} of {}", Mib(done), Mib(length)));
      next_report += kProgressStep;
    }
    return Status::Ok();
  });
  RETURN_IF_ERROR_CTX(written, "layer " + diff_id.ToString());
  RETURN_IF_ERROR(compressor.Finish());
  if (done != length) {
    return Corruption("layer " + diff_id.ToString() + " gave " + std::to_string(done) +
                      " bytes, its record says " + std::to_string(length));
  }
  ASSIGN_OR_RETURN(ArtifactTorrent made, AddArtifact(repo, scratch.path(), options.torrent));
  metadata::Artifact artifact;
  artifact.layer = diff_id;
  artifact.kind = metadata::ArtifactKind::kFull;
  artifact.sha256 = made.sha256;
  artifact.length = made.length;
  artifact.info_hash = made.info_hash_v2;
  artifact.compression = "zstd";
  return artifact;
}

std::optional<metadata::Artifact> FindPublishedFullArtifact(
    const metadata::TargetsMetadata& targets, const Digest& diff_id, const RepositoryLayout& repo) {
  for (const auto& [name, target] : targets.targets) {
    if (!target.custom.is_object() || !target.custom.contains("flotilla")) continue;
    auto release = metadata::ParseRelease(target.custom);
    if (!release.ok()) continue;
    for (const auto& artifact : release->artifacts) {
      if (artifact.kind != metadata::ArtifactKind::kFull || artifact.layer != diff_id) continue;
      const std::string hex = artifact.sha256.Hex();
      std::error_code ec;
      auto size = std::filesystem::file_size(repo.artifact_path(hex), ec);
      if (ec || size != artifact.length) continue;
      if (!std::filesystem::is_regular_file(repo.torrent_path(hex), ec)) continue;
      return artifact;
    }
  }
  return std::nullopt;
}

}  // namespace flotilla::tracker
