// `flotilla-sim probe ...`: small measuring client/server pairs that the
// link tests run inside namespaces. Each prints one JSON line on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "sim/commands.h"
#include "sim/probe.h"

namespace flotilla::sim {
namespace {

struct ProbeOptions {
  std::string to;  // HOST:PORT
  int port = 0;
  uint64_t count = 1000;
  uint32_t interval_us = 1000;
  size_t size = 200;
  double seconds = 3;
  double timeout = 30;
};

uint64_t NowNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Probe timestamps are CLOCK_REALTIME because that is the clock of the
// kernel's receive timestamps (SO_TIMESTAMPNS), which keep the sink's own
// scheduling delays out of the measured one-way delay.
uint64_t RealNs() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// recvfrom that also returns the kernel's receive time (or now, without one).
ssize_t ReceiveStamped(int fd, uint8_t* data, size_t size, sockaddr_in& from, uint64_t& at_ns) {
  iovec iov = {data, size};
  alignas(cmsghdr) char control[256];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(fd, &msg, 0);
  at_ns = RealNs();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n > 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      at_ns = uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
  }
  return n;
}

void SleepUntilNs(uint64_t t) {
  timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

int ProbeFail(const std::string& what) {
  std::fprintf(stderr, "probe: %s: %s\n", what.c_str(), std::strerror(errno));
  return 1;
}

bool ParseAddress(const std::string& to, sockaddr_in& addr) {
  size_t colon = to.rfind(':');
  if (colon == std::string::npos) return false;
  addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(to.substr(colon + 1))));
  return ::inet_pton(AF_INET, to.substr(0, colon).c_str(), &addr.sin_addr) == 1;
}

int BoundSocket(int type, int port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  return fd;
}

// Receives until an end datagram (or the timeout); echoes warm-ups.
int UdpSink(const ProbeOptions& o) {
  int fd = BoundSocket(SOCK_DGRAM, o.port);
  if (fd < 0) return ProbeFail("bind");
  int buf = 16 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  std::printf("{\"listening\":%d}\n", o.port);
  std::fflush(stdout);
  ProbeStats stats;
  uint8_t data[65536];
  uint64_t deadline = NowNs() + uint64_t(o.timeout * 1e9);
  while (NowNs() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    sockaddr_in from{};
    uint64_t now = 0;
    ssize_t n = ReceiveStamped(fd, data, sizeof data, from, now);
    if (n <= 0) continue;
    auto d = DecodeProbe(ByteSpan(data, n));
    if (!d) continue;
    if (d->kind == ProbeKind::kWarmup) {
      ::sendto(fd, data, n, 0, reinterpret_cast<sockaddr*>(&from), sizeof from);
    } else if (d->kind == ProbeKind::kData) {
      stats.AddData(d->seq, int64_t(now) - int64_t(d->sent_ns), n);
    } else {
      stats.SetSent(d->seq);
      break;
    }
  }
  std::printf("%s\n", stats.ToJson().dump().c_str());
  return 0;
}

// Warm-up datagrams every 20 ms until one is echoed back.
bool WarmUp(int fd, const sockaddr_in& to, uint64_t deadline) {
  while (NowNs() < deadline) {
    Bytes w = EncodeProbe({ProbeKind::kWarmup, 0, NowNs()}, kProbeHeaderSize);
    ::sendto(fd, w.data(), w.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      uint8_t buf[2048];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      auto d = DecodeProbe(ByteSpan(buf, n > 0 ? n : 0));
      if (d && d->kind == ProbeKind::kWarmup) return true;
    }
  }
  return false;
}

int UdpSend(const ProbeOptions& o) {
  sockaddr_in to;
  if (!ParseAddress(o.to, to)) return ProbeFail("bad --to " + o.to);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (!WarmUp(fd, to, NowNs() + uint64_t(o.timeout * 1e9)))
    return ProbeFail("no echo from the sink");
  uint64_t start = NowNs();
  for (uint64_t seq = 0; seq < o.count; ++seq) {
    SleepUntilNs(start + seq * uint64_t(o.interval_us) * 1000);
    Bytes d = EncodeProbe({ProbeKind::kData, seq, RealNs()}, o.size);
    while (::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) return ProbeFail("send");
    }
  }
  // The end marker trails the data; sent a few times in case one is lost.
  for (int i = 0; i < 20; ++i) {
    SleepUntilNs(NowNs() + 20'000'000);
    Bytes e = EncodeProbe({ProbeKind::kEnd, o.count, NowNs()}, kProbeHeaderSize);
    ::sendto(fd, e.data(), e.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  std::printf("{\"sent\":%llu}\n", static_cast<unsigned long long>(o.count));
  return 0;
}

int TcpSink(const ProbeOptions& o) {
  int fd = BoundSocket(SOCK_STREAM, o.port);
  if (fd < 0 || ::listen(fd, 4) != 0) return ProbeFail("listen");
  std::printf("{\"listening\":%d}\n", o.port);
  std::fflush(stdout);
  int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) return ProbeFail("accept");
  static char buf[1 << 16];
  uint64_t bytes = 0, first = 0, last = 0;
  ssize_t n;
  while ((n = ::read(conn, buf, sizeof buf)) > 0) {
    last = NowNs();
    if (bytes == 0) first = last;
    bytes += n;
  }
  std::printf("{\"bytes\":%llu,\"seconds\":%.6f}\n", static_cast<unsigned long long>(bytes),
              (last - first) / 1e9);
  return 0;
}

int TcpSend(const ProbeOptions& o) {
  sockaddr_in to;
  if (!ParseAddress(o.to, to)) return ProbeFail("bad --to " + o.to);
  uint64_t deadline = NowNs() + uint64_t(o.timeout * 1e9);
  int fd = -1;
  while (true) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) break;
    ::close(fd);
    if (NowNs() > deadline) return ProbeFail("connect " + o.to);
    SleepUntilNs(NowNs() + 50'000'000);
  }
  static char buf[1 << 16];
  uint64_t end = NowNs() + uint64_t(o.seconds * 1e9), bytes = 0;
  while (NowNs() < end) {
    ssize_t n = ::write(fd, buf, sizeof buf);
    if (n < 0 && errno != EINTR) return ProbeFail("write");
    if (n > 0) bytes += n;
  }
  ::close(fd);
  std::printf("{\"sent_bytes\":%llu}\n", static_cast<unsigned long long>(bytes));
  return 0;
}

}  // namespace

CommandAction RegisterProbeCommands(CLI::App& app) {
  auto opts = std::make_shared<ProbeOptions>();
  auto* probe =
      app.add_subcommand("probe", "Measuring tools for link tests (run inside namespaces)");
  probe->require_subcommand(1);
  auto* udp_sink =
      probe->add_subcommand("udp-sink", "Count probe datagrams, print loss and one-way delay");
  auto* udp_send = probe->add_subcommand("udp-send", "Send numbered, timestamped probe datagrams");
  auto* tcp_sink =
      probe->add_subcommand("tcp-sink", "Accept one TCP connection and count its bytes");
  auto* tcp_send = probe->add_subcommand("tcp-send", "Send as fast as TCP allows for --seconds");
  for (auto* c : {udp_sink, tcp_sink}) {
    c->add_option("--port", opts->port, "Port to listen on")->required();
  }
  for (auto* c : {udp_send, tcp_send}) {
    c->add_option("--to", opts->to, "Sink address, IPv4:PORT")->required();
  }
  udp_send->add_option("--count", opts->count, "Data datagrams to send");
  udp_send->add_option("--interval-us", opts->interval_us, "Gap between datagrams");
  udp_send->add_option("--size", opts->size, "Datagram payload bytes (>= 21)");
  tcp_send->add_option("--seconds", opts->seconds, "How long to send");
  for (auto* c : {udp_sink, udp_send, tcp_send}) {
    c->add_option("--timeout", opts->timeout, "Give up after this many seconds");
  }
  return [=]() -> int {
    if (*udp_sink) return UdpSink(*opts);
    if (*udp_send) return UdpSend(*opts);
    if (*tcp_sink) return TcpSink(*opts);
    if (*tcp_send) return TcpSend(*opts);
    return -1;
  };
}

}  // namespace flotilla::sim
