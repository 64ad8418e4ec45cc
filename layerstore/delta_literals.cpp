#include "layerstore/delta_literals.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/enum_names.h"

namespace flotilla::layerstore::delta_internal {
namespace {

struct NameParts {
  std::string dir;        // up to the last '/'
  std::string name;       // after it
  std::string extension;  // from the name's first '.', digits shown as '#' ("" if none)
  std::string top;        // the first two directories
};

NameParts SplitName(std::string_view path) {
  NameParts parts;
  size_t slash = path.rfind('/');
  parts.dir = slash == std::string_view::npos ? "" : std::string(path.substr(0, slash));
  parts.name = std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
  size_t dot = parts.name.find('.', 1);
  if (dot != std::string::npos) {
    for (char c : std::string_view(parts.name).substr(dot)) {
      bool digit = c >= '0' && c <= '9';
      if (!digit) parts.extension.push_back(c);
      if (digit && parts.extension.back() != '#') parts.extension.push_back('#');
    }
  }
  size_t first = path.find('/');
  size_t second = first == std::string_view::npos ? first : path.find('/', first + 1);
  parts.top = std::string(path.substr(0, second == std::string_view::npos ? 0 : second));
  return parts;
}

bool StartsWith(ByteSpan head, std::initializer_list<uint8_t> magic) {
  return head.size() >= magic.size() && std::equal(magic.begin(), magic.end(), head.begin());
}

// Counts of the frame's name parts, for scoring candidates.
struct FrameNames {
  std::unordered_map<std::string, uint64_t> names, extensions, dirs, tops;

  explicit FrameNames(const std::vector<std::string>& paths) {
    for (const std::string& path : paths) {
      NameParts p = SplitName(path);
      ++names[p.name];
      if (!p.extension.empty()) ++extensions[p.extension];
      ++dirs[p.dir];
      if (!p.top.empty()) ++tops[p.top];
    }
  }
  static uint64_t Count(const std::unordered_map<std::string, uint64_t>& map,
                        const std::string& key) {
    auto it = map.find(key);
    return it == map.end() ? 0 : it->second;
  }
  uint64_t Score(std::string_view path) const {
    NameParts p = SplitName(path);
    uint64_t score = 4 * Count(names, p.name) + 2 * Count(dirs, p.dir) + Count(tops, p.top);
    if (!p.extension.empty()) score += 2 * Count(extensions, p.extension);
    return score;
  }
};

// A name must resemble the frame's by more than a shared top directory.
constexpr uint64_t kMinNameScore = 2;

}  // namespace

constexpr EnumName<ContentKind> kContentKindNames[] = {
    {ContentKind::kText, "text"},
    {ContentKind::kElfExecutable, "elf-executable"},
    {ContentKind::kSharedLibrary, "shared-library"},
    {ContentKind::kOpaque, "opaque"},
    {ContentKind::kCompressed, "compressed"}};

std::string ContentKindName(ContentKind kind) {
  return std::string(NameOf(kContentKindNames, kind));
}

ContentKind ClassifyContent(std::string_view path, ByteSpan head) {
  head = head.first(std::min(head.size(), kClassifySample));
  if (StartsWith(head, {0x7f, 'E', 'L', 'F'}) && head.size() >= 18) {
    const bool little_endian = head[5] == 1;
    const unsigned type = little_endian ? head[16] | head[17] << 8 : head[16] << 8 | head[17];
    constexpr unsigned kElfSharedObject = 3;  // ET_DYN: libraries and PIE executables
    std::string name = SplitName(path).name;
    if (type == kElfSharedObject && name.find(".so") != std::string::npos) {
      return ContentKind::kSharedLibrary;
    }
    return ContentKind::kElfExecutable;
  }
  const bool compressed = StartsWith(head, {0x1f, 0x8b}) ||                   // gzip
                          StartsWith(head, {0xfd, '7', 'z', 'X', 'Z', 0}) ||  // xz
                          StartsWith(head, {0x28, 0xb5, 0x2f, 0xfd}) ||       // zstd
                          StartsWith(head, {'B', 'Z', 'h'}) ||                // bzip2
                          StartsWith(head, {'P', 'K', 3, 4});                 // zip
  if (compressed) return ContentKind::kCompressed;
  // (an empty file's span may have a null data(), which memchr must not get)
  if (!head.empty() && std::memchr(head.data(), 0, head.size()) != nullptr) {
    return ContentKind::kOpaque;
  }
  return ContentKind::kText;
}

std::vector<ChosenPiece> ChoosePrefix(ContentKind kind, const std::vector<std::string>& frame_paths,
                                      const std::vector<PrefixCandidate>& candidates,
                                      uint64_t budget) {
  if (kind == ContentKind::kCompressed) return {};
  const FrameNames frame(frame_paths);
  const bool any_qualifies =
      kind == ContentKind::kElfExecutable || kind == ContentKind::kSharedLibrary;
  struct Ranked {
    uint64_t score;
    const PrefixCandidate* candidate;
  };
  std::vector<Ranked> ranked;
  for (const PrefixCandidate& c : candidates) {
    if (c.size < kMinPrefixPiece) continue;
    uint64_t score = frame.Score(c.path);
    if (score >= kMinNameScore || any_qualifies) ranked.push_back({score, &c});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.candidate->size != b.candidate->size) return a.candidate->size < b.candidate->size;
    return a.candidate->path < b.candidate->path;
  });
  // One file may fill at most half the prefix, so that a big one does not crowd out the rest.
  const uint64_t piece_cap = std::max<uint64_t>(budget / 2, 1);
  std::vector<ChosenPiece> chosen;
  for (const Ranked& r : ranked) {
    if (budget < kMinPrefixPiece) break;
    uint64_t length = std::min({r.candidate->size, piece_cap, budget});
    chosen.push_back({r.candidate->id, length});
    budget -= length;
  }
  std::reverse(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace flotilla::layerstore::delta_internal
