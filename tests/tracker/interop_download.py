#!/usr/bin/python3
"""Downloads one torrent with Debian's python3-libtorrent (not flotilla code).

usage: interop_download.py TORRENT SAVE_DIR TIMEOUT_S
Prints one line per interesting alert and, at the end, DONE <bytes> or FAILED.
Only the .torrent is given: the tracker and web seed come from inside it.
"""
import sys
import time

import libtorrent as lt


def main():
    torrent, save_dir, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.all_categories,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save_dir
    handle = session.add_torrent(params)
    deadline = time.monotonic() + timeout
    replies = 0
    while time.monotonic() < deadline:
        session.wait_for_alert(200)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                replies += 1
                print("TRACKER_REPLY peers=%d" % alert.num_peers, flush=True)
            elif isinstance(alert, (lt.tracker_error_alert, lt.url_seed_alert,
                                    lt.torrent_error_alert, lt.hash_failed_alert)):
                print("ERROR %s: %s" % (type(alert).__name__, alert.message()), flush=True)
        status = handle.status()
        if status.is_seeding and replies > 0:
            print("DONE %d" % status.total_wanted, flush=True)
            return 0
    print("FAILED progress=%.3f replies=%d" % (handle.status().progress, replies), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
