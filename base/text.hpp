// Small text and path helpers shared by every layer.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace socker {

std::string trim(std::string_view s);  // spaces and tabs at both ends
// The non-empty items of a separated list ("a,,b" -> a, b); trim_items: trimmed first.
std::vector<std::string> split_list(std::string_view s, char sep, bool trim_items = false);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
// "<prefix><digits>" -> the number (at most 18 digits, so that it fits a long), else nullopt.
std::optional<long> number_after(std::string_view s, std::string_view prefix);

// "/a//b/./c/../d" -> "/a/b/d"; ".." at the root stays at the root; "" -> "/".
std::string lexically_normal(std::string_view path);
// Is path equal to prefix or below it, component-wise (/home/a is not under /home/ab)?
bool path_under(std::string_view path, std::string_view prefix);

}  // namespace socker
