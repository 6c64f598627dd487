// The HTTP server over a scheduler with a fake engine, on loopback: a client that disconnects
// while its completion is generated (streamed or not) gets its sequence cancelled at once, and
// shutdown() lets a request in flight finish before serve() returns.
#include "serve/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "fake_engine.h"

namespace zerotune::serve {
namespace {

using testing::angle_text;
using testing::FakeEngine;
using testing::greedy_chooser;

constexpr int64_t kVocab = 50;
constexpr int64_t kContext = 4096;

ServedModel fake_model() {
  ServedModel m;
  m.name = "fake";
  m.context = kContext;
  m.vocab_size = kVocab;
  m.encode_prompt = [](const std::string& text) {
    std::vector<int32_t> ids{1};
    for (const char c : text) ids.push_back(static_cast<int32_t>(c) % kVocab);
    return ids;
  };
  m.encode_chat = m.encode_prompt;
  m.no_chat_template = "no chat template";
  return m;
}

// A server on 127.0.0.1 (any port) serving from its own thread until the fixture ends.
class ServerTest : public ::testing::Test {
 protected:
  ServerTest()
      : engine_(2, kContext, kVocab),
        scheduler_(engine_, angle_text, greedy_chooser),
        server_(fake_model(), scheduler_, options()) {
    engine_.step_delay_ms = 5;  // 1000 tokens: 5 s
    port_ = server_.bind();
    thread_ = std::thread([this] { server_.serve(); });
  }
  ~ServerTest() override {
    server_.shutdown();
    thread_.join();
  }
  static HttpOptions options() {
    HttpOptions o;
    o.port = 0;
    o.log_requests = false;
    return o;
  }

  // A connection that has sent a completion request.
  int send_request(const std::string& body) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const std::string request =
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    return fd;
  }
  // Waits (at most 10 s) until `done` holds.
  template <typename Done>
  bool eventually(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  FakeEngine engine_;
  Scheduler scheduler_;
  ApiServer server_;
  int port_ = 0;
  std::thread thread_;
};

constexpr const char* kLongRequest = R"({"prompt": "abc", "max_tokens": 1000, "temperature": 0)";

TEST_F(ServerTest, NonStreamedRequestIsCancelledWhenItsClientLeaves) {
  const int fd = send_request(std::string(kLongRequest) + "}");
  ASSERT_TRUE(eventually([&] { return scheduler_.stats().running == 1; }));
  close(fd);
  const auto left = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return scheduler_.stats().cancelled == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - left, std::chrono::seconds(2));
  EXPECT_LT(scheduler_.stats().generated_tokens, 1000);
  EXPECT_TRUE(eventually([&] { return engine_.free_slots() == 2; }));
}

TEST_F(ServerTest, StreamedRequestIsCancelledWhenItsClientLeaves) {
  const int fd = send_request(std::string(kLongRequest) + ", \"stream\": true}");
  char buffer[256];
  ASSERT_GT(read(fd, buffer, sizeof(buffer)), 0);  // the stream has started
  close(fd);
  ASSERT_TRUE(eventually([&] { return scheduler_.stats().cancelled == 1; }));
  EXPECT_LT(scheduler_.stats().generated_tokens, 1000);
  EXPECT_TRUE(eventually([&] { return engine_.free_slots() == 2; }));
}

TEST_F(ServerTest, ShutdownLetsTheRequestInFlightFinish) {
  const int fd = send_request(R"({"prompt": "abc", "max_tokens": 60, "temperature": 0})");
  ASSERT_TRUE(eventually([&] { return scheduler_.stats().running == 1; }));
  server_.shutdown();
  std::string reply;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) reply.append(buffer, n);
  close(fd);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  const std::vector<int32_t> prompt = fake_model().encode_prompt("abc");
  EXPECT_NE(reply.find(angle_text(FakeEngine::greedy(prompt, 60, kVocab))), std::string::npos)
      << reply;
  EXPECT_EQ(scheduler_.stats().cancelled, 0);
}

}  // namespace
}  // namespace zerotune::serve
