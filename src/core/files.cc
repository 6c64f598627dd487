#include "core/files.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/check.h"

namespace zerotune {

namespace fs = std::filesystem;

void fsync_directory(const std::string& dir_name, bool required) {
  const fs::path dir(dir_name);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  // Some file systems refuse fsync on directories; only the temporary folder's own entries must
  // be durable before it is published, so the parent's sync is best effort.
  ZT_CHECK(ok || !required, dir.string(), ": cannot fsync the folder: ", std::strerror(error));
}

void remove_tree_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// Publishes the complete folder `tmp` as `target`, swapping out an existing checkpoint.
void publish_folder(const std::string& tmp_name, const std::string& target_name,
                    const std::string& old_name) {
  const fs::path tmp(tmp_name), target(target_name), old(old_name);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::exists(target)) {
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      fail(str(target.string(), ": cannot rename ", tmp.string(),
               " into place: ", std::strerror(errno)));
    }
    fsync_directory(parent.string(), false);
    return;
  }
  remove_tree_quietly(old.string());
  // RENAME_EXCHANGE swaps the two names in one step: `target` always names a whole checkpoint.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    // `tmp` now holds the previous checkpoint; the name says so should we crash before deleting.
    if (::rename(tmp.c_str(), old.c_str()) != 0) remove_tree_quietly(tmp.string());
  } else {
    // File systems without RENAME_EXCHANGE: move the old folder aside first; a crash between the
    // two renames leaves both complete folders on disk under the .old and .tmp names.
    if (::rename(target.c_str(), old.c_str()) != 0) {
      fail(str(target.string(), ": cannot move the previous checkpoint aside to ", old.string(),
               ": ", std::strerror(errno)));
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      const int error = errno;
      const bool restored = ::rename(old.c_str(), target.c_str()) == 0;
      fail(str(target.string(), ": cannot rename ", tmp.string(),
               " into place: ", std::strerror(error),
               restored ? "" : str("; the previous checkpoint is at ", old.string())));
    }
  }
  fsync_directory(parent.string(), false);
  remove_tree_quietly(old.string());
}

namespace {
[[noreturn]] void fail_io(const std::string& path, const char* action) {
  fail(str(path, ": cannot ", action, ": ", std::strerror(errno)));
}
}  // namespace

// Writes `bytes` to `path` + ".tmp", fsyncs it and renames it over `path`: a reader never sees a
// half-written file under the real name.
void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_io(tmp, "create");
  const char* data = bytes.data();
  size_t left = bytes.size();
  int error = 0;  // the errno of the first failing call
  while (error == 0 && left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      error = written < 0 ? errno : EIO;
    } else {
      data += written;
      left -= static_cast<size_t>(written);
    }
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) error = errno;
  if (error != 0) {
    ::unlink(tmp.c_str());
    errno = error;
    fail_io(path, "write");
  }
}

}  // namespace zerotune
