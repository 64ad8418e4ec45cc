// Streaming zstd with bounded output and bounded memory.
//
// Both directions push bytes into a ByteSink as they are produced, so neither
// ever holds a whole artifact in memory. The decompressor stops with
// ResourceExhausted as soon as its output would pass `max_output_bytes` (a
// decompression bomb is an error, not an out-of-memory kill), and refuses
// frames whose window needs more than 2^max_window_log bytes of memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla {

// Receives output bytes in order. A non-OK status aborts the stream.
using ByteSink = std::function<Status(ByteSpan)>;

struct ZstdCompressOptions {
  int level = 19;
  int window_log = 0;  // 0: zstd's default for the level
  int threads = 0;     // 0: compress in the calling thread
};

class ZstdCompressor {
 public:
  ZstdCompressor(ZstdCompressOptions options, ByteSink sink);
  ~ZstdCompressor();
  ZstdCompressor(const ZstdCompressor&) = delete;
  ZstdCompressor& operator=(const ZstdCompressor&) = delete;

  Status Write(ByteSpan input);
  // Compresses `last` and ends the frame. No Write after Finish. Given the
  // whole input this way (no Write before), zstd sizes its tables to it: a
  // small input costs little memory even at a high level.
  Status Finish(ByteSpan last = {});

 private:
  Status Drive(ByteSpan input, int directive);
  struct State;
  std::unique_ptr<State> state_;
};

struct ZstdDecompressOptions {
  uint64_t max_output_bytes = 0;  // required: the size the caller was promised
  int max_window_log = 27;        // 128 MiB; a Pi may want 23 (8 MiB)
};

class ZstdDecompressor {
 public:
  ZstdDecompressor(ZstdDecompressOptions options, ByteSink sink);
  ~ZstdDecompressor();
  ZstdDecompressor(const ZstdDecompressor&) = delete;
  ZstdDecompressor& operator=(const ZstdDecompressor&) = delete;

  Status Write(ByteSpan input);
  // Fails with Corruption if the input ended inside a frame.
  Status Finish();
  uint64_t output_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One-shot helpers built on the streaming classes.
Result<Bytes> ZstdCompress(ByteSpan input, ZstdCompressOptions options = {});
Result<Bytes> ZstdDecompress(ByteSpan input, uint64_t max_output_bytes);

}  // namespace flotilla
