// The OpenAI-compatible HTTP API over a Scheduler: GET /health, GET /v1/models,
// POST /v1/completions and POST /v1/chat/completions, with streaming as Server-Sent Events, and
// GET /metrics (the scheduler's counters in Prometheus' text format).
// HTTP/1.1 is cpp-httplib's; each connection is served by a handler thread that turns the
// request into token ids, hands them to the scheduler and waits for the text. Every error is
// OpenAI's JSON error with its status, and no request can stop the server. shutdown() stops
// accepting connections; serve() returns once every request in flight has been answered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "serve/scheduler.h"

namespace zerotune::serve {

// The text side of the served model. The functions are called from many handler threads.
struct ServedModel {
  std::string name;        // what /v1/models lists and requests must name
  int64_t context = 0;     // prompt + completion tokens, at most
  int64_t vocab_size = 0;  // token ids given in a prompt must lie in [0, vocab_size)
  int32_t eos_id = -1;     // ends a completion (finish_reason "stop")
  // A completion prompt's ids: <s> + the text's tokens (as `zerotune generate` encodes).
  std::function<std::vector<int32_t>(const std::string& text)> encode_prompt;
  // A rendered chat prompt's ids: its tokens alone (the template writes <s> itself).
  std::function<std::vector<int32_t>(const std::string& text)> encode_chat;
  // Messages (a JSON array, as parse_api_request gives them) to a prompt with the model's chat
  // template, with the request's template variables; empty when the model has none.
  std::function<std::string(const json::Value& messages, bool add_generation_prompt,
                            const json::Value& variables)>
      render_chat;
  std::string no_chat_template;  // the reason chat is refused when render_chat is empty
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                   // 0: any free port (bind() returns it)
  std::string api_key;               // empty: no key needed
  size_t max_body_bytes = 4u << 20;  // larger bodies get 413
  size_t handler_threads = 72;       // connections served at once
  bool log_requests = true;          // one line per request on stderr
};

// One served model and the scheduler that decodes its requests.
struct ServedRoute {
  ServedModel model;
  Scheduler* scheduler = nullptr;  // must outlive the server
};

class ApiServer {
 public:
  // Several models, each under its own name: a request goes to the model its "model" field
  // names, or to routes[0] when it names none; another name is a 404.
  ApiServer(std::vector<ServedRoute> routes, HttpOptions options);
  ApiServer(ServedModel model, Scheduler& scheduler, HttpOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port and returns the port; throws naming the address when it cannot.
  int bind();
  // Serves until shutdown() and until the requests in flight are answered.
  void serve();
  // Any thread: stop accepting connections; requests already received complete, later ones on
  // open connections get 503.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zerotune::serve
