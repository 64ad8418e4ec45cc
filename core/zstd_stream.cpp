#include "core/zstd_stream.h"

#include <zstd.h>

#include <string>
#include <vector>

namespace flotilla {
namespace {

Status ZstdError(const char* what, size_t code) {
  return Corruption(std::string(what) + ": " + ZSTD_getErrorName(code));
}

}  // namespace

struct ZstdCompressor::State {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ByteSink sink;
  std::vector<uint8_t> out = std::vector<uint8_t>(ZSTD_CStreamOutSize());
  bool finished = false;
  ~State() { ZSTD_freeCCtx(ctx); }
};

ZstdCompressor::ZstdCompressor(ZstdCompressOptions options, ByteSink sink)
    : state_(std::make_unique<State>()) {
  state_->sink = std::move(sink);
  ZSTD_CCtx_setParameter(state_->ctx, ZSTD_c_compressionLevel, options.level);
  ZSTD_CCtx_setParameter(state_->ctx, ZSTD_c_checksumFlag, 1);
  if (options.window_log > 0) {
    ZSTD_CCtx_setParameter(state_->ctx, ZSTD_c_windowLog, options.window_log);
  }
  if (options.threads > 0) ZSTD_CCtx_setParameter(state_->ctx, ZSTD_c_nbWorkers, options.threads);
}

ZstdCompressor::~ZstdCompressor() = default;

Status ZstdCompressor::Drive(ByteSpan input, int directive) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{state_->out.data(), state_->out.size(), 0};
    size_t remaining =
        ZSTD_compressStream2(state_->ctx, &out, &in, static_cast<ZSTD_EndDirective>(directive));
    if (ZSTD_isError(remaining)) return ZstdError("zstd compress", remaining);
    if (out.pos > 0) RETURN_IF_ERROR(state_->sink(ByteSpan(state_->out.data(), out.pos)));
    bool done = directive == ZSTD_e_continue ? in.pos == in.size : remaining == 0;
    if (done) return Status::Ok();
  }
}

Status ZstdCompressor::Write(ByteSpan input) {
  if (state_->finished) return FailedPrecondition("zstd compressor written after Finish");
  return Drive(input, ZSTD_e_continue);
}

Status ZstdCompressor::Finish(ByteSpan last) {
  if (state_->finished) return FailedPrecondition("zstd compressor finished twice");
  state_->finished = true;
  return Drive(last, ZSTD_e_end);
}

struct ZstdDecompressor::State {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  ByteSink sink;
  uint64_t max_output = 0;
  uint64_t produced = 0;
  size_t last_hint = 0;  // 0 once a frame is complete
  bool saw_input = false;
  std::vector<uint8_t> out = std::vector<uint8_t>(ZSTD_DStreamOutSize());
  ~State() { ZSTD_freeDCtx(ctx); }
};

ZstdDecompressor::ZstdDecompressor(ZstdDecompressOptions options, ByteSink sink)
    : state_(std::make_unique<State>()) {
  state_->sink = std::move(sink);
  state_->max_output = options.max_output_bytes;
  ZSTD_DCtx_setParameter(state_->ctx, ZSTD_d_windowLogMax, options.max_window_log);
}

ZstdDecompressor::~ZstdDecompressor() = default;

uint64_t ZstdDecompressor::output_bytes() const { return state_->produced; }

Status ZstdDecompressor::Write(ByteSpan input) {
  if (!input.empty()) state_->saw_input = true;
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  // Loop until all input is consumed and the decoder has flushed what it can.
  for (;;) {
    ZSTD_outBuffer out{state_->out.data(), state_->out.size(), 0};
    const size_t consumed_before = in.pos;
    size_t hint = ZSTD_decompressStream(state_->ctx, &out, &in);
    if (ZSTD_isError(hint)) return ZstdError("zstd decompress", hint);
    // Once a frame ends, a call with no input returns the size of the next
    // frame's header; only calls that made progress say where we are.
    if (in.pos > consumed_before || out.pos > 0) state_->last_hint = hint;
    if (out.pos > 0) {
      if (state_->produced + out.pos > state_->max_output) {
        return ResourceExhausted("zstd output exceeds its bound of " +
                                 std::to_string(state_->max_output) + " bytes");
      }
      state_->produced += out.pos;
      RETURN_IF_ERROR(state_->sink(ByteSpan(state_->out.data(), out.pos)));
    }
    bool output_full = out.pos == out.size;
    if (in.pos == in.size && !output_full) return Status::Ok();
  }
}

Status ZstdDecompressor::Finish() {
  if (!state_->saw_input) return Corruption("zstd stream is empty");
  if (state_->last_hint != 0) return Corruption("zstd stream is truncated");
  return Status::Ok();
}

Result<Bytes> ZstdCompress(ByteSpan input, ZstdCompressOptions options) {
  Bytes out;
  ZstdCompressor compressor(options, [&](ByteSpan chunk) {
    out.insert(out.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  });
  RETURN_IF_ERROR(compressor.Finish(input));
  return out;
}

Result<Bytes> ZstdDecompress(ByteSpan input, uint64_t max_output_bytes) {
  Bytes out;
  ZstdDecompressor decompressor({.max_output_bytes = max_output_bytes}, [&](ByteSpan chunk) {
    out.insert(out.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  });
  RETURN_IF_ERROR(decompressor.Write(input));
  RETURN_IF_ERROR(decompressor.Finish());
  return out;
}

}  // namespace flotilla
