#include "metadata/compat_fixture.h"

#include <string>

#include "core/digest.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata::compat010 {

WallTime FixtureTime() { return ParseTufTime(kFixtureTime).value(); }

Ed25519PrivateKey FixtureKey(RoleType role) {
  return Ed25519PrivateKey::FromSeed(
             Digest::Of("flotilla 0.1.0 fixture " + std::string(RoleName(role))).bytes())
      .value();
}

KeyRing FixtureRing() {
  KeyRing ring;
  for (RoleType role : kAllRoles) ring.Add(FixtureKey(role));
  return ring;
}

Release FixtureRelease(uint64_t version) {
  const std::string v = std::to_string(version);
  Release r;
  r.app = "kiosk";
  r.version = version;
  r.image.manifest = Digest::Of("manifest " + v);
  r.image.config = Digest::Of("config " + v);
  r.image.platform = "linux/arm64";
  r.image.layers = {{Digest::Of("layer " + v), 4096}};
  r.artifacts = {{Digest::Of("layer " + v),
                  ArtifactKind::kFull,
                  {},
                  Digest::Of("artifact " + v),
                  1024,
                  Digest::Of("torrent " + v).bytes(),
                  "zstd"}};
  r.app_spec = Json{{"command", {"/kiosk"}}, {"restart", "always"}};
  return r;
}

}  // namespace flotilla::metadata::compat010
