// libFuzzer target: the control protocol's reading side (lib/api/protocol.hpp
// line_reader over a real Unix socketpair, then JSON parsing as the daemon does it)
// and the command vocabulary (lib/api/commands.hpp parse_arguments) on word lists.
//
// Input: bytes a client sends on the control socket. They go through a socketpair
// twice: written in pieces of varying size with fill()/next() after each (the
// daemon's non-blocking way), then written whole and read with read(timeout) after
// the writer shut down (evenctl's way). What must hold for any input:
// - the lines returned, each followed by '\n', are exactly the input up to its last
//   newline, in both ways; a partial last line is never returned;
// - each line parses as JSON or is refused (never throws); what parses dumps again
//   and re-parses to an equal value; a request's "cmd" is looked up as the daemon does;
// - word lists, from each line split at blanks and from lines that are JSON arrays of
//   strings, go through find_command and parse_arguments: the result is a usage error
//   naming the command, or a request {"cmd": NAME, ...} with only the command's keys
//   and its required arguments; that request dumps to JSON as evenctl sends it.
//
// Found by this target and fixed: a word that is not UTF-8 made evenctl abort (the
// request could not be dumped as JSON); parse_arguments now refuses it. Its input is
// test/fuzz/regressions/control/evenctl-non-utf8-word.
#include "api/commands.hpp"
#include "api/protocol.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

using namespace evenflow;
using api::json;

namespace {

[[noreturn]] void fail(const char* what, int line, const std::string& detail = {}) {
    std::fprintf(stderr, "fuzz_control: invariant broken (line %d): %s %s\n", line, what,
                 detail.c_str());
    std::abort();
}
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(#cond, __LINE__);                                                                 \
        }                                                                                          \
    } while (0)

struct socket_pair {
    int reader = -1, writer = -1;
    socket_pair() {
        int fds[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        reader = fds[0];
        writer = fds[1];
    }
    ~socket_pair() {
        close(reader);
        if (writer >= 0) {
            close(writer);
        }
    }
    void write_all(std::string_view bytes) const {
        while (!bytes.empty()) {
            ssize_t n = send(writer, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            CHECK(n > 0);
            bytes.remove_prefix(size_t(n));
        }
    }
    void shut() {
        close(writer);
        writer = -1;
    }
};

// What the lines must join to: the input up to and including its last newline.
std::string_view complete_lines(std::string_view input) {
    const size_t last = input.rfind('\n');
    return last == std::string_view::npos ? std::string_view() : input.substr(0, last + 1);
}

// Non-blocking, as the daemon reads: pieces of 1..64 bytes, fill() and next() after each.
std::vector<std::string> read_in_pieces(std::string_view input) {
    socket_pair sp;
    api::line_reader reader(sp.reader);
    std::vector<std::string> lines;
    uint32_t rng = uint32_t(input.size()) * 2654435761u + 1;
    size_t at = 0;
    while (at < input.size()) {
        rng = rng * 1103515245u + 12345u;
        const size_t piece = std::min<size_t>(1 + (rng >> 16) % 64, input.size() - at);
        sp.write_all(input.substr(at, piece));
        at += piece;
        CHECK(reader.fill());
        while (auto line = reader.next()) {
            lines.push_back(std::move(*line));
        }
        CHECK(!reader.overflowed());
    }
    sp.shut();
    CHECK(!reader.fill()); // EOF
    CHECK(!reader.next()); // the partial last line, if any, is not a line
    return lines;
}

// Blocking, as evenctl reads: everything sent and the writer gone, read() until nullopt.
std::vector<std::string> read_blocking(std::string_view input) {
    socket_pair sp;
    sp.write_all(input);
    sp.shut();
    api::line_reader reader(sp.reader);
    std::vector<std::string> lines;
    while (auto line = reader.read(std::chrono::milliseconds(1000))) {
        lines.push_back(std::move(*line));
    }
    return lines;
}

void check_lines(const std::vector<std::string>& lines, std::string_view input) {
    std::string joined;
    for (const std::string& line : lines) {
        CHECK(line.find('\n') == std::string::npos);
        joined += line;
        joined += '\n';
    }
    CHECK(joined == complete_lines(input));
}

std::string dump_or_fail(const json& j, int line) {
    try {
        return j.dump();
    } catch (const json::exception& e) {
        fail("json::dump threw:", line, e.what());
    }
}

void check_arguments(const std::vector<std::string>& words) {
    if (words.empty()) {
        return;
    }
    const api::command_spec* spec = api::find_command(words[0]);
    if (spec == nullptr) {
        // evenctl stops here; the vocabulary is still exercised with the first command
        // whose name starts like the word, so that random words reach every spec.
        const auto all = api::all_commands();
        spec = &all[size_t(uint8_t(words[0].empty() ? 0 : words[0][0])) % all.size()];
    } else {
        CHECK(spec->name == words[0]);
        CHECK(&api::spec_of(spec->id) == spec);
    }
    const auto rest = std::span<const std::string>(words).subspan(1);
    api::parse_result parsed = api::parse_arguments(*spec, rest);
    if (const auto* why = std::get_if<std::string>(&parsed)) {
        CHECK(why->starts_with(std::string(spec->name) + ": "));
        return;
    }
    const json& request = std::get<json>(parsed);
    CHECK(request.is_object() && request.value("cmd", "") == spec->name);
    for (const auto& [key, value] : request.items()) {
        bool known = key == "cmd";
        for (const auto& p : spec->args) {
            known = known || key == p.key;
        }
        for (const auto& o : spec->options) {
            known = known || key == o.key;
        }
        CHECK(known);
    }
    for (const auto& p : spec->args) {
        CHECK(!p.required || request.contains(p.key));
    }
    // What evenctl does next: the request goes on the socket as one JSON line.
    std::string line;
    try {
        line = request.dump();
    } catch (const json::type_error& e) {
        // parse_arguments refuses words that are not UTF-8 (the bug this found).
        fail("json::dump threw:", __LINE__, e.what());
    }
    CHECK(json::parse(line, nullptr, false) == request);
}

std::vector<std::string> split_words(std::string_view line) {
    std::vector<std::string> words;
    size_t at = 0;
    while (at < line.size()) {
        const size_t start = line.find_first_not_of(" \t\r", at);
        if (start == std::string_view::npos) {
            break;
        }
        size_t end = line.find_first_of(" \t\r", start);
        if (end == std::string_view::npos) {
            end = line.size();
        }
        words.emplace_back(line.substr(start, end - start));
        at = end;
    }
    return words;
}

void check_request(const std::string& line) {
    // The daemon: malformed JSON and non-objects are answered with an error.
    const json request = json::parse(line, nullptr, false);
    check_arguments(split_words(line));
    if (request.is_discarded()) {
        return;
    }
    const json again = json::parse(dump_or_fail(request, __LINE__), nullptr, false);
    CHECK(!again.is_discarded() && again == request);
    if (request.is_array()) {
        std::vector<std::string> words;
        for (const json& w : request) {
            if (!w.is_string()) {
                return;
            }
            words.push_back(w.get<std::string>());
        }
        check_arguments(words);
        return;
    }
    if (request.is_object() && request.contains("cmd") && request["cmd"].is_string()) {
        const std::string name = request["cmd"].get<std::string>();
        const api::command_spec* spec = api::find_command(name);
        CHECK(spec == nullptr || spec->name == name);
        (void)dump_or_fail(api::error_reply("unknown command " + name), __LINE__);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::vector<std::string> lines = read_in_pieces(input);
    check_lines(lines, input);
    if (input.size() <= 65536) { // written whole before reading: within the socket's buffer
        check_lines(read_blocking(input), input);
    }
    for (const std::string& line : lines) {
        check_request(line);
    }
    return 0;
}
