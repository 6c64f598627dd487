// Where finished checkpoints go. For a local --output_dir, nothing to do: the trainer writes
// there. For s3://bucket/prefix, the trainer writes into a local folder and hands each finished
// epoch folder here; a background thread uploads it while training continues (every file, then
// the `<epoch>/.complete` marker last, so a reader that sees the marker sees the whole
// checkpoint), uploads metrics.jsonl, and deletes remote checkpoints that keep-best drops.
// Failed uploads are retried by the S3 client, then reported; the local copy is never touched.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zerotune::storage {

class S3Client;

// Name of the object written after all others of a checkpoint folder.
inline constexpr const char* kCompleteMarker = ".complete";

class CheckpointPublisher {
 public:
  // `output_dir`: a local folder or s3://bucket/prefix. `local_dir`: where the trainer writes for
  // an S3 destination; empty: <temp dir>/zerotune-output-<hash of output_dir>, the same folder
  // for every rank on the machine (they share the training state there), and the one a rerun
  // with --resume finds. Ignored for a local destination.
  CheckpointPublisher(const std::string& output_dir, const std::string& local_dir);
  ~CheckpointPublisher();  // waits for queued work, reporting (not throwing) failures
  CheckpointPublisher(const CheckpointPublisher&) = delete;
  CheckpointPublisher& operator=(const CheckpointPublisher&) = delete;

  bool remote() const { return client_ != nullptr; }
  // The folder the trainer writes into: output_dir itself, or the local folder for S3.
  const std::string& local_dir() const { return local_dir_; }
  const std::string& destination() const { return destination_; }

  // Queues the upload of local_dir()/`name` (a finished checkpoint folder such as "epoch-3").
  // The folder's files are hard-linked into a staging folder first, so the trainer may delete
  // or replace the folder at once.
  void publish_folder(const std::string& name);
  // Queues the upload of local_dir()/`name` (a file such as metrics.jsonl) as it is when the
  // upload starts; a queued upload of the same file is not repeated.
  void publish_file(const std::string& name);
  // Queues the deletion of the remote folder `name` (the marker first, so a half-deleted
  // checkpoint never looks complete). A queued upload of it that has not started is dropped.
  void remove_folder(const std::string& name);

  // Fails, before any work, when the destination already holds a run's checkpoints (epoch-*),
  // as the trainer does for a local folder: a new run must not mix with or delete them.
  void refuse_existing_run();

  // Waits for every queued task; throws one Error naming each object that failed.
  void finish();

 private:
  struct Task {
    enum class Kind : uint8_t { folder, file, remove } kind;
    std::string name;
  };
  void run_worker();
  void run_task(const Task& task);
  void upload_folder(const std::string& name);
  std::string staging_dir(const std::string& name) const;

  std::string destination_, local_dir_;
  std::string bucket_, prefix_;
  std::unique_ptr<S3Client> client_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Task> queue_;
  bool busy_ = false, stopping_ = false;
  std::vector<std::string> failures_;
  std::thread worker_;
};

}  // namespace zerotune::storage
