// ClientWatch finds a connection's socket by its two ends and sees the client close it.
#include "serve/client_watch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zerotune::serve {
namespace {

int port_of(int fd, bool peer) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  const int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length)
                      : getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  EXPECT_EQ(rc, 0);
  return ntohs(address.sin_port);
}

// A loopback connection: {listening socket, client end, server end}.
struct Connection {
  int listener = -1, client = -1, server = -1;
  Connection() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(listener, 1), 0);
    address.sin_port = htons(static_cast<uint16_t>(port_of(listener, false)));
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    server = accept(listener, nullptr, nullptr);
  }
  ~Connection() {
    for (const int fd : {listener, client, server}) {
      if (fd >= 0) close(fd);
    }
  }
};

TEST(ClientWatch, SeesTheClientClose) {
  Connection c;
  // What cpp-httplib reports on the server side: the client's address and port, our port.
  const ClientWatch watch("127.0.0.1", port_of(c.server, true), port_of(c.server, false));
  ASSERT_TRUE(watch.found());
  EXPECT_FALSE(watch.gone());
  ASSERT_EQ(write(c.client, "GET", 3), 3);  // data waiting to be read is not a disconnect
  EXPECT_FALSE(watch.gone());
  close(c.client);
  c.client = -1;
  EXPECT_TRUE(watch.gone());
}

TEST(ClientWatch, OtherConnectionsAreNotMistakenForIt) {
  Connection a, b;
  const ClientWatch watch("127.0.0.1", port_of(b.server, true), port_of(b.server, false));
  ASSERT_TRUE(watch.found());
  close(a.client);
  a.client = -1;
  EXPECT_FALSE(watch.gone());
  const ClientWatch missing("127.0.0.1", 1, port_of(b.server, false));
  EXPECT_FALSE(missing.found());
  EXPECT_FALSE(missing.gone());
}

}  // namespace
}  // namespace zerotune::serve
