#include "node/daemon/lan_exchange.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/file_io.h"
#include "http/http_server.h"
#include "metadata/trusted_store.h"

namespace flotilla::node {
namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {

constexpr size_t kMaxBeaconBytes = 512;
constexpr uint64_t kMaxServedBytes = 8 << 20;

bool IsDecimal(std::string_view s) {
  return !s.empty() && s.size() < 20 && s.find_first_not_of("0123456789") == std::string::npos;
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

struct LanExchange::Impl {
  Impl(const LanConfig& c, const Clock& clk) : config(c), clock(clk), beacon(io) {}

  LanConfig config;
  const Clock& clock;
  std::string device, site, tuf_dir, torrents_dir;
  asio::io_context io;
  std::unique_ptr<http::Server> server;
  udp::socket beacon;
  udp::endpoint group_endpoint;
  udp::endpoint sender;
  std::array<char, kMaxBeaconBytes + 1> datagram{};
  // The exchange's own thread runs `io`: the endpoint answers neighbours
  // while the daemon's loop waits on the WAN (a metadata refresh over 3G).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  // Set by the daemon's loop, read by the endpoint and the beacon.
  mutable std::mutex served_mutex;
  ServedMetadata served;  // guarded by served_mutex
  // Written by the exchange's thread, read by any (the release lanes ask
  // neighbours for .torrent files).
  mutable std::mutex neighbours_mutex;
  std::map<std::string, Neighbour> neighbours;  // guarded by neighbours_mutex

  ServedMetadata Served() const {
    std::lock_guard lock(served_mutex);
    return served;
  }
  void Run();

  Status Listen();
  Status JoinGroup();
  void Receive();
  void OnBeacon(size_t size);
  // The file of the tuf directory served under `name`, or "" if none is.
  std::string MetadataFile(std::string_view name) const;
  std::string DelegatedRoleFile(std::string_view name) const;
  http::Reply Answer(const http::Request& request) const;
};

std::string LanExchange::Impl::MetadataFile(std::string_view name) const {
  static const std::set<std::string_view> kPlain = {"timestamp.json", "snapshot.json",
                                                    "targets.json", "root.json"};
  if (kPlain.count(name)) return tuf_dir + "/" + std::string(name);
  size_t dot = name.find('.');
  if (dot != std::string_view::npos && IsDecimal(name.substr(0, dot))) {
    uint64_t version = std::stoull(std::string(name.substr(0, dot)));
    std::string_view role = name.substr(dot + 1);
    const ServedMetadata served = Served();
    if (role == "root.json") return version == served.root_version ? tuf_dir + "/root.json" : "";
    if (role == "snapshot.json") {
      return version == served.snapshot_version ? tuf_dir + "/snapshot.json" : "";
    }
    if (role == "targets.json") {
      return version == served.targets_version ? tuf_dir + "/targets.json" : "";
    }
  }
  return DelegatedRoleFile(name);
}

// "<v>.<role>.json" (consistent snapshots) or "<role>.json": the trusted
// file of delegated targets role <role> (percent-encoded in the request),
// the first only while the trusted copy is version v. The name is decoded
// and the trusted store encodes it again, so it never chooses a path.
std::string LanExchange::Impl::DelegatedRoleFile(std::string_view name) const {
  auto decoded = PercentDecode(name);
  if (!decoded.ok() || !decoded->ends_with(".json")) return "";
  std::string_view role(*decoded);
  role.remove_suffix(5);
  std::optional<uint64_t> version;
  const size_t dot = role.find('.');
  if (dot != std::string_view::npos && IsDecimal(role.substr(0, dot))) {
    version = std::stoull(std::string(role.substr(0, dot)));
    role = role.substr(dot + 1);
  }
  if (role.empty() || role == "root" || role == "timestamp" || role == "snapshot" ||
      role == "targets") {
    return "";
  }
  auto path = metadata::TrustedStore(tuf_dir).PathOf(role);
  if (!path.ok()) return "";
  if (!version) return *path;
  auto bytes = ReadTextFileBounded(*path, kMaxServedBytes);
  if (!bytes.ok()) return "";
  const auto doc = nlohmann::json::parse(*bytes, nullptr, false);
  const bool same = doc.is_object() && doc.contains("signed") && doc["signed"].is_object() &&
                    doc["signed"].value("version", uint64_t{0}) == *version;
  return same ? *path : "";
}

// One request per connection: every reply closes it.
http::Reply LanExchange::Impl::Answer(const http::Request& request) const {
  http::Reply reply;
  reply.status = http::status::not_found;
  reply.close_connection = true;
  const std::string_view target = request.target();
  std::string path;
  if (request.method() != http::verb::get) {
    reply.status = http::status::method_not_allowed;
  } else if (target.rfind("/metadata/", 0) == 0) {
    path = MetadataFile(target.substr(10));
  } else if (target.rfind("/torrents/", 0) == 0 && target.size() == 10 + 64 + 8 &&
             IsHex64(target.substr(10, 64)) && target.substr(74) == ".torrent") {
    path = torrents_dir + "/" + std::string(target.substr(10));
  } else if (target == "/healthz") {
    reply.status = http::status::ok;
    reply.body = "ok";
  }
  if (!path.empty()) {
    auto bytes = ReadTextFileBounded(path, kMaxServedBytes);
    if (bytes.ok()) {
      reply.status = http::status::ok;
      reply.content_type = "application/octet-stream";
      reply.body = std::move(*bytes);
    }
  }
  return reply;
}

Status LanExchange::Impl::Listen() {
  http::ServerOptions options{.server_name = "flotilla-node"};
  RETURN_IF_ERROR(SplitHostPort(config.http_listen, options.address, options.port));
  boost::system::error_code ec;
  asio::ip::make_address(options.address, ec);
  if (ec) return InvalidArgument("lan.http_listen: bad address " + options.address);
  options.write_timeout = std::chrono::seconds(30);
  options.max_body_bytes = 0;
  options.max_connections = 16;
  auto answer = [this](const http::Request& request, const http::RequestContext&) {
    return Answer(request);
  };
  ASSIGN_OR_RETURN(server, http::Server::Start(io, options, answer).WithContext("lan exchange"));
  return Status::Ok();
}

void LanExchange::Impl::Receive() {
  beacon.async_receive_from(asio::buffer(datagram), sender,
                            [this](boost::system::error_code ec, size_t size) {
                              if (ec == asio::error::operation_aborted) return;
                              if (!ec) OnBeacon(size);
                              Receive();
                            });
}

void LanExchange::Impl::OnBeacon(size_t size) {
  if (size > kMaxBeaconBytes) return;
  auto json =
      ParseJsonStrict(std::string_view(datagram.data(), size), JsonLimits{kMaxBeaconBytes, 2});
  if (!json.ok() || !json->is_object()) return;
  try {
    if (json->at("flotilla_beacon").get<int>() != 1) return;
    Neighbour n;
    n.device = json->at("device").get<std::string>();
    std::string their_site = json->at("site").get<std::string>();
    auto port = json->at("port").get<uint16_t>();
    n.root_version = json->at("root").get<uint64_t>();
    n.timestamp_version = json->at("timestamp").get<uint64_t>();
    if (n.device == device || their_site != site || port == 0 || n.device.size() > 64) return;
    const auto address = sender.address();
    n.http_base = "http://" +
                  (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
                  std::to_string(port);
    n.last_seen = clock.MonotonicNow();
    std::lock_guard lock(neighbours_mutex);
    neighbours[n.device] = n;
  } catch (const std::exception&) {
    // Malformed beacons are ignored: the LAN is not trusted.
  }
}

Status LanExchange::Impl::JoinGroup() {
  boost::system::error_code ec;
  auto group = asio::ip::make_address_v4(config.group, ec);
  if (ec || !group.is_multicast())
    return InvalidArgument("lan.group: not an IPv4 multicast address");
  auto interface = asio::ip::make_address_v4(config.interface_address, ec);
  if (ec) return InvalidArgument("lan.interface: not an IPv4 address");
  group_endpoint = udp::endpoint(group, config.port);
  beacon.open(udp::v4(), ec);
  if (!ec) beacon.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) beacon.bind(udp::endpoint(asio::ip::address_v4::any(), config.port), ec);
  if (!ec) beacon.set_option(asio::ip::multicast::join_group(group, interface), ec);
  if (!ec) beacon.set_option(asio::ip::multicast::hops(1), ec);
  if (!ec) beacon.set_option(asio::ip::multicast::enable_loopback(true), ec);
  if (!ec && !interface.is_unspecified()) {
    beacon.set_option(asio::ip::multicast::outbound_interface(interface), ec);
  }
  if (ec) return Unavailable("lan beacon: join " + config.group + ": " + ec.message());
  return Status::Ok();
}

Result<std::unique_ptr<LanExchange>> LanExchange::Start(const LanConfig& config, std::string device,
                                                        std::string site, std::string tuf_dir,
                                                        std::string torrents_dir,
                                                        const Clock& clock) {
  auto impl = std::make_unique<Impl>(config, clock);
  impl->device = std::move(device);
  impl->site = std::move(site);
  impl->tuf_dir = std::move(tuf_dir);
  impl->torrents_dir = std::move(torrents_dir);
  RETURN_IF_ERROR(impl->Listen());
  RETURN_IF_ERROR(impl->JoinGroup());
  impl->Receive();
  impl->work.emplace(impl->io.get_executor());
  impl->thread = std::thread([p = impl.get()] { p->Run(); });
  return std::unique_ptr<LanExchange>(new LanExchange(std::move(impl)));
}

void LanExchange::Impl::Run() {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception&) {
      // Handlers catch their own errors; this only keeps the endpoint up.
    }
  }
}

LanExchange::LanExchange(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LanExchange::~LanExchange() {
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  // The thread is gone: the server and the socket are this thread's now.
  impl_->server.reset();
  boost::system::error_code ec;
  impl_->beacon.close(ec);
  impl_->io.restart();
  try {
    impl_->io.poll();
  } catch (const std::exception&) {
    // Shutting down: a failing handler has nothing left to report to.
  }
}

uint16_t LanExchange::http_port() const { return impl_->server->port(); }

void LanExchange::SetServed(const ServedMetadata& served) {
  std::lock_guard lock(impl_->served_mutex);
  impl_->served = served;
}

void LanExchange::SendBeacon() {
  const ServedMetadata served = impl_->Served();
  Json beacon = {{"flotilla_beacon", 1},        {"device", impl_->device},
                 {"site", impl_->site},         {"port", http_port()},
                 {"root", served.root_version}, {"timestamp", served.timestamp_version}};
  // Sent on the exchange's thread, the one socket's only user.
  asio::post(impl_->io, [impl = impl_.get(), text = beacon.dump()] {
    boost::system::error_code ec;
    impl->beacon.send_to(asio::buffer(text), impl->group_endpoint, 0, ec);
    if (ec) spdlog::debug("lan beacon: send: {}", ec.message());
  });
}

std::vector<Neighbour> LanExchange::Neighbours() const {
  std::vector<Neighbour> out;
  const auto horizon = std::chrono::seconds(3 * impl_->config.beacon_interval_s);
  const MonoTime now = impl_->clock.MonotonicNow();
  std::lock_guard lock(impl_->neighbours_mutex);
  for (const auto& [name, n] : impl_->neighbours) {
    if (now - n.last_seen <= horizon) out.push_back(n);
  }
  std::sort(out.begin(), out.end(), [](const Neighbour& a, const Neighbour& b) {
    return a.timestamp_version > b.timestamp_version;
  });
  return out;
}

}  // namespace flotilla::node
