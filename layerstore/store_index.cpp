#include "layerstore/store_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

namespace flotilla::layerstore {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS layers(
  diff_id TEXT PRIMARY KEY,
  length INTEGER NOT NULL,
  entries INTEGER NOT NULL,
  tarsplit_bytes INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ready', 'quarantined')));
CREATE TABLE IF NOT EXISTS blobs(
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  media_type TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ready', 'quarantined')));
CREATE TABLE IF NOT EXISTS images(
  config_digest TEXT PRIMARY KEY,
  manifest_digest TEXT,
  platform TEXT NOT NULL,
  source_format TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS image_layers(
  config_digest TEXT NOT NULL REFERENCES images(config_digest) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  diff_id TEXT NOT NULL,
  blob_digest TEXT NOT NULL,
  blob_size INTEGER NOT NULL,
  media_type TEXT NOT NULL,
  PRIMARY KEY (config_digest, position));
CREATE INDEX IF NOT EXISTS image_layers_by_diff_id ON image_layers(diff_id);
CREATE TABLE IF NOT EXISTS refs(
  name TEXT PRIMARY KEY,
  config_digest TEXT NOT NULL REFERENCES images(config_digest) ON DELETE CASCADE);
)sql";

Result<Digest> ParseStored(const std::string& text) {
  auto d = Digest::Parse(text);
  if (!d.ok()) return Corruption("index holds a malformed digest '" + text + "'");
  return d;
}

LayerState StateFromText(const std::string& s) {
  return s == "ready" ? LayerState::kReady : LayerState::kQuarantined;
}

Result<std::vector<Digest>> DigestColumn(SqliteDb& db, const char* sql) {
  SqliteStatement st = db.Prepare(sql);
  std::vector<Digest> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(Digest d, ParseStored(st.Text(0)));
    out.push_back(d);
  }
  return out;
}

// The index lists every image and layer the device holds: it is root's
// alone. Created 0600 before SQLite opens it (SQLite gives the -wal and -shm
// files the database's mode); an existing index, -wal or -shm with a wider
// mode is narrowed.
Status MakeIndexPrivate(const std::string& path, Env& env) {
  ASSIGN_OR_RETURN(auto index, env.OpenForWrite(path, OpenMode::kKeep, 0600));
  if (::fchmod(index->fd(), 0600) != 0) return IOErrorFromErrno("chmod index " + path, errno);
  RETURN_IF_ERROR(index->Close());
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string file = path + suffix;
    if (::chmod(file.c_str(), 0600) != 0 && errno != ENOENT) {
      return IOErrorFromErrno("chmod index " + file, errno);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<StoreIndex>> StoreIndex::Open(const std::string& path, Env& env) {
  RETURN_IF_ERROR(MakeIndexPrivate(path, env));
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, env));
  RETURN_IF_ERROR(db->Exec(kSchema).WithContext("index " + path));
  SqliteStatement version = db->Prepare("SELECT value FROM meta WHERE key='schema_version'");
  ASSIGN_OR_RETURN(bool row, version.Step());
  if (!row || version.Text(0) != "1") {
    return FailedPrecondition("index " + path + " has an unknown schema version");
  }
  return std::unique_ptr<StoreIndex>(new StoreIndex(std::move(db)));
}

StoreIndex::~StoreIndex() = default;

Result<SqliteTransaction> StoreIndex::Begin() { return SqliteTransaction::Begin(*db_); }

Result<std::optional<LayerRow>> StoreIndex::GetLayer(const Digest& diff_id) {
  SqliteStatement st =
      db_->Prepare("SELECT length, entries, tarsplit_bytes, state FROM layers WHERE diff_id=?");
  st.Bind(diff_id.ToString());
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<LayerRow>();
  LayerRow r;
  r.info.diff_id = diff_id;
  r.info.length = static_cast<uint64_t>(st.Int(0));
  r.info.entries = static_cast<uint64_t>(st.Int(1));
  r.tarsplit_bytes = static_cast<uint64_t>(st.Int(2));
  r.info.state = StateFromText(st.Text(3));
  return std::optional<LayerRow>(r);
}

Status StoreIndex::UpsertLayer(const LayerRow& r) {
  SqliteStatement st = db_->Prepare(
      "INSERT OR REPLACE INTO layers(diff_id, length, entries, tarsplit_bytes, state) "
      "VALUES (?, ?, ?, ?, ?)");
  st.Bind(r.info.diff_id.ToString())
      .Bind(static_cast<int64_t>(r.info.length))
      .Bind(static_cast<int64_t>(r.info.entries))
      .Bind(static_cast<int64_t>(r.tarsplit_bytes))
      .Bind(LayerStateName(r.info.state));
  return st.Run();
}

Status StoreIndex::SetLayerState(const Digest& diff_id, LayerState state) {
  return db_->Prepare("UPDATE layers SET state=? WHERE diff_id=?")
      .Bind(LayerStateName(state))
      .Bind(diff_id.ToString())
      .Run();
}

Status StoreIndex::DeleteLayer(const Digest& diff_id) {
  return db_->Prepare("DELETE FROM layers WHERE diff_id=?").Bind(diff_id.ToString()).Run();
}

Result<std::vector<LayerRow>> StoreIndex::ListLayers() {
  SqliteStatement st = db_->Prepare(
      "SELECT diff_id, length, entries, tarsplit_bytes, state FROM layers "
      "ORDER BY diff_id");
  std::vector<LayerRow> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    LayerRow r;
    ASSIGN_OR_RETURN(r.info.diff_id, ParseStored(st.Text(0)));
    r.info.length = static_cast<uint64_t>(st.Int(1));
    r.info.entries = static_cast<uint64_t>(st.Int(2));
    r.tarsplit_bytes = static_cast<uint64_t>(st.Int(3));
    r.info.state = StateFromText(st.Text(4));
    out.push_back(r);
  }
  return out;
}

Status StoreIndex::UpsertBlob(const BlobRow& r) {
  SqliteStatement st = db_->Prepare(
      "INSERT OR REPLACE INTO blobs(digest, size, media_type, state) VALUES (?,?,?,?)");
  st.Bind(r.digest.ToString())
      .Bind(static_cast<int64_t>(r.size))
      .Bind(r.media_type)
      .Bind(r.quarantined ? "quarantined" : "ready");
  return st.Run();
}

Status StoreIndex::SetBlobQuarantined(const Digest& digest) {
  return db_->Prepare("UPDATE blobs SET state='quarantined' WHERE digest=?")
      .Bind(digest.ToString())
      .Run();
}

Status StoreIndex::DeleteBlob(const Digest& digest) {
  return db_->Prepare("DELETE FROM blobs WHERE digest=?").Bind(digest.ToString()).Run();
}

Result<std::vector<BlobRow>> StoreIndex::ListBlobs() {
  SqliteStatement st =
      db_->Prepare("SELECT digest, size, media_type, state FROM blobs ORDER BY digest");
  std::vector<BlobRow> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    BlobRow r;
    ASSIGN_OR_RETURN(r.digest, ParseStored(st.Text(0)));
    r.size = static_cast<uint64_t>(st.Int(1));
    r.media_type = st.Text(2);
    r.quarantined = st.Text(3) != "ready";
    out.push_back(r);
  }
  return out;
}

Status StoreIndex::PutImage(const ImageRecord& image, const std::string& ref) {
  const std::string id = image.config_digest.ToString();
  SqliteStatement del = db_->Prepare("DELETE FROM image_layers WHERE config_digest=?");
  RETURN_IF_ERROR(del.Bind(id).Run());
  SqliteStatement img = db_->Prepare(
      "INSERT INTO images(config_digest, manifest_digest, platform, source_format) "
      "VALUES (?,?,?,?) ON CONFLICT(config_digest) DO UPDATE SET "
      "manifest_digest=COALESCE(excluded.manifest_digest, images.manifest_digest), "
      "platform=excluded.platform, source_format=excluded.source_format");
  img.Bind(id);
  if (image.manifest_digest) {
    img.Bind(image.manifest_digest->ToString());
  } else {
    img.BindNull();
  }
  RETURN_IF_ERROR(img.Bind(image.platform.ToString()).Bind(image.source_format).Run());
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const auto& l = image.layers[i];
    SqliteStatement st = db_->Prepare(
        "INSERT INTO image_layers(config_digest, position, diff_id, blob_digest, blob_size, "
        "media_type) VALUES (?,?,?,?,?,?)");
    st.Bind(id)
        .Bind(static_cast<int64_t>(i))
        .Bind(l.diff_id.ToString())
        .Bind(l.blob_digest.ToString())
        .Bind(static_cast<int64_t>(l.blob_size))
        .Bind(l.media_type);
    RETURN_IF_ERROR(st.Run());
  }
  if (ref.empty()) return Status::Ok();
  SqliteStatement r =
      db_->Prepare("INSERT OR REPLACE INTO refs(name, config_digest) VALUES (?, ?)");
  return r.Bind(ref).Bind(id).Run();
}

Result<std::vector<ImageRecord>> StoreIndex::ListImages() {
  std::map<std::string, ImageRecord> by_id;
  SqliteStatement st =
      db_->Prepare("SELECT config_digest, manifest_digest, platform, source_format FROM images");
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ImageRecord rec;
    ASSIGN_OR_RETURN(rec.config_digest, ParseStored(st.Text(0)));
    if (!st.IsNull(1)) {
      ASSIGN_OR_RETURN(Digest m, ParseStored(st.Text(1)));
      rec.manifest_digest = m;
    }
    ASSIGN_OR_RETURN(rec.platform, Platform::Parse(st.Text(2)));
    rec.source_format = st.Text(3);
    by_id.emplace(st.Text(0), std::move(rec));
  }
  SqliteStatement layers = db_->Prepare(
      "SELECT config_digest, diff_id, blob_digest, blob_size, media_type "
      "FROM image_layers ORDER BY config_digest, position");
  for (;;) {
    ASSIGN_OR_RETURN(bool row, layers.Step());
    if (!row) break;
    ImageLayer l;
    ASSIGN_OR_RETURN(l.diff_id, ParseStored(layers.Text(1)));
    ASSIGN_OR_RETURN(l.blob_digest, ParseStored(layers.Text(2)));
    l.blob_size = static_cast<uint64_t>(layers.Int(3));
    l.media_type = layers.Text(4);
    by_id[layers.Text(0)].layers.push_back(l);
  }
  SqliteStatement refs = db_->Prepare("SELECT name, config_digest FROM refs ORDER BY name");
  for (;;) {
    ASSIGN_OR_RETURN(bool row, refs.Step());
    if (!row) break;
    by_id[refs.Text(1)].refs.push_back(refs.Text(0));
  }
  std::vector<ImageRecord> out;
  for (auto& [id, rec] : by_id) out.push_back(std::move(rec));
  return out;
}

Result<int> StoreIndex::RemoveImage(const std::string& name) {
  std::string id = name;
  SqliteStatement find = db_->Prepare("SELECT config_digest FROM refs WHERE name=?");
  ASSIGN_OR_RETURN(bool is_ref, find.Bind(name).Step());
  if (is_ref) {
    id = find.Text(0);
    SqliteStatement del = db_->Prepare("DELETE FROM refs WHERE name=?");
    RETURN_IF_ERROR(del.Bind(name).Run());
    SqliteStatement left = db_->Prepare("SELECT COUNT(*) FROM refs WHERE config_digest=?");
    ASSIGN_OR_RETURN(bool row, left.Bind(id).Step());
    if (row && left.Int(0) > 0) return 0;
  }
  SqliteStatement del = db_->Prepare("DELETE FROM images WHERE config_digest=?");
  RETURN_IF_ERROR(del.Bind(id).Run());
  int removed = static_cast<int>(db_->Changes());
  if (!is_ref && removed == 0) return NotFound("no image named '" + name + "'");
  return removed;
}

Result<std::vector<Digest>> StoreIndex::UnreferencedLayers() {
  return DigestColumn(*db_,
                      "SELECT diff_id FROM layers WHERE state='quarantined' OR diff_id NOT IN "
                      "(SELECT diff_id FROM image_layers)");
}

Result<std::vector<Digest>> StoreIndex::UnreferencedBlobs() {
  return DigestColumn(*db_,
                      "SELECT digest FROM blobs WHERE state='quarantined' OR digest NOT IN "
                      "(SELECT config_digest FROM images UNION "
                      " SELECT manifest_digest FROM images WHERE manifest_digest IS NOT NULL)");
}

}  // namespace flotilla::layerstore
