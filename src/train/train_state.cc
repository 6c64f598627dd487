#include "train/train_state.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "core/json.h"
#include "io/safetensors.h"

namespace zerotune {

namespace fs = std::filesystem;

namespace {

std::string state_json(const LoopState& loop, int world) {
  json::Value state = json::Value::object();
  state.set("format", int64_t{3});
  state.set("global_step", loop.global_step);
  state.set("optimizer_steps", loop.optimizer_steps);
  state.set("epochs_done", loop.epochs_done);
  state.set("total_steps", loop.total_steps);
  state.set("seed", static_cast<int64_t>(loop.seed));
  state.set("world_size", int64_t{world});
  json::Value kept = json::Value::array();
  for (const SavedCheckpoint& checkpoint : loop.checkpoints) {
    json::Value row = json::Value::array();
    // JSON has no infinity: a perplexity past exp(709) is written as null.
    row.push_back(std::isfinite(checkpoint.metric) ? json::Value(checkpoint.metric)
                                                   : json::Value());
    row.push_back(checkpoint.epoch);
    kept.push_back(std::move(row));
  }
  state.set("checkpoints", std::move(kept));
  state.set("fingerprint", loop.fingerprint);
  return state.dump(2) + "\n";
}

}  // namespace

void save_loop_state(const std::string& tmp, const std::string& dir, const LoopState& loop,
                     int world) {
  write_file_atomically((fs::path(tmp) / "state.json").string(), state_json(loop, world));
  fsync_directory(tmp, true);
  publish_folder(tmp, dir, dir + ".old-" + std::to_string(getpid()));
}

void rewrite_loop_state(const std::string& dir, const LoopState& loop, int world) {
  write_file_atomically((fs::path(dir) / "state.json").string(), state_json(loop, world));
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
  const int64_t format = field("format").as_int64(state_path + ": format");
  ZT_CHECK(format == 2 || format == 3, state_path, ": unknown format version ", format,
           " (expected 2 or 3)");
  LoopState loop;
  loop.epochs_from_one = format == 2;
  loop.global_step = field("global_step").as_int64(state_path + ": global_step");
  loop.epochs_done = field("epochs_done").as_int64(state_path + ": epochs_done");
  loop.total_steps = field("total_steps").as_int64(state_path + ": total_steps");
  loop.seed = static_cast<uint64_t>(field("seed").as_int64(state_path + ": seed"));
  loop.fingerprint = field("fingerprint").as_string(state_path + ": fingerprint");
  for (const json::Value& row : field("checkpoints").as_array(state_path + ": checkpoints")) {
    const auto& pair = row.as_array(state_path + ": checkpoints[]");
    ZT_CHECK(pair.size() == 2, state_path, ": checkpoints entries are [metric, epoch]");
    // A perplexity past exp(709) was written as null.
    const double metric = pair[0].is_null() ? INFINITY : pair[0].as_double(state_path + ": metric");
    loop.checkpoints.push_back({metric, pair[1].as_int64(state_path + ": epoch")});
  }
  loop.optimizer_steps = field("optimizer_steps").as_int64(state_path + ": optimizer_steps");
  const int64_t world = field("world_size").as_int64(state_path + ": world_size");
  ZT_CHECK(world >= 1 && world <= (int64_t{1} << 20), state_path, ": world_size ", world,
           " out of range");
  *saved_world = static_cast<int>(world);
  return loop;
}

}  // namespace zerotune
