#include "io/storage/checkpoint_publisher.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "core/files.h"
#include "io/storage/credentials.h"
#include "io/storage/crypto.h"
#include "io/storage/s3_client.h"
#include "io/storage/url.h"

namespace zerotune::storage {

namespace fs = std::filesystem;

namespace {

// Files of a folder, relative paths in sorted order (the upload order is then reproducible).
std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(fs::relative(entry.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string default_local_dir(const std::string& output_dir) {
  return (fs::temp_directory_path() / ("zerotune-output-" + sha256_hex(output_dir).substr(0, 16)))
      .string();
}

}  // namespace

CheckpointPublisher::CheckpointPublisher(const std::string& output_dir,
                                         const std::string& local_dir)
    : destination_(output_dir) {
  if (!is_s3_url(output_dir)) {
    local_dir_ = output_dir;
    return;
  }
  const S3Url url = parse_s3_url(output_dir);
  bucket_ = url.bucket;
  prefix_ = url.key;
  client_ = std::make_unique<S3Client>(S3Client::from_environment(output_dir));
  local_dir_ = local_dir.empty() ? default_local_dir(output_dir) : local_dir;
  worker_ = std::thread([this] { run_worker(); });
}

CheckpointPublisher::~CheckpointPublisher() {
  if (!worker_.joinable()) return;
  try {
    finish();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zerotune: %s\n", e.what());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

std::string CheckpointPublisher::staging_dir(const std::string& name) const {
  return (fs::path(local_dir_) / ".upload" / name).string();
}

void CheckpointPublisher::publish_folder(const std::string& name) {
  if (!remote()) return;
  const std::string source = (fs::path(local_dir_) / name).string();
  ZT_CHECK(fs::is_directory(source), source, ": no such checkpoint folder to upload");
  // Hard links: no copy of the bytes, and the trainer's later rename or removal of `source`
  // leaves the staged files intact. Copies where the file system has no links.
  const std::string stage = staging_dir(name);
  remove_tree_quietly(stage);
  for (const std::string& rel : files_under(source)) {
    const fs::path to = fs::path(stage) / rel;
    fs::create_directories(to.parent_path());
    std::error_code ec;
    fs::create_hard_link(fs::path(source) / rel, to, ec);
    if (ec) fs::copy_file(fs::path(source) / rel, to);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back({Task::Kind::folder, name});
  }
  changed_.notify_all();
}

void CheckpointPublisher::publish_file(const std::string& name) {
  if (!remote()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool queued = std::any_of(queue_.begin(), queue_.end(), [&](const Task& t) {
      return t.kind == Task::Kind::file && t.name == name;
    });
    if (queued) return;
    queue_.push_back({Task::Kind::file, name});
  }
  changed_.notify_all();
}

void CheckpointPublisher::remove_folder(const std::string& name) {
  if (!remote()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto before = queue_.size();
    queue_.erase(std::remove_if(
                     queue_.begin(), queue_.end(),
                     [&](const Task& t) { return t.kind == Task::Kind::folder && t.name == name; }),
                 queue_.end());
    if (queue_.size() != before) remove_tree_quietly(staging_dir(name));
    queue_.push_back({Task::Kind::remove, name});
  }
  changed_.notify_all();
}

void CheckpointPublisher::refuse_existing_run() {
  if (!remote()) return;
  const std::string prefix = prefix_.empty() ? "" : prefix_ + "/";
  for (const S3Object& o : client_->list_objects(S3Url{bucket_, prefix})) {
    const std::string rel = o.key.substr(prefix.size());
    ZT_CHECK(rel.rfind("epoch-", 0) != 0, destination_, " already holds a run (", rel,
             "); pass --resume with its --local-dir to continue it, or choose another "
             "--output_dir");
  }
}

void CheckpointPublisher::finish() {
  if (!remote()) return;
  std::vector<std::string> failures;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return queue_.empty() && !busy_; });
    failures.swap(failures_);
  }
  std::error_code ignored;
  fs::remove(fs::path(local_dir_) / ".upload", ignored);  // only when empty: nothing failed
  if (failures.empty()) return;
  std::string message = str(failures.size(), " upload task(s) to ", destination_, " failed:");
  for (const std::string& f : failures) message += "\n  " + f;
  message += str("\nthe local copies are kept in ", local_dir_);
  fail(redact(message));
}

void CheckpointPublisher::run_worker() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = queue_.front();
      queue_.pop_front();
      busy_ = true;
    }
    std::string failure;
    try {
      run_task(task);
    } catch (const std::exception& e) {
      failure = redact(e.what());
      std::fprintf(stderr, "zerotune: upload to %s failed: %s (local copy kept in %s)\n",
                   destination_.c_str(), failure.c_str(), local_dir_.c_str());
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure.empty()) failures_.push_back(failure);
      busy_ = false;
    }
    changed_.notify_all();
  }
}

void CheckpointPublisher::run_task(const Task& task) {
  switch (task.kind) {
    case Task::Kind::folder:
      upload_folder(task.name);
      return;
    case Task::Kind::file: {
      const std::string path = (fs::path(local_dir_) / task.name).string();
      // A snapshot: the trainer may append while we upload.
      std::ifstream in(path, std::ios::binary);
      ZT_CHECK(in, path, ": cannot open for upload");
      std::ostringstream bytes;
      bytes << in.rdbuf();
      client_->put_object(S3Url{bucket_, join_key(prefix_, task.name)}, bytes.str());
      return;
    }
    case Task::Kind::remove: {
      const std::string folder = join_key(prefix_, task.name);
      client_->delete_object(S3Url{bucket_, join_key(folder, kCompleteMarker)});
      for (const S3Object& o : client_->list_objects(S3Url{bucket_, folder + "/"})) {
        client_->delete_object(S3Url{bucket_, o.key});
      }
      std::fprintf(stderr, "zerotune: removed %s/%s\n", destination_.c_str(), task.name.c_str());
      return;
    }
  }
}

void CheckpointPublisher::upload_folder(const std::string& name) {
  const std::string stage = staging_dir(name);
  const std::string folder = join_key(prefix_, name);
  // A stale marker from an earlier run must not vouch for a folder being replaced.
  client_->delete_object(S3Url{bucket_, join_key(folder, kCompleteMarker)});
  int64_t bytes = 0;
  const std::vector<std::string> files = files_under(stage);
  for (const std::string& rel : files) {
    const std::string path = (fs::path(stage) / rel).string();
    client_->upload_file(path, S3Url{bucket_, join_key(folder, rel)});
    bytes += static_cast<int64_t>(fs::file_size(path));
  }
  client_->put_object(S3Url{bucket_, join_key(folder, kCompleteMarker)}, "");
  remove_tree_quietly(stage);
  std::fprintf(stderr, "zerotune: uploaded %s/%s (%zu files, %lld bytes)\n", destination_.c_str(),
               name.c_str(), files.size(), static_cast<long long>(bytes));
}

}  // namespace zerotune::storage
