// Structured logs: one `key=value` line per event on stderr (journald keeps them).
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace evenflow::control {

using log_field = std::pair<std::string_view, std::string>;

// ts=2026-11-22T07:00:00.123Z level=info event=apply version=3 uid=0 ...
// Values with spaces or quotes are quoted.
void log_event(std::string_view level, std::string_view event, std::span<const log_field> fields);

// Many events written at once (one write for a 10,000-line diff, not 10,000): add()
// formats, the destructor writes.
class log_batch {
public:
    ~log_batch();
    void add(std::string_view level, std::string_view event,
             std::initializer_list<log_field> fields);

private:
    std::string m_text;
};
inline void log_event(std::string_view level, std::string_view event,
                      std::initializer_list<log_field> fields = {}) {
    log_event(level, event, std::span<const log_field>(fields.begin(), fields.size()));
}

} // namespace evenflow::control
