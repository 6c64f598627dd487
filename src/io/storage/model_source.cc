#include "io/storage/model_source.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/check.h"
#include "core/files.h"
#include "core/json.h"
#include "io/storage/crypto.h"
#include "io/storage/hub_client.h"
#include "io/storage/s3_client.h"
#include "io/storage/url.h"

namespace zerotune::storage {

namespace fs = std::filesystem;

namespace {

// An exclusive flock held for the object's lifetime. flock (not fcntl) locks belong to the open
// file, so threads and processes exclude each other alike, and the kernel drops the lock when a
// holder dies.
class FileLock {
 public:
  FileLock(const std::string& path, const std::string& what) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ZT_CHECK(fd_ >= 0, path, ": cannot open the lock file (", std::strerror(errno), ")");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::fprintf(stderr, "zerotune: waiting for another process downloading %s\n", what.c_str());
      while (::flock(fd_, LOCK_EX) != 0) {
        ZT_CHECK(errno == EINTR, path, ": flock failed (", std::strerror(errno), ")");
      }
    }
  }
  ~FileLock() { ::close(fd_); }  // closing releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A cache entry is complete when `<dir>.complete` exists; it is written after every file is in
// place and verified, so an interrupted download is never mistaken for a model.
std::string complete_marker(const std::string& dir) {
  return dir + ".complete";
}

// The weight shards that model.safetensors.index.json names, checked to be plain file names.
std::vector<std::string> shards_of_index(const std::string& index_path) {
  const json::Value index = json::parse(read_text(index_path), index_path);
  const json::Value* map = index.find("weight_map");
  ZT_CHECK(map, index_path, ": no \"weight_map\"");
  std::set<std::string> names;
  for (const auto& [tensor, file] : map->as_object(index_path + ": \"weight_map\"")) {
    const std::string& name = file.as_string(index_path + ": weight_map." + tensor);
    ZT_CHECK(name.find('/') == std::string::npos && name.find("..") == std::string::npos &&
                 name.size() > 12 && name.substr(name.size() - 12) == ".safetensors",
             index_path, ": weight_map.", tensor, " names '", name,
             "', expected a .safetensors file in the same folder");
    names.insert(name);
  }
  return {names.begin(), names.end()};
}

std::string download_from_hub(const HubRepo& repo, const std::string& name) {
  HubClient hub = HubClient::from_environment();
  const std::string dir =
      (fs::path(cache_root()) / "hub" / repo.id / repo.revision).lexically_normal().string();
  fs::create_directories(dir);
  FileLock lock(dir + ".lock", name);
  if (fs::exists(complete_marker(dir))) return dir;
  std::fprintf(stderr, "zerotune: downloading %s from %s into %s\n", name.c_str(),
               hub.endpoint().c_str(), dir.c_str());
  auto fetch = [&](const std::string& file) {
    const std::string path = (fs::path(dir) / file).string();
    if (fs::exists(path)) return true;  // verified by an earlier, interrupted run
    return hub.download(repo, file, path) == HubClient::Found::yes;
  };
  if (!fetch("config.json")) {
    fail(str(name, ": no such local folder, and the Hub at ", hub.endpoint(),
             " has no config.json for repo '", repo.id, "' at revision '", repo.revision,
             "' (HTTP 404)"));
  }
  bool has_weights = false;
  for (const std::string& file : hub_model_files()) {
    if (file == "config.json") continue;
    if (file == "model.safetensors" && has_weights) continue;  // sharded: the index names them
    if (!fetch(file)) continue;
    if (file == "model.safetensors") has_weights = true;
    if (file == "model.safetensors.index.json") {
      for (const std::string& shard : shards_of_index((fs::path(dir) / file).string())) {
        ZT_CHECK(fetch(shard), hub.file_url(repo, shard),
                 ": HTTP 404, but model.safetensors.index.json names it");
      }
      has_weights = true;
    }
  }
  ZT_CHECK(has_weights, name,
           ": the Hub repo has neither model.safetensors nor "
           "model.safetensors.index.json (pickled .bin weights are not supported)");
  write_file_atomically(complete_marker(dir), "");
  return dir;
}

// A PEFT adapter repo: adapter_config.json and adapter_model.safetensors, the tokenizer files
// when present. Cached like a model, under its own marker.
std::string download_adapter_from_hub(const HubRepo& repo, const std::string& name) {
  HubClient hub = HubClient::from_environment();
  const std::string dir =
      (fs::path(cache_root()) / "hub" / repo.id / repo.revision).lexically_normal().string();
  fs::create_directories(dir);
  FileLock lock(dir + ".lock", name);
  const std::string marker = (fs::path(dir) / ".zerotune-adapter-complete").string();
  if (fs::exists(marker)) return dir;
  std::fprintf(stderr, "zerotune: downloading adapter %s from %s into %s\n", name.c_str(),
               hub.endpoint().c_str(), dir.c_str());
  for (const char* file : {"adapter_config.json", "adapter_model.safetensors"}) {
    const std::string path = (fs::path(dir) / file).string();
    ZT_CHECK(fs::exists(path) || hub.download(repo, file, path) == HubClient::Found::yes, name,
             ": no such local folder, and the Hub repo '", repo.id, "' has no ", file);
  }
  for (const std::string& file : hub_model_files()) {
    const std::string path = (fs::path(dir) / file).string();
    if (file.rfind("tokenizer", 0) == 0 && !fs::exists(path)) hub.download(repo, file, path);
  }
  write_file_atomically(marker, "");
  return dir;
}

// Files of an S3 model prefix: those directly under it, without pickles and hidden markers.
bool wanted_s3_file(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name[0] != '.' &&
         !is_pickled_weights(name);
}

// `required`: a file the prefix must hold (an adapter's config), checked on the listing before
// anything is downloaded; empty: none.
std::string download_from_s3(const std::string& name, const std::string& required = "") {
  const S3Url url = parse_s3_url(name);
  S3Client s3 = S3Client::from_environment(name);
  const std::string dir =
      (fs::path(cache_root()) / "s3" / url.bucket / url.key).lexically_normal().string();
  fs::create_directories(dir);
  FileLock lock(dir + ".lock", name);
  // The listing decides whether the cached copy is current: the marker holds the listing it
  // was made from.
  std::vector<S3Object> objects;
  const std::string prefix = url.key.empty() ? "" : url.key + "/";
  for (S3Object& o : s3.list_objects(S3Url{url.bucket, prefix})) {
    o.key = o.key.substr(prefix.size());
    if (wanted_s3_file(o.key)) objects.push_back(std::move(o));
  }
  ZT_CHECK(!objects.empty(), name, ": no such local folder, and no objects under this S3 prefix");
  ZT_CHECK(required.empty() || std::any_of(objects.begin(), objects.end(),
                                           [&](const S3Object& o) { return o.key == required; }),
           name, ": no ", required, " under this S3 prefix (it holds ", objects.size(),
           objects.size() == 1 ? " other file" : " other files",
           "; an adapter folder is what PEFT's save_pretrained or zerotune train --lora writes)");
  std::string manifest;
  for (const S3Object& o : objects) manifest += str(o.key, " ", o.size, " ", o.etag, "\n");
  if (fs::exists(complete_marker(dir)) && read_text(complete_marker(dir)) == manifest) return dir;
  fs::remove(complete_marker(dir));
  std::fprintf(stderr, "zerotune: downloading %s (%zu files) into %s\n", name.c_str(),
               objects.size(), dir.c_str());
  for (const S3Object& o : objects) {
    const std::string path = (fs::path(dir) / o.key).string();
    if (fs::exists(path)) {
      // Left by an interrupted run (verified before it got its name) or by an older listing:
      // kept only if it still matches.
      std::error_code ec;
      const bool same_size = static_cast<int64_t>(fs::file_size(path, ec)) == o.size && !ec;
      if (same_size &&
          check_etag(path, o.size, o.etag, s3.tuning().min_part_size) == EtagCheck::match) {
        continue;
      }
      fs::remove(path);
    }
    s3.download_file(S3Url{url.bucket, prefix + o.key}, o, path);
  }
  write_file_atomically(complete_marker(dir), manifest);
  return dir;
}

}  // namespace

std::string cache_root() {
  if (const char* v = std::getenv("ZEROTUNE_CACHE"); v && *v) return v;
  const char* home = std::getenv("HOME");
  ZT_CHECK(home && *home, "neither ZEROTUNE_CACHE nor HOME is set: no place for the model cache");
  return std::string(home) + "/.cache/zerotune";
}

namespace {

// How a source of one kind is named and fetched.
struct SourceKind {
  const char* flag;         // the flag that names it, for errors
  const char* folder;       // "a model folder"
  const char* s3_required;  // a file an s3:// prefix must hold; "" for none
  std::string (*from_hub)(const HubRepo& repo, const std::string& name);
};

// A local folder, an s3://bucket/prefix URL or a Hub id: the local folder that holds it.
std::string resolve_source(const std::string& name, const SourceKind& kind) {
  ZT_CHECK(!name.empty(), kind.flag, " is empty");
  if (is_s3_url(name)) return download_from_s3(name, kind.s3_required);
  if (fs::exists(name)) {
    ZT_CHECK(fs::is_directory(name), name, ": is a file; expected ", kind.folder);
    return name;
  }
  HubRepo repo;
  ZT_CHECK(parse_hub_repo(name, &repo), name,
           ": no such folder, and not a Hub id (owner/name[@revision]) or an s3://bucket/prefix "
           "URL");
  return kind.from_hub(repo, name);
}

}  // namespace

std::string resolve_model_source(const std::string& name) {
  return resolve_source(name, {"--model_name", "a model folder", "", download_from_hub});
}

std::string resolve_adapter_source(const std::string& name) {
  return resolve_source(name, {"--adapter", "an adapter folder", "adapter_config.json",
                               download_adapter_from_hub});
}

}  // namespace zerotune::storage
