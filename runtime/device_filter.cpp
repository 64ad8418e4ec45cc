#include "runtime/device_filter.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fd.h"

namespace flotilla::runtime {
namespace {

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn;
  std::memset(&insn, 0, sizeof insn);
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

bpf_insn LoadCtxWord(uint8_t dst, int16_t offset) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_1, offset, 0);
}
bpf_insn JumpIfNotEqual(uint8_t reg, int32_t imm, int16_t skip) {
  return Insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, skip, imm);
}

int32_t AccessBits(const std::string& access) {
  int32_t bits = 0;
  for (char c : access) {
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
  }
  return bits;
}

// One rule: a run of guards that each jump past the rule's "return 1".
void AppendRule(const DeviceRule& rule, std::vector<bpf_insn>& out) {
  std::vector<bpf_insn> guards;
  std::vector<int> guard_positions;
  auto guard = [&](bpf_insn insn) {
    guard_positions.push_back(static_cast<int>(guards.size()));
    guards.push_back(insn);
  };
  if (rule.type != 'a') {
    guard(
        JumpIfNotEqual(BPF_REG_2, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0));
  }
  int32_t allowed = AccessBits(rule.access);
  if (allowed != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
    guards.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
    guards.push_back(Insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_1, 0, 0, ~allowed & 7));
    guard(JumpIfNotEqual(BPF_REG_1, 0, 0));
  }
  if (rule.major >= 0) guard(JumpIfNotEqual(BPF_REG_4, static_cast<int32_t>(rule.major), 0));
  if (rule.minor >= 0) guard(JumpIfNotEqual(BPF_REG_5, static_cast<int32_t>(rule.minor), 0));
  guards.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
  guards.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  const int end = static_cast<int>(guards.size());
  for (int pos : guard_positions) guards[pos].off = static_cast<int16_t>(end - pos - 1);
  out.insert(out.end(), guards.begin(), guards.end());
}

long Bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

}  // namespace

std::vector<DeviceRule> DefaultDeviceRules() {
  return {{'c', -1, -1, "m"}, {'b', -1, -1, "m"},   {'c', 1, 3, "rwm"}, {'c', 1, 5, "rwm"},
          {'c', 1, 7, "rwm"}, {'c', 1, 8, "rwm"},   {'c', 1, 9, "rwm"}, {'c', 5, 0, "rwm"},
          {'c', 5, 2, "rwm"}, {'c', 136, -1, "rwm"}};
}

std::string DeviceRuleToV1(const DeviceRule& rule) {
  auto number = [](int64_t n) { return n < 0 ? std::string("*") : std::to_string(n); };
  return std::string(1, rule.type) + " " + number(rule.major) + ":" + number(rule.minor) + " " +
         rule.access;
}

std::vector<bpf_insn> BuildDeviceFilter(const std::vector<DeviceRule>& rules) {
  // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
  std::vector<bpf_insn> prog = {
      LoadCtxWord(BPF_REG_2, 0),
      Insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff),  // type
      LoadCtxWord(BPF_REG_3, 0),
      Insn(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16),  // access
      LoadCtxWord(BPF_REG_4, 4),                               // major
      LoadCtxWord(BPF_REG_5, 8),                               // minor
  };
  for (const auto& rule : rules) AppendRule(rule, prog);
  prog.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
  prog.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return prog;
}

namespace {

// Loads the program; `log` (when not empty) receives the verifier's log. A
// log too small for what the verifier writes fails the load with ENOSPC, so
// the first load goes without one and only a refused program is loaded
// again with a log, for the error message.
long LoadDeviceProgram(const std::vector<bpf_insn>& prog, std::string* log) {
  static char license[] = "GPL";
  bpf_attr load;
  std::memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(prog.data());
  load.insn_cnt = static_cast<uint32_t>(prog.size());
  load.license = reinterpret_cast<uint64_t>(license);
  if (log != nullptr) {
    log->assign(1 << 16, '\0');
    load.log_buf = reinterpret_cast<uint64_t>(log->data());
    load.log_size = static_cast<uint32_t>(log->size());
    load.log_level = 1;
  }
  return Bpf(BPF_PROG_LOAD, load);
}

}  // namespace

Status AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> prog = BuildDeviceFilter(rules);
  // The attachment keeps the program alive once prog_fd is closed.
  UniqueFd prog_fd(static_cast<int>(LoadDeviceProgram(prog, nullptr)));
  if (!prog_fd.valid()) {
    int err = errno;
    std::string log;
    UniqueFd again(static_cast<int>(LoadDeviceProgram(prog, &log)));
    log.resize(::strnlen(log.c_str(), 400));
    return IOErrorFromErrno("load the device filter (" + log + ")", err);
  }
  UniqueFd dir_fd(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return IOErrorFromErrno("open " + cgroup_dir, errno);
  bpf_attr attach;
  std::memset(&attach, 0, sizeof attach);
  attach.target_fd = static_cast<uint32_t>(dir_fd.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, attach) != 0) {
    return IOErrorFromErrno("attach the device filter to " + cgroup_dir, errno);
  }
  return Status::Ok();
}

}  // namespace flotilla::runtime
