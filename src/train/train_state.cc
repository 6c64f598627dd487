#include "train/train_state.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "io/json.h"
#include "io/safetensors.h"

namespace zerotune {

namespace fs = std::filesystem;

void save_train_state(const std::string& dir, const LlamaParams& params, AdamWOptimizer& optimizer,
                      const LoopState& loop) {
  const std::string tmp = dir + ".tmp-" + std::to_string(getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  struct Guard {  // a failed save leaves no temporary copy of the state behind
    const std::string& path;
    bool published = false;
    ~Guard() {
      if (!published) remove_tree_quietly(path);
    }
  } guard{tmp};
  std::vector<NamedTensor> tensors;
  for (size_t i = 0; i < params.groups().size(); ++i) {
    const std::string& g = params.groups()[i].name;
    tensors.push_back({"param/" + g, params.groups()[i].data.view()});
    tensors.push_back({"exp_avg/" + g, optimizer.exp_avg(i).view()});
    tensors.push_back({"exp_avg_sq/" + g, optimizer.exp_avg_sq(i).view()});
  }
  write_safetensors((fs::path(tmp) / "rank-00000.safetensors").string(), tensors);

  json::Value state = json::Value::object();
  state.set("format", int64_t{1});
  state.set("global_step", loop.global_step);
  state.set("optimizer_steps", optimizer.steps_taken());
  state.set("epochs_done", loop.epochs_done);
  state.set("total_steps", loop.total_steps);
  state.set("seed", static_cast<int64_t>(loop.seed));
  state.set("world_size", int64_t{1});
  json::Value kept = json::Value::array();
  for (const auto& [ppl, epoch] : loop.checkpoints) {
    json::Value row = json::Value::array();
    row.push_back(ppl);
    row.push_back(epoch);
    kept.push_back(std::move(row));
  }
  state.set("checkpoints", std::move(kept));
  state.set("fingerprint", loop.fingerprint);
  write_file_atomically((fs::path(tmp) / "state.json").string(), state.dump(2) + "\n");
  fsync_directory(tmp, true);
  publish_folder(tmp, dir, dir + ".old-" + std::to_string(getpid()));
  guard.published = true;
}

LoopState load_train_state(const std::string& dir, LlamaParams& params, AdamWOptimizer& optimizer) {
  const std::string state_path = (fs::path(dir) / "state.json").string();
  std::ifstream in(state_path, std::ios::binary);
  ZT_CHECK(in, state_path, ": cannot open (no training state to resume from)");
  std::ostringstream text;
  text << in.rdbuf();
  const json::Value state = json::parse(text.str(), state_path);
  ZT_CHECK(state.is_object(), state_path, ": expected an object");
  auto field = [&](const char* key) -> const json::Value& {
    const json::Value* v = state.find(key);
    ZT_CHECK(v, state_path, ": missing \"", key, "\"");
    return *v;
  };
  ZT_CHECK(field("format").as_int64(state_path + ": format") == 1, state_path,
           ": unknown format version");
  LoopState loop;
  loop.global_step = field("global_step").as_int64(state_path + ": global_step");
  loop.epochs_done = field("epochs_done").as_int64(state_path + ": epochs_done");
  loop.total_steps = field("total_steps").as_int64(state_path + ": total_steps");
  loop.seed = static_cast<uint64_t>(field("seed").as_int64(state_path + ": seed"));
  loop.fingerprint = field("fingerprint").as_string(state_path + ": fingerprint");
  for (const json::Value& row : field("checkpoints").as_array(state_path + ": checkpoints")) {
    const auto& pair = row.as_array(state_path + ": checkpoints[]");
    ZT_CHECK(pair.size() == 2, state_path, ": checkpoints entries are [perplexity, epoch]");
    loop.checkpoints.emplace_back(pair[0].as_double(state_path + ": perplexity"),
                                  pair[1].as_int64(state_path + ": epoch"));
  }
  optimizer.set_steps_taken(field("optimizer_steps").as_int64(state_path + ": optimizer_steps"));

  const std::string shard = (fs::path(dir) / "rank-00000.safetensors").string();
  const SafetensorsFile st = SafetensorsFile::open(shard);
  auto restore = [&](const std::string& name, const Buffer& dst) {
    const SafetensorsEntry* e = st.find(name);
    ZT_CHECK(e, shard, ": tensor \"", name, "\" missing");
    ZT_CHECK(e->dtype == DType::f32 && e->shape == dst.view().shape, shard, ": tensor \"", name,
             "\" is ", dtype_safetensors_name(e->dtype), e->shape, ", expected F32",
             dst.view().shape, " (was the state written for another model?)");
    std::memcpy(dst.view().data, st.tensor(*e).data, static_cast<size_t>(dst.view().nbytes()));
  };
  for (size_t i = 0; i < params.groups().size(); ++i) {
    const std::string& g = params.groups()[i].name;
    restore("param/" + g, params.groups()[i].data);
    restore("exp_avg/" + g, optimizer.exp_avg(i));
    restore("exp_avg_sq/" + g, optimizer.exp_avg_sq(i));
  }
  return loop;
}

}  // namespace zerotune
