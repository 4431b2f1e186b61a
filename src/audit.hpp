// The audit record: one per launch and per refusal, to syslog (SECURITY.md "Audit").
#pragma once

#include <string>
#include <vector>

#include "src/policy.hpp"

namespace socker::audit {

// One audit record per launch and per refusal. Fields are key=value, in a fixed order (the
// decision first, the identity next, free-form fields last); a value is either a plain token
// or a double-quoted string with \", \\ and \xHH escapes, so no value can look like a field.
// The record is capped at kAuditMaxBytes: the command is truncated first, never the identity.
struct AuditFields {
    std::string decision;  // launch | refused | failed
    std::string reason;    // for refusals and failures
    std::string user;
    long uid = -1;
    std::string job = "-", step = "-";
    long rank = 0;
    std::string image, store = "-", digest = "-";
    std::vector<std::string> argv;
};
inline constexpr size_t kAuditMaxBytes = 2048;
std::string audit_record(const AuditFields& f);
// Sends it (syslog: RFC 3164 to the admin's syslog socket, facility authpriv). Returns "" when
// delivered, else why not.
std::string send(const Policy& pol, const std::string& record);

}  // namespace socker::audit
