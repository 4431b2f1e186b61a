// "did you mean" suggestions (after ninja's SpellcheckStringV).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace socker {

size_t edit_distance(const std::string& a, const std::string& b);
// The closest candidate within a small distance, if any.
std::optional<std::string> spellcheck(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace socker
