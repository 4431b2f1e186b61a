// EnvMap: the environment as a value. Only main() reads environ; every other stage takes an
// EnvMap so that tests can feed environments captured from real launchers (tests/fixtures/env).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace socker {

using EnvMap = std::map<std::string, std::string>;  // ordered: deterministic output

EnvMap env_from_environ(char** envp);
// Parse "KEY=VALUE" lines (fixture files); blank lines and lines starting with '#' are skipped.
EnvMap env_from_text(const std::string& text);
std::vector<std::string> env_to_vector(const EnvMap& env);
// argv/envp for execve: pointers into `strings` (which must outlive them), null-terminated.
std::vector<char*> c_strings(const std::vector<std::string>& strings);

std::optional<std::string> env_get(const EnvMap& env, const std::string& key);
// Integer value of a variable, if present and a whole non-negative decimal number.
std::optional<long> env_long(const EnvMap& env, const std::string& key);

}  // namespace socker
