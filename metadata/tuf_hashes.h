// Signed lengths and hashes of targets and metadata files.
//
// flotilla computes "sha256" and "sha512". A signed "hashes" object is
// checked like this: every algorithm flotilla computes that it lists must
// match; algorithms flotilla does not compute are ignored when a supported
// one is listed beside them; a "hashes" object listing none that flotilla
// computes is refused (nothing could be checked). Hex digits are compared as
// written (lower case, as TUF writes them).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla::metadata {

using HashMap = std::map<std::string, std::string>;  // algorithm -> hex digest

bool IsSupportedHash(std::string_view algorithm);

// The hash a consistent-snapshot target file name carries: sha256 when listed,
// else sha512, else the first listed. Empty when `hashes` is empty.
std::string HashForFileName(const HashMap& hashes);

// The hex digests of `data` under each of `algorithms` (each supported).
Result<HashMap> ComputeHashes(ByteSpan data, const std::vector<std::string>& algorithms);

// Checks `data` against a signed length (if any) and hashes (as above). With
// `require_hash`, an empty `hashes` is refused too.
Status CheckLengthAndHashes(std::string_view what, ByteSpan data, std::optional<uint64_t> length,
                            const HashMap& hashes, bool require_hash);
// The same for the regular file at `path`, read in bounded chunks.
Status CheckFileLengthAndHashes(std::string_view what, const std::string& path,
                                std::optional<uint64_t> length, const HashMap& hashes,
                                bool require_hash);

}  // namespace flotilla::metadata
