// Whether the client of a request still holds its connection. cpp-httplib hands a request
// handler the two ends of the connection (addresses and ports) but not its socket, and only a
// streaming reply can ask it whether the socket is alive; a non-streaming request waits for its
// whole completion before writing anything. ClientWatch finds the socket among the process's
// descriptors by its two ends, so that a client that disconnects while its completion is still
// being generated frees its slot at once.
#pragma once

#include <string>

namespace zerotune::serve {

class ClientWatch {
 public:
  ClientWatch(const std::string& remote_addr, int remote_port, int local_port);
  bool found() const { return fd_ >= 0; }
  // True once the client has closed its end (a read would return end of stream) or the
  // connection failed. False when the socket was not found.
  bool gone() const;

 private:
  int fd_ = -1;  // not owned: the HTTP server closes it after the handler returns
};

}  // namespace zerotune::serve
