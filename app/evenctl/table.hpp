// Left-aligned text tables for evenctl's human output.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace evenflow::evenctl {

class table {
public:
    explicit table(std::vector<std::string> header) : m_rows{std::move(header)} {}
    void add(std::vector<std::string> row) { m_rows.push_back(std::move(row)); }
    void print(FILE* out, const std::string& indent = "") const {
        std::vector<size_t> widths;
        for (const auto& row : m_rows) {
            widths.resize(std::max(widths.size(), row.size()), 0);
            for (size_t i = 0; i < row.size(); ++i) {
                widths[i] = std::max(widths[i], row[i].size());
            }
        }
        for (const auto& row : m_rows) {
            std::string line = indent;
            for (size_t i = 0; i < row.size(); ++i) {
                line += row[i];
                if (i + 1 < row.size()) {
                    line += std::string(widths[i] - row[i].size() + 2, ' ');
                }
            }
            std::fprintf(out, "%s\n", line.c_str());
        }
    }

private:
    std::vector<std::vector<std::string>> m_rows;
};

} // namespace evenflow::evenctl
