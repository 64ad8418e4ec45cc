// Names that come from signed metadata and end up in URLs and file names.
//
// A name is data, never a path: a target named "../../etc/passwd" must not
// choose where bytes land, and a role named "?x" must not change which URL is
// fetched. Names are validated where they are parsed and percent-encoded
// where they are used.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla::metadata {

// A TUF target path: 1..1024 bytes of printable UTF-8 text, '/'-separated
// segments none of which is empty, "." or "..", no leading '/', no '\\', no
// control characters.
Status ValidateTargetName(std::string_view name);

// A top-level or delegated role name: 1..255 bytes, no control characters.
// Other characters ('/', '%', '?', '#') are allowed, as TUF allows them, and
// are always percent-encoded when used (see PercentEncode).
Status ValidateRoleName(std::string_view name);

// Encodes every byte except A-Z a-z 0-9 '-' '.' '_' '~' as %XX (upper-case hex).
// The result is one safe file name or URL path segment, except that "." and
// ".." pass through unchanged; callers refuse those names first.
std::string PercentEncode(std::string_view text);

// Percent-encodes each '/'-separated segment of a validated target name and
// keeps the slashes: the URL path of a target below the target base URL.
std::string EncodeTargetUrlPath(std::string_view target_name);

}  // namespace flotilla::metadata
