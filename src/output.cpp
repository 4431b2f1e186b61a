// What the image tools print: the import summary, the progress bar, sizes.
#include "src/output.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <memory>

namespace socker {

namespace {

// A progress bar on a terminal: bytes read, percentage when the size is known, and rate.
class ProgressBar {
public:
    explicit ProgressBar(std::string what) : what_(std::move(what)) {}
    void update(const image::ImportProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (!p.done && now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        double secs = std::chrono::duration<double>(now - start_).count();
        double mib = static_cast<double>(p.bytes) / 1048576.0;
        double rate = secs > 0 ? mib / secs : 0.0;
        if (p.total > 0) {
            double frac = std::min(1.0, static_cast<double>(p.bytes) / static_cast<double>(p.total));
            const int width = 30;
            int fill = static_cast<int>(frac * width);
            std::string bar(static_cast<size_t>(fill), '=');
            if (fill < width) bar += '>';
            bar.resize(width, ' ');
            fmt::print(stderr, "\r\033[K{} [{}] {:3}% {:7.1f}/{:.1f} MiB {:7.1f} MiB/s", what_, bar,
                       static_cast<int>(frac * 100), mib, static_cast<double>(p.total) / 1048576.0, rate);
        } else {
            fmt::print(stderr, "\r\033[K{} {:7.1f} MiB {:7.1f} MiB/s", what_, mib, rate);
        }
        shown_ = true;
    }
    void clear() {
        if (shown_) fmt::print(stderr, "\r\033[K");
        shown_ = false;
    }
    ~ProgressBar() {
        try {
            clear();
        } catch (...) {  // a destructor never throws; the line is cosmetic
        }
    }

private:
    std::string what_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
    bool shown_ = false;
};

}  // namespace

std::string human_bytes(double b) {
    if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
    if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
    if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
    return fmt::format("{:.0f} B", b);
}

void print_import_summary(const std::string& prefix, const std::string& what,
                          const image::ImportResult& res) {
    const auto& rec = res.record;
    std::string extra;
    if (res.dropped)
        extra += "; left out " + std::to_string(res.dropped) + " device node(s)/FIFO(s)/socket(s)";
    if (res.suid_cleared)
        extra += "; cleared setuid/setgid on " + std::to_string(res.suid_cleared) + " file(s)";
    const double mib = static_cast<double>(res.bytes_read) / 1048576.0;
    fmt::print(stderr,
               "{}imported {} ({}): sha256:{:.12}, {} layer(s): {} unpacked, {} already stored; {} read in "
               "{:.2f} s ({:.0f} MiB/s){}\n",
               prefix, what, rec.format, rec.id, rec.layers.size(), res.layers_unpacked, res.layers_reused,
               human_bytes(static_cast<double>(res.bytes_read)), res.seconds,
               res.seconds > 0 ? mib / res.seconds : 0.0, extra);
}

std::optional<ProgressCallback> progress_bar_for(const std::string& what) {
    if (!::isatty(2)) return std::nullopt;
    auto bar = std::make_shared<ProgressBar>(what);
    return ProgressCallback([bar](const image::ImportProgress& p) {
        bar->update(p);
        if (p.done) bar->clear();
    });
}

}  // namespace socker
