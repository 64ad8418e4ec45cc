// The inputs that wrote metadata/testdata/tuf-0.1.0 (flotilla 0.1.0's
// repository and a device's trusted state): Ed25519 keys from fixed seeds, a
// fixed clock, and the releases it published. Tests use them to publish the
// next releases onto a copy of that repository with today's code and to check
// that today's client and 0.1.0's (tests/compat/tuf-client-0.1.0) take them.
// Part of flotilla_metadata_testing (built with the tests only).
#pragma once

#include <cstdint>

#include "core/clock.h"
#include "core/ed25519.h"
#include "metadata/release.h"
#include "metadata/repository.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata::compat010 {

// When the fixture was written: its metadata expires relative to this.
inline constexpr char kFixtureTime[] = "2026-12-01T08:00:00Z";
WallTime FixtureTime();

// The key of each top-level role (one per role, threshold 1).
Ed25519PrivateKey FixtureKey(RoleType role);
KeyRing FixtureRing();

// Release `version` of the app "kiosk", as the fixture's release 1 was made.
Release FixtureRelease(uint64_t version);

}  // namespace flotilla::metadata::compat010
