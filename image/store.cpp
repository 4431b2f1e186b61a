#include "image/store.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "base/spellcheck.hpp"
#include "image/formats.hpp"
#include "image/layout.hpp"

namespace socker::image {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace layout;

std::string Store::layer_dir(const std::string& diff_id) const { return Paths{root_, ""}.layer(diff_id); }

bool Store::layer_present(const std::string& diff_id) const {
    struct stat st {};
    return formats::is_sha256_hex(diff_id) && ::lstat(layer_dir(diff_id).c_str(), &st) == 0 &&
           S_ISDIR(st.st_mode);
}

unsigned long long Store::layer_size(const std::string& diff_id) const {
    try {
        json j = json::parse(read_store_file(Paths{root_, ""}.layer_info(diff_id)));
        return j.value("content_bytes", 0ULL);
    } catch (const std::exception&) {
        return 0;
    }
}

std::vector<ImageRecord> Store::list() const {
    std::vector<ImageRecord> out;
    std::error_code ec;
    fs::directory_iterator it(Paths{root_, ""}.images(), ec), end;
    if (ec) return out;
    std::vector<std::string> files;
    for (; it != end; it.increment(ec))
        if (it->path().extension() == ".json") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        try {
            out.push_back(record_from_json(read_store_file(f), f));
        } catch (const Error& e) {
            if (e.err() != ENOENT) throw;  // removed meanwhile
        }
    }
    return out;
}

ImageRecord Store::find(const ImageName& name) const { return *lookup(name, true); }

std::optional<ImageRecord> Store::find_complete(const ImageName& name) const { return lookup(name, false); }

std::optional<ImageRecord> Store::lookup(const ImageName& name, bool strict) const {
    // Why NAME has no complete image: thrown when strict, else "not found".
    auto missing = [&](const Error& why) -> std::optional<ImageRecord> {
        if (strict) throw why;
        return std::nullopt;
    };
    const Paths p{root_, ""};
    const std::string ref = p.ref(name);
    std::ifstream in(ref);
    std::string id;
    if (!in || !std::getline(in, id)) {
        if (!strict) return std::nullopt;  // the suggestion below reads every record: only for errors
        std::vector<std::string> known;
        for (const auto& r : list())
            for (const auto& n : r.names) known.push_back(n);
        std::string msg = "no such image in " + root_;
        std::string plain = name.tag == "latest" ? name.repo : name.str();
        std::vector<std::string> cands;
        cands.reserve(known.size());
        for (const auto& k : known)
            cands.push_back(name.tag == "latest" && k.size() > 7 && k.compare(k.size() - 7, 7, ":latest") == 0
                                ? k.substr(0, k.size() - 7)
                                : k);
        if (auto s = spellcheck(plain, cands)) msg += "; did you mean '" + *s + "'?";
        throw Error(Exit::BadImage, "image", name.str(), 0, msg);
    }
    if (!formats::is_sha256_hex(id)) return missing(Error(Exit::BadImage, "image ref", ref, 0, "corrupt"));
    const std::string rec_path = p.record(id);
    if (!strict && !exists_nofollow(rec_path)) return std::nullopt;
    auto rec = record_from_json(read_store_file(rec_path), id);  // strict: a missing record is an open error
    for (const auto& l : rec.layers)
        if (!layer_present(l))
            return missing(Error(Exit::BadImage, "image", name.str(), 0, "layer " + l + " missing"));
    return rec;
}

}  // namespace socker::image
