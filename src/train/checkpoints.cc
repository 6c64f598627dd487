#include "train/checkpoints.h"

#include <filesystem>

#include "io/peft_adapter.h"
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

void LoraAdapterWriter::write(const std::string& dir) {
  const bool lead = engine_.comm().rank() == 0;
  std::vector<Buffer> values;  // rank 0: each tensor in the save dtype
  std::vector<NamedTensor> named;
  for (const ParamGroup& g : layout_.groups()) {
    if (!g.trainable) continue;
    for (const ParamView& v : g.views) {
      if (layout_.config().tie_word_embeddings && v.name == "lm_head.weight") continue;
      Buffer full(DType::f32, lead ? v.shape : Shape{1});  // [shape] f32
      engine_.gather_tensor(v.name, lead ? full.f32() : nullptr);
      if (!lead) continue;
      Buffer saved(save_dtype_, v.shape);
      convert_copy(saved, full);
      const std::string name = v.name == "model.embed_tokens.weight"
                                   ? peft_saved_module_name("embed_tokens")
                               : v.name == "lm_head.weight" ? peft_saved_module_name("lm_head")
                                                            : v.name;
      named.push_back({name, saved.view()});
      values.push_back(std::move(saved));
    }
  }
  if (lead) write_peft_adapter(dir, config_, named, &tokenizer_);
  engine_.comm().barrier();
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
