// Writing a file so that it is either complete or absent: the bytes go to `<path>.partial`,
// are flushed to disk, and the temporary is renamed over `path`. Used for every file the C++
// core writes (models, checkpoints).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace lenet {

// An operating-system error on `path` (errno in `error_number`); the bindings raise it as
// Python's OSError with that errno and filename.
class FileError : public std::runtime_error {
 public:
  FileError(int error_number, std::string path, const std::string& what);
  int error_number;
  std::string path;
};

// Replaces `path` with `bytes` atomically. On any failure (missing directory, full disk,
// permissions) nothing is left at `path` or `<path>.partial` that was not there before, and
// FileError is thrown.
void write_atomically(const std::string& path, const std::vector<char>& bytes);

// The whole content of `path`; FileError when it cannot be read.
std::vector<char> read_file(const std::string& path);

}  // namespace lenet
