#include "tracker/publish/metadata_refresher.h"

#include <spdlog/spdlog.h>

namespace flotilla::tracker {

RefreshSchedule::RefreshSchedule(Executor& executor, const Clock& clock,
                                 MetadataRefresher& refresher, Duration retry_delay)
    : executor_(executor), clock_(clock), refresher_(refresher), retry_delay_(retry_delay) {}

RefreshSchedule::~RefreshSchedule() {
  std::lock_guard lock(state_->mu);  // waits for a refresh in progress
  state_->stopped = true;
  if (state_->timer != 0) executor_.Cancel(state_->timer);
}

void RefreshSchedule::Start() {
  std::lock_guard lock(state_->mu);
  state_->timer = executor_.PostAfter(
      Duration::zero(),
      [state = state_, &executor = executor_, &clock = clock_, &refresher = refresher_,
       retry_delay = retry_delay_] { RunOnce(state, executor, clock, refresher, retry_delay); });
}

// `state` keeps the flag alive after the schedule is gone; the references are
// only used while `stopped` is false, i.e. while the schedule still exists.
void RefreshSchedule::RunOnce(const std::shared_ptr<State>& state, Executor& executor,
                              const Clock& clock, MetadataRefresher& refresher,
                              Duration retry_delay) {
  std::lock_guard lock(state->mu);
  if (state->stopped) return;
  auto next = refresher.Refresh(clock.Now());
  Duration delay = retry_delay;
  if (next.ok()) {
    ++state->successes;
    delay = std::max(*next, Duration(std::chrono::seconds(1)));
  } else {
    ++state->failures;
    spdlog::error("metadata refresh failed, retrying in {} s: {}",
                  std::chrono::duration_cast<std::chrono::seconds>(retry_delay).count(),
                  next.status().ToString());
  }
  state->timer = executor.PostAfter(delay, [state, &executor, &clock, &refresher, retry_delay] {
    RunOnce(state, executor, clock, refresher, retry_delay);
  });
}

int64_t RefreshSchedule::successes() const {
  std::lock_guard lock(state_->mu);
  return state_->successes;
}

int64_t RefreshSchedule::failures() const {
  std::lock_guard lock(state_->mu);
  return state_->failures;
}

}  // namespace flotilla::tracker
