#include "node/daemon/http_fetcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/fd.h"
#include "core/file_io.h"

namespace flotilla::node {
namespace {

// Size of `path`, 0 when it does not exist.
uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

HttpFetcher::HttpFetcher(HttpFetcherOptions options, const Clock& clock, Executor& executor)
    : options_(std::move(options)), clock_(clock), executor_(executor), http_(options_.http) {}

HttpFetcher::~HttpFetcher() {
  if (timer_) executor_.Cancel(*timer_);
}

std::string HttpFetcher::FinalPath(const Digest& d) const { return options_.dir + "/" + d.Hex(); }
std::string HttpFetcher::PartPath(const Digest& d) const {
  return options_.dir + "/" + d.Hex() + ".part";
}

Status HttpFetcher::Want(const ArtifactRequest& request) {
  if (jobs_.count(request.sha256)) return Status::Ok();
  RETURN_IF_ERROR(CreateDurableDirectories(*options_.env, options_.dir, 0700));
  Job job;
  job.request = request;
  job.progress.bytes_total = request.length;
  const std::string final_path = FinalPath(request.sha256);
  if (PathExists(final_path)) {
    auto digest = HashFile(final_path);
    if (digest.ok() && *digest == request.sha256 && FileSize(final_path) == request.length) {
      job.progress.state = FetchState::kComplete;
      job.progress.bytes_verified = request.length;
    } else if (::unlink(final_path.c_str()) != 0) {
      return IOErrorFromErrno("remove mismatching " + final_path, errno);
    }
  }
  if (job.progress.state != FetchState::kComplete) {
    job.progress.bytes_verified = std::min(FileSize(PartPath(request.sha256)), request.length);
  }
  jobs_.emplace(request.sha256, std::move(job));
  Schedule(Duration::zero());
  return Status::Ok();
}

Status HttpFetcher::Forget(const Digest& sha256) {
  jobs_.erase(sha256);
  for (const std::string& path : {FinalPath(sha256), PartPath(sha256)}) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return IOErrorFromErrno("remove " + path, errno);
    }
  }
  return Status::Ok();
}

Result<FetchProgress> HttpFetcher::Progress(const Digest& sha256) const {
  auto it = jobs_.find(sha256);
  if (it == jobs_.end()) return NotFound(sha256.ToString() + " was never wanted");
  return it->second.progress;
}

Result<std::string> HttpFetcher::CompletedPath(const Digest& sha256) const {
  auto it = jobs_.find(sha256);
  if (it == jobs_.end() || it->second.progress.state != FetchState::kComplete) {
    return FailedPrecondition(sha256.ToString() + " is not complete");
  }
  return FinalPath(sha256);
}

HttpFetcher::Job* HttpFetcher::NextJob(std::optional<Duration>& wait) {
  const MonoTime now = clock_.MonotonicNow();
  wait.reset();
  for (auto& [digest, job] : jobs_) {
    if (job.progress.state != FetchState::kQueued && job.progress.state != FetchState::kFetching) {
      continue;
    }
    if (job.retry_at <= now) return &job;
    wait = std::min(wait.value_or(Duration::max()), job.retry_at - now);
  }
  return nullptr;
}

void HttpFetcher::Schedule(Duration delay) {
  const MonoTime due = clock_.MonotonicNow() + delay;
  if (timer_) {
    if (timer_due_ <= due) return;
    executor_.Cancel(*timer_);
  }
  timer_due_ = due;
  timer_ = executor_.PostAfter(delay, [this] {
    timer_.reset();
    Step();
  });
}

void HttpFetcher::Step() {
  std::optional<Duration> wait_for_retry;
  Job* job = NextJob(wait_for_retry);
  if (job == nullptr) {
    if (wait_for_retry) Schedule(*wait_for_retry);
    return;
  }
  if (!TransfersAllowedAt(options_.allowed_hours, clock_.Now())) {
    job->progress.state = FetchState::kQueued;
    Schedule(std::chrono::seconds(60));
    return;
  }
  job->progress.state = FetchState::kFetching;
  const uint64_t offset = FileSize(PartPath(job->request.sha256));
  const MonoTime started = clock_.MonotonicNow();
  const uint64_t before = job->progress.bytes_from_origin;
  Status st = offset >= job->request.length ? FinishJob(*job) : FetchRange(*job, offset);
  if (!st.ok()) {
    job->progress.error = st.ToString();
    job->retry_delay_s = std::clamp<uint32_t>(job->retry_delay_s * 2, 1, 60);
    job->retry_at = clock_.MonotonicNow() + std::chrono::seconds(job->retry_delay_s);
    Schedule(Duration::zero());  // the others go on meanwhile
    return;
  }
  job->retry_delay_s = 0;
  Duration wait = Duration::zero();
  if (options_.rate_bytes_per_s > 0) {
    const uint64_t moved = job->progress.bytes_from_origin - before;
    const auto budget = std::chrono::duration_cast<Duration>(
        std::chrono::duration<double>(static_cast<double>(moved) / options_.rate_bytes_per_s));
    wait = std::max(Duration::zero(), budget - (clock_.MonotonicNow() - started));
  }
  Schedule(wait);
}

Status HttpFetcher::FetchRange(Job& job, uint64_t offset) {
  uint64_t chunk = options_.chunk_bytes;
  if (options_.rate_bytes_per_s > 0) {
    chunk = std::clamp<uint64_t>(options_.rate_bytes_per_s, 16 << 10, chunk);
  }
  const uint64_t end = std::min(job.request.length, offset + chunk);  // exclusive
  const std::string part = PartPath(job.request.sha256);
  ASSIGN_OR_RETURN(auto file, options_.env->OpenForWrite(part, OpenMode::kKeep, 0600));
  const http::Call call{.url = options_.origin_url + "/artifacts/" + job.request.sha256.Hex(),
                        .range = http::ByteRange{offset, end - offset},
                        .max_body_bytes = end - offset};
  uint64_t written = 0;
  auto reply = http_.Stream(call, [&](ByteSpan data) {
    RETURN_IF_ERROR(file->WriteAt(data, offset + written).WithContext("write artifact"));
    written += data.size();
    job.progress.bytes_from_origin += data.size();
    job.progress.bytes_verified = offset + written;
    return Status::Ok();
  });
  Status st = reply.status();
  if (st.ok() && reply->status != 206 && !(reply->status == 200 && offset == 0)) {
    st = Unavailable("origin answered HTTP " + std::to_string(reply->status) + " to a range");
  }
  if (st.ok() && written != end - offset && !(reply->status == 200 && written == end)) {
    st = Unavailable("origin sent " + std::to_string(written) + " of " +
                     std::to_string(end - offset) + " bytes");
  }
  // Whatever arrived is kept: the next range starts at the file's length.
  // The first range's sync takes the new file's name with it.
  Status synced = file->Sync();
  if (synced.ok() && offset == 0) synced = options_.env->SyncDir(options_.dir);
  if (st.ok()) st = synced;
  if (st.ok()) job.progress.error.clear();
  return st;
}

Status HttpFetcher::FinishJob(Job& job) {
  const std::string part = PartPath(job.request.sha256);
  ASSIGN_OR_RETURN(Digest digest, HashFile(part));
  if (digest != job.request.sha256 || FileSize(part) != job.request.length) {
    options_.env->Unlink(part).IgnoreError();
    job.progress.hash_failures++;
    job.progress.bytes_verified = 0;
    if (job.progress.hash_failures >= options_.max_hash_failures) {
      job.progress.state = FetchState::kFailed;
      job.progress.error = "artifact " + job.request.sha256.ToString() + " failed verification " +
                           std::to_string(job.progress.hash_failures) + " times";
      return Status::Ok();
    }
    return Corruption("artifact " + job.request.sha256.ToString() +
                      " does not match its signed SHA-256; downloading it again");
  }
  const std::string final_path = FinalPath(job.request.sha256);
  RETURN_IF_ERROR(options_.env->Rename(part, final_path));
  RETURN_IF_ERROR(options_.env->SyncDir(options_.dir));
  job.progress.state = FetchState::kComplete;
  job.progress.bytes_verified = job.request.length;
  job.progress.error.clear();
  return Status::Ok();
}

}  // namespace flotilla::node
