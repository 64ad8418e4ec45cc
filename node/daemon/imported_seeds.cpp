#include "node/daemon/imported_seeds.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <utility>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kMaxSeedsFileBytes = 1 << 20;
constexpr size_t kMaxEntries = 64;

Json ToJson(const std::vector<ImportedSeeds>& entries) {
  Json releases = Json::array();
  for (const auto& e : entries) {
    Json artifacts = Json::array();
    for (const auto& a : e.artifacts) {
      artifacts.push_back(
          {{"sha256", a.sha256.ToString()},
           {"length", a.length},
           {"info_hash", HexEncode(ByteSpan(a.info_hash.data(), a.info_hash.size()))}});
    }
    releases.push_back({{"app", e.app}, {"release", e.release}, {"artifacts", artifacts}});
  }
  return Json{{"format", 1}, {"releases", releases}};
}

Status ReadArtifact(JsonObjectReader& r, ArtifactRequest& a) {
  std::string sha256, info_hash;
  r.Require({"sha256", "length", "info_hash"});
  r.String("sha256", sha256);
  r.Unsigned("length", a.length);
  r.String("info_hash", info_hash);
  if (sha256.empty() || info_hash.empty()) return Status::Ok();  // the reader names what is missing
  ASSIGN_OR_RETURN(a.sha256, Digest::Parse(sha256));
  ASSIGN_OR_RETURN(Bytes hash, HexDecode(info_hash));
  if (hash.size() != a.info_hash.size()) return InvalidArgument("info_hash: must be 64 hex digits");
  std::copy(hash.begin(), hash.end(), a.info_hash.begin());
  return Status::Ok();
}

}  // namespace

Result<std::vector<ImportedSeeds>> LoadImportedSeeds(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) {
    if (errno == ENOENT) return std::vector<ImportedSeeds>();
    return IOErrorFromErrno("access " + path, errno);
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxSeedsFileBytes));
  auto parsed = ParseJsonStrict(text);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  std::vector<ImportedSeeds> entries;
  uint64_t format = 0;
  JsonObjectReader r(*parsed, "", UnknownKeys::kIgnore);
  r.Require({"format", "releases"});
  r.Unsigned("format", format, 1, 1);
  r.Objects("releases", [&](JsonObjectReader& e) {
    ImportedSeeds seeds;
    e.Require({"app", "release", "artifacts"});
    e.String("app", seeds.app);
    e.Unsigned("release", seeds.release, 1);
    e.Objects("artifacts", [&](JsonObjectReader& a) {
      seeds.artifacts.emplace_back();
      return ReadArtifact(a, seeds.artifacts.back());
    });
    entries.push_back(std::move(seeds));
  });
  RETURN_IF_ERROR(r.Finish().WithContext(path));
  return entries;
}

Status RecordImportedSeeds(const std::string& path, const ImportedSeeds& seeds) {
  auto entries = LoadImportedSeeds(path);
  std::vector<ImportedSeeds> kept =
      entries.ok() ? std::move(*entries) : std::vector<ImportedSeeds>();
  kept.push_back(seeds);
  if (kept.size() > kMaxEntries) kept.erase(kept.begin(), kept.end() - kMaxEntries);
  return WriteFileAtomic(path, ToJson(kept).dump(1) + "\n", 0600);
}

Status RemoveImportedSeeds(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IOErrorFromErrno("remove " + path, errno);
  }
  return FsyncDirectory(std::filesystem::path(path).parent_path().string());
}

}  // namespace flotilla::node
