// socker-mpi image ls [--user]
#include <fmt/core.h>

#include <algorithm>
#include <tuple>

#include "image/store.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/output.hpp"
#include "src/stores.hpp"

namespace socker {

int run_command(const ImageListRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    image::Store store(target_store(pol, host::current_identity(), r.user_store, false, "list").root);
    struct Row {
        std::string name, tag, digest, size, created;
    };
    std::vector<Row> rows;
    for (const auto& rec : store.list())
        for (const auto& n : rec.names) {
            auto colon = n.rfind(':');
            rows.push_back({n.substr(0, colon), n.substr(colon + 1), "sha256:" + rec.id.substr(0, 12),
                            human_bytes(static_cast<double>(rec.size)), rec.created});
        }
    std::sort(rows.begin(), rows.end(),
              [](const Row& a, const Row& b) { return std::tie(a.name, a.tag) < std::tie(b.name, b.tag); });
    constexpr const char* kRow = "{:<30} {:<24} {:<19} {:>10}  {}\n";
    fmt::print(kRow, "NAME", "TAG", "DIGEST", "SIZE", "CREATED");
    for (const auto& row : rows) fmt::print(kRow, row.name, row.tag, row.digest, row.size, row.created);
    return 0;
}

}  // namespace socker
