// socker-mpi-tools internal-ensure --label PATH --prefix PREFIX: the import of a launch from an
// image file, run by the launcher in a child that is only the user (launcher::exec_as_user):
// the image file is fd 3, the reply ("<code>\n<wire record or message>") goes to stdout.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "image/in_use.hpp"
#include "image/record.hpp"
#include "launcher/user_process.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/output.hpp"
#include "src/stores.hpp"

namespace socker {

namespace {

std::string ensure(const std::string& label, const std::string& prefix) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    struct stat st {};
    if (::fstat(3, &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(Exit::Internal, "internal-ensure", label, 0, "no image file on fd 3");
    auto ns = [](const struct timespec& t) {
        return static_cast<unsigned long long>(t.tv_sec) * 1000000000ULL +
               static_cast<unsigned long long>(t.tv_nsec);
    };
    const image::ImageName name = image::name_for_file(
        {fd_path(3), static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
         static_cast<unsigned long long>(st.st_size), ns(st.st_mtim), ns(st.st_ctim)});
    image::ImportSource src;
    src.label = label;
    src.fd = 3;
    src.seekable = true;
    src.size = static_cast<unsigned long long>(st.st_size);
    const std::string root = user_store_path(id, true);
    image::ImportOptions opt = import_options(pol, image::node_lock_path(pol.state_dir, root));
    if (auto cb = progress_bar_for("importing " + label)) opt.progress = *cb;
    const image::EnsureResult er = image::ensure_image(root, src, name, opt);
    if (er.imported) print_import_summary(prefix, label + " as " + name.str(), *er.imported);
    return image::record_to_wire(er.record);
}

}  // namespace

int internal_ensure(const std::vector<std::string>& args) {
    std::string label, prefix, reply;
    for (size_t i = 0; i + 1 < args.size(); i += 2) {
        if (args[i] == "--label")
            label = args[i + 1];
        else if (args[i] == "--prefix")
            prefix = args[i + 1];
    }
    int code = 0;
    try {
        reply = "0\n" + ensure(label, prefix);
    } catch (const std::exception& e) {
        reply = launcher::error_reply(e, code);
    }
    if (std::fwrite(reply.data(), 1, reply.size(), stdout) != reply.size() || std::fflush(stdout) != 0)
        return static_cast<int>(Exit::Io);
    return code;
}

}  // namespace socker
