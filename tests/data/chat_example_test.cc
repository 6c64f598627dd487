// Chat rows as training examples: labels on the assistant turns only, found by rendering the
// conversation prefix by prefix; and the batching that carries those labels into targets.
#include "data/chat_example.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/token_batch.h"
#include "train/batching.h"

namespace zerotune {
namespace {

// ChatML, as Qwen2.5 and many instruct models delimit turns.
const char* kChatMl =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

class ChatExampleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::vector<std::string> corpus;
    for (int i = 0; i < 300; ++i) {
      corpus.push_back("user assistant system how many eggs does janet sell " +
                       std::to_string(i * 7) + " every day at the market and what is left?");
    }
    SentencePieceTrainOptions options;
    options.vocab_size = 300;
    TokenizerFiles files;
    files.model_proto = train_sentencepiece(corpus, options);
    tokenizer_ = new Tokenizer(Tokenizer::from_files(files));
    tokenizer_->add_special_tokens({"<|im_start|>", "<|im_end|>"});
  }
  static void TearDownTestSuite() { delete tokenizer_; }

  static json::Value conversation(const std::vector<std::pair<std::string, std::string>>& turns) {
    json::Value messages = json::Value::array();
    for (const auto& [role, content] : turns) {
      json::Value m = json::Value::object();
      m.set("role", role);
      m.set("content", content);
      messages.push_back(std::move(m));
    }
    return messages;
  }
  // The labelled runs of `ex`, each decoded.
  static std::vector<std::string> labelled_runs(const ChatExample& ex) {
    std::vector<std::string> runs;
    std::vector<int32_t> run;
    for (size_t t = 0; t <= ex.ids.size(); ++t) {
      if (t < ex.ids.size() && ex.labels[t] != kIgnoreIndex) {
        EXPECT_EQ(ex.labels[t], ex.ids[t]) << "position " << t;
        run.push_back(ex.ids[t]);
      } else if (!run.empty()) {
        runs.push_back(tokenizer_->decode(run));
        run.clear();
      }
    }
    return runs;
  }
  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(ChatExampleTest, OnlyAssistantRepliesAndTheirEndMarkerAreLabelled) {
  const ChatTemplate chat(kChatMl, "<s>", "</s>", "chatml");
  const json::Value messages = conversation({{"system", "every day"},
                                             {"user", "how many eggs does janet sell"},
                                             {"assistant", "janet sells 16 eggs"},
                                             {"user", "and what is left"},
                                             {"assistant", "3 at the market"}});
  const ChatExample ex = encode_chat_example(chat, *tokenizer_, messages, 0, "rows.jsonl:1");
  EXPECT_EQ(ex.ids, tokenizer_->encode(chat.render(messages, false, json::Value())));
  EXPECT_FALSE(ex.truncated);
  const std::vector<std::string> runs = labelled_runs(ex);
  ASSERT_EQ(runs.size(), 2u);
  // Each run is the reply (the boundary after "assistant\n" may fold into its first piece) and
  // the end-of-turn marker; nothing of the prompts or of the generation prompt's role name.
  EXPECT_NE(runs[0].find("janet sells 16 eggs<|im_end|>"), std::string::npos) << runs[0];
  EXPECT_NE(runs[1].find("3 at the market<|im_end|>"), std::string::npos) << runs[1];
  for (const std::string& run : runs) {
    EXPECT_EQ(run.find("assistant"), std::string::npos) << run;
    EXPECT_EQ(run.find("how many"), std::string::npos) << run;
    EXPECT_EQ(run.find("<|im_start|>"), std::string::npos) << run;
  }
}

TEST_F(ChatExampleTest, TruncationCutsIdsAndLabelsAlike) {
  const ChatTemplate chat(kChatMl, "<s>", "</s>", "chatml");
  const json::Value messages =
      conversation({{"user", "how many eggs"}, {"assistant", "janet sells 16 eggs every day"}});
  const ChatExample full = encode_chat_example(chat, *tokenizer_, messages, 0, "rows.jsonl:1");
  const int64_t cut = static_cast<int64_t>(full.ids.size()) - 3;
  const ChatExample ex = encode_chat_example(chat, *tokenizer_, messages, cut, "rows.jsonl:1");
  EXPECT_TRUE(ex.truncated);
  EXPECT_EQ(ex.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + cut));
  EXPECT_EQ(ex.labels, std::vector<int32_t>(full.labels.begin(), full.labels.begin() + cut));
}

TEST_F(ChatExampleTest, BadRowsNameTheirLine) {
  const ChatTemplate chat(kChatMl, "<s>", "</s>", "chatml");
  auto error_of = [&](const json::Value& messages) {
    try {
      encode_chat_example(chat, *tokenizer_, messages, 0, "train.jsonl:7");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of(conversation({{"user", "eggs"}})).find("train.jsonl:7: no \"assistant\""),
            std::string::npos);
  EXPECT_NE(error_of(json::Value::array()).find("train.jsonl:7: \"messages\" must be"),
            std::string::npos);
  const ChatTemplate raising("{{ raise_exception('roles must alternate') }}", "<s>", "</s>", "t");
  try {
    encode_chat_example(raising, *tokenizer_, conversation({{"assistant", "x"}}), 0, "f:3");
    ADD_FAILURE() << "expected the template's exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f:3: chat template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("roles must alternate"), std::string::npos) << e.what();
  }
}

// ../shared/data/<relative> (ZEROTUNE_SHARED_DATA, else beside a folder above the working
// directory or this file); empty when absent.
std::string shared_data(const std::string& relative) {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("ZEROTUNE_SHARED_DATA"); env && *env) {
    return fs::exists(fs::path(env) / relative) ? (fs::path(env) / relative).string() : "";
  }
  for (fs::path start : {fs::current_path(), fs::path(__FILE__).parent_path()}) {
    for (fs::path dir = fs::absolute(start); !dir.empty(); dir = dir.parent_path()) {
      if (fs::exists(dir / "shared" / "data" / relative)) {
        return (dir / "shared" / "data" / relative).string();
      }
      if (dir == dir.parent_path()) break;
    }
  }
  return "";
}

// The real Llama-3.1-Instruct template (its system header with the knowledge-cutoff date, role
// headers, <|eot_id|>), tokenised with the real Llama-2 vocabulary plus Llama-3's header tokens
// (the masking does not depend on which vocabulary): each reply and its <|eot_id|> are labelled,
// the headers and the date line are not.
TEST(ChatExampleShared, Llama31TemplateLabelsRepliesOnly) {
  const std::string folder = shared_data("llama3.1-tokenizer");
  const std::string vocabulary = shared_data("llama2-tokenizer/tokenizer.model");
  if (folder.empty() || vocabulary.empty()) {
    GTEST_SKIP() << "../shared/data/llama3.1-tokenizer or llama2-tokenizer not found (set "
                    "ZEROTUNE_SHARED_DATA to the shared data folder to run this test)";
  }
  const std::optional<ChatTemplate> chat = ChatTemplate::from_folder(folder);
  ASSERT_TRUE(chat.has_value());
  Tokenizer tokenizer = Tokenizer::load(vocabulary);
  tokenizer.add_special_tokens(
      {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"});
  json::Value messages = json::parse(
      R"([{"role": "user", "content": "Natalia sold 48 clips in April. How many in May?"},
          {"role": "assistant", "content": "She sold 48/2 = 24.\n#### 24"},
          {"role": "user", "content": "And altogether?"},
          {"role": "assistant", "content": "48+24 = 72\n#### 72"}])",
      "messages");
  const ChatExample ex = encode_chat_example(*chat, tokenizer, messages, 0, "chat.jsonl:1");
  std::vector<std::string> runs;
  std::vector<int32_t> run;
  for (size_t t = 0; t <= ex.ids.size(); ++t) {
    if (t < ex.ids.size() && ex.labels[t] != kIgnoreIndex) {
      run.push_back(ex.ids[t]);
    } else if (!run.empty()) {
      runs.push_back(tokenizer.decode(run));
      run.clear();
    }
  }
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0], "She sold 48/2 = 24.\n#### 24<|eot_id|>");
  EXPECT_EQ(runs[1], "48+24 = 72\n#### 72<|eot_id|>");
}

// The labels reach the targets (shifted by one) in both layouts; rows without labels keep theirs.
TEST(ChatBatching, LabelsBecomeShiftedTargetsPaddedAndPacked) {
  const std::vector<std::vector<int32_t>> rows = {{5, 6, 7, 8}, {9, 10, 11}};
  const std::vector<std::vector<int32_t>> labels = {{kIgnoreIndex, kIgnoreIndex, 7, 8}, {}};
  for (const Layout layout : {Layout::padded, Layout::packed}) {
    const TokenBatch b = make_micro_batch(rows, 0, 8, layout, PadMode::to_ctx_len, &labels);
    const int32_t* targets = b.targets.view().ptr<int32_t>();
    // Row 0: 5 -> ignore (6 unlabelled), 6 -> 7, 7 -> 8, 8 -> end of example.
    EXPECT_EQ(targets[0], kIgnoreIndex);
    EXPECT_EQ(targets[1], 7);
    EXPECT_EQ(targets[2], 8);
    EXPECT_EQ(targets[3], kIgnoreIndex);
    const int64_t second = layout == Layout::packed ? 4 : 8;  // packed: right after the first
    EXPECT_EQ(targets[second], 10);
    EXPECT_EQ(targets[second + 1], 11);
    EXPECT_EQ(b.count_targets(), 4);
  }
}

}  // namespace
}  // namespace zerotune
