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

}  // namespace socker::image
