#include "core/fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace flotilla {
namespace {

std::atomic<int> g_alarms{0};
void CountAlarm(int) { ++g_alarms; }

// Interrupts this thread's blocking calls every 200 us with a SIGALRM whose
// handler is installed without SA_RESTART, so read(2) and write(2) return
// EINTR (or a short count) again and again.
class Interrupter {
 public:
  Interrupter() {
    struct sigaction sa {};
    sa.sa_handler = CountAlarm;
    ::sigaction(SIGALRM, &sa, &old_);
    itimerval every{{0, 200}, {0, 200}};
    ::setitimer(ITIMER_REAL, &every, nullptr);
  }
  ~Interrupter() {
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old_, nullptr);
  }

 private:
  struct sigaction old_;
};

// Runs `body` on a thread that never takes SIGALRM.
std::thread Unsignalled(std::function<void()> body) {
  sigset_t alarm, old;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  ::pthread_sigmask(SIG_BLOCK, &alarm, &old);
  std::thread t(std::move(body));
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

Bytes Pattern(size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 7 + i / 251);
  return out;
}

TEST(FdTest, ReadAllGathersSlowInterruptedPipeInput) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd in(p[0]), out(p[1]);
  const Bytes data = Pattern(100 * 1000);
  std::thread writer = Unsignalled([&] {
    for (size_t at = 0; at < data.size(); at += 1000) {
      ::usleep(500);
      ASSERT_TRUE(WriteAll(out.get(), ByteSpan(data).subspan(at, 1000)).ok());
    }
    out.Reset();
  });
  Bytes got(data.size() + 10);
  g_alarms = 0;
  Result<size_t> n = 0;
  {
    Interrupter interrupter;
    n = ReadAll(in.get(), got);
  }
  writer.join();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_GT(g_alarms.load(), 10);
  ASSERT_EQ(*n, data.size());  // short only at the end of the stream
  got.resize(*n);
  EXPECT_EQ(got, data);
}

TEST(FdTest, WriteAllDeliversEveryByteThroughAFullPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd in(p[0]), out(p[1]);
  const Bytes data = Pattern(4 << 20);  // 64x a pipe's buffer: writes block and come back short
  Bytes got;
  std::thread reader = Unsignalled([&] {
    uint8_t buf[3000];
    for (;;) {
      ::usleep(20);
      auto n = ReadSome(in.get(), buf);
      ASSERT_TRUE(n.ok());
      if (*n == 0) break;
      got.insert(got.end(), buf, buf + *n);
    }
  });
  g_alarms = 0;
  Status st;
  {
    Interrupter interrupter;
    st = WriteAll(out.get(), data);
  }
  out.Reset();
  reader.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(g_alarms.load(), 10);
  EXPECT_EQ(got, data);
}

TEST(FdTest, PositionalReadsAndWritesAndTheirBounds) {
  std::string path = ::testing::TempDir() + "/fd_test_file";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  ::unlink(path.c_str());
  ASSERT_TRUE(PwriteAll(fd.get(), AsBytes("hello world"), 0).ok());
  ASSERT_TRUE(PwriteAll(fd.get(), AsBytes("W"), 6).ok());
  uint8_t buf[16];
  auto n = PreadAll(fd.get(), buf, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), *n), "hello World");
  EXPECT_TRUE(PreadExact(fd.get(), std::span(buf, 5), 6).ok());
  Status past = PreadExact(fd.get(), std::span(buf, 6), 6);
  EXPECT_EQ(past.code(), StatusCode::kCorruption) << past.ToString();
  EXPECT_EQ(WriteAll(-1, AsBytes("x")).code(), StatusCode::kIOError);
}

TEST(FdTest, UniqueFdClosesWhenDestroyedOrReplaced) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  {
    UniqueFd a(p[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), p[0]);
    b = UniqueFd(p[1]);  // closes p[0]
    EXPECT_EQ(::fcntl(p[0], F_GETFD), -1);
    EXPECT_EQ(b.Release(), p[1]);
    b.Reset(p[1]);
  }
  EXPECT_EQ(::fcntl(p[1], F_GETFD), -1);
}

}  // namespace
}  // namespace flotilla
