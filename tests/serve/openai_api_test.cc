// Requests parsed as OpenAI defines the fields (defaults, aliases, the kinds each accepts), every
// refusal a 400 naming its field, the context check's numbers, and the replies' and chunks'
// fields as OpenAI's clients read them.
#include "serve/openai_api.h"

#include <gtest/gtest.h>

#include <string>

#include "core/json.h"

namespace zerotune::serve {
namespace {

// The param of the ApiError that parsing `body` throws ("" when it throws none).
std::string refused_param(Endpoint endpoint, const std::string& body, int* status = nullptr) {
  try {
    parse_api_request(endpoint, body);
  } catch (const ApiError& e) {
    if (status) *status = e.status();
    return e.param().empty() ? "<none>" : e.param();
  }
  return "";
}

TEST(OpenAiApi, CompletionDefaultsAsOpenAiDefinesThem) {
  const ApiRequest r = parse_api_request(Endpoint::completions, R"({"prompt": "Hi"})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].text, "Hi");
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_EQ(r.sampling.temperature, 1.0);
  EXPECT_EQ(r.sampling.top_p, 1.0);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FALSE(r.seed_given);
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.model.empty());
  EXPECT_EQ(resolve_max_tokens(r, 5, 100), 16);  // OpenAI's default for completions
}

TEST(OpenAiApi, EveryFieldIsRead) {
  const ApiRequest r = parse_api_request(
      Endpoint::completions,
      R"({"model": "m", "prompt": ["a", "b"], "max_tokens": 7, "temperature": 0, "top_p": 0.5,
          "top_k": -1, "seed": 42, "stop": "\n", "n": 1, "stream": true,
          "stream_options": {"include_usage": true}, "user": "ignored", "presence_penalty": 0})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].text, "b");
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.top_p, 0.5);
  EXPECT_EQ(r.sampling.top_k, 0);  // -1: no limit, as vLLM spells it
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiApi, PromptsAsTokenIds) {
  ApiRequest r = parse_api_request(Endpoint::completions, R"({"prompt": [1, 5, 9]})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_TRUE(r.prompts[0].is_ids);
  EXPECT_EQ(r.prompts[0].ids, (std::vector<int32_t>{1, 5, 9}));
  r = parse_api_request(Endpoint::completions, R"({"prompt": [[1, 2], "text"]})");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_TRUE(r.prompts[0].is_ids);
  EXPECT_FALSE(r.prompts[1].is_ids);
}

TEST(OpenAiApi, ChatMessagesAndItsTokenLimitAlias) {
  ApiRequest r = parse_api_request(Endpoint::chat,
                                   R"({"messages": [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": [{"type": "text", "text": "Hel"},
                                                    {"type": "text", "text": "lo"}]},
                       {"role": "assistant", "content": null,
                        "tool_calls": [{"id": "c1", "type": "function"}]}],
          "max_completion_tokens": 9, "max_tokens": 3})");
  const auto& messages = r.messages.items();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[1].find("role")->as_string(""), "user");
  EXPECT_EQ(messages[1].find("content")->as_string(""), "Hello");  // text parts joined
  EXPECT_TRUE(messages[2].find("content")->is_null());
  EXPECT_EQ(messages[2].find("tool_calls")->items()[0].find("id")->as_string(""), "c1");
  EXPECT_EQ(*r.max_tokens, 9);  // max_completion_tokens wins over the older max_tokens
  EXPECT_EQ(r.max_tokens_field, "max_completion_tokens");
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_EQ(r.template_variables.size(), 0u);
  r = parse_api_request(Endpoint::chat, R"({"messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(resolve_max_tokens(r, 30, 100), 70);  // chat: the rest of the context
}

TEST(OpenAiApi, ChatTemplateVariables) {
  const ApiRequest r = parse_api_request(
      Endpoint::chat,
      R"({"messages": [{"role": "user", "content": "x"}], "add_generation_prompt": false,
          "tools": [{"type": "function", "function": {"name": "add"}}],
          "chat_template_kwargs": {"enable_thinking": false, "date_string": "1 Jan"}})");
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_EQ(r.template_variables.find("tools")->items().size(), 1u);
  EXPECT_FALSE(r.template_variables.find("enable_thinking")->as_bool(""));
  EXPECT_EQ(r.template_variables.find("date_string")->as_string(""), "1 Jan");
  EXPECT_EQ(refused_param(Endpoint::chat,
                          R"({"messages": [{"role": "user", "content": "x"}], "tools": 3})"),
            "tools");
  EXPECT_EQ(refused_param(Endpoint::chat, R"({"messages": [{"role": "user", "content": "x"}],
                                              "chat_template_kwargs": []})"),
            "chat_template_kwargs");
}

TEST(OpenAiApi, BadRequestsNameTheirField) {
  int status = 0;
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x",)", &status), "<none>");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(refused_param(Endpoint::completions, "[]"), "<none>");
  EXPECT_EQ(refused_param(Endpoint::completions, "{}"), "prompt");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": 3})"), "prompt");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": []})"), "prompt");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": [1, "a"]})"), "prompt");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": [-1]})"), "prompt");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "model": 1})"), "model");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "max_tokens": "5"})"),
            "max_tokens");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "max_tokens": 0})"),
            "max_tokens");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "max_tokens": 2.5})"),
            "max_tokens");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "temperature": -0.1})"),
            "temperature");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "temperature": "hot"})"),
            "temperature");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "top_p": 0})"), "top_p");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "top_k": -2})"), "top_k");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "seed": "s"})"), "seed");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "stop": [1]})"), "stop");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "stream": "yes"})"), "stream");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "n": 3})"), "n");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "echo": true})"), "echo");
  EXPECT_EQ(refused_param(Endpoint::completions, R"({"prompt": "x", "logprobs": 2})"), "logprobs");
  EXPECT_EQ(refused_param(Endpoint::chat, R"({"messages": []})"), "messages");
  EXPECT_EQ(refused_param(Endpoint::chat, R"({"messages": [{"content": "x"}]})"), "messages");
  EXPECT_EQ(
      refused_param(Endpoint::chat,
                    R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
      "messages");
  EXPECT_EQ(refused_param(Endpoint::chat,
                          R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})"),
            "logprobs");
  // Accepted: logprobs false/null, n = 1, unknown fields.
  EXPECT_EQ(refused_param(Endpoint::chat,
                          R"({"messages": [{"role": "user", "content": "x"}], "logprobs": false,
                              "n": 1, "tools": []})"),
            "");
}

TEST(OpenAiApi, ContextLimitNamesBothNumbers) {
  const ApiRequest r =
      parse_api_request(Endpoint::completions, R"({"prompt": "x", "max_tokens": 90})");
  EXPECT_EQ(resolve_max_tokens(r, 10, 100), 90);
  try {
    resolve_max_tokens(r, 11, 100);
    FAIL() << "11 + 90 tokens fit a context of 100";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
    EXPECT_EQ(e.param(), "max_tokens");
    const std::string message = e.what();
    EXPECT_NE(message.find("100 tokens"), std::string::npos) << message;
    EXPECT_NE(message.find("101 tokens (11 in the prompt, 90 in the completion)"),
              std::string::npos)
        << message;
  }
  EXPECT_THROW(resolve_max_tokens(r, 100, 100), ApiError);  // no room at all
}

TEST(OpenAiApi, ErrorBodyIsOpenAisShape) {
  const json::Value body =
      json::parse(ApiError(404, "no such model", "model", "model_not_found").body(), "test");
  const json::Value& error = *body.find("error");
  EXPECT_EQ(error.find("message")->as_string(""), "no such model");
  EXPECT_EQ(error.find("type")->as_string(""), "invalid_request_error");
  EXPECT_EQ(error.find("param")->as_string(""), "model");
  EXPECT_EQ(error.find("code")->as_string(""), "model_not_found");
  const json::Value server = json::parse(ApiError(500, "boom").body(), "test");
  EXPECT_EQ(server.find("error")->find("type")->as_string(""), "server_error");
  EXPECT_TRUE(server.find("error")->find("param")->is_null());
  EXPECT_TRUE(server.find("error")->find("code")->is_null());
}

TEST(OpenAiApi, WholeReplies) {
  const ReplyHeader completion = make_reply_header(Endpoint::completions, "m");
  EXPECT_EQ(completion.id.rfind("cmpl-", 0), 0u);
  const json::Value reply = json::parse(
      completion_reply(completion, {{"a", FinishReason::length, 3}, {"b", FinishReason::stop, 2}},
                       7),
      "test");
  EXPECT_EQ(reply.find("object")->as_string(""), "text_completion");
  EXPECT_EQ(reply.find("model")->as_string(""), "m");
  const auto& choices = reply.find("choices")->items();
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[1].find("index")->as_int64(""), 1);
  EXPECT_EQ(choices[1].find("text")->as_string(""), "b");
  EXPECT_EQ(choices[0].find("finish_reason")->as_string(""), "length");
  const json::Value& usage = *reply.find("usage");
  EXPECT_EQ(usage.find("prompt_tokens")->as_int64(""), 7);
  EXPECT_EQ(usage.find("completion_tokens")->as_int64(""), 5);
  EXPECT_EQ(usage.find("total_tokens")->as_int64(""), 12);

  const ReplyHeader chat = make_reply_header(Endpoint::chat, "m");
  EXPECT_EQ(chat.id.rfind("chatcmpl-", 0), 0u);
  const json::Value chat_reply =
      json::parse(completion_reply(chat, {{"hi", FinishReason::stop, 1}}, 4), "test");
  EXPECT_EQ(chat_reply.find("object")->as_string(""), "chat.completion");
  const json::Value& message = *chat_reply.find("choices")->items()[0].find("message");
  EXPECT_EQ(message.find("role")->as_string(""), "assistant");
  EXPECT_EQ(message.find("content")->as_string(""), "hi");
}

json::Value event_json(const std::string& event) {
  EXPECT_EQ(event.rfind("data: ", 0), 0u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  return json::parse(event.substr(6, event.size() - 8), "event");
}

TEST(OpenAiApi, StreamChunks) {
  const ReplyHeader chat = make_reply_header(Endpoint::chat, "m");
  json::Value first = event_json(stream_event(chat, {0, "", FinishReason::none, true}, false));
  EXPECT_EQ(first.find("object")->as_string(""), "chat.completion.chunk");
  const json::Value& delta = *first.find("choices")->items()[0].find("delta");
  EXPECT_EQ(delta.find("role")->as_string(""), "assistant");
  EXPECT_TRUE(first.find("choices")->items()[0].find("finish_reason")->is_null());
  EXPECT_EQ(first.find("usage"), nullptr);
  json::Value last = event_json(stream_event(chat, {0, "", FinishReason::stop, false}, true));
  EXPECT_EQ(last.find("choices")->items()[0].find("delta")->size(), 0u);
  EXPECT_EQ(last.find("choices")->items()[0].find("finish_reason")->as_string(""), "stop");
  EXPECT_TRUE(last.find("usage")->is_null());

  const ReplyHeader completion = make_reply_header(Endpoint::completions, "m");
  json::Value piece = event_json(stream_event(completion, {2, "ab", FinishReason::none}, false));
  EXPECT_EQ(piece.find("object")->as_string(""), "text_completion");
  EXPECT_EQ(piece.find("choices")->items()[0].find("index")->as_int64(""), 2);
  EXPECT_EQ(piece.find("choices")->items()[0].find("text")->as_string(""), "ab");
  json::Value usage = event_json(usage_event(completion, 3, 4));
  EXPECT_EQ(usage.find("choices")->size(), 0u);
  EXPECT_EQ(usage.find("usage")->find("total_tokens")->as_int64(""), 7);
  EXPECT_EQ(kDoneEvent, "data: [DONE]\n\n");
}

}  // namespace
}  // namespace zerotune::serve
