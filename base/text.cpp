#include "base/text.hpp"

namespace socker {

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split_list(std::string_view s, char sep, bool trim_items) {
    std::vector<std::string> out;
    for (size_t start = 0; start <= s.size();) {
        size_t end = s.find(sep, start);
        if (end == std::string_view::npos) end = s.size();
        std::string item =
            trim_items ? trim(s.substr(start, end - start)) : std::string(s.substr(start, end - start));
        if (!item.empty()) out.push_back(std::move(item));
        start = end + 1;
    }
    return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::optional<long> number_after(std::string_view s, std::string_view prefix) {
    if (!starts_with(s, prefix)) return std::nullopt;
    s.remove_prefix(prefix.size());
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    long v = 0;
    for (char c : s) v = v * 10 + (c - '0');
    return v;
}

std::string lexically_normal(std::string_view p) {
    std::vector<std::string> parts;
    for (auto& c : split_list(p, '/')) {
        if (c == ".") continue;
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(std::move(c));
    }
    std::string out;
    for (const auto& x : parts) out += "/" + x;
    return out.empty() ? "/" : out;
}

bool path_under(std::string_view path, std::string_view prefix) {
    if (prefix == "/") return true;
    return path == prefix ||
           (path.size() > prefix.size() && starts_with(path, prefix) && path[prefix.size()] == '/');
}

}  // namespace socker
