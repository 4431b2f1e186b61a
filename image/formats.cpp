#include "image/formats.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/error.hpp"

namespace socker::image::formats {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& origin, const std::string& detail) {
    throw Error(Exit::BadImage, "image", origin, 0, detail);
}

json parse_json(const std::string& text, const std::string& origin) {
    if (text.size() > kMaxJsonBytes)
        bad(origin, "too large (" + std::to_string(text.size()) + " bytes, max " +
                        std::to_string(kMaxJsonBytes) + ")");
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        bad(origin, std::string("not valid JSON (") + e.what() + ")");
    }
}

const json* member(const json& j, const char* key) {
    auto it = j.find(key);
    return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

std::string opt_string(const json& j, const char* key, const std::string& origin) {
    const json* v = member(j, key);
    if (!v) return {};
    if (!v->is_string()) bad(origin, std::string(key) + " is not a string");
    return v->get<std::string>();
}

std::string req_string(const json& j, const char* key, const std::string& origin) {
    const json* v = member(j, key);
    if (!v) bad(origin, std::string(key) + " missing");
    if (!v->is_string()) bad(origin, std::string(key) + " is not a string");
    return v->get<std::string>();
}

std::vector<std::string> opt_strings(const json& j, const char* key, const std::string& origin) {
    const json* v = member(j, key);
    if (!v) return {};
    if (!v->is_array()) bad(origin, std::string(key) + " is not a list of strings");
    std::vector<std::string> out;
    out.reserve(v->size());
    for (const auto& s : *v) {
        if (!s.is_string()) bad(origin, std::string(key) + " is not a list of strings");
        out.push_back(s.get<std::string>());
    }
    return out;
}

Descriptor parse_descriptor(const json& j, const std::string& origin) {
    if (!j.is_object()) bad(origin, "descriptor is not an object");
    Descriptor d;
    d.media_type = opt_string(j, "mediaType", origin);
    d.digest = digest_hex(req_string(j, "digest", origin), origin + " descriptor");
    if (const json* s = member(j, "size")) {
        if (!s->is_number_integer() || s->get<long long>() < 0) bad(origin, "descriptor size is not a count");
        d.size = s->get<long long>();
    }
    if (const json* a = member(j, "annotations")) {
        if (!a->is_object()) bad(origin, "annotations is not an object");
        for (const auto& [k, v] : a->items())
            if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
    if (const json* p = member(j, "platform")) {
        if (!p->is_object()) bad(origin, "platform is not an object");
        d.os = opt_string(*p, "os", origin);
        d.architecture = opt_string(*p, "architecture", origin);
        d.variant = opt_string(*p, "variant", origin);
    }
    return d;
}

bool printable(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
}

}  // namespace

bool is_sha256_hex(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string digest_hex(const std::string& digest, const std::string& what) {
    auto colon = digest.find(':');
    if (colon == std::string::npos) bad(what, "digest '" + digest.substr(0, 80) + "' has no algorithm");
    std::string alg = digest.substr(0, colon), hex = digest.substr(colon + 1);
    if (alg != "sha256")
        bad(what, "digest algorithm '" + alg.substr(0, 20) + "' not supported (sha256 only)");
    if (!is_sha256_hex(hex)) bad(what, "malformed digest '" + digest.substr(0, 80) + "'");
    return hex;
}

std::string normalize_archive_path(std::string_view p, const std::string& what) {
    if (!p.empty() && p[0] == '/') bad(what, "absolute path '" + std::string(p.substr(0, 200)) + "'");
    std::string out;
    size_t i = 0;
    while (i <= p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        std::string_view c = p.substr(i, j - i);
        if (c == "..") bad(what, "path '" + std::string(p.substr(0, 200)) + "' contains '..'");
        if (!c.empty() && c != ".") {
            if (!out.empty()) out += '/';
            out += c;
        }
        i = j + 1;
    }
    return out;
}

// ------------------------------------------------------------------ docker-archive
std::vector<DockerManifestEntry> parse_docker_manifest(const std::string& text) {
    const std::string origin = "manifest.json";
    json j = parse_json(text, origin);
    if (!j.is_array()) bad(origin, "not a list of images");
    if (j.empty()) bad(origin, "lists no image");
    std::vector<DockerManifestEntry> out;
    for (const auto& e : j) {
        if (!e.is_object()) bad(origin, "entry is not an object");
        DockerManifestEntry d;
        d.config = normalize_archive_path(req_string(e, "Config", origin), origin + " Config");
        if (d.config.empty()) bad(origin, "Config is empty");
        d.repo_tags = opt_strings(e, "RepoTags", origin);
        for (const auto& l : opt_strings(e, "Layers", origin)) {
            std::string p = normalize_archive_path(l, origin + " Layers");
            if (p.empty()) bad(origin, "empty layer path");
            d.layers.push_back(p);
        }
        out.push_back(std::move(d));
    }
    return out;
}

std::string short_ref(const std::string& ref) {
    std::string r = ref;
    for (const char* prefix : {"docker.io/library/", "docker.io/", "localhost/"})
        if (r.rfind(prefix, 0) == 0) {
            r = r.substr(std::string(prefix).size());
            break;
        }
    auto slash = r.rfind('/');
    auto colon = r.rfind(':');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) r += ":latest";
    return r;
}

size_t select_docker_entry(const std::vector<DockerManifestEntry>& entries, const ImageName& target) {
    if (entries.size() == 1) return 0;
    std::vector<size_t> hits;
    std::string names;
    for (size_t i = 0; i < entries.size(); ++i)
        for (const auto& t : entries[i].repo_tags) {
            if (short_ref(t) == target.str()) hits.push_back(i);
            if (names.size() < 400 && printable(t)) names += (names.empty() ? "" : ", ") + t;
        }
    hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
    if (hits.size() == 1) return hits[0];
    bad("manifest.json", "holds " + std::to_string(entries.size()) + " images and none is tagged " +
                             target.str() + " (RepoTags: " + (names.empty() ? "none" : names) +
                             "); import it under one of those names");
}

// ------------------------------------------------------------------ OCI
std::string Descriptor::ref_name() const {
    auto it = annotations.find("org.opencontainers.image.ref.name");
    return it == annotations.end() ? std::string() : it->second;
}

DocKind media_kind(const std::string& mt) {
    if (mt == "application/vnd.oci.image.index.v1+json" ||
        mt == "application/vnd.docker.distribution.manifest.list.v2+json")
        return DocKind::Index;
    if (mt == "application/vnd.oci.image.manifest.v1+json" ||
        mt == "application/vnd.docker.distribution.manifest.v2+json")
        return DocKind::Manifest;
    return DocKind::Unknown;
}

bool is_layer_media_type(const std::string& mt) {
    static const std::vector<std::string> ok = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
    };
    return mt.empty() || std::find(ok.begin(), ok.end(), mt) != ok.end();
}

namespace {

// An OCI index or manifest: a JSON object whose schemaVersion, when present, is 2.
json parse_oci_object(const std::string& text, const std::string& origin) {
    json j = parse_json(text, origin);
    if (!j.is_object()) bad(origin, "not an object");
    if (const json* v = member(j, "schemaVersion"))
        if (!v->is_number_integer() || v->get<long long>() != 2) bad(origin, "schemaVersion is not 2");
    return j;
}

}  // namespace

OciIndex parse_oci_index(const std::string& text, const std::string& origin) {
    const json j = parse_oci_object(text, origin);
    const json* m = member(j, "manifests");
    if (!m || !m->is_array()) bad(origin, "manifests missing or not a list");
    OciIndex idx;
    for (const auto& d : *m) idx.manifests.push_back(parse_descriptor(d, origin));
    return idx;
}

OciManifest parse_oci_manifest(const std::string& text, const std::string& origin) {
    const json j = parse_oci_object(text, origin);
    const json* c = member(j, "config");
    if (!c) bad(origin, "config missing");
    OciManifest m;
    m.config = parse_descriptor(*c, origin + " config");
    const json* ls = member(j, "layers");
    if (ls && !ls->is_array()) bad(origin, "layers is not a list");
    if (ls)
        for (const auto& l : *ls) {
            Descriptor d = parse_descriptor(l, origin + " layer");
            if (!is_layer_media_type(d.media_type))
                bad(origin, "layer " + d.digest.substr(0, 12) + " has media type '" +
                                d.media_type.substr(0, 100) +
                                "' (foreign, encrypted or unknown layers are not supported)");
            m.layers.push_back(std::move(d));
        }
    return m;
}

DocKind sniff_kind(const std::string& text, const std::string& origin) {
    json j = parse_json(text, origin);
    if (!j.is_object()) return DocKind::Unknown;
    if (const json* mt = member(j, "mediaType"); mt && mt->is_string()) {
        DocKind k = media_kind(mt->get<std::string>());
        if (k != DocKind::Unknown) return k;
    }
    if (member(j, "manifests")) return DocKind::Index;
    if (member(j, "config") && member(j, "layers")) return DocKind::Manifest;
    return DocKind::Unknown;
}

const Descriptor& select_by_ref(const OciIndex& idx, const std::string& tag, const std::string& origin) {
    std::vector<const Descriptor*> hits;
    std::string names;
    for (const auto& d : idx.manifests) {
        const std::string r = d.ref_name();
        if (!tag.empty() &&
            (r == tag || (r.size() > tag.size() && r.compare(r.size() - tag.size(), tag.size(), tag) == 0 &&
                          r[r.size() - tag.size() - 1] == ':')))
            hits.push_back(&d);
        if (names.size() < 400 && printable(r))
            names += (names.empty() ? "" : ", ") + (r.empty() ? "<unnamed>" : r);
    }
    if (tag.empty() && idx.manifests.size() == 1) return idx.manifests[0];
    if (hits.size() == 1) return *hits[0];
    if (idx.manifests.empty()) bad(origin, "lists no image");
    if (tag.empty())
        bad(origin, "holds " + std::to_string(idx.manifests.size()) + " images (" + names +
                        "): choose one with layout:DIR:TAG");
    bad(origin, (hits.empty() ? "has no image named '" : "has several images named '") + tag +
                    "' (present: " + names + ")");
}

std::string host_architecture() {
    struct utsname u {};
    ::uname(&u);
    std::string m = u.machine;
    if (m == "x86_64") return "amd64";
    if (m == "aarch64") return "arm64";
    if (m == "i686" || m == "i386") return "386";
    if (m.rfind("armv", 0) == 0) return "arm";
    return m;  // ppc64le, s390x, riscv64 are spelt the same
}

const Descriptor& select_platform(const OciIndex& idx, const std::string& arch, const std::string& origin) {
    if (idx.manifests.size() == 1) return idx.manifests[0];
    for (const auto& d : idx.manifests)
        if ((d.os.empty() || d.os == "linux") && d.architecture == arch) return d;
    std::string names;
    for (const auto& d : idx.manifests)
        if (names.size() < 300) names += (names.empty() ? "" : ", ") + d.os + "/" + d.architecture;
    bad(origin, "has no image for linux/" + arch + " (platforms: " + names + ")");
}

// ------------------------------------------------------------------ config
ParsedConfig parse_image_config(const std::string& text, const std::string& origin) {
    json j = parse_json(text, origin);
    if (!j.is_object()) bad(origin, "not an object");
    ParsedConfig p;
    p.created = opt_string(j, "created", origin);
    p.os = opt_string(j, "os", origin);
    p.architecture = opt_string(j, "architecture", origin);
    if (const json* c = member(j, "config")) {
        if (!c->is_object()) bad(origin, "config is not an object");
        p.config.env = opt_strings(*c, "Env", origin);
        p.config.entrypoint = opt_strings(*c, "Entrypoint", origin);
        p.config.cmd = opt_strings(*c, "Cmd", origin);
        p.config.working_dir = opt_string(*c, "WorkingDir", origin);
        p.config.user = opt_string(*c, "User", origin);
        for (const auto& kv : p.config.env)
            if (kv.find('=') == std::string::npos || kv[0] == '=')
                bad(origin, "Env entry '" + kv.substr(0, 80) + "' is not KEY=VALUE");
        if (!p.config.working_dir.empty() && p.config.working_dir[0] != '/')
            bad(origin, "WorkingDir '" + p.config.working_dir.substr(0, 200) + "' is not absolute");
    }
    const json* r = member(j, "rootfs");
    if (!r || !r->is_object()) bad(origin, "rootfs missing");
    if (const json* t = member(*r, "type"); t && (!t->is_string() || t->get<std::string>() != "layers"))
        bad(origin, "rootfs.type is not 'layers'");
    for (const auto& d : opt_strings(*r, "diff_ids", origin))
        p.diff_ids.push_back(digest_hex(d, origin + " diff_ids"));
    if (p.diff_ids.empty()) bad(origin, "rootfs.diff_ids is empty");
    if (!p.os.empty() && p.os != "linux")
        bad(origin, "image is for os '" + p.os.substr(0, 40) + "', not linux");
    return p;
}

}  // namespace socker::image::formats
