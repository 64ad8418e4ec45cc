// TorrentFetcher: lifecycle, the worker hand-off and the snapshot readers.
#include "node/transfer/torrent_fetcher.h"

#include <netdb.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <future>
#include <libtorrent/posix_disk_io.hpp>
#include <libtorrent/session_params.hpp>
#include <random>

#include "core/file_io.h"
#include "node/transfer/fetcher_impl.h"
#include "node/transfer/session_config.h"

namespace flotilla::node {
namespace {

constexpr double kShutdownResumeWaitSeconds = 5;

// Host and port of an http(s) URL, for recognising origin connections.
Result<std::pair<std::string, std::string>> UrlHostPort(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return InvalidArgument("web seed URL without scheme");
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return InvalidArgument("web seed URL not http(s)");
  std::string authority = url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find('/'));
  std::string port = scheme == "https" ? "443" : "80";
  std::string host = authority;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return InvalidArgument("web seed URL: bad IPv6 host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      port = authority.substr(close + 2);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return InvalidArgument("web seed URL without host");
  return std::make_pair(host, port);
}

// The addresses the origin's host resolves to (once, at Create).
Result<std::set<lt::tcp::endpoint>> ResolveOrigin(const std::string& url) {
  std::set<lt::tcp::endpoint> endpoints;
  if (url.empty()) return endpoints;
  ASSIGN_OR_RETURN(auto host_port, UrlHostPort(url));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host_port.first.c_str(), host_port.second.c_str(), &hints, &found);
      rc != 0) {
    return Unavailable("resolve web seed host: " + std::string(::gai_strerror(rc)));
  }
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    lt::tcp::endpoint ep;
    ep.resize(a->ai_addrlen);
    std::memcpy(ep.data(), a->ai_addr, a->ai_addrlen);
    endpoints.insert(ep);
  }
  ::freeaddrinfo(found);
  return endpoints;
}

}  // namespace

TorrentFetcher::Impl::Impl(const TorrentFetcherOptions& options)
    : options_(options),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Instance()) {
  if (!options_.tracker_url.empty() && !options_.passkey.empty()) {
    announce_url_ = options_.tracker_url + "/announce/" + options_.passkey;
    if (!options_.announce_proxy.host.empty()) announce_url_ += "?proxied=1";
  }
}

Result<std::unique_ptr<TorrentFetcher::Impl>> TorrentFetcher::Impl::Start(
    const TorrentFetcherOptions& options) {
  if (options.data_dir.empty()) return InvalidArgument("torrent fetcher: no data dir");
  if (!options.fetch_torrent) return InvalidArgument("torrent fetcher: no fetch_torrent");
  for (const char* sub : {"/torrents", "/data", "/resume"}) {
    RETURN_IF_ERROR(CreateDirectories(options.data_dir + sub, 0700));
  }
  TorrentFetcherOptions staggered = options;
  if (options.origin.stagger_seconds > 0) {
    std::uniform_real_distribution<double> extra(0, options.origin.stagger_seconds);
    std::random_device seed;
    std::mt19937 random(seed());
    double delay = extra(random);
    // Only the stall wait: the no-useful-peer wait is the token holder's
    // (origin_policy.h), and delaying the one device that should pull delays
    // its whole site.
    staggered.origin.stall_seconds += delay;
    staggered.origin.lan_follower_stall_seconds += delay;
  }
  std::unique_ptr<Impl> impl(new Impl(staggered));
  ASSIGN_OR_RETURN(impl->origin_endpoints_, ResolveOrigin(options.web_seed_url));
  const std::string dirty = options.data_dir + "/session.dirty";
  impl->previous_run_crashed_ = ::access(dirty.c_str(), F_OK) == 0;
  RETURN_IF_ERROR(WriteFileAtomic(dirty, std::string_view("running\n")));
  RETURN_IF_ERROR(impl->RunOnWorker([raw = impl.get()] { return raw->StartSession(); }));
  impl->ScheduleTick();
  return impl;
}

Status TorrentFetcher::Impl::StartSession() {
  try {
    lt::session_params params(transfer::MakeSessionSettings(options_));
    params.disk_io_constructor = lt::posix_disk_io_constructor;
    session_ = std::make_unique<lt::session>(std::move(params));
  } catch (const std::exception& e) {
    return Unavailable(std::string("start libtorrent session: ") + e.what());
  }
  std::vector<lt::address> origin_ips;
  for (const auto& ep : origin_endpoints_) origin_ips.push_back(ep.address());
  ASSIGN_OR_RETURN(
      lt::peer_class_t origin_class,
      transfer::ConfigurePeerClasses(*session_, origin_ips, options_.origin.origin_rate_limit));
  (void)origin_class;
  // Wait (at most 10 s) until the session listens, so the port is known.
  for (int i = 0; i < 200 && session_->listen_port() == 0; ++i) {
    session_->wait_for_alert(std::chrono::milliseconds(50));
    std::vector<lt::alert*> alerts;
    session_->pop_alerts(&alerts);
  }
  counters_.listen_port = session_->listen_port();
  if (counters_.listen_port == 0) {
    return Unavailable("libtorrent cannot listen on " + options_.listen_interfaces);
  }
  PublishSnapshot();
  return Status::Ok();
}

Status TorrentFetcher::Impl::RunOnWorker(std::function<Status()> task) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  worker_.Post([&done, &task] { done.set_value(task()); });
  return result.get();
}

void TorrentFetcher::Impl::ScheduleTick() {
  const auto period =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(options_.tick_seconds));
  worker_.PostAfter(period, [this] {
    if (stopping_) return;
    Tick();
    ScheduleTick();
  });
}

TorrentFetcher::Impl::~Impl() {
  RunOnWorker([this] {
    Shutdown();
    return Status::Ok();
  }).IgnoreError();
}

// Saves resume data of every torrent, waits for it (bounded), stops the
// session and marks the run clean.
void TorrentFetcher::Impl::Shutdown() {
  stopping_ = true;
  if (!session_) return;
  for (auto& [digest, artifact] : artifacts_) {
    if (!artifact.handle.is_valid() || artifact.forgotten) continue;
    artifact.handle.save_resume_data(lt::torrent_handle::flush_disk_cache);
    artifact.resume_pending = true;
  }
  auto pending = [this] {
    for (auto& [digest, artifact] : artifacts_) {
      if (artifact.resume_pending) return true;
    }
    return false;
  };
  const int rounds = static_cast<int>(kShutdownResumeWaitSeconds * 10);
  for (int i = 0; i < rounds && pending(); ++i) {
    session_->wait_for_alert(std::chrono::milliseconds(100));
    std::vector<lt::alert*> alerts;
    session_->pop_alerts(&alerts);
    for (lt::alert* a : alerts) HandleAlert(a);
  }
  const bool clean = !pending();
  session_.reset();
  if (clean) ::unlink((options_.data_dir + "/session.dirty").c_str());
}

Result<FetchProgress> TorrentFetcher::Impl::Progress(const Digest& sha256) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = snapshot_.find(sha256);
  if (it == snapshot_.end()) return NotFound("artifact " + sha256.ToString() + " not wanted");
  return it->second;
}

Result<std::string> TorrentFetcher::Impl::CompletedPath(const Digest& sha256) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = completed_paths_.find(sha256);
  if (it == completed_paths_.end()) {
    return FailedPrecondition("artifact " + sha256.ToString() + " is not complete");
  }
  return it->second;
}

TransferCounters TorrentFetcher::Impl::GetCounters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_snapshot_;
}

Status TorrentFetcher::Impl::SetRateLimits(int download, int upload) {
  if (download < 0 || upload < 0) return InvalidArgument("rate limits must be >= 0");
  return RunOnWorker([this, download, upload] {
    lt::settings_pack pack;
    pack.set_int(lt::settings_pack::download_rate_limit, download);
    pack.set_int(lt::settings_pack::upload_rate_limit, upload);
    session_->apply_settings(std::move(pack));
    return Status::Ok();
  });
}

Status TorrentFetcher::Impl::AddPeer(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("peer '" + endpoint + "': no port");
  std::string host = endpoint.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  lt::error_code ec;
  const lt::address address = lt::make_address(host, ec);
  const int port = std::atoi(endpoint.c_str() + colon + 1);
  if (ec || port <= 0 || port > 65535) {
    return InvalidArgument("peer '" + endpoint + "' is not ip:port");
  }
  const lt::tcp::endpoint ep(address, static_cast<uint16_t>(port));
  return RunOnWorker([this, ep] {
    known_peers_.push_back(ep);
    for (auto& [digest, artifact] : artifacts_) {
      if (artifact.handle.is_valid()) artifact.handle.connect_peer(ep);
    }
    return Status::Ok();
  });
}

TorrentFetcher::TorrentFetcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TorrentFetcher::~TorrentFetcher() = default;

Result<std::unique_ptr<TorrentFetcher>> TorrentFetcher::Create(
    const TorrentFetcherOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Impl::Start(options));
  return std::unique_ptr<TorrentFetcher>(new TorrentFetcher(std::move(impl)));
}

Status TorrentFetcher::Want(const ArtifactRequest& request) { return impl_->Want(request); }
Status TorrentFetcher::Forget(const Digest& sha256) { return impl_->Forget(sha256); }
Result<FetchProgress> TorrentFetcher::Progress(const Digest& sha256) const {
  return impl_->Progress(sha256);
}
Result<std::string> TorrentFetcher::CompletedPath(const Digest& sha256) const {
  return impl_->CompletedPath(sha256);
}
Status TorrentFetcher::SetRateLimits(int download_bytes_per_s, int upload_bytes_per_s) {
  return impl_->SetRateLimits(download_bytes_per_s, upload_bytes_per_s);
}
Status TorrentFetcher::AddPeer(const std::string& endpoint) { return impl_->AddPeer(endpoint); }
TransferCounters TorrentFetcher::GetCounters() const { return impl_->GetCounters(); }

}  // namespace flotilla::node
