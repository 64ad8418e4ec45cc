// `flotilla-tracker backup` and `flotilla-tracker restore` (docs/tracker.md,
// "Backup and restore").
#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "core/sqlite.h"
#include "layerstore/layer_store.h"
#include "metadata/repository.h"
#include "tracker/cli/backup_tree.h"
#include "tracker/cli/commands.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/publish/publish_state.h"
#include "tracker/publish/repo_init.h"
#include "tracker/storage/sql_engine.h"

namespace flotilla::tracker {
namespace {

namespace fs = std::filesystem;
using metadata::RoleType;

constexpr char kDatabaseName[] = "tracker.db";
constexpr char kPostgresqlDumpName[] = "tracker.pgdump";
constexpr uint64_t kMaxManifestBytes = 64 << 20;
constexpr uint64_t kMaxConfigBytes = 1 << 20;

struct BackupFlags {
  std::string repository;
  std::string database;
  std::string database_url;
  std::string out;
  bool json = false;
};

struct RestoreFlags {
  std::string backup;
  std::string repository;
  std::string database_url;
  int64_t version_step = 0;  // 0: derived from the backup's age
  bool json = false;
};

// A sibling of `path` that is hidden and unique to this process.
std::string TempSibling(const fs::path& path, std::string_view what) {
  return (path.parent_path() / fmt::format(".{}.{}-{}", path.filename().string(), what, ::getpid()))
      .string();
}

bool IsPostgresqlUrl(std::string_view url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

// The SQLite file of the tracker: `database_url` when it names one, else
// `database`, else the repository's tracker.db (where publish records
// releases, also when devices live in PostgreSQL).
std::string SqlitePath(const BackupFlags& flags) {
  std::string_view db = flags.database;
  if (!flags.database_url.empty() && !IsPostgresqlUrl(flags.database_url)) {
    db = flags.database_url;
  }
  if (db.starts_with("sqlite:")) db.remove_prefix(7);
  return db.empty() ? RepositoryLayout{flags.repository}.default_db_path() : std::string(db);
}

// A libpq password file (0600, in a private 0700 directory) holding only
// `password` for any host, port, database and user; removed when destroyed.
class PasswordFile {
 public:
  static Result<PasswordFile> Create(const std::string& password) {
    std::string dir = (fs::temp_directory_path() / "flotilla-pgpass-XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) return IOErrorFromErrno("mkdtemp " + dir, errno);
    PasswordFile file(dir);
    std::string line = "*:*:*:*:";
    for (char c : password) {  // pgpass escapes ':' and '\\' with a backslash
      if (c == ':' || c == '\\') line += '\\';
      line += c;
    }
    RETURN_IF_ERROR(WriteFileAtomic(file.path(), line + "\n", 0600));
    return file;
  }
  PasswordFile(PasswordFile&& other) noexcept : dir_(std::exchange(other.dir_, "")) {}
  PasswordFile& operator=(PasswordFile&&) = delete;
  ~PasswordFile() {
    if (dir_.empty()) return;
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string path() const { return dir_ + "/pgpass"; }

 private:
  explicit PasswordFile(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Runs the PostgreSQL client tool `argv` (from PATH; its output is ours) on
// the database `url` (given to it as --dbname, without its password) and
// waits for it. The password reaches the tool through PGPASSFILE, never its
// command line, where `ps` would show it; nothing here logs the URL.
Status RunPostgresqlTool(std::vector<std::string> argv, const std::string& url) {
  ASSIGN_OR_RETURN(PostgresqlToolLogin login, SplitPostgresqlPassword(url));
  argv.insert(argv.begin() + 1, "--dbname=" + login.conninfo);
  std::optional<PasswordFile> password_file;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry = *e;
    if (!login.password.empty() &&
        (entry.starts_with("PGPASSFILE=") || entry.starts_with("PGPASSWORD="))) {
      continue;
    }
    env_strings.emplace_back(entry);
  }
  if (!login.password.empty()) {
    ASSIGN_OR_RETURN(PasswordFile file, PasswordFile::Create(login.password));
    env_strings.push_back("PGPASSFILE=" + file.path());
    password_file.emplace(std::move(file));
  }
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::vector<char*> env;
  for (std::string& entry : env_strings) env.push_back(entry.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  if (int err = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), env.data());
      err != 0) {
    if (err == ENOENT) return NotFound(argv[0] + " not found (Debian: postgresql-client-15)");
    return IOErrorFromErrno("run " + argv[0], err);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return IOErrorFromErrno("wait for " + argv[0], errno);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Internal(fmt::format("{} failed (status {}): see its message above", argv[0], status));
}

// pg_dump's archive format of the database `url` (one consistent snapshot),
// mode 0600, fsynced.
Result<BackupEntry> DumpPostgresql(const std::string& url, const std::string& to) {
  RETURN_IF_ERROR(RunPostgresqlTool({"pg_dump", "--format=custom", "--file=" + to}, url));
  ASSIGN_OR_RETURN(auto entry, CopyFileHashed(to, to + ".copy", 0600, kPostgresqlDumpName));
  if (::rename((to + ".copy").c_str(), to.c_str()) != 0) return IOErrorFromErrno("rename", errno);
  return entry;
}

// A consistent copy of the live SQLite database `db` at `to` (VACUUM INTO
// reads one snapshot while writers go on), mode 0600, fsynced.
Result<BackupEntry> SnapshotDatabase(const std::string& db, const std::string& to) {
  std::error_code ec;
  if (!fs::is_regular_file(db, ec)) return NotFound("no SQLite database at " + db);
  ASSIGN_OR_RETURN(auto sqlite, SqliteDb::Open(db));
  RETURN_IF_ERROR(sqlite->Prepare("VACUUM INTO ?").Bind(to).Run().WithContext("copy " + db));
  UniqueFd fd(::open(to.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open " + to, errno);
  if (::fchmod(fd.get(), 0600) != 0 || ::fsync(fd.get()) != 0) {
    return IOErrorFromErrno("fsync " + to, errno);
  }
  ASSIGN_OR_RETURN(Digest digest, HashFd(fd.get()));
  return BackupEntry{false, 0600, fs::file_size(to), digest.Hex(), kDatabaseName};
}

// What of the repository is not copied as files: the live database (taken
// through SQLite instead), publish's scratch space and its lock file, and the
// layer store (unpacked layers with device nodes and FIFOs: a cache of the
// signed artifacts that publish uses as delta bases; restore starts it empty).
bool SkippedInBackup(const std::string& relative, const std::string& db_relative) {
  static const std::vector<std::string> kSkipped = {"staging", "publish.lock", "store"};
  if (std::find(kSkipped.begin(), kSkipped.end(), relative) != kSkipped.end()) return true;
  for (const std::string& db : {std::string(kDatabaseName), db_relative}) {
    if (relative == db || relative == db + "-wal" || relative == db + "-shm" ||
        relative == db + "-journal") {
      return true;
    }
  }
  return false;
}

Status Backup(const BackupFlags& flags, BackupManifest& manifest) {
  const fs::path root = fs::absolute(flags.repository).lexically_normal();
  const fs::path out = fs::absolute(flags.out).lexically_normal();
  std::error_code ec;
  if (!fs::is_directory(root / "metadata", ec)) {
    return NotFound(root.string() + " is not a tracker repository (no metadata/)");
  }
  if (fs::exists(out, ec)) return AlreadyExists(out.string() + " exists: give a new path");
  if (!fs::relative(out, root).empty() && *fs::relative(out, root).begin() != "..") {
    return InvalidArgument("the backup must be written outside the repository");
  }
  const std::string db = SqlitePath(flags);
  const std::string db_relative = fs::relative(fs::absolute(db), root).generic_string();
  const std::string tmp = TempSibling(out, "tmp");
  if (::mkdir(tmp.c_str(), 0700) != 0) return IOErrorFromErrno("mkdir " + tmp, errno);
  Status st = [&]() -> Status {
    // Publish and the serve refresher write metadata, artifacts and release
    // records only under this lock: files and database are one state.
    ASSIGN_OR_RETURN(auto lock, PublishLock::Acquire(RepositoryLayout{root.string()}, true));
    auto skip = [&](const std::string& relative) { return SkippedInBackup(relative, db_relative); };
    ASSIGN_OR_RETURN(manifest.entries, CopyTree(root.string(), tmp, skip));
    ASSIGN_OR_RETURN(auto db_entry, SnapshotDatabase(db, tmp + "/" + kDatabaseName));
    manifest.entries.push_back(std::move(db_entry));
    if (IsPostgresqlUrl(flags.database_url)) {
      ASSIGN_OR_RETURN(auto dump,
                       DumpPostgresql(flags.database_url, tmp + "/" + kPostgresqlDumpName));
      manifest.entries.push_back(std::move(dump));
    }
    return Status::Ok();
  }();
  if (st.ok()) {
    std::sort(manifest.entries.begin(), manifest.entries.end(),
              [](const BackupEntry& a, const BackupEntry& b) { return a.path < b.path; });
    manifest.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                SystemClock::Instance().Now().time_since_epoch())
                                .count();
    st = WriteFileAtomic(tmp + "/" + kManifestName, FormatManifest(manifest), 0600);
  }
  if (st.ok() && ::rename(tmp.c_str(), out.c_str()) != 0) st = IOErrorFromErrno("rename", errno);
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    return st;
  }
  return FsyncDirectory(out.parent_path().string());
}

int RunBackup(const BackupFlags& flags) {
  BackupManifest manifest;
  if (Status st = Backup(flags, manifest); !st.ok()) {
    fmt::print(stderr, "backup: {}\n", st.ToString());
    return 1;
  }
  uint64_t bytes = 0;
  for (const BackupEntry& e : manifest.entries) bytes += e.size;
  if (flags.json) {
    fmt::print(
        "{}\n",
        Json{{"backup", flags.out}, {"entries", manifest.entries.size()}, {"bytes", bytes}}.dump());
    return 0;
  }
  fmt::print(
      "backup: wrote {} ({} entries, {} bytes); it holds the online signing keys: keep it "
      "as secret as keys/\n",
      flags.out, manifest.entries.size(), bytes);
  return 0;
}

// Points the restored tracker.json at its new place (the repository, the
// database when it lived inside the old repository, the new `database_url`).
Status RelocateConfig(const std::string& staged, const std::string& final_root,
                      const std::string& database_url) {
  const std::string path = ConfigPath(RepositoryLayout{staged});
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxConfigBytes));
  ASSIGN_OR_RETURN(Json config, ParseJsonStrict(text));
  if (!config.is_object()) return Corruption(path + ": not a JSON object");
  const std::string old_root =
      config.contains("repository") && config["repository"].is_string() ? config["repository"] : "";
  config["repository"] = final_root;
  if (!database_url.empty() && config.contains("database_url")) {
    config["database_url"] = database_url;
  }
  if (!old_root.empty() && config.contains("database") && config["database"].is_string()) {
    std::string db = config["database"];
    if (db.starts_with(old_root + "/"))
      config["database"] = final_root + db.substr(old_root.size());
  }
  return WriteFileAtomic(path, config.dump(1) + "\n", 0644);
}

// Signs `step` new versions of every online role (targets, snapshot and
// timestamp; the roles below the first missing online key stay as they are), so
// that devices which saw versions published after the backup accept the
// restored metadata. Returns the new timestamp version.
Result<uint64_t> AdvanceVersions(const std::string& staged, int64_t step) {
  const RepositoryLayout layout{staged};
  std::vector<std::string> notes;
  RETURN_IF_ERROR(RecoverUnpublishedMetadata(layout, notes));
  ASSIGN_OR_RETURN(auto repo, metadata::Repository::Open(staged, SystemClock::Instance()));
  const std::vector<std::initializer_list<RoleType>> choices = {
      {RoleType::kTargets, RoleType::kSnapshot, RoleType::kTimestamp},
      {RoleType::kSnapshot, RoleType::kTimestamp},
      {RoleType::kTimestamp}};
  for (size_t level = 0; level < choices.size(); ++level) {
    // A key kept offline (init --offline-keys) is not in the backup: the
    // roles below it are re-signed without it.
    const auto& roles = choices[level];
    if (!std::all_of(roles.begin(), roles.end(), [&](RoleType role) {
          std::error_code ec;
          return fs::exists(RoleKeyPath(layout, role), ec);
        })) {
      continue;
    }
    ASSIGN_OR_RETURN(metadata::KeyRing ring, LoadRoleKeys(layout, repo->root(), roles));
    for (int64_t i = 0; i < step; ++i) {
      Status st = level == 0   ? repo->ResignTargets(ring)
                  : level == 1 ? repo->ResignSnapshot(ring)
                               : repo->ResignTimestamp(ring);
      RETURN_IF_ERROR_CTX(st, "re-sign");
    }
    return repo->timestamp().common.version;
  }
  return FailedPrecondition("no online timestamp key in the backup: re-sign the timestamp above " +
                            std::to_string(repo->timestamp().common.version) + " by hand");
}

// The versions devices may have seen since the backup: the serve refresher
// re-signs the timestamp every half of its 24 h lifetime, plus one.
int64_t DefaultVersionStep(int64_t created_unix) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          SystemClock::Instance().Now().time_since_epoch())
                          .count();
  return 1 + std::max<int64_t>(0, now - created_unix) / (12 * 3600);
}

// The step of each device's fleet repository. Its versions move with every
// fleet change that concerns the device (publishes, rollout waves) as well
// as with re-signing, as often as the old tracker was asked to, and skipping
// versions costs nothing (one signing per role, whatever the step): `step`
// plus 2^32 is past anything a tracker signs between a backup and its
// restore, and leaves room for 2^32 restores in the 64-bit versions.
uint64_t FleetVersionStep(int64_t step) {
  return static_cast<uint64_t>(step) + (uint64_t{1} << 32);
}

Status CheckRestoreTarget(const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return Status::Ok();
  if (!fs::is_directory(target, ec)) return AlreadyExists(target.string() + " exists");
  if (!fs::is_empty(target, ec)) {
    return AlreadyExists(target.string() + " is not empty: restore only into a new directory");
  }
  return Status::Ok();
}

// Whether the backup holds a PostgreSQL dump; an error when `database_url`
// does not fit it (a dump needs a PostgreSQL database to go to).
Result<bool> CheckDatabaseTarget(const RestoreFlags& flags, const BackupManifest& manifest) {
  const bool has_dump =
      std::any_of(manifest.entries.begin(), manifest.entries.end(),
                  [](const BackupEntry& e) { return e.path == kPostgresqlDumpName; });
  if (!has_dump) {
    if (IsPostgresqlUrl(flags.database_url)) {
      return FailedPrecondition("the backup holds no PostgreSQL dump (its devices are in " +
                                std::string(kDatabaseName) + ")");
    }
    return false;
  }
  if (!IsPostgresqlUrl(flags.database_url)) {
    return FailedPrecondition(
        "the backup holds a PostgreSQL dump: give --database-url postgresql://... of an empty "
        "database");
  }
  return true;
}

// Loads the staged dump into the empty database `url`, in one transaction.
Status LoadPostgresqlDump(const std::string& url, const std::string& staged) {
  const std::string dump = staged + "/" + kPostgresqlDumpName;
  RETURN_IF_ERROR(RunPostgresqlTool(
      {"pg_restore", "--exit-on-error", "--single-transaction", "--no-owner", dump}, url));
  return ::unlink(dump.c_str()) == 0 ? Status::Ok() : IOErrorFromErrno("unlink " + dump, errno);
}

Status Restore(const RestoreFlags& flags, uint64_t& timestamp_version, size_t& fleet_devices) {
  const fs::path target = fs::absolute(flags.repository).lexically_normal();
  ASSIGN_OR_RETURN(std::string text,
                   ReadTextFileBounded(flags.backup + "/" + kManifestName, kMaxManifestBytes));
  ASSIGN_OR_RETURN(BackupManifest manifest, ParseManifest(text));
  RETURN_IF_ERROR_CTX(VerifyTree(flags.backup, manifest), "backup " + flags.backup);
  RETURN_IF_ERROR(CheckRestoreTarget(target));
  ASSIGN_OR_RETURN(bool has_dump, CheckDatabaseTarget(flags, manifest));
  const std::string tmp = TempSibling(target, "restore");
  if (::mkdir(tmp.c_str(), 0755) != 0) return IOErrorFromErrno("mkdir " + tmp, errno);
  Status st = [&]() -> Status {
    RETURN_IF_ERROR(RestoreTree(flags.backup, tmp, manifest));
    RETURN_IF_ERROR(RelocateConfig(tmp, target.string(), flags.database_url));
    RETURN_IF_ERROR(CreateDirectories(StagingDir(RepositoryLayout{tmp}), 0700));
    RETURN_IF_ERROR_CTX(layerstore::LayerStore::Open(LayerStoreDir(RepositoryLayout{tmp})).status(),
                        "layer store");
    const int64_t step =
        flags.version_step > 0 ? flags.version_step : DefaultVersionStep(manifest.created_unix);
    ASSIGN_OR_RETURN(timestamp_version, AdvanceVersions(tmp, step));
    auto advanced = AdvanceFleetVersions(tmp, FleetVersionStep(step), SystemClock::Instance());
    if (!advanced.ok()) return advanced.status().WithContext("fleet repositories");
    fleet_devices = *advanced;
    // Last before the rename: a database once loaded is not empty any more.
    if (has_dump) RETURN_IF_ERROR(LoadPostgresqlDump(flags.database_url, tmp));
    std::error_code ec;
    if (fs::exists(target, ec) && ::rmdir(target.c_str()) != 0) {
      return IOErrorFromErrno("rmdir " + target.string(), errno);
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) return IOErrorFromErrno("rename", errno);
    return FsyncDirectory(target.parent_path().string());
  }();
  if (!st.ok()) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }
  return st;
}

int RunRestore(const RestoreFlags& flags) {
  uint64_t timestamp_version = 0;
  size_t fleet_devices = 0;
  if (Status st = Restore(flags, timestamp_version, fleet_devices); !st.ok()) {
    fmt::print(stderr, "restore: {}\n", st.ToString());
    return 1;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"backup", flags.backup},
                            {"repository", flags.repository},
                            {"timestamp_version", timestamp_version},
                            {"fleet_devices", fleet_devices}}
                           .dump());
    return 0;
  }
  fmt::print("restore: {} restored into {}; metadata re-signed, timestamp version {}", flags.backup,
             flags.repository, timestamp_version);
  if (fleet_devices > 0) fmt::print("; fleet metadata of {} devices re-signed", fleet_devices);
  fmt::print("\n");
  return 0;
}

}  // namespace

CommandAction RegisterBackupCommands(CLI::App& app) {
  auto backup_flags = std::make_shared<BackupFlags>();
  auto* backup = app.add_subcommand(
      "backup",
      "Copy a tracker (repository, online keys, SQLite database) into the new directory OUT, "
      "consistently while serve runs (under publish.lock), with a manifest of every file's "
      "SHA-256; not the layer store. OUT holds the online signing keys: keep it as secret as "
      "keys/ (docs/tracker.md, \"Backup and restore\").");
  backup->add_option("--repository", backup_flags->repository, "Repository directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  backup->add_option("--database", backup_flags->database,
                     "SQLite file (default <repository>/tracker.db)");
  backup->add_option("--database-url", backup_flags->database_url,
                     "serve's database_url: sqlite:PATH, or postgresql://... to add a pg_dump "
                     "of it (a password is better in PGPASSFILE)");
  backup->add_option("out", backup_flags->out, "Backup directory to create")->required();
  backup->add_flag("--json", backup_flags->json, "Print one JSON document instead of text");

  auto restore_flags = std::make_shared<RestoreFlags>();
  auto* restore = app.add_subcommand(
      "restore",
      "Check BACKUP against its manifest, copy it into a new or empty directory and "
      "re-sign the metadata at versions above the backup's, so that devices accept it.");
  restore->add_option("backup", restore_flags->backup, "Backup directory (made by backup)")
      ->required()
      ->check(CLI::ExistingDirectory);
  restore->add_option("--repository", restore_flags->repository, "New repository directory")
      ->required();
  restore->add_option("--database-url", restore_flags->database_url,
                      "postgresql://... of an empty database, for a backup holding a PostgreSQL "
                      "dump (loaded with pg_restore)");
  restore
      ->add_option("--version-step", restore_flags->version_step,
                   "New versions to sign of each online role (default: 1 + one per 12 h "
                   "since the backup; add the publishes made since)")
      ->check(CLI::Range(1, 100000));
  restore->add_flag("--json", restore_flags->json, "Print one JSON document instead of text");

  return [backup, restore, backup_flags, restore_flags] {
    if (*backup) return RunBackup(*backup_flags);
    if (*restore) return RunRestore(*restore_flags);
    return -1;
  };
}

}  // namespace flotilla::tracker
