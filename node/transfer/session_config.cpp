#include "node/transfer/session_config.h"

#include <exception>
#include <libtorrent/alert.hpp>
#include <libtorrent/ip_filter.hpp>
#include <libtorrent/peer_class.hpp>

namespace flotilla::node::transfer {
namespace {

void SetTransportAndDiscovery(lt::settings_pack& s, const TorrentFetcherOptions& options) {
  // uTP collapses under loss in 2.0.8 (LIBTORRENT-NOTES.md): TCP only.
  s.set_bool(lt::settings_pack::enable_outgoing_utp, false);
  s.set_bool(lt::settings_pack::enable_incoming_utp, false);
  s.set_bool(lt::settings_pack::enable_dht, options.enable_dht);
  s.set_bool(lt::settings_pack::enable_lsd, options.enable_lsd);
  s.set_bool(lt::settings_pack::enable_upnp, false);
  s.set_bool(lt::settings_pack::enable_natpmp, false);
  s.set_int(lt::settings_pack::local_service_announce_interval, 60);
  s.set_str(lt::settings_pack::listen_interfaces, options.listen_interfaces);
  const std::string ip = SpecificListenAddress(options.listen_interfaces);
  if (!ip.empty() && ip != "0.0.0.0" && ip != "::") {
    s.set_str(lt::settings_pack::outgoing_interfaces, ip);
    s.set_str(lt::settings_pack::announce_ip, ip);
  }
  // A LAN follower's IP filter (link_locality.h) is for peers, not the tracker.
  s.set_bool(lt::settings_pack::apply_ip_filter_to_trackers, false);
  s.set_int(lt::settings_pack::in_enc_policy, lt::settings_pack::pe_disabled);
  s.set_int(lt::settings_pack::out_enc_policy, lt::settings_pack::pe_disabled);
}

// Announces through an HTTP proxy (CONNECT for https); peer connections and
// web seeds never (proxy_peer_connections would take both through it).
void SetAnnounceProxy(lt::settings_pack& s, const AnnounceProxy& proxy) {
  if (proxy.host.empty()) return;
  const bool auth = !proxy.user.empty();
  s.set_int(lt::settings_pack::proxy_type,
            auth ? lt::settings_pack::http_pw : lt::settings_pack::http);
  s.set_str(lt::settings_pack::proxy_hostname, proxy.host);
  s.set_int(lt::settings_pack::proxy_port, proxy.port);
  if (auth) {
    s.set_str(lt::settings_pack::proxy_username, proxy.user);
    s.set_str(lt::settings_pack::proxy_password, proxy.password);
  }
  s.set_bool(lt::settings_pack::proxy_hostnames, true);  // the proxy resolves the tracker
  s.set_bool(lt::settings_pack::proxy_peer_connections, false);
  s.set_bool(lt::settings_pack::proxy_tracker_connections, true);
}

void SetFlakyLinkReconnects(lt::settings_pack& s) {
  s.set_int(lt::settings_pack::min_reconnect_time, 2);
  s.set_int(lt::settings_pack::max_failcount, 1000);
  s.set_int(lt::settings_pack::peer_connect_timeout, 10);
  s.set_int(lt::settings_pack::peer_timeout, 120);
  s.set_int(lt::settings_pack::inactivity_timeout, 600);
  s.set_int(lt::settings_pack::urlseed_wait_retry, 5);
  s.set_int(lt::settings_pack::urlseed_timeout, 20);
  s.set_int(lt::settings_pack::min_announce_interval, 10);
  s.set_int(lt::settings_pack::tracker_backoff, 60);
  s.set_int(lt::settings_pack::tracker_completion_timeout, 20);
  s.set_int(lt::settings_pack::tracker_receive_timeout, 15);
}

void SetSmallDeviceLimits(lt::settings_pack& s) {
  s.set_int(lt::settings_pack::aio_threads, 1);
  s.set_int(lt::settings_pack::hashing_threads, 1);
  s.set_int(lt::settings_pack::max_queued_disk_bytes, 2 << 20);
  s.set_int(lt::settings_pack::send_buffer_watermark, 512 << 10);
  s.set_int(lt::settings_pack::send_buffer_low_watermark, 16 << 10);
  s.set_int(lt::settings_pack::connections_limit, 64);
  s.set_int(lt::settings_pack::unchoke_slots_limit, 16);
  s.set_int(lt::settings_pack::alert_queue_size, 20000);
  // Auto-management is off per torrent; these only matter if it is turned on.
  s.set_int(lt::settings_pack::active_downloads, -1);
  s.set_int(lt::settings_pack::active_seeds, -1);
  s.set_int(lt::settings_pack::active_limit, -1);
  s.set_bool(lt::settings_pack::dont_count_slow_torrents, true);
}

}  // namespace

std::string SpecificListenAddress(const std::string& listen_interfaces) {
  std::string first = listen_interfaces.substr(0, listen_interfaces.find(','));
  if (first.empty()) return "";
  if (first.front() == '[') {
    const size_t close = first.find(']');
    return close == std::string::npos ? "" : first.substr(1, close - 1);
  }
  const size_t colon = first.rfind(':');
  return colon == std::string::npos ? first : first.substr(0, colon);
}

lt::settings_pack MakeSessionSettings(const TorrentFetcherOptions& options) {
  lt::settings_pack s;
  s.set_str(lt::settings_pack::user_agent, "flotilla-node");
  s.set_int(lt::settings_pack::alert_mask,
            lt::alert_category::error | lt::alert_category::status | lt::alert_category::storage |
                lt::alert_category::peer | lt::alert_category::tracker |
                lt::alert_category::block_progress | lt::alert_category::piece_progress);
  SetTransportAndDiscovery(s, options);
  SetAnnounceProxy(s, options.announce_proxy);
  if (options.web_seed_max_request_bytes > 0) {
    s.set_int(lt::settings_pack::urlseed_max_request_bytes, options.web_seed_max_request_bytes);
  }
  SetFlakyLinkReconnects(s);
  SetSmallDeviceLimits(s);
  s.set_int(lt::settings_pack::download_rate_limit, options.download_rate_limit);
  s.set_int(lt::settings_pack::upload_rate_limit, options.upload_rate_limit);
  return s;
}

Result<lt::peer_class_t> ConfigurePeerClasses(lt::session& session,
                                              const std::vector<lt::address>& origin_ips,
                                              int origin_rate_limit) {
  try {
    const lt::peer_class_t origin = session.create_peer_class("flotilla-origin");
    lt::peer_class_info info = session.get_peer_class(origin);
    info.download_limit = origin_rate_limit;
    info.upload_limit = 0;
    session.set_peer_class(origin, info);

    const std::uint32_t global = 1u
                                 << static_cast<std::uint32_t>(lt::session::global_peer_class_id);
    lt::ip_filter filter;
    filter.add_rule(lt::make_address("0.0.0.0"), lt::make_address("255.255.255.255"), global);
    filter.add_rule(lt::make_address("::"),
                    lt::make_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), global);
    const std::uint32_t with_origin = global | (1u << static_cast<std::uint32_t>(origin));
    for (const lt::address& ip : origin_ips) filter.add_rule(ip, ip, with_origin);
    session.set_peer_class_filter(filter);
    return origin;
  } catch (const std::exception& e) {
    return Internal(std::string("peer classes: ") + e.what());
  }
}

}  // namespace flotilla::node::transfer
