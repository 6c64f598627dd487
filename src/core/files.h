// Writing files and folders so that a crash never leaves a half-written one under the real
// name and never loses the previous complete one.
#pragma once

#include <string>
#include <string_view>

namespace zerotune {

// Writes `bytes` to `path` + ".tmp", fsyncs it and renames it over `path`.
void write_file_atomically(const std::string& path, std::string_view bytes);

// fsync of a directory's entries; `required` false tolerates file systems that refuse it.
void fsync_directory(const std::string& dir, bool required);

// Publishes the complete folder `tmp` as `target`. An existing `target` is swapped out in one
// step (renameat2 RENAME_EXCHANGE; elsewhere moved aside to `old` first, so a crash leaves both
// complete folders on disk) and removed only once the new one is in place.
void publish_folder(const std::string& tmp, const std::string& target, const std::string& old);

// Removes a tree, ignoring errors (cleanup paths only).
void remove_tree_quietly(const std::string& path);

}  // namespace zerotune
