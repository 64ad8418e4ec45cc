// An image whose index.json, manifest.json, a blob or a layer is a FIFO, a
// socket or a device node (or that is one itself) is refused at once: no
// import waits for a FIFO's writer or reads a device, and the store is left
// unlocked and empty. Also: the store's index is not readable by others.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "layerstore/layer_store.h"
#include "layerstore/test_tar_builder.h"

namespace flotilla::layerstore {
namespace {

using namespace std::chrono_literals;
using testing::TarBuilder;

enum class Kind { kFifo, kSocket, kDevice };
enum class Form { kOciDir, kDockerDir, kOciTar, kDockerTar };
// Which file of the image is special; kImage: the image path itself.
enum class Place { kIndexOrManifestJson, kMetadataBlob, kLayer, kImage };

struct Case {
  Form form;
  Place place;
  Kind kind;
};

const char* KindText(Kind kind) {
  switch (kind) {
    case Kind::kFifo:
      return "a FIFO";
    case Kind::kSocket:
      return "a socket";
    case Kind::kDevice:
      return "a character device";
  }
  return "";
}

Bytes ToBytes(const std::string& text) { return Bytes(text.begin(), text.end()); }

// The files of a one-layer image in `form`, and the path of each place.
struct ImageFiles {
  std::map<std::string, Bytes> files;
  std::map<Place, std::string> place_path;
};

ImageFiles MakeImageFiles(Form form) {
  ImageFiles image;
  const Bytes layer = TarBuilder().File("hello", "world").Finish();
  const Json config = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {Digest::Of(layer).ToString()}}}}};
  const Bytes config_bytes = ToBytes(config.dump());
  if (form == Form::kDockerDir || form == Form::kDockerTar) {
    Json manifest = Json::array({{{"Config", "config.json"},
                                  {"RepoTags", {"test/img:1"}},
                                  {"Layers", {"layer/layer.tar"}}}});
    image.files = {{"manifest.json", ToBytes(manifest.dump())},
                   {"config.json", config_bytes},
                   {"layer/layer.tar", layer}};
    image.place_path = {{Place::kIndexOrManifestJson, "manifest.json"},
                        {Place::kMetadataBlob, "config.json"},
                        {Place::kLayer, "layer/layer.tar"}};
    return image;
  }
  auto blob = [](const Digest& d) { return "blobs/sha256/" + d.Hex(); };
  const Json manifest = {{"schemaVersion", 2},
                         {"config",
                          {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                           {"digest", Digest::Of(config_bytes).ToString()},
                           {"size", config_bytes.size()}}},
                         {"layers",
                          {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                            {"digest", Digest::Of(layer).ToString()},
                            {"size", layer.size()}}}}};
  const Bytes manifest_bytes = ToBytes(manifest.dump());
  const Json index = {{"schemaVersion", 2},
                      {"manifests",
                       {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                         {"digest", Digest::Of(manifest_bytes).ToString()},
                         {"size", manifest_bytes.size()}}}}};
  image.files = {{"oci-layout", ToBytes(R"({"imageLayoutVersion":"1.0.0"})")},
                 {"index.json", ToBytes(index.dump())},
                 {blob(Digest::Of(manifest_bytes)), manifest_bytes},
                 {blob(Digest::Of(config_bytes)), config_bytes},
                 {blob(Digest::Of(layer)), layer}};
  image.place_path = {{Place::kIndexOrManifestJson, "index.json"},
                      {Place::kMetadataBlob, blob(Digest::Of(manifest_bytes))},
                      {Place::kLayer, blob(Digest::Of(layer))}};
  return image;
}

// Creates a FIFO, a socket or a device node (/dev/zero's numbers) at `path`.
void MakeSpecial(const std::string& path, Kind kind) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  if (kind == Kind::kFifo) {
    ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0) << path;
  } else if (kind == Kind::kDevice) {
    ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0644, makedev(1, 5)), 0) << path;
  } else {
    // Bound through the directory's fd: a blob's full path can pass sun_path's 108 bytes.
    const auto parent = std::filesystem::path(path).parent_path().string();
    const int dir = ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir, 0);
    const std::string via = "/proc/self/fd/" + std::to_string(dir) + "/" +
                            std::filesystem::path(path).filename().string();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(via.size(), sizeof addr.sun_path);
    via.copy(addr.sun_path, via.size());
    const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int bound = ::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(sock);
    ::close(dir);
    ASSERT_EQ(bound, 0) << path;
  }
}

// Writes the image at `root` (a directory, or a tar file) with the file at
// `special` (a path inside it, or "" for none) made a special file.
void WriteImage(const std::string& root, Form form, const ImageFiles& image,
                const std::string& special, Kind kind) {
  if (form == Form::kOciDir || form == Form::kDockerDir) {
    for (const auto& [path, bytes] : image.files) {
      const std::string full = root + "/" + path;
      if (path == special) {
        MakeSpecial(full, kind);
        continue;
      }
      ASSERT_TRUE(CreateDirectories(std::filesystem::path(full).parent_path().string()).ok());
      ASSERT_TRUE(WriteFileAtomic(full, bytes).ok());
    }
    return;
  }
  TarBuilder tar;
  for (const auto& [path, bytes] : image.files) {
    if (path != special) {
      tar.File(path, std::string(bytes.begin(), bytes.end()));
    } else if (kind == Kind::kFifo) {
      tar.Fifo(path);
    } else {
      tar.Device(path, AE_IFCHR, makedev(1, 5));
    }
  }
  ASSERT_TRUE(WriteFileAtomic(root, tar.Finish()).ok());
}

class ImportSpecialFileTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/lsspecialXXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto store = LayerStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<LayerStore> store_;
};

TEST_P(ImportSpecialFileTest, RefusedAtOnceAndTheStoreStaysUsable) {
  const Case c = GetParam();
  const ImageFiles image = MakeImageFiles(c.form);
  const bool tar = c.form == Form::kOciTar || c.form == Form::kDockerTar;
  const std::string root = dir_ + (tar ? "/image.tar" : "/image");
  std::string special_path;  // on disk, for unblocking a FIFO
  if (c.place == Place::kImage) {
    MakeSpecial(root, c.kind);
    special_path = root;
  } else {
    const std::string inside = image.place_path.at(c.place);
    WriteImage(root, c.form, image, inside, c.kind);
    special_path = tar ? "" : root + "/" + inside;
  }
  ASSERT_FALSE(HasFatalFailure());

  const auto started = std::chrono::steady_clock::now();
  auto import = std::async(std::launch::async, [&] { return store_->ImportImage(root, {}); });
  if (import.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "the import blocked on " << special_path;
    // A writer that comes and goes lets a reader blocked on the FIFO see its
    // end; again for every later open.
    while (import.wait_for(100ms) != std::future_status::ready) {
      ::close(::open(special_path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    }
  }
  const auto imported = import.get();
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(imported.ok()) << "a special file was accepted";
  EXPECT_LT(took, 1s) << "refused, but not at once";
  EXPECT_EQ(imported.status().code(), StatusCode::kInvalidArgument) << imported.status().ToString();
  EXPECT_NE(
      imported.status().message().find(std::string(KindText(c.kind)) + ", not a regular file"),
      std::string::npos)
      << imported.status().ToString();

  // Unlocked: the store opens again, and holds nothing of the image.
  store_.reset();
  auto again = LayerStore::Open(dir_ + "/store");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->ListImages()->empty());
  EXPECT_TRUE((*again)->ListLayers()->empty());
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (Form form : {Form::kOciDir, Form::kDockerDir, Form::kOciTar, Form::kDockerTar}) {
    const bool tar = form == Form::kOciTar || form == Form::kDockerTar;
    for (Place place : {Place::kIndexOrManifestJson, Place::kMetadataBlob, Place::kLayer}) {
      for (Kind kind : {Kind::kFifo, Kind::kSocket, Kind::kDevice}) {
        if (tar && kind == Kind::kSocket) continue;  // tar has no socket entries
        cases.push_back({form, place, kind});
      }
    }
  }
  for (Kind kind : {Kind::kFifo, Kind::kSocket, Kind::kDevice}) {
    cases.push_back({Form::kOciTar, Place::kImage, kind});
  }
  return cases;
}

std::string Describe(const Case& c) {
  static const char* forms[] = {"OciDir", "DockerDir", "OciTar", "DockerTar"};
  static const char* places[] = {"IndexOrManifestJson", "MetadataBlob", "Layer", "Image"};
  static const char* kinds[] = {"Fifo", "Socket", "Device"};
  std::string name = c.place == Place::kImage ? "" : forms[static_cast<int>(c.form)];
  return name + places[static_cast<int>(c.place)] + "Is" + kinds[static_cast<int>(c.kind)];
}

void PrintTo(const Case& c, std::ostream* os) { *os << Describe(c); }

INSTANTIATE_TEST_SUITE_P(EveryPlace, ImportSpecialFileTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return Describe(info.param);
                         });

// The index lists every image and layer of the device: its owner's alone,
// whether the store is new or an existing one was world-readable.
TEST(StoreIndexModeTest, IndexIsOwnerOnlyAndAWiderModeIsNarrowedAtOpen) {
  std::string pattern = ::testing::TempDir() + "/lsmodeXXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string root = pattern + "/store";
  auto mode = [](const std::string& path) {
    struct stat st = {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
  };
  const ::mode_t old_umask = ::umask(022);
  {
    auto store = LayerStore::Open(root);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(mode(root + "/index.db"), 0600);
    EXPECT_EQ(mode(root + "/index.db-wal"), 0600) << "WAL mode keeps it while open";
    EXPECT_EQ(mode(root + "/index.db-shm"), 0600);
  }
  // An existing index left world-readable, with a -wal and -shm (empty:
  // nothing to replay) as a crash leaves them.
  for (const char* file : {"/index.db", "/index.db-wal", "/index.db-shm"}) {
    if (mode(root + file) < 0) {
      ASSERT_TRUE(WriteFileAtomic(root + file, "").ok());
    }
    ASSERT_EQ(::chmod((root + file).c_str(), 0644), 0);
  }
  {
    auto store = LayerStore::Open(root);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(mode(root + "/index.db"), 0600);
    EXPECT_EQ(mode(root + "/index.db-wal"), 0600);
    EXPECT_EQ(mode(root + "/index.db-shm"), 0600);
  }
  ::umask(old_umask);
  std::filesystem::remove_all(pattern);
}

}  // namespace
}  // namespace flotilla::layerstore
