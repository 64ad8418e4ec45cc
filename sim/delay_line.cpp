#include "sim/delay_line.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fd.h"

namespace flotilla::sim {
namespace {

constexpr size_t kMaxFrame = 65536;

Duration Micros(int64_t us) { return std::chrono::microseconds(us); }

Result<UniqueFd> AttachTap(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return IOErrorFromErrno("open /dev/net/tun", errno);
  ifreq req{};
  req.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (name.size() >= IFNAMSIZ) return InvalidArgument("tap name too long: " + name);
  std::memcpy(req.ifr_name, name.c_str(), name.size());
  if (::ioctl(fd.get(), TUNSETIFF, &req) != 0) return IOErrorFromErrno("attach tap " + name, errno);
  return fd;
}

Result<UniqueFd> BlockTermSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return IOErrorFromErrno("sigprocmask", errno);
  UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (fd.get() < 0) return IOErrorFromErrno("signalfd", errno);
  return fd;
}

// Reads every frame waiting on `from` into `queue`.
void DrainInto(int from, DelayQueue& queue, MonoTime now, uint8_t* buf) {
  while (true) {
    ssize_t n = ::read(from, buf, kMaxFrame);
    if (n <= 0) return;
    queue.Push(now, ByteSpan(buf, static_cast<size_t>(n)));
  }
}

// Writes every due frame of `queue` to `to`; a frame the kernel refuses is lost.
void ReleaseDue(DelayQueue& queue, int to, MonoTime now) {
  Bytes frame;
  while (queue.PopDue(now, frame)) {
    ssize_t n = ::write(to, frame.data(), frame.size());
    (void)n;
  }
}

// How long poll may wait: until the earlier of the two queues' next release
// (nullptr = no frame queued, wait for input).
const timespec* PollTimeout(const DelayQueue& a, const DelayQueue& b, MonoTime now,
                            timespec& storage) {
  MonoTime next = MonoTime::max();
  if (!a.empty()) next = std::min(next, a.next_due());
  if (!b.empty()) next = std::min(next, b.next_due());
  if (next == MonoTime::max()) return nullptr;
  int64_t ns =
      next <= now ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(next - now).count();
  storage.tv_sec = ns / 1'000'000'000;
  storage.tv_nsec = ns % 1'000'000'000;
  return &storage;
}

}  // namespace

DelayQueue::DelayQueue(DelaySpec spec, uint64_t seed) : spec_(spec), random_(seed) {}

bool DelayQueue::Push(MonoTime now, ByteSpan frame) {
  if (queued_bytes_ + frame.size() > spec_.max_queue_bytes) {
    ++dropped_;
    return false;
  }
  int64_t delay = spec_.delay_us;
  if (spec_.jitter_us > 0) {
    std::uniform_int_distribution<int64_t> jitter(-int64_t{spec_.jitter_us}, spec_.jitter_us);
    delay = std::max<int64_t>(0, delay + jitter(random_));
  }
  MonoTime due = std::max(now + Micros(delay), last_due_);
  last_due_ = due;
  frames_.push_back(Frame{due, Bytes(frame.begin(), frame.end())});
  queued_bytes_ += frame.size();
  return true;
}

bool DelayQueue::PopDue(MonoTime now, Bytes& out) {
  if (frames_.empty() || frames_.front().due > now) return false;
  out = std::move(frames_.front().data);
  queued_bytes_ -= out.size();
  frames_.pop_front();
  return true;
}

Status RunDelayLine(const DelayLineConfig& config) {
  ASSIGN_OR_RETURN(UniqueFd tap_a, AttachTap(config.tap_a));
  ASSIGN_OR_RETURN(UniqueFd tap_b, AttachTap(config.tap_b));
  ASSIGN_OR_RETURN(UniqueFd signals, BlockTermSignals());
  if (config.ready_fd >= 0) {
    char ready = 'r';
    (void)!::write(config.ready_fd, &ready, 1);
    ::close(config.ready_fd);
  }
  DelayQueue a_to_b(config.a_to_b, config.seed);
  DelayQueue b_to_a(config.b_to_a, config.seed * 6364136223846793005ULL + 1);
  Bytes buf(kMaxFrame);
  Clock& clock = SystemClock::Instance();
  while (true) {
    MonoTime now = clock.MonotonicNow();
    pollfd fds[3] = {
        {tap_a.get(), POLLIN, 0}, {tap_b.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
    timespec timeout;
    int rc = ::ppoll(fds, 3, PollTimeout(a_to_b, b_to_a, now, timeout), nullptr);
    if (rc < 0 && errno != EINTR) return IOErrorFromErrno("poll", errno);
    if (fds[2].revents & POLLIN) return Status::Ok();
    now = clock.MonotonicNow();
    if (fds[0].revents & POLLIN) DrainInto(tap_a.get(), a_to_b, now, buf.data());
    if (fds[1].revents & POLLIN) DrainInto(tap_b.get(), b_to_a, now, buf.data());
    ReleaseDue(a_to_b, tap_b.get(), now);
    ReleaseDue(b_to_a, tap_a.get(), now);
  }
}

namespace {

// In the forked child: detach from the parent's session and descriptors,
// enter the namespace, run. Never returns.
[[noreturn]] void DelayLineChild(DelayLineConfig config, int ready_fd) {
  ::setsid();
  ::prctl(PR_SET_NAME, "fsim-delay", 0, 0, 0);
  // Real-time priority (best effort): on a loaded machine a frame should not
  // wait for the scheduler on top of its delay. The loop uses little CPU.
  sched_param priority{};
  priority.sched_priority = 10;
  ::sched_setscheduler(0, SCHED_FIFO, &priority);
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
  }
  if (ready_fd != 3) {
    ::dup2(ready_fd, 3);
    ::close(ready_fd);
  }
  config.ready_fd = 3;
  ::close_range(4, ~0U, 0);
  std::string path = "/run/netns/" + config.netns;
  int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) ::_exit(2);
  ::close(ns);
  Status st = RunDelayLine(config);
  ::_exit(st.ok() ? 0 : 1);
}

}  // namespace

Result<pid_t> SpawnDelayLine(const DelayLineConfig& config) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return IOErrorFromErrno("pipe", errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return IOErrorFromErrno("fork delay line", errno);
  }
  if (pid == 0) {
    ::close(ready[0]);
    DelayLineChild(config, ready[1]);
  }
  ::close(ready[1]);
  uint8_t byte = 0;
  auto n = ReadSome(ready[0], std::span(&byte, 1));
  ::close(ready[0]);
  if (n.value_or(0) != 1) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return FailedPrecondition("delay line in " + config.netns +
                              " failed to attach its TAP devices");
  }
  return pid;
}

}  // namespace flotilla::sim
