#include "layerstore/store_index.h"

#include <sqlite3.h>

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

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt& Bind(const std::string& text) {
    sqlite3_bind_text(stmt_, ++index_, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int64_t v) {
    sqlite3_bind_int64(stmt_, ++index_, v);
    return *this;
  }
  Stmt& BindNull() {
    sqlite3_bind_null(stmt_, ++index_);
    return *this;
  }
  // True when a row is available.
  Result<bool> Step() {
    if (rc_ != SQLITE_OK) return Error("prepare");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error("step");
  }
  Status Run() { return Step().status(); }
  std::string Text(int col) const {
    auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  Status Error(const char* what) const {
    return Status(StatusCode::kIOError, std::string("index: ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
  int index_ = 0;
};

Result<Digest> ParseStored(const std::string& text) {
  auto d = Digest::Parse(text);
  if (!d.ok()) return Corruption("index holds a malformed digest '" + text + "'");
  return d;
}

LayerState StateFromText(const std::string& s) {
  return s == "ready" ? LayerState::kReady : LayerState::kQuarantined;
}

Result<std::vector<Digest>> DigestColumn(sqlite3* db, const char* sql) {
  Stmt st(db, sql);
  std::vector<Digest> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(Digest d, ParseStored(st.Text(0)));
    out.push_back(d);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<StoreIndex>> StoreIndex::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status(StatusCode::kIOError, "open index " + path + ": " + msg);
  }
  std::unique_ptr<StoreIndex> index(new StoreIndex(db));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(index->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(index->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(index->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(index->Exec(kSchema));
  Stmt version(db, "SELECT value FROM meta WHERE key='schema_version'");
  ASSIGN_OR_RETURN(bool row, version.Step());
  if (!row || version.Text(0) != "1") {
    return FailedPrecondition("index " + path + " has an unknown schema version");
  }
  return index;
}

StoreIndex::~StoreIndex() { sqlite3_close(db_); }

Status StoreIndex::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Status(StatusCode::kIOError, "index: " + msg);
  }
  return Status::Ok();
}

Status StoreIndex::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status StoreIndex::Commit() { return Exec("COMMIT"); }
void StoreIndex::Rollback() { Exec("ROLLBACK").IgnoreError(); }

Result<std::optional<LayerRow>> StoreIndex::GetLayer(const Digest& diff_id) {
  Stmt st(db_, "SELECT length, entries, tarsplit_bytes, state FROM layers WHERE diff_id=?");
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
  Stmt st(db_,
          "INSERT OR REPLACE INTO layers(diff_id, length, entries, tarsplit_bytes, state) "
          "VALUES (?, ?, ?, ?, ?)");
  st.Bind(r.info.diff_id.ToString())
      .Bind(static_cast<int64_t>(r.info.length))
      .Bind(static_cast<int64_t>(r.info.entries))
      .Bind(static_cast<int64_t>(r.tarsplit_bytes))
      .Bind(std::string(LayerStateName(r.info.state)));
  return st.Run();
}

Status StoreIndex::SetLayerState(const Digest& diff_id, LayerState state) {
  Stmt st(db_, "UPDATE layers SET state=? WHERE diff_id=?");
  st.Bind(std::string(LayerStateName(state))).Bind(diff_id.ToString());
  return st.Run();
}

Status StoreIndex::DeleteLayer(const Digest& diff_id) {
  Stmt st(db_, "DELETE FROM layers WHERE diff_id=?");
  st.Bind(diff_id.ToString());
  return st.Run();
}

Result<std::vector<LayerRow>> StoreIndex::ListLayers() {
  Stmt st(db_,
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
  Stmt st(db_, "INSERT OR REPLACE INTO blobs(digest, size, media_type, state) VALUES (?,?,?,?)");
  st.Bind(r.digest.ToString())
      .Bind(static_cast<int64_t>(r.size))
      .Bind(r.media_type)
      .Bind(std::string(r.quarantined ? "quarantined" : "ready"));
  return st.Run();
}

Status StoreIndex::SetBlobQuarantined(const Digest& digest) {
  Stmt st(db_, "UPDATE blobs SET state='quarantined' WHERE digest=?");
  st.Bind(digest.ToString());
  return st.Run();
}

Status StoreIndex::DeleteBlob(const Digest& digest) {
  Stmt st(db_, "DELETE FROM blobs WHERE digest=?");
  st.Bind(digest.ToString());
  return st.Run();
}

Result<std::vector<BlobRow>> StoreIndex::ListBlobs() {
  Stmt st(db_, "SELECT digest, size, media_type, state FROM blobs ORDER BY digest");
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
  Stmt del(db_, "DELETE FROM image_layers WHERE config_digest=?");
  RETURN_IF_ERROR(del.Bind(id).Run());
  Stmt img(db_,
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
    Stmt st(db_,
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
  Stmt r(db_, "INSERT OR REPLACE INTO refs(name, config_digest) VALUES (?, ?)");
  return r.Bind(ref).Bind(id).Run();
}

Result<std::vector<ImageRecord>> StoreIndex::ListImages() {
  std::map<std::string, ImageRecord> by_id;
  Stmt st(db_, "SELECT config_digest, manifest_digest, platform, source_format FROM images");
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
  Stmt layers(db_,
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
  Stmt refs(db_, "SELECT name, config_digest FROM refs ORDER BY name");
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
  Stmt find(db_, "SELECT config_digest FROM refs WHERE name=?");
  ASSIGN_OR_RETURN(bool is_ref, find.Bind(name).Step());
  if (is_ref) {
    id = find.Text(0);
    Stmt del(db_, "DELETE FROM refs WHERE name=?");
    RETURN_IF_ERROR(del.Bind(name).Run());
    Stmt left(db_, "SELECT COUNT(*) FROM refs WHERE config_digest=?");
    ASSIGN_OR_RETURN(bool row, left.Bind(id).Step());
    if (row && left.Int(0) > 0) return 0;
  }
  Stmt del(db_, "DELETE FROM images WHERE config_digest=?");
  RETURN_IF_ERROR(del.Bind(id).Run());
  int removed = sqlite3_changes(db_);
  if (!is_ref && removed == 0) return NotFound("no image named '" + name + "'");
  return removed;
}

Result<std::vector<Digest>> StoreIndex::UnreferencedLayers() {
  return DigestColumn(db_,
                      "SELECT diff_id FROM layers WHERE state='quarantined' OR diff_id NOT IN "
                      "(SELECT diff_id FROM image_layers)");
}

Result<std::vector<Digest>> StoreIndex::UnreferencedBlobs() {
  return DigestColumn(db_,
                      "SELECT digest FROM blobs WHERE state='quarantined' OR digest NOT IN "
                      "(SELECT config_digest FROM images UNION "
                      " SELECT manifest_digest FROM images WHERE manifest_digest IS NOT NULL)");
}

}  // namespace flotilla::layerstore
