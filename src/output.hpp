// What the image tools print about imports.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "image/import.hpp"

namespace socker {

// One line on stderr: what an import read, unpacked and reused.
void print_import_summary(const std::string& prefix, const std::string& what, const image::ImportResult& res);
// A progress bar when stderr is a terminal; nullopt otherwise.
using ProgressCallback = std::function<void(const image::ImportProgress&)>;
std::optional<ProgressCallback> progress_bar_for(const std::string& what);
// "4.2 MB", "249.0 MB", "1.20 GB".
std::string human_bytes(double bytes);

}  // namespace socker
