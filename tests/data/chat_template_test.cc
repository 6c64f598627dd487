// ChatTemplate: loading from model folders and rendering. Expected texts are jinja2's output for
// the same template and variables with transformers' settings.
#include "data/chat_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "data/jinja.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

const char* const kTemplate =
    "{% for m in messages %}{{ bos_token + m.role + \": \" + m.content | trim + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

class ChatTemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("zerotune_chat_template_" + std::string(info->name()) +
                                        "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    std::ofstream((dir_ / name).string(), std::ios::binary) << bytes;
    return (dir_ / name).string();
  }
  std::string folder() const { return dir_.string(); }

  // The message of the Error that from_folder throws ("" when none).
  std::string load_error() {
    try {
      ChatTemplate::from_folder(folder());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

const std::vector<ChatMessage> kConversation = {{"user", " hi "}, {"assistant", "yo\n"}};

TEST_F(ChatTemplateTest, RendersMessagesWithBosAndEos) {
  const ChatTemplate chat(kTemplate, "<s>", "</s>", "inline");
  EXPECT_EQ(chat.render(kConversation, true), "<s>user: hi</s><s>assistant: yo</s>assistant:");
  EXPECT_EQ(chat.render(kConversation, false), "<s>user: hi</s><s>assistant: yo</s>");
}

TEST_F(ChatTemplateTest, SyntaxErrorsNameTheOriginAndLine) {
  try {
    ChatTemplate("ok\n{% if %}", "<s>", "</s>", "model/tokenizer_config.json chat_template");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "model/tokenizer_config.json chat_template:2: ");
  }
}

TEST_F(ChatTemplateTest, RaiseExceptionThrowsItsMessage) {
  const ChatTemplate chat(
      "{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}"
      "{% endif %}",
      "", "", "inline");
  try {
    chat.render({{"assistant", "x"}}, false);
    FAIL() << "no error";
  } catch (const jinja::RaisedError& e) {
    EXPECT_STREQ(e.what(), "user first");
  }
}

TEST_F(ChatTemplateTest, FromFolderReadsTheTemplateAndTokenObjects) {
  json::Value config = json::Value::object();
  config.set("chat_template", kTemplate);
  json::Value bos = json::Value::object();
  bos.set("__type", "AddedToken");
  bos.set("content", "<s>");
  config.set("bos_token", bos);
  config.set("eos_token", "</s>");
  write("tokenizer_config.json", config.dump());
  const std::optional<ChatTemplate> chat = ChatTemplate::from_folder(folder());
  ASSERT_TRUE(chat.has_value());
  EXPECT_EQ(chat->render(kConversation, true), "<s>user: hi</s><s>assistant: yo</s>assistant:");
}

TEST_F(ChatTemplateTest, FromFolderPicksTheDefaultOfNamedTemplates) {
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "tools"},
                              {"name": "default", "template": "plain {{ messages | length }}"}]})");
  EXPECT_EQ(ChatTemplate::from_folder(folder())->render(kConversation, false), "plain 2");
}

TEST_F(ChatTemplateTest, ChatTemplateJinjaFileTakesPrecedence) {
  write("tokenizer_config.json", R"({"chat_template": "from config", "eos_token": "</s>"})");
  write("chat_template.jinja", "from file {{ eos_token }}\n");
  EXPECT_EQ(ChatTemplate::from_folder(folder())->render(kConversation, false), "from file </s>");
}

TEST_F(ChatTemplateTest, NoTemplateGivesNothing) {
  EXPECT_FALSE(ChatTemplate::from_folder(folder()).has_value());
  write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(ChatTemplate::from_folder(folder()).has_value());
}

TEST_F(ChatTemplateTest, BadConfigsAreNamed) {
  write("tokenizer_config.json", R"({"chat_template": 5})");
  EXPECT_HAS(load_error(), "tokenizer_config.json: \"chat_template\" must be a string or a list");
  write("tokenizer_config.json", R"({"chat_template": [{"name": "other", "template": "x"}]})");
  EXPECT_HAS(load_error(), "none named \"default\"");
  write("tokenizer_config.json", R"({"chat_template": "x", "bos_token": 3})");
  EXPECT_HAS(load_error(), "\"bos_token\" must be a string or an object");
  write("tokenizer_config.json", R"({"chat_template": "x",)");
  EXPECT_HAS(load_error(), "tokenizer_config.json:1:");
}

TEST_F(ChatTemplateTest, JsonMessagesCarryToolCallsAndVariables) {
  write(
      "tokenizer_config.json",
      R"({"chat_template": "{{ messages[1].tool_calls[0].function.arguments | tojson }}|{{ tools | length }}|{{ date_string }}|{{ unk_token }}|{{ pad_token is defined }}",
            "unk_token": "<unk>"})");
  const json::Value messages = json::parse(
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": null,
          "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}])",
      "messages");
  const json::Value variables =
      json::parse(R"({"tools": [{"a": 1}], "date_string": "1 Jan"})", "vars");
  EXPECT_EQ(ChatTemplate::from_folder(folder())->render(messages, false, variables),
            "{\"x\": 1, \"y\": \"é\"}|1|1 Jan|<unk>|False");
}

TEST_F(ChatTemplateTest, ToolsAndDocumentsAreNoneByDefault) {
  const ChatTemplate chat("{{ tools is none }} {{ documents is none }} {{ tools is defined }}", "",
                          "", "inline");
  EXPECT_EQ(chat.render(kConversation, false), "True True True");
}

TEST_F(ChatTemplateTest, MessagesMustBeAnArray) {
  const ChatTemplate chat("x", "", "", "inline");
  EXPECT_THROW(chat.render(json::parse(R"({"role": "user"})", "m"), false, json::Value()), Error);
}

}  // namespace
}  // namespace zerotune
