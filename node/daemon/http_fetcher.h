// The `http-only` ArtifactFetcher: every byte from the origin (the tracker's
// /artifacts/<hex>), one artifact at a time, in Range requests of at most
// `chunk_bytes`.
//
// On disk (all under `dir`, written through `env`): <hex>.part grows by
// whole ranges, each fsynced (the first with the directory) before the next
// is asked for, so a restart (kill -9 or power cut)
// resumes at the partial file's length and re-downloads at most the range
// that was in flight. When the length is reached the whole file is hashed;
// only a file whose SHA-256 and length match the signed ones is renamed to
// <hex> and reported kComplete. A mismatch deletes the partial file, counts a
// hash failure and starts again; after `max_hash_failures` the artifact is
// kFailed.
//
// Rate: after a range of n bytes that took t, the next one starts no sooner
// than n / rate; ranges are sized to about one second at that rate. Outside
// the allowed hours nothing moves (kQueued). A failing artifact retries with
// exponential backoff (1 s doubling to 60 s) of its own, the error kept in
// Progress().error; meanwhile the other artifacts go on, and a new one is
// started at once, so one artifact the origin cannot serve (e.g. of a
// release that was superseded) never holds up the rest.
//
// Thread-safety: all methods and all work run on `executor`'s context.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/env.h"
#include "http/http_client.h"
#include "node/daemon/node_config.h"
#include "node/transfer/artifact_fetcher.h"

namespace flotilla::node {

struct HttpFetcherOptions {
  std::string dir;           // where partial and complete artifacts live
  std::string origin_url;    // tracker base URL; artifacts at <origin>/artifacts/<hex>
  http::ClientOptions http;  // timeouts, https trust store
  uint64_t chunk_bytes = 1 << 20;
  uint64_t rate_bytes_per_s = 0;  // 0: unlimited
  std::optional<AllowedHours> allowed_hours;
  uint32_t max_hash_failures = 3;
  Env* env = &Env::Default();  // must outlive the fetcher
};

class HttpFetcher final : public ArtifactFetcher {
 public:
  HttpFetcher(HttpFetcherOptions options, const Clock& clock, Executor& executor);
  ~HttpFetcher() override;

  Status Want(const ArtifactRequest& request) override;
  Status Forget(const Digest& sha256) override;
  Result<FetchProgress> Progress(const Digest& sha256) const override;
  Result<std::string> CompletedPath(const Digest& sha256) const override;

 private:
  struct Job {
    ArtifactRequest request;
    FetchProgress progress;
    uint32_t retry_delay_s = 0;
    MonoTime retry_at{};  // not tried again before this after a failure
  };

  std::string FinalPath(const Digest& d) const;
  std::string PartPath(const Digest& d) const;
  // Runs Step() after `delay`, or sooner when a step is already due sooner.
  void Schedule(Duration delay);
  // One range (or the final check) of the first unfinished job whose retry
  // time has come.
  void Step();
  Status FetchRange(Job& job, uint64_t offset);
  Status FinishJob(Job& job);
  // The job to step now; else nullptr and, in `wait`, how long until one is
  // due (nothing when no job is unfinished).
  Job* NextJob(std::optional<Duration>& wait);

  HttpFetcherOptions options_;
  const Clock& clock_;
  Executor& executor_;
  std::map<Digest, Job> jobs_;
  std::optional<TimerId> timer_;
  MonoTime timer_due_{};
  http::Client http_;  // one connection to the origin, kept between ranges
};

}  // namespace flotilla::node
