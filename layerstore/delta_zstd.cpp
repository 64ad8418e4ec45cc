#include "layerstore/delta_zstd.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <string>
#include <vector>

namespace flotilla::layerstore::delta_internal {
namespace {

Status ZstdFailure(const char* what, size_t code) {
  return Corruption(std::string(what) + ": " + ZSTD_getErrorName(code));
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

}  // namespace

Result<Bytes> CompressWithPrefix(ByteSpan input, ByteSpan prefix, int level, int window_log) {
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  if (!ctx) return ResourceExhausted("zstd: out of memory");
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_windowLog, window_log);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_contentSizeFlag, 1);
  if (!prefix.empty()) {
    size_t rc = ZSTD_CCtx_refPrefix(ctx.get(), prefix.data(), prefix.size());
    if (ZSTD_isError(rc)) return ZstdFailure("zstd refPrefix", rc);
  }
  Bytes out(ZSTD_compressBound(input.size()));
  size_t n = ZSTD_compress2(ctx.get(), out.data(), out.size(), input.data(), input.size());
  if (ZSTD_isError(n)) return ZstdFailure("zstd compress", n);
  out.resize(n);
  return out;
}

struct PrefixDecompressor::State {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  std::vector<uint8_t> out = std::vector<uint8_t>(ZSTD_DStreamOutSize());
  ByteSink sink;
  uint64_t max_output = 0;
  uint64_t produced = 0;
  size_t last_hint = 1;  // 0 once a frame is complete
  bool in_frame = false;
  ~State() { ZSTD_freeDCtx(ctx); }
};

PrefixDecompressor::PrefixDecompressor(int max_window_log) : state_(std::make_unique<State>()) {
  ZSTD_DCtx_setParameter(state_->ctx, ZSTD_d_windowLogMax, max_window_log);
}

PrefixDecompressor::~PrefixDecompressor() = default;

Status PrefixDecompressor::Begin(ByteSpan prefix, uint64_t max_output, ByteSink sink) {
  if (!state_->ctx) return ResourceExhausted("zstd: out of memory");
  ZSTD_DCtx_reset(state_->ctx, ZSTD_reset_session_only);
  if (!prefix.empty()) {
    size_t rc = ZSTD_DCtx_refPrefix(state_->ctx, prefix.data(), prefix.size());
    if (ZSTD_isError(rc)) return ZstdFailure("zstd refPrefix", rc);
  }
  state_->sink = std::move(sink);
  state_->max_output = max_output;
  state_->produced = 0;
  state_->last_hint = 1;
  state_->in_frame = true;
  return Status::Ok();
}

Status PrefixDecompressor::Write(ByteSpan compressed) {
  State& s = *state_;
  if (!s.in_frame) return FailedPrecondition("zstd: Write outside a frame");
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  while (in.pos < in.size || s.last_hint != 0) {
    if (s.last_hint == 0) return Corruption("zstd: bytes after the end of the frame");
    ZSTD_outBuffer out{s.out.data(), s.out.size(), 0};
    size_t hint = ZSTD_decompressStream(s.ctx, &out, &in);
    if (ZSTD_isError(hint)) {
      if (ZSTD_getErrorCode(hint) == ZSTD_error_frameParameter_windowTooLarge) {
        return ResourceExhausted("zstd: frame needs a window larger than allowed");
      }
      return ZstdFailure("zstd decompress", hint);
    }
    s.last_hint = hint;
    if (out.pos > 0) {
      s.produced += out.pos;
      if (s.produced > s.max_output) return ResourceExhausted("zstd: output larger than stated");
      RETURN_IF_ERROR(s.sink(ByteSpan(s.out.data(), out.pos)));
    }
    if (in.pos == in.size && out.pos < out.size) break;
  }
  return Status::Ok();
}

Status PrefixDecompressor::End() {
  bool complete = state_->last_hint == 0;
  state_->in_frame = false;
  if (!complete) return Corruption("zstd: frame truncated");
  return Status::Ok();
}

uint64_t PrefixDecompressor::output_bytes() const { return state_->produced; }

}  // namespace flotilla::layerstore::delta_internal
