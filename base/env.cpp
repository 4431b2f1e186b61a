#include "base/env.hpp"

#include <charconv>
#include <sstream>

namespace socker {

EnvMap env_from_environ(char** envp) {
    EnvMap env;
    for (char** p = envp; p && *p; ++p) {
        std::string kv(*p);
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        env.emplace(kv.substr(0, eq), kv.substr(eq + 1));  // first one wins, as getenv does
    }
    return env;
}

EnvMap env_from_text(const std::string& text) {
    EnvMap env;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto eq = line.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        env.emplace(line.substr(0, eq), line.substr(eq + 1));
    }
    return env;
}

std::vector<std::string> env_to_vector(const EnvMap& env) {
    std::vector<std::string> v;
    v.reserve(env.size());
    for (const auto& [k, val] : env) v.push_back(k + "=" + val);
    return v;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

std::optional<std::string> env_get(const EnvMap& env, const std::string& key) {
    auto it = env.find(key);
    if (it == env.end()) return std::nullopt;
    return it->second;
}

std::optional<long> env_long(const EnvMap& env, const std::string& key) {
    const auto it = env.find(key);
    if (it == env.end() || it->second.empty()) return std::nullopt;
    const std::string& v = it->second;
    long out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || p != v.data() + v.size() || out < 0) return std::nullopt;
    return out;
}

}  // namespace socker
