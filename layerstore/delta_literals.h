// Internal to the delta codec: how the encoder sorts LITERAL files into frames
// by kind of content and picks, for each frame, the base files most likely to
// share bytes with it as the frame's zstd prefix (docs/delta.md, "Literal
// frames"). Pure functions: no store, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"

namespace flotilla::layerstore::delta_internal {

enum class ContentKind : uint8_t {
  kText = 0,           // no NUL byte in its first kClassifySample bytes
  kElfExecutable = 1,  // ELF executables, PIE executables, objects
  kSharedLibrary = 2,  // ELF ET_DYN whose name has ".so"
  kOpaque = 3,         // other binary data: message catalogs, databases, magic.mgc
  kCompressed = 4,     // gzip, xz, zstd, bzip2, zip: no prefix can help
};
inline constexpr int kContentKinds = 5;
// How many leading bytes ClassifyContent looks at.
inline constexpr size_t kClassifySample = 4096;

std::string ContentKindName(ContentKind kind);
// The kind of a file from its path and its first bytes (at most kClassifySample).
ContentKind ClassifyContent(std::string_view path, ByteSpan head);

// A base file that could go into a prefix (same kind as the frame).
struct PrefixCandidate {
  size_t id = 0;  // the caller's handle
  std::string_view path;
  uint64_t size = 0;
};
// One piece of the chosen prefix: the first `length` bytes of candidate `id`.
struct ChosenPiece {
  size_t id = 0;
  uint64_t length = 0;
};

// Bases files smaller than this do not go in a prefix: the extent naming
// them costs several bytes for little to match.
inline constexpr uint64_t kMinPrefixPiece = 1024;

// Ranks `candidates` by how much their names resemble `frame_paths` (same
// file name, same extension with digits ignored, same directory, same top
// two directories) and returns the best ones up to `budget` bytes, the most
// similar LAST (nearest the frame's content, where zstd's offsets are
// cheapest). For ELF kinds any candidate qualifies (the format's boilerplate
// matches); for text and opaque data only those whose name resembles one;
// for compressed data none.
std::vector<ChosenPiece> ChoosePrefix(ContentKind kind, const std::vector<std::string>& frame_paths,
                                      const std::vector<PrefixCandidate>& candidates,
                                      uint64_t budget);

}  // namespace flotilla::layerstore::delta_internal
