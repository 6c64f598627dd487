#include "serve/client_watch.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>

namespace zerotune::serve {

namespace {

// The numeric host and port of a socket address, as cpp-httplib renders remote_addr.
bool host_and_port(const sockaddr_storage& address, socklen_t length, std::string* host,
                   int* port) {
  char host_buffer[NI_MAXHOST], port_buffer[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host_buffer,
                  sizeof(host_buffer), port_buffer, sizeof(port_buffer),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return false;
  }
  *host = host_buffer;
  *port = std::atoi(port_buffer);
  return true;
}

bool is_connection(int fd, const std::string& remote_addr, int remote_port, int local_port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  std::string host;
  int port = 0;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  if (address.ss_family != AF_INET && address.ss_family != AF_INET6) return false;
  if (!host_and_port(address, length, &host, &port) || port != local_port) return false;
  length = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  return host_and_port(address, length, &host, &port) && port == remote_port && host == remote_addr;
}

}  // namespace

ClientWatch::ClientWatch(const std::string& remote_addr, int remote_port, int local_port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int dir_fd = dirfd(dir);
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dir_fd) continue;
    if (is_connection(static_cast<int>(fd), remote_addr, remote_port, local_port)) {
      fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
}

bool ClientWatch::gone() const {
  if (fd_ < 0) return false;
  // POLLRDHUP: the client closed (or shut down) its sending side, even with bytes of it still
  // unread here; a client waiting for its reply sends nothing more. (A client that half-closes
  // after its request is taken for gone: HTTP clients keep both directions open.)
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLERR | POLLHUP | POLLNVAL)) != 0;
}

}  // namespace zerotune::serve
