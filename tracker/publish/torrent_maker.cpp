#include "tracker/publish/torrent_maker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <libtorrent/bdecode.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/torrent_info.hpp>

#include "core/file_io.h"

namespace flotilla::tracker {
namespace {

namespace lt = libtorrent;

constexpr size_t kMaxTorrentBytes = 16 << 20;

// Copies `source` to `dest` through a temporary file, fsync'd, renamed.
Status CopyFileDurably(const std::string& source, const std::string& dest) {
  const std::string temp = dest + ".tmp." + std::to_string(::getpid());
  int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return IOErrorFromErrno("open " + source, errno);
  int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return IOErrorFromErrno("create " + temp, err);
  }
  std::vector<char> buf(64 << 10);
  Status st;
  while (st.ok()) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = IOErrorFromErrno("read " + source, errno);
    if (n <= 0) break;
    for (ssize_t done = 0; done < n && st.ok();) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno != EINTR) st = IOErrorFromErrno("write " + temp, errno);
      if (w > 0) done += w;
    }
  }
  if (st.ok() && ::fsync(out) != 0) st = IOErrorFromErrno("fsync " + temp, errno);
  ::close(in);
  if (::close(out) != 0 && st.ok()) st = IOErrorFromErrno("close " + temp, errno);
  if (st.ok() && ::rename(temp.c_str(), dest.c_str()) != 0) {
    st = IOErrorFromErrno("rename " + temp, errno);
  }
  if (!st.ok()) {
    ::unlink(temp.c_str());
    return st;
  }
  return FsyncDirectory(std::filesystem::path(dest).parent_path().string());
}

Result<std::array<uint8_t, 32>> InfoHashV2(const std::string& torrent) {
  lt::error_code ec;
  lt::torrent_info info(lt::span<const char>(torrent.data(), static_cast<long>(torrent.size())), ec,
                        lt::from_span);
  if (ec) return Corruption("made a torrent libtorrent cannot load: " + ec.message());
  if (!info.info_hashes().has_v2()) return Internal("made a torrent without a v2 info-hash");
  std::array<uint8_t, 32> out;
  std::memcpy(out.data(), info.info_hashes().v2.data(), out.size());
  return out;
}

Result<std::string> GenerateTorrent(const std::string& path, const std::string& hex,
                                    const TorrentOptions& options) {
  lt::file_storage files;
  lt::add_files(files, path);
  if (files.num_files() != 1) return InvalidArgument(path + " is not a regular file");
  lt::create_torrent ct(files, options.piece_size, lt::create_torrent::v2_only);
  lt::error_code ec;
  lt::set_piece_hashes(ct, std::filesystem::path(path).parent_path().string(), ec);
  if (ec) return Status(StatusCode::kIOError, "hash " + path + ": " + ec.message());
  ct.add_tracker(AnnounceUrl(options.public_url));
  ct.add_url_seed(WebSeedUrl(options.public_url, hex));
  ct.set_creator("flotilla-tracker");
  ct.set_creation_date(0);  // byte-identical torrents for identical artifacts
  std::string out;
  lt::bencode(std::back_inserter(out), ct.generate());
  return out;
}

}  // namespace

std::string AnnounceUrl(std::string_view public_url) {
  return std::string(public_url) + "/announce";
}

std::string WebSeedUrl(std::string_view public_url, std::string_view hex) {
  return std::string(public_url) + "/artifacts/" + std::string(hex) + "/";
}

Result<ArtifactTorrent> MakeArtifactTorrent(const std::string& path,
                                            const TorrentOptions& options) {
  const std::string hex = std::filesystem::path(path).filename().string();
  if (!IsArtifactHex(hex)) return InvalidArgument(path + ": file name is not a SHA-256 in hex");
  if (options.piece_size < (16 << 10) || (options.piece_size & (options.piece_size - 1)) != 0) {
    return InvalidArgument("piece size must be a power of two >= 16 KiB");
  }
  ArtifactTorrent result;
  ASSIGN_OR_RETURN(result.sha256, HashFile(path));
  if (result.sha256.Hex() != hex) return Corruption(path + " does not hash to its name");
  std::error_code fs_ec;
  result.length = std::filesystem::file_size(path, fs_ec);
  if (fs_ec) return Status(StatusCode::kIOError, "stat " + path + ": " + fs_ec.message());
  try {
    ASSIGN_OR_RETURN(result.torrent, GenerateTorrent(path, hex, options));
  } catch (const std::exception& e) {
    return Internal("create torrent for " + path + ": " + e.what());
  }
  ASSIGN_OR_RETURN(result.info_hash_v2, InfoHashV2(result.torrent));
  return result;
}

Result<ArtifactTorrent> AddArtifact(const RepositoryLayout& repo, const std::string& source,
                                    const TorrentOptions& options) {
  RETURN_IF_ERROR(CreateDirectories(repo.artifacts_dir()));
  RETURN_IF_ERROR(CreateDirectories(repo.torrents_dir()));
  ASSIGN_OR_RETURN(Digest digest, HashFile(source));
  const std::string dest = repo.artifact_path(digest.Hex());
  if (!std::filesystem::exists(dest)) RETURN_IF_ERROR(CopyFileDurably(source, dest));
  ASSIGN_OR_RETURN(ArtifactTorrent made, MakeArtifactTorrent(dest, options));
  RETURN_IF_ERROR(WriteFileAtomic(repo.torrent_path(digest.Hex()), made.torrent));
  return made;
}

Result<std::string> PersonalizeTorrent(std::string_view torrent, std::string_view announce_url) {
  if (torrent.size() > kMaxTorrentBytes) return ResourceExhausted("torrent too large");
  lt::error_code ec;
  lt::bdecode_node node =
      lt::bdecode(lt::span<const char>(torrent.data(), static_cast<long>(torrent.size())), ec);
  if (ec || node.type() != lt::bdecode_node::dict_t) {
    return Corruption("stored torrent does not decode");
  }
  try {
    lt::entry e(node);
    e["announce"] = std::string(announce_url);
    e.dict().erase("announce-list");
    std::string out;
    lt::bencode(std::back_inserter(out), e);
    return out;
  } catch (const std::exception& ex) {
    return Corruption(std::string("stored torrent: ") + ex.what());
  }
}

}  // namespace flotilla::tracker
