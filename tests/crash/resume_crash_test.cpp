// The transfer's resume data under power cuts: pieces land in the payload
// file unsynced, block by block and in no particular order, as
// libtorrent's disk thread writes them; after each batch the node saves a
// resume checkpoint naming every piece written so far. Interrupted at every
// durable boundary and at 200 seeded write indices, then cut: the resume
// data parses (never torn), it is the last checkpoint saved with OK or the
// one being saved, and every piece it names holds its bytes on disk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/read_resume_data.hpp>
#include <libtorrent/write_resume_data.hpp>
#include <numeric>
#include <random>

#include "core/file_io.h"
#include "node/transfer/resume_checkpoint.h"
#include "tests/crash/crash_harness.h"

namespace flotilla::testing {
namespace {

constexpr int kPieces = 64;
constexpr int kBatches = 4;
constexpr size_t kBlock = 4 << 10;
constexpr size_t kBlocksPerPiece = 4;
constexpr size_t kPieceSize = kBlock * kBlocksPerPiece;

const Bytes& PieceContent(int piece) {
  static const std::vector<Bytes> contents = [] {
    std::vector<Bytes> all(kPieces, Bytes(kPieceSize));
    std::mt19937_64 rng(1);
    for (Bytes& bytes : all) {
      for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    }
    return all;
  }();
  return contents[piece];
}

// The order the pieces arrive in (the same in every run).
std::vector<int> ArrivalOrder() {
  std::vector<int> order(kPieces);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  return order;
}

std::vector<char> ResumeDataNaming(const std::vector<int>& pieces) {
  lt::add_torrent_params params;
  params.info_hashes.v1 = lt::sha1_hash("0123456789abcdefghij");
  params.save_path = "/var/lib/flotilla/transfer/data";
  params.have_pieces.resize(kPieces, false);
  for (int piece : pieces) params.have_pieces.set_bit(lt::piece_index_t(piece));
  return lt::write_resume_data_buf(params);
}

class ResumeScenario final : public CrashScenario {
 public:
  // Per batch: write its pieces, then save a checkpoint naming all so far.
  size_t steps() const override { return 2 * kBatches; }

  Status RunStep(Env& env, const std::string& dir, size_t i) override {
    const size_t batch = i / 2;
    if (i % 2 == 0) return WriteBatch(env, dir, batch);
    const std::vector<char> resume = ResumeDataNaming(Written(batch + 1));
    return node::SaveResumeCheckpoint(
        env, Payload(dir), Resume(dir),
        ByteSpan(reinterpret_cast<const uint8_t*>(resume.data()), resume.size()));
  }
  void Close() override { payload_.reset(); }

  void Check(Env& env, const std::string& dir, size_t done) override {
    const size_t saved = done / 2;  // checkpoints that returned OK
    const size_t in_flight = done % 2 == 1 && done < steps() ? saved + 1 : saved;
    auto bytes = ReadFileBounded(Resume(dir), 1 << 20);
    size_t claimed = 0;
    if (bytes.ok()) {
      lt::error_code ec;
      lt::add_torrent_params params =
          lt::read_resume_data({reinterpret_cast<const char*>(bytes->data()),
                                static_cast<std::ptrdiff_t>(bytes->size())},
                               ec);
      ASSERT_FALSE(ec) << "torn resume data: " << ec.message();
      auto payload = ReadFileBounded(Payload(dir), kPieces * kPieceSize);
      for (int piece = 0; piece < params.have_pieces.size(); ++piece) {
        if (!params.have_pieces.get_bit(lt::piece_index_t(piece))) continue;
        ++claimed;
        ASSERT_TRUE(payload.ok() && payload->size() >= (piece + 1) * kPieceSize)
            << "the resume data names piece " << piece << " past the payload's end";
        const Bytes& want = PieceContent(piece);
        EXPECT_TRUE(std::equal(want.begin(), want.end(), payload->begin() + piece * kPieceSize))
            << "the resume data names piece " << piece << ", which the power cut lost";
      }
    } else {
      ASSERT_EQ(bytes.status().code(), StatusCode::kNotFound) << bytes.status().ToString();
    }
    EXPECT_TRUE(claimed == Written(saved).size() || claimed == Written(in_flight).size())
        << "the resume data names " << claimed << " pieces after " << saved << " checkpoints";
    // The transfer goes on from here: the pieces written again, a checkpoint of all.
    for (size_t batch = 0; batch < kBatches; ++batch) {
      ASSERT_TRUE(WriteBatch(env, dir, batch).ok());
    }
    payload_.reset();
    const std::vector<char> all = ResumeDataNaming(Written(kBatches));
    EXPECT_TRUE(node::SaveResumeCheckpoint(
                    env, Payload(dir), Resume(dir),
                    ByteSpan(reinterpret_cast<const uint8_t*>(all.data()), all.size()))
                    .ok());
  }

 private:
  static std::string Payload(const std::string& dir) { return dir + "/data"; }
  static std::string Resume(const std::string& dir) { return dir + "/artifact.resume"; }

  // The pieces of the first `batches` batches.
  static std::vector<int> Written(size_t batches) {
    std::vector<int> order = ArrivalOrder();
    order.resize(batches * kPieces / kBatches);
    return order;
  }

  // Writes the batch's pieces block by block, unsynced, as libtorrent does.
  Status WriteBatch(Env& env, const std::string& dir, size_t batch) {
    if (!payload_) {
      ASSIGN_OR_RETURN(payload_, env.OpenForWrite(Payload(dir), OpenMode::kKeep, 0644));
    }
    const std::vector<int> order = ArrivalOrder();
    for (size_t k = batch * kPieces / kBatches; k < (batch + 1) * kPieces / kBatches; ++k) {
      const Bytes& content = PieceContent(order[k]);
      for (size_t block = 0; block < kBlocksPerPiece; ++block) {
        RETURN_IF_ERROR(payload_->WriteAt(ByteSpan(content.data() + block * kBlock, kBlock),
                                          order[k] * kPieceSize + block * kBlock));
      }
    }
    return Status::Ok();
  }

  std::unique_ptr<WritableFile> payload_;
};

TEST(ResumeCrashTest, ResumeDataNamesOnlyPiecesThatSurviveAPowerCut) {
  RunCrashMatrix([] { return std::make_unique<ResumeScenario>(); }, CrashMatrix{});
}

}  // namespace
}  // namespace flotilla::testing
