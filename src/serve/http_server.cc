#include "serve/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>

#include "core/check.h"
#include "serve/client_watch.h"
#include "serve/openai_api.h"

namespace zerotune::serve {

namespace {

// How often a waiting handler looks at its client's connection.
constexpr std::chrono::milliseconds kPollInterval{100};

class HttpServer : public httplib::Server {
 public:
  // Stops accepting connections: the blocked accept() fails, and listen() returns once the
  // handler threads have finished the connections they hold. (Server::stop() would also make
  // cpp-httplib end streamed replies early, cutting off requests in flight.)
  void stop_accepting() {
    const socket_t listening = svr_sock_;
    if (listening != INVALID_SOCKET) ::shutdown(listening, SHUT_RDWR);
  }
};

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status();
  res.set_content(error.body(), "application/json");
}

// The message of an error reply without a body: one cpp-httplib produced itself before any
// handler ran, or the 499 of a client that left.
std::string transport_error_message(const httplib::Request& req, int status,
                                    size_t max_body_bytes) {
  switch (status) {
    case 400:
      return "malformed HTTP request";
    case 404:
      return str("Invalid URL (", req.method, " ", req.path, ")");
    case 413:
      return str("the request body is larger than the limit of ", max_body_bytes, " bytes");
    case 414:
      return "the request URI is too long";
    case 499:
      return "the client closed the connection";
    default:
      return str("HTTP error ", status);
  }
}

// The scheduler's counters in Prometheus' text format.
std::string metrics_text(const SchedulerStats& stats) {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    int64_t value;
  };
  const Metric metrics[] = {
      {"zerotune_requests_running", "gauge", "Sequences holding a decode slot.", stats.running},
      {"zerotune_requests_waiting", "gauge", "Sequences queued for a slot.", stats.waiting},
      {"zerotune_prefills_total", "counter", "Sequences started.", stats.prefills},
      {"zerotune_decode_steps_total", "counter", "Batched decode steps.", stats.decode_steps},
      {"zerotune_decoded_rows_total", "counter", "Sequences over all decode steps.",
       stats.decoded_tokens},
      {"zerotune_largest_batch", "gauge", "Most sequences in one decode step.",
       stats.largest_batch},
      {"zerotune_generated_tokens_total", "counter", "Tokens generated.", stats.generated_tokens},
      {"zerotune_cancelled_total", "counter", "Sequences dropped when their client went away.",
       stats.cancelled},
  };
  std::string out;
  for (const Metric& m : metrics) {
    out += str("# HELP ", m.name, " ", m.help, "\n# TYPE ", m.name, " ", m.type, "\n", m.name, " ",
               m.value, "\n");
  }
  return out;
}

struct Prompts {
  std::vector<std::vector<int32_t>> ids;  // one per choice
  int64_t total_tokens = 0;
};

// The counters of every model's scheduler together; the largest batch is the largest of any.
SchedulerStats total_stats(const std::vector<ServedRoute>& routes) {
  SchedulerStats total;
  for (const ServedRoute& route : routes) {
    const SchedulerStats s = route.scheduler->stats();
    total.running += s.running;
    total.waiting += s.waiting;
    total.prefills += s.prefills;
    total.decode_steps += s.decode_steps;
    total.decoded_tokens += s.decoded_tokens;
    total.largest_batch = std::max(total.largest_batch, s.largest_batch);
    total.generated_tokens += s.generated_tokens;
    total.cancelled += s.cancelled;
  }
  return total;
}

// "`a`, `b`" for the 404 of an unknown model.
std::string served_names(const std::vector<ServedRoute>& routes) {
  std::string names;
  for (const ServedRoute& route : routes) {
    names += str(names.empty() ? "`" : ", `", route.model.name, "`");
  }
  return names;
}

}  // namespace

struct ApiServer::Impl {
  Impl(std::vector<ServedRoute> routes_in, HttpOptions options_in)
      : routes(std::move(routes_in)), options(std::move(options_in)) {
    ZT_CHECK(!routes.empty(), "ApiServer: no model to serve");
  }

  void install_routes();
  bool refuse_before_routing(const httplib::Request& req, httplib::Response& res);
  void handle_generation(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  const ServedRoute& route_of(const ApiRequest& request) const;
  std::string models_json() const;
  void reply_whole(const httplib::Request& req, httplib::Response& res, const ReplyHeader& header,
                   std::shared_ptr<RequestStream> stream, size_t choices, int64_t prompt_tokens);
  void reply_streamed(httplib::Response& res, const ReplyHeader& header,
                      std::shared_ptr<RequestStream> stream, size_t choices, int64_t prompt_tokens,
                      bool include_usage);

  std::vector<ServedRoute> routes;
  HttpOptions options;
  HttpServer http;
  std::atomic<bool> draining{false};
  int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
};

ApiServer::ApiServer(std::vector<ServedRoute> routes, HttpOptions options)
    : impl_(std::make_unique<Impl>(std::move(routes), std::move(options))) {
  impl_->install_routes();
}

ApiServer::ApiServer(ServedModel model, Scheduler& scheduler, HttpOptions options)
    : ApiServer(std::vector<ServedRoute>{ServedRoute{std::move(model), &scheduler}},
                std::move(options)) {}

ApiServer::~ApiServer() = default;

int ApiServer::bind() {
  const std::string& host = impl_->options.host;
  const int port = impl_->options.port;
  errno = 0;
  const int bound = port == 0 ? impl_->http.bind_to_any_port(host)
                              : (impl_->http.bind_to_port(host, port) ? port : -1);
  ZT_CHECK(bound > 0, "cannot listen on ", host, ":", port, ": ",
           errno ? std::strerror(errno) : "not an address of this machine",
           " (is another server using the port?)");
  return bound;
}

void ApiServer::serve() {
  if (impl_->draining) return;
  const bool clean = impl_->http.listen_after_bind();
  // Stopping to accept makes accept() fail, which cpp-httplib reports as an unclean end.
  ZT_CHECK(clean || impl_->draining,
           "the HTTP server stopped accepting connections: ", std::strerror(errno));
}

void ApiServer::shutdown() {
  impl_->draining = true;
  impl_->http.stop_accepting();
}

void ApiServer::Impl::install_routes() {
  http.new_task_queue = [threads = options.handler_threads] {
    return new httplib::ThreadPool(threads);
  };
  // SO_REUSEADDR only: cpp-httplib's default SO_REUSEPORT would let a second server bind a port
  // that is in use instead of failing.
  http.set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.set_payload_max_length(options.max_body_bytes);
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return refuse_before_routing(req, res) ? httplib::Server::HandlerResponse::Handled
                                           : httplib::Server::HandlerResponse::Unhandled;
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(total_stats(routes)), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_json(), "application/json");
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(Endpoint::completions, req, res);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(Endpoint::chat, req, res);
  });
  // Errors cpp-httplib answers itself (unknown path, body too large, malformed request) get
  // OpenAI's JSON too; replies that already carry a body keep it.
  using HandlerWithResponse = httplib::Server::HandlerWithResponse;
  http.set_error_handler(
      HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, ApiError(res.status,
                                 transport_error_message(req, res.status, options.max_body_bytes)));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        std::string message = "internal error";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          message = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, message));
      });
  if (options.log_requests) {
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
  }
}

bool ApiServer::Impl::refuse_before_routing(const httplib::Request& req, httplib::Response& res) {
  if (draining) {
    send_error(res, ApiError(503, "the server is shutting down"));
    return true;
  }
  const bool api_path = req.path.rfind("/v1/", 0) == 0;
  if (api_path && !options.api_key.empty()) {
    const std::string given = req.get_header_value("Authorization");
    if (given != "Bearer " + options.api_key) {
      send_error(res, ApiError(401,
                               given.empty() ? "You didn't provide an API key: send it as "
                                               "'Authorization: Bearer KEY'."
                                             : "Incorrect API key provided.",
                               "", "invalid_api_key"));
      return true;
    }
  }
  return false;
}

namespace {

std::vector<int32_t> checked_ids(const ServedModel& model, std::vector<int32_t> ids,
                                 const std::string& what) {
  for (const int32_t id : ids) {
    if (id < 0 || id >= model.vocab_size) {
      throw ApiError(400,
                     str(what, " holds token id ", id, ", outside the model's vocabulary [0, ",
                         model.vocab_size, ")"),
                     "prompt");
    }
  }
  return ids;
}

Prompts prompt_ids(const ServedModel& model, const ApiRequest& request) {
  Prompts prompts;
  if (request.endpoint == Endpoint::chat) {
    if (!model.render_chat) throw ApiError(400, model.no_chat_template, "messages");
    std::string rendered;
    try {
      rendered = model.render_chat(request.messages, request.add_generation_prompt,
                                   request.template_variables);
    } catch (const std::exception& e) {
      throw ApiError(400, str("the chat template failed on these messages: ", e.what()),
                     "messages");
    }
    prompts.ids.push_back(
        checked_ids(model, model.encode_chat(rendered), "the rendered chat prompt"));
  } else {
    for (size_t i = 0; i < request.prompts.size(); ++i) {
      const PromptInput& input = request.prompts[i];
      const std::string what = request.prompts.size() > 1 ? str("prompt ", i) : "the prompt";
      prompts.ids.push_back(
          checked_ids(model, input.is_ids ? input.ids : model.encode_prompt(input.text), what));
    }
  }
  for (const auto& ids : prompts.ids) prompts.total_tokens += static_cast<int64_t>(ids.size());
  return prompts;
}

std::vector<GenerationRequest> generation_requests(const ServedModel& model,
                                                   const ApiRequest& request,
                                                   const Prompts& prompts) {
  SamplingParams sampling = request.sampling;
  if (!request.seed_given) sampling.seed = std::random_device{}() * 0x100000001ULL;
  std::vector<GenerationRequest> out;
  for (const std::vector<int32_t>& ids : prompts.ids) {
    GenerationRequest g;
    g.max_new_tokens = resolve_max_tokens(request, static_cast<int64_t>(ids.size()), model.context);
    g.prompt = ids;
    g.sampling = sampling;
    g.stop = request.stop;
    g.eos_id = model.eos_id;
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

const ServedRoute& ApiServer::Impl::route_of(const ApiRequest& request) const {
  if (request.model.empty()) return routes.front();
  for (const ServedRoute& route : routes) {
    if (route.model.name == request.model) return route;
  }
  throw ApiError(404,
                 str("The model `", request.model, "` does not exist; this server serves ",
                     served_names(routes), "."),
                 "model", "model_not_found");
}

std::string ApiServer::Impl::models_json() const {
  std::vector<ModelListing> listing;
  for (const ServedRoute& route : routes)
    listing.push_back({route.model.name, route.model.context});
  return models_reply(listing, created);
}

void ApiServer::Impl::handle_generation(Endpoint endpoint, const httplib::Request& req,
                                        httplib::Response& res) {
  std::shared_ptr<RequestStream> stream;
  ApiRequest request;
  const ServedRoute* route = nullptr;
  Prompts prompts;
  try {
    request = parse_api_request(endpoint, req.body);
    route = &route_of(request);
    prompts = prompt_ids(route->model, request);
    stream = route->scheduler->submit(generation_requests(route->model, request, prompts));
  } catch (const ApiError& e) {
    send_error(res, e);
    return;
  }
  const ReplyHeader header = make_reply_header(endpoint, route->model.name);
  const size_t choices = prompts.ids.size();
  if (request.stream) {
    reply_streamed(res, header, std::move(stream), choices, prompts.total_tokens,
                   request.include_usage);
  } else {
    reply_whole(req, res, header, std::move(stream), choices, prompts.total_tokens);
  }
}

void ApiServer::Impl::reply_whole(const httplib::Request& req, httplib::Response& res,
                                  const ReplyHeader& header, std::shared_ptr<RequestStream> stream,
                                  size_t choices, int64_t prompt_tokens) {
  const ClientWatch client(req.remote_addr, req.remote_port, req.local_port);
  std::vector<ChoiceResult> results(choices);
  std::string error;
  while (!stream->done()) {
    for (ChoiceUpdate& update : stream->take(kPollInterval)) {
      ChoiceResult& result = results.at(update.index);
      result.text += update.text;
      result.completion_tokens = update.completion_tokens;
      if (update.finished != FinishReason::none) result.finish = update.finished;
      if (update.finished == FinishReason::error) error = update.error;
    }
    if (client.gone()) {
      stream->cancel();
      res.status = 499;  // nginx's "client closed request", for the log: nobody reads the reply
      return;
    }
  }
  if (!error.empty()) {
    send_error(res, ApiError(500, "generation failed: " + error));
    return;
  }
  res.set_content(completion_reply(header, results, prompt_tokens), "application/json");
}

namespace {

// What a streamed reply's content provider keeps between calls.
struct StreamState {
  ReplyHeader header;
  std::shared_ptr<RequestStream> stream;
  std::vector<bool> started;  // chat: the choice's first chunk (with the role) went out
  int64_t prompt_tokens = 0;
  std::vector<int64_t> completion_tokens;
  bool include_usage = false;

  // The events for what arrived in `updates`.
  std::string events(const std::vector<ChoiceUpdate>& updates) {
    const bool chat = header.endpoint == Endpoint::chat;
    std::string out;
    for (const ChoiceUpdate& u : updates) {
      completion_tokens.at(u.index) = u.completion_tokens;
      if (chat && !started[u.index]) {
        out += stream_event(header, {u.index, "", FinishReason::none, true}, include_usage);
        started[u.index] = true;
      }
      if (!u.text.empty()) {
        out += stream_event(header, {u.index, u.text, FinishReason::none, false}, include_usage);
      }
      if (u.finished == FinishReason::stop || u.finished == FinishReason::length) {
        out += stream_event(header, {u.index, "", u.finished, false}, include_usage);
      } else if (u.finished == FinishReason::error) {
        out += error_event(ApiError(500, "generation failed: " + u.error));
      }
    }
    return out;
  }

  std::string closing_events() const {
    std::string out;
    if (include_usage) {
      int64_t completion = 0;
      for (const int64_t n : completion_tokens) completion += n;
      out += usage_event(header, prompt_tokens, completion);
    }
    return out + std::string(kDoneEvent);
  }
};

}  // namespace

void ApiServer::Impl::reply_streamed(httplib::Response& res, const ReplyHeader& header,
                                     std::shared_ptr<RequestStream> stream, size_t choices,
                                     int64_t prompt_tokens, bool include_usage) {
  auto state = std::make_shared<StreamState>();
  state->header = header;
  state->stream = std::move(stream);
  state->started.assign(choices, false);
  state->completion_tokens.assign(choices, 0);
  state->prompt_tokens = prompt_tokens;
  state->include_usage = include_usage;
  res.set_header("Cache-Control", "no-cache");
  // Called repeatedly on the handler thread until sink.done(); false ends the reply.
  const auto provide = [state](size_t, httplib::DataSink& sink) {
    if (!sink.is_writable()) {
      state->stream->cancel();  // the client has gone
      return false;
    }
    std::string out = state->events(state->stream->take(kPollInterval));
    const bool done = state->stream->done();
    if (done) out += state->closing_events();
    if (!out.empty() && !sink.write(out.data(), out.size())) {
      state->stream->cancel();
      return false;
    }
    if (done) sink.done();
    return true;
  };
  // Called once the reply has ended, written in full or not.
  const auto release = [state](bool success) {
    if (!success) state->stream->cancel();
  };
  res.set_chunked_content_provider("text/event-stream", provide, release);
}

}  // namespace zerotune::serve
