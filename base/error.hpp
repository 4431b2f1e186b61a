// One error type for the whole launcher (see STYLE.md): the operation, the object it acted on,
// errno (0 when none), context added on the way up, and the exit code the launcher ends with.
// Caught only in main().
#pragma once

#include <stdexcept>
#include <string>

namespace socker {

// Documented launcher exit codes (README "Exit codes"). The application's own status passes
// through unchanged (we exec in place); death by signal S shows as 128+S in the shell/Slurm.
enum class Exit : int {
    Ok = 0,
    Usage = 64,           // bad command line (EX_USAGE)
    BadImage = 65,        // unknown, malformed or corrupted image (EX_DATAERR)
    Internal = 70,        // a bug or an impossible state (EX_SOFTWARE)
    Io = 74,              // a system call or file operation failed (EX_IOERR)
    Config = 78,          // admin configuration missing, insecure or malformed (EX_CONFIG)
    Refused = 77,         // refused by policy or by a security check (EX_NOPERM)
    NotExecutable = 126,  // command found in the image but cannot be executed
    NotFound = 127,       // command not found in the image
};

class Error : public std::runtime_error {
public:
    Error(Exit code, std::string op, std::string object, int err = 0, std::string detail = {});

    Exit code() const noexcept { return code_; }
    int err() const noexcept { return errno_; }
    const std::string& op() const noexcept { return op_; }
    const std::string& object() const noexcept { return object_; }

    // Add context from an outer layer ("while mounting PMIx dir"): kept in the message.
    Error&& with_context(const std::string& ctx) &&;

private:
    static std::string format(const std::string& op, const std::string& object, int err,
                              const std::string& detail, const std::string& ctx);
    Exit code_;
    std::string op_, object_, detail_, ctx_;
    int errno_;
};

// Shorthands for the common kinds.
[[noreturn]] void throw_errno(const std::string& op, const std::string& object, int err,
                              Exit code = Exit::Io);
[[noreturn]] void throw_usage(const std::string& message);
[[noreturn]] void throw_refused(const std::string& what, const std::string& why);

}  // namespace socker
