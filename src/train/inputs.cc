#include "train/inputs.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "data/chat_example.h"
#include "data/text_jsonl.h"

namespace zerotune {
namespace {

// Rows are {"input": text} (loss on every token, as the job this replaces) or {"messages": [...]}
// rendered with the folder's chat template (loss on assistant turns only; data/chat_example.h).
Examples tokenize_file(const Tokenizer& tokenizer, const ChatTemplate* chat,
                       const std::string& model_dir, const std::string& path, int64_t ctx_len) {
  Examples examples;
  JsonlReader reader(path);
  json::Value row;
  while (reader.next(row)) {
    bool truncated = false;
    if (const json::Value* messages = row.find("messages")) {
      ZT_CHECK(chat, reader.where(), ": a {\"messages\": [...]} row needs a chat template, but ",
               model_dir, " has none (tokenizer_config.json \"chat_template\" or ",
               "chat_template.jinja)");
      ChatExample ex = encode_chat_example(*chat, tokenizer, *messages, ctx_len, reader.where());
      examples.labels.resize(examples.rows.size());
      examples.rows.push_back(std::move(ex.ids));
      examples.labels.push_back(std::move(ex.labels));
      truncated = ex.truncated;
    } else {
      const json::Value* input = row.find("input");
      ZT_CHECK(input, reader.where(),
               ": expected {\"input\": \"...\"} or {\"messages\": [...]} per line");
      examples.rows.push_back(tokenizer.encode_example(
          input->as_string(reader.where() + ": \"input\""), ctx_len, &truncated));
      if (!examples.labels.empty()) examples.labels.emplace_back();
    }
    examples.truncated += truncated;
  }
  ZT_CHECK(!examples.rows.empty(), path,
           ": no rows; expected one {\"input\": ...} or {\"messages\": [...]} object per line");
  return examples;
}

// The folder's tokenizer with the job's special tokens added.
Tokenizer job_tokenizer(const TrainOptions& o, const LoadedHfFolder& folder) {
  ZT_CHECK(folder.tokenizer.has_value(), o.model_dir,
           ": no tokenizer.model; the fine-tuning job tokenises with the model's tokenizer");
  Tokenizer tokenizer = Tokenizer::from_files(*folder.tokenizer);
  if (!o.special_token_path.empty()) {
    tokenizer.add_special_tokens(read_special_tokens_json(o.special_token_path));
  }
  return tokenizer;
}

}  // namespace

StepPlan plan_steps(const TrainOptions& o, int64_t examples, int world) {
  StepPlan plan;
  plan.global_batch = o.batch_size * o.grad_accum * world;
  plan.steps_per_epoch = (examples + plan.global_batch - 1) / plan.global_batch;
  plan.total_steps = plan.steps_per_epoch * o.num_epochs;
  if (o.max_steps > 0) plan.total_steps = std::min(plan.total_steps, o.max_steps);
  return plan;
}

TrainInputs load_inputs(const TrainOptions& o, int world, bool lead) {
  LoadedHfFolder folder = read_hf_folder(o.model_dir, HfWeights::skip);
  Tokenizer tokenizer = job_tokenizer(o, folder);
  TrainInputs in{std::move(folder), {}, std::move(tokenizer), {}, {}, {}};
  in.config = in.folder.config;
  if (in.tokenizer.vocab_size() > in.config.vocab_size) {
    if (lead) {
      std::fprintf(stderr, "zerotune train: growing the vocabulary %lld -> %lld for added tokens\n",
                   static_cast<long long>(in.config.vocab_size),
                   static_cast<long long>(in.tokenizer.vocab_size()));
    }
    in.config.vocab_size = in.tokenizer.vocab_size();
    in.config.validate("zerotune train");
  }
  ZT_CHECK(o.ctx_len <= in.config.max_position_embeddings, "zerotune train: --ctx-len ", o.ctx_len,
           " exceeds the model's max_position_embeddings ", in.config.max_position_embeddings);
  const std::optional<ChatTemplate> chat = ChatTemplate::from_folder(o.model_dir);
  const ChatTemplate* chat_ptr = chat ? &*chat : nullptr;
  in.train = tokenize_file(in.tokenizer, chat_ptr, o.model_dir, o.train_path, o.ctx_len);
  in.test = tokenize_file(in.tokenizer, chat_ptr, o.model_dir, o.test_path, o.ctx_len);
  in.plan = plan_steps(o, static_cast<int64_t>(in.train.rows.size()), world);
  if (lead) {
    std::fprintf(stderr,
                 "zerotune train: %s, %zu train / %zu test examples (%lld / %lld truncated to "
                 "%lld tokens), %lld steps of %lld examples\n",
                 in.config.summary().c_str(), in.train.rows.size(), in.test.rows.size(),
                 static_cast<long long>(in.train.truncated),
                 static_cast<long long>(in.test.truncated), static_cast<long long>(o.ctx_len),
                 static_cast<long long>(in.plan.total_steps),
                 static_cast<long long>(in.plan.global_batch));
  }
  return in;
}

}  // namespace zerotune
