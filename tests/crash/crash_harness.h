// Runs a sequence of durable changes under a FaultInjectionEnv, interrupted
// at every durable boundary (as a killed process and as a power cut) and at
// seeded write indices (as a power cut), each followed by a check of what is
// left; and once per injected write or
// fsync failure, checking that the error leaves a usable state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/testing/fault_injection_env.h"

namespace flotilla::testing {

// One scenario, run in a fresh directory each time.
class CrashScenario {
 public:
  virtual ~CrashScenario() = default;
  // Builds what exists before the steps; the harness then makes it durable.
  virtual void SetUp(Env& env, const std::string& dir) { (void)env, (void)dir; }
  virtual size_t steps() const = 0;
  // Step `i` (from 0, in order) through `env` in `dir`; objects it opens
  // stay open across steps until Close().
  virtual Status RunStep(Env& env, const std::string& dir, size_t i) = 0;
  // Drops every object the steps opened, as the death of the process would.
  virtual void Close() = 0;
  // After a kill or a power cut: `done` steps returned OK and step `done` (if any)
  // was interrupted. Checks with gtest assertions that the state is sound,
  // holds the effect of every step that returned OK and at most that of the
  // interrupted one, and that it takes new changes.
  virtual void Check(Env& env, const std::string& dir, size_t done) = 0;
};

struct CrashMatrix {
  size_t write_samples = 200;     // seeded write indices to cut the power at
  size_t kill_samples = 50;       // seeded write indices to kill the process at
  size_t transient_samples = 20;  // write and fsync indices to fail once
  uint64_t seed = 1;
};

// Runs `make()`'s scenario once without faults to count its boundaries and
// writes, then: stopped at every boundary, once as a killed process (what
// was written stays) and once followed by a power cut; stopped at
// `write_samples` write indices (all of them when there are fewer), each
// followed by a power cut, and at `kill_samples` as a killed process; each
// of these followed by Check. Then with a single write or fsync failing
// (each step that fails is retried once), followed by Check of the
// complete run.
void RunCrashMatrix(const std::function<std::unique_ptr<CrashScenario>()>& make,
                    const CrashMatrix& matrix);

}  // namespace flotilla::testing
