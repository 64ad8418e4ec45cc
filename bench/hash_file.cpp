// Prints "<hex>  <file>" like sha256sum, using flotilla's Digest: what
// bench/hash times against openssl and sha256sum.
#include <cstdio>

#include "core/digest.h"

int main(int argc, char** argv) {
  int rc = 0;
  for (int i = 1; i < argc; ++i) {
    auto digest = flotilla::HashFile(argv[i]);
    if (!digest.ok()) {
      std::fprintf(stderr, "%s\n", digest.status().ToString().c_str());
      rc = 1;
      continue;
    }
    std::printf("%s  %s\n", digest->Hex().c_str(), argv[i]);
  }
  return rc;
}
