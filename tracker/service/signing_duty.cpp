#include "tracker/service/signing_duty.h"

#include <spdlog/spdlog.h>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/file_io.h"

namespace flotilla::tracker {
namespace {

constexpr Duration kSigningRetry = std::chrono::minutes(1);
constexpr uint64_t kMaxMetadataBytes = 64 << 20;

}  // namespace

Result<std::vector<Publication>> CurrentPublications(const std::string& metadata_dir) {
  std::vector<Publication> current;
  for (const char* role : {"timestamp", "snapshot", "targets"}) {
    const std::string path = metadata_dir + "/" + role + ".json";
    ASSIGN_OR_RETURN(Bytes bytes, ReadFileBounded(path, kMaxMetadataBytes));
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    ASSIGN_OR_RETURN(Json json, ParseJsonStrict(text, JsonLimits{.max_bytes = kMaxMetadataBytes}));
    const Json* version = json.is_object() && json.contains("signed") && json["signed"].is_object()
                              ? &json["signed"]["version"]
                              : nullptr;
    if (version == nullptr || !version->is_number_unsigned()) {
      return Corruption(path + ": no signed.version");
    }
    current.push_back({role, version->get<uint64_t>(), Digest::Of(text).Hex()});
  }
  return current;
}

Status SigningDuty::CheckAgreesWithDatabase(const SigningLease::PublishedVersions& latest) {
  ASSIGN_OR_RETURN(std::vector<Publication> current, CurrentPublications(metadata_dir_));
  for (const Publication& p : current) {
    // The timestamp's next version comes from the database, and a timestamp
    // behind it is re-signed; snapshot and targets carry content that
    // devices must never see go back.
    if (p.role == "timestamp") continue;
    auto recorded = latest.find(p.role);
    if (recorded == latest.end()) continue;
    if (p.version < recorded->second) {
      return FailedPrecondition(metadata_dir_ + ": " + p.role + " version " +
                                std::to_string(p.version) + " is behind version " +
                                std::to_string(recorded->second) +
                                " published through the database (is the repository shared by "
                                "every replica?)");
    }
    ASSIGN_OR_RETURN(std::string sha256, lease_.RecordedSha256(p.role, p.version));
    if (!sha256.empty() && sha256 != p.sha256) {
      return FailedPrecondition(metadata_dir_ + ": " + p.role + " version " +
                                std::to_string(p.version) +
                                " is not the document published through the database under "
                                "that version (is the repository shared by every replica?)");
    }
  }
  return Status::Ok();
}

bool SigningDuty::RenewLease() {
  const bool was_holding = holding_;
  auto held = lease_.Renew();
  holding_ = held.ok() && *held;
  if (!held.ok()) {
    spdlog::error("signing lease: {}", held.status().ToString());
  }
  if (holding_ && !was_holding) {
    spdlog::info("signing lease taken by {} (epoch {}): this replica signs", lease_.holder(),
                 lease_.epoch());
    next_signing_ = WallTime{};  // a new holder checks the metadata at once
  } else if (!holding_ && was_holding) {
    spdlog::warn("signing lease lost (epoch {}): this replica stops signing", lease_.epoch());
  }
  return holding_;
}

Status SigningDuty::SignTurn(WallTime now) {
  Duration wait = kSigningRetry;
  Status st = lease_.RunSigningTurn(
      [&](const SigningLease::PublishedVersions& latest) -> Result<std::vector<Publication>> {
        RETURN_IF_ERROR(CheckAgreesWithDatabase(latest));
        ASSIGN_OR_RETURN(wait, inner_.RefreshAbove(now, latest));
        return CurrentPublications(metadata_dir_);
      });
  next_signing_ = now + std::chrono::duration_cast<WallTime::duration>(wait);
  return st;
}

Result<Duration> SigningDuty::Refresh(WallTime now) {
  const Duration renew_every = lease_.ttl() / 3;
  if (!RenewLease()) {
    if (metrics_ != nullptr) metrics_->SetSigningLease(false, lease_.epoch());
    return renew_every;
  }
  if (now >= next_signing_) {
    if (Status st = SignTurn(now); !st.ok()) {
      if (!lease_.held()) {
        holding_ = false;
        spdlog::warn("signing lease lost (epoch {}): this replica stops signing: {}",
                     lease_.epoch(), st.ToString());
      } else {
        spdlog::error("re-signing failed (retry in a minute): {}", st.ToString());
        next_signing_ = now + std::chrono::duration_cast<WallTime::duration>(kSigningRetry);
      }
    }
  }
  if (holding_ && holder_duty_ != nullptr && now >= next_holder_duty_) {
    auto wait = holder_duty_->Refresh(now);
    if (!wait.ok()) spdlog::error("signing replica duty failed: {}", wait.status().ToString());
    next_holder_duty_ =
        now + std::chrono::duration_cast<WallTime::duration>(wait.ok() ? *wait : kSigningRetry);
  }
  if (metrics_ != nullptr) metrics_->SetSigningLease(holding_, lease_.epoch());
  WallTime next = next_signing_;
  if (holding_ && holder_duty_ != nullptr) next = std::min(next, next_holder_duty_);
  auto until_signing = std::chrono::duration_cast<Duration>(next - now);
  return std::clamp(until_signing, Duration(std::chrono::milliseconds(100)), renew_every);
}

HolderDuties::HolderDuties(std::vector<MetadataRefresher*> duties) {
  for (MetadataRefresher* duty : duties) duties_.push_back({duty});
}

Result<Duration> HolderDuties::Refresh(WallTime now) {
  WallTime next = WallTime::max();
  for (Scheduled& scheduled : duties_) {
    if (now >= scheduled.next) {
      auto wait = scheduled.duty->Refresh(now);
      if (!wait.ok()) spdlog::error("signing replica duty failed: {}", wait.status().ToString());
      scheduled.next =
          now + std::chrono::duration_cast<WallTime::duration>(wait.ok() ? *wait : kSigningRetry);
    }
    next = std::min(next, scheduled.next);
  }
  if (duties_.empty()) return Duration(std::chrono::hours(1));
  return std::chrono::duration_cast<Duration>(next - now);
}

}  // namespace flotilla::tracker
