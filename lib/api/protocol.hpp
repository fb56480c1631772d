// The control protocol between evenctl and evenflowd: one JSON object per line
// over a Unix stream socket. Requests: {"cmd": NAME, ...}. Replies: {"ok": true, ...}
// or {"ok": false, "error": TEXT, "refused": BOOL} (refused = a negative answer such
// as a rejected apply, as opposed to a malformed request).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace evenflow::api {

using json = nlohmann::json;

inline constexpr const char* default_socket_path = "/run/evenflow/evenflow.sock";
inline constexpr size_t max_line_bytes = 4u << 20; // a config file fits comfortably

json ok_reply();
json error_reply(std::string_view message, bool refused = false);

// A connected client socket, or -1 with *error phrased for an operator.
int connect_socket(const std::string& path, std::string* error);

// Writes `line` plus '\n' in full (blocking). False on error.
bool write_line(int fd, std::string_view line);

// Buffered line reader over a socket.
class line_reader {
public:
    explicit line_reader(int fd) : m_fd(fd) {}
    // Blocks up to `timeout` for one line; nullopt on EOF, error, timeout or overlong line.
    std::optional<std::string> read(std::chrono::milliseconds timeout);
    // Non-blocking: appends what is available to the buffer. False on EOF or error.
    bool fill();
    // The next complete line in the buffer, if any.
    std::optional<std::string> next();
    bool overflowed() const { return m_buffer.size() > max_line_bytes; }

private:
    int m_fd;
    std::string m_buffer;
};

// One request, one reply (evenctl's whole conversation).
std::optional<json> call(const std::string& socket_path, const json& request, std::string* error,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

} // namespace evenflow::api
