// Internal to the delta codec: zstd frames compressed against a referenced
// prefix (ZSTD_CCtx_refPrefix / ZSTD_DCtx_refPrefix), with the window capped.
#pragma once

#include <cstdint>
#include <memory>

#include "core/bytes.h"
#include "core/status.h"
#include "core/zstd_stream.h"

namespace flotilla::layerstore::delta_internal {

// One zstd frame of `input` (content size recorded, no checksum) whose
// matches may reach into `prefix`; window 2^window_log.
Result<Bytes> CompressWithPrefix(ByteSpan input, ByteSpan prefix, int level, int window_log);

// Decodes frames one at a time, each against the prefix given to Begin.
// Memory: the zstd window (<= 2^max_window_log, refused above) plus 128 KiB.
class PrefixDecompressor {
 public:
  explicit PrefixDecompressor(int max_window_log);
  ~PrefixDecompressor();
  PrefixDecompressor(const PrefixDecompressor&) = delete;
  PrefixDecompressor& operator=(const PrefixDecompressor&) = delete;

  // Starts a frame; `prefix` must stay valid until End.
  Status Begin(ByteSpan prefix, uint64_t max_output, ByteSink sink);
  // Feeds compressed bytes; output past max_output is ResourceExhausted.
  Status Write(ByteSpan compressed);
  // Fails with Corruption unless exactly one whole frame was fed.
  Status End();
  uint64_t output_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace flotilla::layerstore::delta_internal
