#include "train/checkpoints.h"

#include <filesystem>

#include "io/storage/checkpoint_publisher.h"

namespace zerotune {

namespace fs = std::filesystem;

void HfModelWriter::write(const std::string& dir) {
  Communicator& comm = engine_.comm();
  if (comm.rank() == 0) {
    HfCheckpointOptions save;
    save.save_dtype = save_dtype_;
    save.fetch_tensor = [this](const std::string& name, float* out) {
      engine_.gather_tensor(name, out);
    };
    write_hf_checkpoint(dir, layout_, source_config_, &tokenizer_, save);
  } else {
    for (const std::string& name : hf_tensor_order(layout_.config())) {
      engine_.gather_tensor(name, nullptr);
    }
  }
  comm.barrier();
}

void CheckpointPolicy::save(int64_t epoch, double metric, CheckpointWriter& writer) {
  const std::string name = folder_name(epoch);
  writer.write((fs::path(output_dir_) / name).string());
  if (publisher_ && lead_) publisher_->publish_folder(name);
  for (const int64_t dropped : kept_.add({metric, epoch})) {
    if (!lead_) continue;
    fs::remove_all(fs::path(output_dir_) / folder_name(dropped));
    if (publisher_) publisher_->remove_folder(folder_name(dropped));
  }
}

}  // namespace zerotune
