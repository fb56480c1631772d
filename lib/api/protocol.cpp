#include "api/protocol.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace evenflow::api {

json ok_reply() {
    return json{{"ok", true}};
}

json error_reply(std::string_view message, bool refused) {
    return json{{"ok", false}, {"error", message}, {"refused", refused}};
}

int connect_socket(const std::string& path, std::string* error) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        *error =
            fmt::format("socket path {} is longer than {} bytes", path, sizeof addr.sun_path - 1);
        return -1;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = fmt::format("cannot create a socket: {}", std::strerror(errno));
        return -1;
    }
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    // A full listen backlog (someone floods the socket with connections) answers
    // EAGAIN at once: try again for up to a second before giving up.
    for (int tries = 0; rc != 0 && errno == EAGAIN && tries < 100; ++tries) {
        poll(nullptr, 0, 10);
        rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    if (rc != 0) {
        int err = errno;
        close(fd);
        if (err == ENOENT || err == ECONNREFUSED) {
            *error = fmt::format("no daemon at {}: is evenflowd running? (use --socket PATH for "
                                 "another socket)",
                                 path);
        } else if (err == EACCES) {
            *error = fmt::format("permission denied on {}: run as root or as a member of the "
                                 "socket's group",
                                 path);
        } else {
            *error = fmt::format("cannot connect to {}: {}", path, std::strerror(err));
        }
        return -1;
    }
    return fd;
}

bool write_line(int fd, std::string_view line) {
    std::string data(line);
    data.push_back('\n');
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pollfd p{fd, POLLOUT, 0};
                if (poll(&p, 1, 5000) <= 0) {
                    return false;
                }
                continue;
            }
            return false;
        }
        done += size_t(n);
    }
    return true;
}

bool line_reader::fill() {
    char buf[65536];
    for (;;) {
        ssize_t n = recv(m_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            m_buffer.append(buf, size_t(n));
            if (overflowed()) {
                return true;
            }
            continue;
        }
        if (n == 0) {
            return false;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }
}

std::optional<std::string> line_reader::next() {
    size_t nl = m_buffer.find('\n');
    if (nl == std::string::npos) {
        return std::nullopt;
    }
    std::string line = m_buffer.substr(0, nl);
    m_buffer.erase(0, nl + 1);
    return line;
}

std::optional<std::string> line_reader::read(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto line = next()) {
            return line;
        }
        if (overflowed()) {
            return std::nullopt;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        pollfd p{m_fd, POLLIN, 0};
        int rc = poll(&p, 1, int(left.count()));
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            return std::nullopt;
        }
        if (!fill()) {
            return next();
        }
    }
}

std::optional<json> call(const std::string& socket_path, const json& request, std::string* error,
                         std::chrono::milliseconds timeout) {
    int fd = connect_socket(socket_path, error);
    if (fd < 0) {
        return std::nullopt;
    }
    std::optional<json> reply;
    std::string line;
    try {
        line = request.dump();
    } catch (const json::exception& e) {
        // A string that is not UTF-8 cannot travel as JSON: say so, never abort.
        *error = fmt::format("cannot send the request: {}", e.what());
        close(fd);
        return std::nullopt;
    }
    if (!write_line(fd, line)) {
        *error = fmt::format("cannot send to {}: {}", socket_path, std::strerror(errno));
    } else {
        line_reader reader(fd);
        if (auto line = reader.read(timeout)) {
            reply = json::parse(*line, nullptr, false);
            if (reply->is_discarded()) {
                *error = "the daemon sent a reply that is not JSON";
                reply.reset();
            }
        } else {
            *error = fmt::format("no reply from {} within {} ms", socket_path, timeout.count());
        }
    }
    close(fd);
    return reply;
}

} // namespace evenflow::api
