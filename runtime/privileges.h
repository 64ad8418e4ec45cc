// The last steps before a container process runs the app's program: limits,
// user and groups, the five capability sets, no_new_privs, seccomp, closing
// inherited file descriptors, exec.
#pragma once

#include <string>
#include <vector>

#include "appspec/app_spec.h"
#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla::runtime {

// rlimits and oom_score_adj (they need privileges the app may not keep).
Status ApplyLimits(const appspec::AppSpec& spec);

// Sets uid/gid/supplementary groups, then every capability set (bounding,
// permitted, effective, inheritable, ambient) to `capabilities`, then
// no_new_privs. REQUIRES: running as root with full capabilities.
Status DropPrivileges(const appspec::UserSpec& user, const std::vector<std::string>& capabilities);

// flotilla's default seccomp profile (docs/runtime.md) as a classic BPF
// program (raw struct sock_filter array): known dangerous calls fail with
// EPERM, anything not on the allow list fails with ENOSYS. Compiling it with
// libseccomp costs tens of milliseconds, so the result is kept in
// `cache_dir` under a name that changes with the profile, libseccomp's
// version and the architecture; the kernel checks the program on install.
Result<std::string> DefaultSeccompFilter(const std::string& cache_dir);

// The default profile as OCI runtime-spec JSON ("linux.seccomp"), for
// bundles exported to runc.
Json DefaultSeccompOciJson();

// Installs a program from DefaultSeccompFilter on the calling thread.
// REQUIRES: no_new_privs set (DropPrivileges does it).
Status InstallSeccompFilter(const std::string& program);

// Marks every fd above 2 close-on-exec, then execs argv with env. Returns only
// on failure.
Status ExecProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env);

// The environment the program gets: the spec's, plus PATH and HOSTNAME when absent.
std::vector<std::string> ProgramEnvironment(const appspec::AppSpec& spec);

}  // namespace flotilla::runtime
