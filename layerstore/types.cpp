#include "layerstore/types.h"

#include <sys/utsname.h>

#include "core/enum_names.h"

namespace flotilla::layerstore {

std::string Platform::ToString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Result<Platform> Platform::Parse(std::string_view text) {
  Platform p;
  size_t a = text.find('/');
  if (a == std::string_view::npos || a == 0) {
    return InvalidArgument("platform '" + std::string(text) + "' is not os/arch[/variant]");
  }
  p.os = std::string(text.substr(0, a));
  std::string_view rest = text.substr(a + 1);
  size_t b = rest.find('/');
  p.architecture = std::string(rest.substr(0, b));
  if (b != std::string_view::npos) p.variant = std::string(rest.substr(b + 1));
  if (p.architecture.empty() || p.variant.find('/') != std::string::npos) {
    return InvalidArgument("platform '" + std::string(text) + "' is not os/arch[/variant]");
  }
  return p;
}

Platform Platform::Host() {
  utsname u{};
  ::uname(&u);
  std::string machine = u.machine;
  Platform p{"linux", machine, ""};
  if (machine == "x86_64") p.architecture = "amd64";
  if (machine == "i686" || machine == "i386") p.architecture = "386";
  if (machine == "aarch64" || machine == "arm64") p.architecture = "arm64";
  if (machine.rfind("armv", 0) == 0) {
    p.architecture = "arm";
    p.variant = "v" + machine.substr(4, 1);
  }
#if defined(__arm__)
  // A 32-bit build on a 64-bit kernel (Raspberry Pi OS 32-bit on a Pi 4):
  // the userland is 32-bit arm, and so are the images its fleet runs.
  if (p.architecture == "arm64") {
    p.architecture = "arm";
    p.variant = "v" + std::to_string(__ARM_ARCH < 8 ? __ARM_ARCH : 8);
  }
#endif
  return p;
}

bool Platform::Accepts(const Platform& offered) const {
  if (os != offered.os || architecture != offered.architecture) return false;
  if (variant.empty() || variant == offered.variant) return true;
  return architecture == "arm64" && variant == "v8" && offered.variant.empty();
}

namespace {

// An arm variant's level ("v6" -> 6); no variant is v7, as OCI tools take
// it; 0 for anything else.
int ArmLevel(std::string_view variant) {
  if (variant.empty()) return 7;
  if (variant.size() != 2 || variant[0] != 'v' || variant[1] < '5' || variant[1] > '8') return 0;
  return variant[1] - '0';
}

bool IsOneOf(std::string_view variant, std::string_view a, std::string_view b) {
  return variant == a || variant == b;
}

}  // namespace

bool Platform::Runs(const Platform& image) const {
  if (os != image.os || architecture != image.architecture) return false;
  if (architecture == "arm") {
    const int host = ArmLevel(variant), built = ArmLevel(image.variant);
    return host != 0 && built != 0 && built <= host;
  }
  if (architecture == "arm64")
    return IsOneOf(variant, "", "v8") && IsOneOf(image.variant, "", "v8");
  if (architecture == "amd64")
    return IsOneOf(variant, "", "v1") && IsOneOf(image.variant, "", "v1");
  return variant == image.variant;
}

std::string_view LayerStateName(LayerState state) {
  return state == LayerState::kReady ? "ready" : "quarantined";
}

constexpr EnumName<Phase> kPhaseNames[] = {
    {Phase::kReading, "reading"},     {Phase::kUnpacking, "unpacking"},
    {Phase::kPromoting, "promoting"}, {Phase::kIndexing, "indexing"},
    {Phase::kVerifying, "verifying"}, {Phase::kDone, "done"}};

std::string_view PhaseName(Phase phase) { return NameOf(kPhaseNames, phase); }

}  // namespace flotilla::layerstore
