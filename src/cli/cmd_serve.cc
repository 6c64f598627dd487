// `zerotune serve`: an OpenAI-compatible HTTP server (completions and chat completions, streamed
// or not) over a model folder, decoding the requests that run at the same time as one batch.
// SIGTERM or SIGINT stops accepting connections, lets the requests in flight finish, and exits 0.
#include <omp.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "serve/http_server.h"
#include "serve/model_backend.h"
#include "serve/scheduler.h"

namespace zerotune {

namespace {

// Waits for SIGTERM/SIGINT on a thread of its own and calls `on_signal` once. The signals are
// blocked in every thread (the constructor must run before any other thread starts, OpenMP's
// included, since threads inherit the mask), so that none of them is interrupted by one.
class SignalWatch {
 public:
  SignalWatch() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  }
  ~SignalWatch() {
    finished_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void start(std::function<void(int)> on_signal) {
    thread_ = std::thread([this, on_signal = std::move(on_signal)] {
      const timespec poll_interval{0, 200'000'000};
      while (!finished_) {
        const int signal = sigtimedwait(&signals_, nullptr, &poll_interval);
        if (signal > 0) {
          on_signal(signal);
          return;
        }
      }
    });
  }

 private:
  sigset_t signals_;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

void declare_flags(Args& args) {
  args.option("--model", "DIR|s3://...|owner/name",
              "Hugging Face model folder, S3 prefix or Hub id (resolved and cached as train does)")
      .option("--host", "ADDR", "address to listen on", "127.0.0.1")
      .option("--port", "N", "TCP port (0: any free port, printed at start)", "8000")
      .option("--served-model-name", "NAME",
              "the model's name in the API (default: --adapter, else --model, as given); with "
              "named or several adapters, the base's name")
      .option("--adapter", "[NAME=]DIR|s3://...|owner/name",
              "a PEFT LoRA adapter of --model, merged in once at start. Once and without NAME: "
              "that model is served alone, under --served-model-name or the adapter as given. "
              "Repeated, or with NAME (no '/'): each adapter is served under its NAME (else as "
              "given) beside the base; each is a merged copy of the weights with its own "
              "key/value cache, so memory grows by one model per adapter")
      .option("--special_token_path|--special-token-path", "tokens.json",
              "special tokens added to the tokenizer, as training added them")
      .option("--device", "cpu|cuda", "where the model decodes", "cpu")
      .option("--dtype", "auto|f32|bf16", "weights and cache: auto = f32 on cpu, bf16 on cuda",
              "auto")
      .option("--max-batch", "N", "sequences decoded together; more requests queue", "16")
      .option("--max-seq-len", "N",
              "positions per sequence, prompt + completion (default: max_position_embeddings)", "0")
      .option("--api-key", "KEY",
              "require 'Authorization: Bearer KEY' on /v1/ (default: $ZEROTUNE_API_KEY, if set)")
      .option("--threads", "N", "OpenMP/BLAS threads (0 = OpenMP's default)", "0");
}

serve::ModelBackendOptions backend_options(const Args& args) {
  serve::ModelBackendOptions o;
  o.model = args.require("--model");
  o.special_token_path = args.get("--special_token_path");
  o.served_model_name = args.get("--served-model-name");
  const std::string device = args.get("--device");
  ZT_CHECK(device == "cpu" || device == "cuda",
           "zerotune serve: --device must be cpu or cuda, got '", device, "'");
  o.device = device == "cpu" ? Device::cpu() : Device::cuda(0);
  const std::string dtype = args.get("--dtype");
  if (dtype == "auto") {
    o.dtype = o.device.is_cpu() ? DType::f32 : DType::bf16;
  } else {
    ZT_CHECK(dtype == "f32" || dtype == "bf16",
             "zerotune serve: --dtype must be auto, f32 or bf16, got '", dtype, "'");
    o.dtype = dtype == "f32" ? DType::f32 : DType::bf16;
  }
  o.max_batch = args.get_int("--max-batch");
  ZT_CHECK(o.max_batch >= 1 && o.max_batch <= 4096,
           "zerotune serve: --max-batch must be in [1, 4096], got ", o.max_batch);
  o.max_seq_len = args.get_int("--max-seq-len");
  ZT_CHECK(o.max_seq_len >= 0, "zerotune serve: --max-seq-len must be >= 0, got ", o.max_seq_len);
  return o;
}

// One --adapter value: "NAME=SOURCE", or "SOURCE" served under its own text. A NAME holds no
// '/', so an s3:// URL or a path with '=' after a '/' is a source.
std::pair<std::string, std::string> named_adapter(const std::string& value) {
  const size_t eq = value.find('=');
  if (eq == std::string::npos || value.substr(0, eq).find('/') != std::string::npos) {
    return {value, value};
  }
  ZT_CHECK(eq > 0 && eq + 1 < value.size(), "zerotune serve: --adapter '", value,
           "': expected NAME=DIR with both parts non-empty");
  return {value.substr(0, eq), value.substr(eq + 1)};
}

// The models to serve, the first answering requests that name none. No adapter: the base. One
// unnamed adapter: the base with it merged, alone (as a single `--adapter DIR` always served).
// Otherwise the base under --served-model-name (or --model) and each adapter under its name.
std::vector<serve::ModelBackendOptions> served_models(const Args& args,
                                                      const serve::ModelBackendOptions& base) {
  const std::vector<std::string> flags = args.get_all("--adapter");
  if (flags.empty()) return {base};
  if (flags.size() == 1 && named_adapter(flags[0]).first == flags[0]) {
    serve::ModelBackendOptions alone = base;
    alone.adapter = flags[0];
    return {alone};
  }
  std::vector<serve::ModelBackendOptions> models{base};
  models[0].served_model_name =
      base.served_model_name.empty() ? base.model : base.served_model_name;
  for (const std::string& flag : flags) {
    serve::ModelBackendOptions adapted = base;
    std::tie(adapted.served_model_name, adapted.adapter) = named_adapter(flag);
    for (const serve::ModelBackendOptions& other : models) {
      ZT_CHECK(other.served_model_name != adapted.served_model_name, "zerotune serve: --adapter ",
               flag, ": the name '", adapted.served_model_name,
               "' is already served; give each adapter its own NAME=");
    }
    models.push_back(std::move(adapted));
  }
  return models;
}

serve::HttpOptions http_options(const Args& args, int64_t max_batch) {
  serve::HttpOptions o;
  o.host = args.get("--host");
  ZT_CHECK(!o.host.empty(), "zerotune serve: --host must not be empty");
  const int64_t port = args.get_int("--port");
  ZT_CHECK(port >= 0 && port <= 65535, "zerotune serve: --port must be in [0, 65535], got ", port);
  o.port = static_cast<int>(port);
  o.api_key = args.get("--api-key");
  if (!args.has("--api-key")) {
    if (const char* key = std::getenv("ZEROTUNE_API_KEY")) o.api_key = key;
  }
  // Every request waiting for a slot holds a handler thread, so allow a few per slot.
  o.handler_threads = static_cast<size_t>(8 + 4 * max_batch);
  return o;
}

}  // namespace

int cmd_serve(int argc, char** argv, int first) {
  Args args("zerotune serve",
            "An OpenAI-compatible HTTP server for a Hugging Face Llama folder: GET /health,\n"
            "GET /v1/models, POST /v1/completions, POST /v1/chat/completions (the folder's\n"
            "chat template), streamed as Server-Sent Events with \"stream\": true. Requests\n"
            "running at the same time are decoded as one batch; beyond --max-batch they queue.\n"
            "SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.");
  declare_flags(args);
  if (!args.parse(argc, argv, first)) return 0;
  SignalWatch signals;  // before any thread starts
  const serve::ModelBackendOptions model_options = backend_options(args);
  const serve::HttpOptions server_options = http_options(args, model_options.max_batch);
  const int threads = static_cast<int>(args.get_int("--threads"));
  ZT_CHECK(threads >= 0, "zerotune serve: --threads must be >= 0, got ", threads);
  if (threads > 0) omp_set_num_threads(threads);

  // One model, its own scheduler thread and slots, per served name: a sequence is batched only
  // with sequences of the same weights.
  std::vector<std::unique_ptr<serve::ModelBackend>> backends;
  std::vector<std::unique_ptr<serve::Scheduler>> schedulers;
  std::vector<serve::ServedRoute> routes;
  for (const serve::ModelBackendOptions& options : served_models(args, model_options)) {
    backends.push_back(std::make_unique<serve::ModelBackend>(options));
    schedulers.push_back(
        std::make_unique<serve::Scheduler>(backends.back()->engine(), backends.back()->decoder(),
                                           serve::make_sampler, serve::SchedulerOptions{threads}));
    routes.push_back({backends.back()->served_model(), schedulers.back().get()});
  }
  serve::ApiServer server(routes, server_options);
  const int port = server.bind();
  signals.start([&server](int signal) {
    std::fprintf(stderr, "zerotune serve: %s: finishing the requests in flight\n",
                 signal == SIGTERM ? "SIGTERM" : "SIGINT");
    server.shutdown();
  });
  for (size_t i = 0; i < backends.size(); ++i) {
    std::fprintf(stderr, "zerotune serve: %s: %s\n", routes[i].model.name.c_str(),
                 backends[i]->summary().c_str());
  }
  std::fprintf(stderr, "zerotune serve: listening on http://%s:%d\n", server_options.host.c_str(),
               port);
  server.serve();
  for (const auto& scheduler : schedulers) scheduler->stop();
  std::fprintf(stderr, "zerotune serve: stopped\n");
  return 0;
}

}  // namespace zerotune
