#include "layerstore/plain_tar.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <set>

namespace flotilla::layerstore {
namespace {

Status ArchiveError(archive* a, const std::string& what) {
  const char* why = archive_error_string(a);
  return Corruption("the tar is damaged or truncated: " + what +
                    (why ? ": " + std::string(why) : ""));
}

struct Reader {
  archive* a = archive_read_new();
  ~Reader() { archive_read_free(a); }
};

Status OpenReader(Reader& r, const std::string& path) {
  archive_read_support_format_tar(r.a);
  if (archive_read_open_filename(r.a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return ArchiveError(r.a, "open " + path);
  }
  return Status::Ok();
}

std::string NameOf(archive_entry* e) {
  return archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
}

Status CopyData(archive* a, const PlainTarEntry& entry, const std::string& dest) {
  std::unique_ptr<FILE, decltype(&fclose)> out(fopen(dest.c_str(), "wbx"), fclose);
  if (!out) return IOErrorFromErrno("create " + dest, errno);
  std::vector<char> buffer(1 << 20);
  uint64_t copied = 0;
  for (;;) {
    const la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
    if (n < 0) return ArchiveError(a, "entry " + entry.name);
    if (n == 0) break;
    copied += static_cast<uint64_t>(n);
    if (copied > entry.size) return ArchiveError(a, "entry " + entry.name + " is too long");
    if (fwrite(buffer.data(), 1, static_cast<size_t>(n), out.get()) != static_cast<size_t>(n)) {
      return IOErrorFromErrno("write " + dest, errno);
    }
  }
  if (copied != entry.size) return ArchiveError(a, "entry " + entry.name + " is cut short");
  if (fflush(out.get()) != 0) return IOErrorFromErrno("write " + dest, errno);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PlainTarWriter>> PlainTarWriter::Create(const std::string& path) {
  archive* a = archive_write_new();
  std::unique_ptr<PlainTarWriter> writer(new PlainTarWriter(a));
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
    return writer->Error("open " + path);
  }
  return writer;
}

PlainTarWriter::~PlainTarWriter() { archive_write_free(archive_); }

Status PlainTarWriter::Error(const std::string& what) const {
  const char* why = archive_error_string(archive_);
  return IOErrorFromErrno(what + (why ? ": " + std::string(why) : ""), archive_errno(archive_));
}

Status PlainTarWriter::Header(const std::string& name, uint64_t size, uint32_t mode) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                  archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), mode);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
  if (archive_write_header(archive_, e.get()) != ARCHIVE_OK) return Error("tar header " + name);
  return Status::Ok();
}

Status PlainTarWriter::Data(const void* data, size_t size) {
  if (archive_write_data(archive_, data, size) != static_cast<la_ssize_t>(size)) {
    return Error("tar data");
  }
  return Status::Ok();
}

Status PlainTarWriter::AddBytes(const std::string& name, std::string_view bytes) {
  RETURN_IF_ERROR(Header(name, bytes.size(), 0444));
  return Data(bytes.data(), bytes.size());
}

Status PlainTarWriter::AddFile(const std::string& name, const std::string& path, uint64_t length,
                               uint32_t mode) {
  std::unique_ptr<FILE, decltype(&fclose)> in(fopen(path.c_str(), "rb"), fclose);
  if (!in) return IOErrorFromErrno("open " + path, errno);
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) != length || ec) {
    return Corruption(path + " is not " + std::to_string(length) + " bytes long");
  }
  RETURN_IF_ERROR(Header(name, length, mode));
  std::vector<char> buffer(1 << 20);
  for (uint64_t left = length; left > 0;) {
    const size_t n = fread(buffer.data(), 1, std::min<uint64_t>(left, buffer.size()), in.get());
    if (n == 0) return IOErrorFromErrno("read " + path, errno ? errno : EIO);
    RETURN_IF_ERROR(Data(buffer.data(), n));
    left -= n;
  }
  return Status::Ok();
}

Status PlainTarWriter::Close() {
  if (archive_write_close(archive_) != ARCHIVE_OK) return Error("close tar");
  return Status::Ok();
}

Result<std::vector<PlainTarEntry>> ScanPlainTar(const std::string& path,
                                                const std::vector<std::string>& skipped_directories,
                                                uint32_t max_entries) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return Internal("size of " + path + ": " + ec.message());
  Reader r;
  RETURN_IF_ERROR(OpenReader(r, path));
  std::vector<PlainTarEntry> entries;
  std::set<std::string> names;
  for (;;) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.a, &e);
    if (rc == ARCHIVE_EOF) return entries;
    if (rc != ARCHIVE_OK) return ArchiveError(r.a, "reading its entries");
    if (entries.size() >= max_entries) return ResourceExhausted("more than the entries allowed");
    const std::string name = NameOf(e);
    const auto type = archive_entry_filetype(e);
    if (type == AE_IFDIR &&
        std::count(skipped_directories.begin(), skipped_directories.end(),
                   name.ends_with('/') ? name.substr(0, name.size() - 1) : name)) {
      continue;
    }
    if (type != AE_IFREG || archive_entry_hardlink(e) != nullptr) {
      return PermissionDenied("entry '" + name +
                              "' is not a regular file (links, devices, fifos and other "
                              "directories are refused)");
    }
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
      return Corruption("entry '" + name + "' has no size");
    }
    const PlainTarEntry entry{name, static_cast<uint64_t>(archive_entry_size(e))};
    if (!names.insert(name).second) return InvalidArgument("entry '" + name + "' appears twice");
    const auto at = static_cast<uint64_t>(archive_read_header_position(r.a));
    if (at > file_size || entry.size > file_size - at) return ArchiveError(r.a, "entry " + name);
    if (archive_read_data_skip(r.a) != ARCHIVE_OK) return ArchiveError(r.a, "entry " + name);
    entries.push_back(entry);
  }
}

Status ExtractPlainTar(const std::string& path,
                       const std::map<std::string, std::string>& destinations,
                       const std::function<void(const PlainTarEntry&)>& copied) {
  Reader r;
  RETURN_IF_ERROR(OpenReader(r, path));
  for (;;) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.a, &e);
    if (rc == ARCHIVE_EOF) return Status::Ok();
    if (rc != ARCHIVE_OK) return ArchiveError(r.a, "reading its entries");
    auto it = destinations.find(NameOf(e));
    if (it == destinations.end()) continue;
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) < 0) {
      return PermissionDenied("entry '" + it->first + "' is not a regular file");
    }
    const PlainTarEntry entry{it->first, static_cast<uint64_t>(archive_entry_size(e))};
    RETURN_IF_ERROR(CopyData(r.a, entry, it->second));
    if (copied) copied(entry);
  }
}

}  // namespace flotilla::layerstore
