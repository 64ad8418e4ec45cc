// probe: a small static program the runtime tests run inside containers.
// It reports what it sees as "key=value" lines, or does one misbehaving
// thing on request (eat memory, fork without end, serve HTTP).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string ReadFile(const char* path) {
  std::string out;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return "<" + std::string(strerror(errno)) + ">";
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  close(fd);
  return out;
}

std::string StatusField(const std::string& status, const char* name) {
  size_t pos = status.find("\n" + std::string(name) + ":");
  if (pos == std::string::npos) return "";
  size_t start = status.find_first_not_of(" \t", pos + strlen(name) + 2);
  return status.substr(start, status.find('\n', start) - start);
}

std::vector<std::string> ListDir(const char* path) {
  std::vector<std::string> names;
  DIR* d = opendir(path);
  if (d == nullptr) return {"<" + std::string(strerror(errno)) + ">"};
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& n : items) out += (out.empty() ? "" : ",") + n;
  return out;
}

const char* ErrnoOf(int rc) { return rc < 0 ? strerror(errno) : "none"; }

int Facts(const char* sentinel) {
  std::string status = ReadFile("/proc/self/status");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  printf("pid=%d\nppid=%d\nhostname=%s\n", getpid(), getppid(), host);
  std::string comm = ReadFile("/proc/1/comm");
  printf("pid1_comm=%s\n", comm.substr(0, comm.find('\n')).c_str());
  std::vector<std::string> pids;
  for (const auto& n : ListDir("/proc")) {
    if (n.find_first_not_of("0123456789") == std::string::npos) pids.push_back(n);
  }
  std::sort(pids.begin(), pids.end(),
            [](auto& a, auto& b) { return atoi(a.c_str()) < atoi(b.c_str()); });
  printf("proc_pids=%s\n", Join(pids).c_str());
  printf("sentinel_visible=%d\n", sentinel != nullptr && access(sentinel, F_OK) == 0);
  printf("sys_mkdir=%s\n", ErrnoOf(mkdir("/sys/kernel/flotilla-probe", 0755)));
  printf("dev=%s\n", Join(ListDir("/dev")).c_str());
  for (const char* f : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp",
                        "Uid", "Gid", "Groups"}) {
    printf("%s=%s\n", f, StatusField(status, f).c_str());
  }
  char cwd[512] = {0};
  printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
  printf("env_GREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "");
  printf("timer_list_bytes=%zu\n", ReadFile("/proc/timer_list").size());
  printf("proc_sys_write=%s\n", ErrnoOf(open("/proc/sys/kernel/domainname", O_WRONLY)));
  printf("mount=%s\n", ErrnoOf(mount("none", "/tmp", "tmpfs", 0, nullptr)));
  printf("unshare_user=%s\n", ErrnoOf(unshare(CLONE_NEWUSER)));
  printf("clone3=%s\n", ErrnoOf(static_cast<int>(syscall(SYS_clone3, nullptr, 0))));
  printf("pid1_exe=%s\n", ErrnoOf(open("/proc/1/exe", O_RDONLY)));
  fflush(stdout);
  return 0;
}

int Hog() {
  std::vector<char*> chunks;
  for (int mib = 1;; ++mib) {
    char* p = static_cast<char*>(malloc(1 << 20));
    if (p == nullptr) {
      printf("hog: malloc failed at %d MiB\n", mib);
      return 3;
    }
    memset(p, 1, 1 << 20);
    chunks.push_back(p);
    if (mib % 16 == 0) {
      printf("hog: %d MiB\n", mib);
      fflush(stdout);
    }
  }
}

int ForkBomb(int want) {
  std::vector<pid_t> kids;
  int err = 0;
  for (int i = 0; i < want; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      pause();
      _exit(0);
    }
    if (pid < 0) {
      err = errno;
      break;
    }
    kids.push_back(pid);
  }
  printf("forked=%zu\nfork_error=%s\n", kids.size(), err ? strerror(err) : "none");
  fflush(stdout);
  for (pid_t k : kids) kill(k, SIGKILL);
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  return 0;
}

int OpenDevice(const char* path) {
  int fd = open(path, O_RDWR);
  printf("open %s=%s\n", path, ErrnoOf(fd));
  return 0;
}

int MknodAndOpen(const char* path, int major, int minor) {
  printf("mknod %s=%s\n", path, ErrnoOf(mknod(path, S_IFCHR | 0600, makedev(major, minor))));
  return OpenDevice(path);
}

int ServeHttp(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (sockaddr*)&addr, sizeof addr) != 0 || listen(s, 16) != 0) {
    printf("http: %s\n", strerror(errno));
    return 4;
  }
  printf("http: listening on %d\n", port);
  fflush(stdout);
  for (;;) {
    int c = accept(s, nullptr, nullptr);
    if (c < 0) continue;
    char buf[1024];
    (void)!read(c, buf, sizeof buf);
    const char* reply = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
    (void)!write(c, reply, strlen(reply));
    close(c);
  }
}

// The cgroups of PID 1 and of this process, one fact each: the lines of
// /proc/<pid>/cgroup joined by ';'.
int Cgroups() {
  for (const char* who : {"1", "self"}) {
    std::string text = ReadFile(("/proc/" + std::string(who) + "/cgroup").c_str());
    std::replace(text.begin(), text.end(), '\n', ';');
    printf("cgroup_%s=%s\n", who, text.c_str());
  }
  fflush(stdout);
  return 0;
}

volatile sig_atomic_t g_term = 0;

// Prints a numbered line every `ms` until SIGTERM (then exits 0).
int Tick(const char* tag, int ms) {
  signal(SIGTERM, [](int) { g_term = 1; });
  for (long i = 0; !g_term; ++i) {
    printf("%s %ld\n", tag, i);
    fflush(stdout);
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, nullptr);
  }
  printf("%s: got SIGTERM\n", tag);
  return 0;
}

// Exits with `code` once `path` exists (the test's crash trigger), ticking meanwhile.
int ExitWhen(const char* path, int code) {
  for (long i = 0;; ++i) {
    if (access(path, F_OK) == 0) {
      printf("exit-when: exiting with %d\n", code);
      return code;
    }
    timespec ts{0, 50000000L};
    nanosleep(&ts, nullptr);
  }
}

int Shm(const char* op, int key) {
  if (strcmp(op, "create") == 0) {
    int id = shmget(key, 4096, IPC_CREAT | 0600);
    printf("shm_create=%s\n", ErrnoOf(id));
    fflush(stdout);
    pause();
    return 0;
  }
  printf("shm_find=%s\n", ErrnoOf(shmget(key, 0, 0)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "facts";
  if (mode == "facts") {
    int rc = Facts(argc > 2 ? argv[2] : nullptr);
    if (argc > 3 && strcmp(argv[3], "stay") == 0) return Tick("stay", 1000);
    return rc;
  }
  if (mode == "hog") return Hog();
  if (mode == "cgroups") return Cgroups();
  if (mode == "forkbomb") return ForkBomb(argc > 2 ? atoi(argv[2]) : 1000);
  if (mode == "open" && argc > 2) return OpenDevice(argv[2]);
  if (mode == "mknod" && argc > 4) return MknodAndOpen(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (mode == "http" && argc > 2) return ServeHttp(atoi(argv[2]));
  if (mode == "tick" && argc > 3) return Tick(argv[2], atoi(argv[3]));
  if (mode == "exit-when" && argc > 3) return ExitWhen(argv[2], atoi(argv[3]));
  if (mode == "shm" && argc > 3) return Shm(argv[2], atoi(argv[3]));
  if (mode == "exit" && argc > 2) return atoi(argv[2]);
  fprintf(stderr, "probe: unknown mode\n");
  return 2;
}
