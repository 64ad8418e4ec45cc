// Test helper: builds tar archives in memory with libarchive's writer, which
// writes whatever it is told (hostile names included), so tests can make
// layers no honest tool would.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"

namespace flotilla::layerstore::testing {

class TarBuilder {
 public:
  TarBuilder() {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    archive_write_set_bytes_per_block(a_, 10240);
    archive_write_open(a_, this, nullptr, &TarBuilder::Write, nullptr);
  }
  ~TarBuilder() {
    if (a_ != nullptr) archive_write_free(a_);
  }

  TarBuilder& Dir(const std::string& path, int mode = 0755) {
    return Add(path, AE_IFDIR, mode, "", nullptr);
  }
  TarBuilder& File(const std::string& path, const std::string& content, int mode = 0644,
                   std::vector<std::pair<std::string, std::string>> xattrs = {}) {
    return Add(path, AE_IFREG, mode, content, nullptr, "", xattrs);
  }
  TarBuilder& Symlink(const std::string& path, const std::string& target) {
    return Add(path, AE_IFLNK, 0777, "", nullptr, target);
  }
  TarBuilder& Hardlink(const std::string& path, const std::string& target) {
    return Add(path, AE_IFREG, 0644, "", target.c_str());
  }
  TarBuilder& Device(const std::string& path, unsigned type, dev_t dev) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_rdev(e, dev);
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& Fifo(const std::string& path) { return Add(path, AE_IFIFO, 0644, "", nullptr); }

  Bytes Finish() {
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
    return std::move(out_);
  }

 private:
  TarBuilder& Add(const std::string& path, unsigned type, int mode, const std::string& content,
                  const char* hardlink, const std::string& symlink = "",
                  const std::vector<std::pair<std::string, std::string>>& xattrs = {}) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_uid(e, 1000);
    archive_entry_set_gid(e, 1000);
    archive_entry_set_mtime(e, 1700000000, 123456789);
    if (hardlink != nullptr) archive_entry_set_hardlink(e, hardlink);
    if (!symlink.empty()) archive_entry_set_symlink(e, symlink.c_str());
    for (const auto& [k, v] : xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_write_header(a_, e);
    if (!content.empty()) archive_write_data(a_, content.data(), content.size());
    archive_entry_free(e);
    return *this;
  }

  static la_ssize_t Write(archive*, void* ctx, const void* buf, size_t n) {
    auto* self = static_cast<TarBuilder*>(ctx);
    const auto* p = static_cast<const uint8_t*>(buf);
    self->out_.insert(self->out_.end(), p, p + n);
    return static_cast<la_ssize_t>(n);
  }

  archive* a_;
  Bytes out_;
};

}  // namespace flotilla::layerstore::testing
