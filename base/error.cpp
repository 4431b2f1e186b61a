#include "base/error.hpp"

#include <cstring>

namespace socker {

Error::Error(Exit code, std::string op, std::string object, int err, std::string detail)
    : std::runtime_error(format(op, object, err, detail, {})),
      code_(code),
      op_(std::move(op)),
      object_(std::move(object)),
      detail_(std::move(detail)),
      errno_(err) {}

Error&& Error::with_context(const std::string& ctx) && {
    ctx_ = ctx_.empty() ? ctx : ctx + ": " + ctx_;
    static_cast<std::runtime_error&>(*this) = std::runtime_error(format(op_, object_, errno_, detail_, ctx_));
    return std::move(*this);
}

std::string Error::format(const std::string& op, const std::string& object, int err,
                          const std::string& detail, const std::string& ctx) {
    // crun-style: "ctx: op `object`: strerror (detail)"
    std::string m;
    if (!ctx.empty()) m += ctx + ": ";
    m += op;
    if (!object.empty()) m += " `" + object + "`";
    if (err != 0) m += std::string(": ") + std::strerror(err);
    if (!detail.empty()) m += (err != 0 ? " (" + detail + ")" : ": " + detail);
    // One line, always: an object or detail may carry user bytes.
    for (char& c : m)
        if (c == '\n' || c == '\r' || (static_cast<unsigned char>(c) < 0x20 && c != '\t')) c = '?';
    return m;
}

void throw_errno(const std::string& op, const std::string& object, int err, Exit code) {
    throw Error(code, op, object, err);
}

void throw_usage(const std::string& message) { throw Error(Exit::Usage, message, {}); }

void throw_refused(const std::string& what, const std::string& why) {
    throw Error(Exit::Refused, "refused", what, 0, why);
}

}  // namespace socker
