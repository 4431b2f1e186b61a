#include "image/record.hpp"

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "image/formats.hpp"

namespace socker::image {

using json = nlohmann::json;

std::string record_to_json(const ImageRecord& r) {
    json j = {{"id", r.id},
              {"names", r.names},
              {"layers", r.layers},
              {"created", r.created},
              {"format", r.format},
              {"manifest_digest", r.manifest_digest},
              {"architecture", r.architecture},
              {"size", r.size},
              {"squashfs", r.squashfs},
              {"config",
               {{"Env", r.config.env},
                {"Entrypoint", r.config.entrypoint},
                {"Cmd", r.config.cmd},
                {"WorkingDir", r.config.working_dir},
                {"User", r.config.user}}}};
    return j.dump(2) + "\n";
}

ImageRecord record_from_json(const std::string& text, const std::string& origin) {
    try {
        json j = json::parse(text);
        ImageRecord r;
        r.id = j.at("id").get<std::string>();
        r.names = j.at("names").get<std::vector<std::string>>();
        r.layers = j.at("layers").get<std::vector<std::string>>();
        r.created = j.value("created", "");
        r.format = j.value("format", "");
        r.manifest_digest = j.value("manifest_digest", "");
        r.architecture = j.value("architecture", "");
        r.squashfs = j.value("squashfs", "");
        if (!r.squashfs.empty() && !formats::is_sha256_hex(r.squashfs))
            throw std::runtime_error("bad squashfs digest");
        r.size = j.value("size", 0ULL);
        const auto& c = j.at("config");
        r.config.env = c.value("Env", std::vector<std::string>{});
        r.config.entrypoint = c.value("Entrypoint", std::vector<std::string>{});
        r.config.cmd = c.value("Cmd", std::vector<std::string>{});
        r.config.working_dir = c.value("WorkingDir", "");
        r.config.user = c.value("User", "");
        if (!formats::is_sha256_hex(r.id)) throw std::runtime_error("bad id");
        if (r.layers.empty()) throw std::runtime_error("no layers");
        for (const auto& l : r.layers)
            if (!formats::is_sha256_hex(l)) throw std::runtime_error("bad layer id");
        return r;
    } catch (const std::exception& e) {
        throw Error(Exit::BadImage, "read image record", origin, 0, e.what());
    }
}

namespace {

void put(std::string& out, const char* name, const std::vector<std::string>& items) {
    out += name;
    out += ' ' + std::to_string(items.size()) + '\n';
    for (const auto& i : items) out += std::to_string(i.size()) + ':' + i + '\n';
}

// Reads what put() wrote, strictly: the names in order, counts and lengths bounded.
class WireReader {
public:
    WireReader(std::string_view w, const std::string& origin) : w_(w), origin_(origin) {}
    std::vector<std::string> list(const char* name) {
        const std::string head = std::string(name) + ' ';
        if (w_.substr(pos_, head.size()) != head) bad(std::string("expected ") + name);
        pos_ += head.size();
        const size_t n = number('\n');
        if (n > 1u << 20) bad("too many items");
        std::vector<std::string> items;
        for (size_t i = 0; i < n; ++i) {
            const size_t len = number(':');
            if (len > w_.size() - pos_ || w_.size() - pos_ - len < 1 || w_[pos_ + len] != '\n')
                bad("truncated item");
            items.emplace_back(w_.substr(pos_, len));
            pos_ += len + 1;
        }
        return items;
    }
    std::string one(const char* name) {
        auto v = list(name);
        if (v.size() > 1) bad(std::string("more than one ") + name);
        return v.empty() ? std::string() : v[0];
    }
    void end() {
        if (pos_ != w_.size()) bad("trailing bytes");
    }

private:
    size_t number(char term) {
        size_t v = 0, digits = 0;
        while (pos_ < w_.size() && w_[pos_] >= '0' && w_[pos_] <= '9' && digits < 9) {
            v = v * 10 + static_cast<size_t>(w_[pos_++] - '0');
            ++digits;
        }
        if (digits == 0 || pos_ >= w_.size() || w_[pos_] != term) bad("malformed count");
        ++pos_;
        return v;
    }
    [[noreturn]] void bad(const std::string& why) const {
        throw Error(Exit::BadImage, "read image record", origin_, 0,
                    why + " at byte " + std::to_string(pos_));
    }
    std::string_view w_;
    const std::string& origin_;
    size_t pos_ = 0;
};

}  // namespace

std::string record_to_wire(const ImageRecord& r) {
    std::string out;
    put(out, "id", {r.id});
    put(out, "names", r.names);
    put(out, "layers", r.layers);
    put(out, "env", r.config.env);
    put(out, "entrypoint", r.config.entrypoint);
    put(out, "cmd", r.config.cmd);
    put(out, "workdir", {r.config.working_dir});
    put(out, "user", {r.config.user});
    put(out, "format", {r.format});
    return out;
}

ImageRecord record_from_wire(std::string_view wire, const std::string& origin) {
    if (wire.size() > kMaxWireBytes) throw Error(Exit::BadImage, "read image record", origin, 0, "too large");
    WireReader in(wire, origin);
    ImageRecord r;
    r.id = in.one("id");
    r.names = in.list("names");
    r.layers = in.list("layers");
    r.config.env = in.list("env");
    r.config.entrypoint = in.list("entrypoint");
    r.config.cmd = in.list("cmd");
    r.config.working_dir = in.one("workdir");
    r.config.user = in.one("user");
    r.format = in.one("format");
    in.end();
    if (!formats::is_sha256_hex(r.id)) throw Error(Exit::BadImage, "read image record", origin, 0, "bad id");
    if (r.layers.empty()) throw Error(Exit::BadImage, "read image record", origin, 0, "no layers");
    for (const auto& l : r.layers)
        if (!formats::is_sha256_hex(l))
            throw Error(Exit::BadImage, "read image record", origin, 0, "bad layer id");
    return r;
}

}  // namespace socker::image
