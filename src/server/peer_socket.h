// Finding out, while a non-streaming request is generating, whether its client has gone. Debian's
// cpp-httplib 0.11 gives a handler no access to the connection's socket, so the socket is found by its
// addresses (the request's remote and local address and port) among this process's descriptors.
#pragma once

#include <string>

namespace g4 {

// The connected socket whose peer is remote_addr:remote_port and whose own port is local_port; -1 if none.
int find_peer_socket(const std::string& remote_addr, int remote_port, int local_port);

// True when the peer of a connected socket has closed it (an orderly shutdown or a reset); false while it
// is open, and for fd < 0.
bool peer_closed(int fd);

}  // namespace g4
