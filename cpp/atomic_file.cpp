#include "atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace lenet {
namespace {

[[noreturn]] void fail(int error_number, const std::string& path, const std::string& doing) {
  throw FileError(error_number, path,
                  "cannot " + doing + " '" + path + "': " + std::strerror(error_number));
}

// Closes the descriptor and removes the temporary unless released.
class PartialFile {
 public:
  explicit PartialFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!kept_) ::unlink(path_.c_str());
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  int fd() const { return fd_; }
  // Closes the file; returns errno of a failed close (0 on success).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  int fd_ = -1;
  bool kept_ = false;
};

}  // namespace

FileError::FileError(int error_number, std::string path, const std::string& what)
    : std::runtime_error(what), error_number(error_number), path(std::move(path)) {}

void write_atomically(const std::string& path, const std::vector<char>& bytes) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent)) {
    fail(ENOENT, path, "write (its directory does not exist)");
  }
  const auto partial = path + ".partial";
  PartialFile file(partial);
  if (file.fd() < 0) fail(errno, path, "create a temporary file for");
  const char* next = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const auto written = ::write(file.fd(), next, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail(errno, path, "write");
    }
    next += written;
    left -= static_cast<size_t>(written);
  }
  if (::fsync(file.fd()) != 0) fail(errno, path, "flush");
  if (const int error = file.close(); error != 0) fail(error, path, "close");
  if (::rename(partial.c_str(), path.c_str()) != 0) fail(errno, path, "rename the temporary onto");
  file.keep();
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(errno != 0 ? errno : ENOENT, path, "read");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace lenet
