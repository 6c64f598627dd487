#include "train/train_state.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "core/json.h"
#include "io/safetensors.h"

namespace zerotune {

namespace fs = std::filesystem;

void save_loop_state(const std::string& tmp, const std::string& dir, const LoopState& loop,
                     int world) {
  json::Value state = json::Value::object();
  state.set("format", int64_t{2});
  state.set("global_step", loop.global_step);
  state.set("optimizer_steps", loop.optimizer_steps);
  state.set("epochs_done", loop.epochs_done);
  state.set("total_steps", loop.total_steps);
  state.set("seed", static_cast<int64_t>(loop.seed));
  state.set("world_size", int64_t{world});
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
}

LoopState load_loop_state(const std::string& dir, int* saved_world) {
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
  ZT_CHECK(field("format").as_int64(state_path + ": format") == 2, state_path,
           ": unknown format version (expected 2)");
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
  loop.optimizer_steps = field("optimizer_steps").as_int64(state_path + ": optimizer_steps");
  const int64_t world = field("world_size").as_int64(state_path + ": world_size");
  ZT_CHECK(world >= 1 && world <= (int64_t{1} << 20), state_path, ": world_size ", world,
           " out of range");
  *saved_world = static_cast<int>(world);
  return loop;
}

}  // namespace zerotune
