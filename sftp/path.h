// Client paths and file names of the SFTP jail (contract §1, §2).
//
// An account sees exactly `/`, `/IN`, `/OUT` and the files directly in IN and OUT. Every path a
// client sends is turned once, here, into a VirtualPath {folder, name}: relative paths are
// relative to `/` (the login directory, so `OUT/x` works), `.` and `..` are resolved lexically
// and clamped at `/` (as SFTPGo's path.Clean("/" + p)), repeated slashes collapse. Whatever the
// spelling, the result is `/`, `/IN`, `/OUT`, `/IN/<name>` or `/OUT/<name>`; any other top-level
// name, or anything deeper, does not exist. The name is never used as a path: jail.cc opens it
// as one component beneath the folder's directory fd. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/file_events.h"
#include "core/names.h"
#include "core/status.h"

namespace fordeler {

struct VirtualPath {
  Folder folder = Folder::kRoot;
  std::string name;  // empty: the folder itself

  bool is_folder() const { return name.empty(); }
  // "/", "/IN", "/OUT", "/IN/<name>", "/OUT/<name>".
  std::string ToString() const;
};

// Normalises `client_path` into *out (whose string capacity is reused).
// Errors: kInvalidArgument when the path contains NUL; kNotFound when it names something outside
// the layout (another top-level name, or a path below a file). The name itself is not validated
// beyond that: callers decide with IsValidOutName / IsReachableName what they allow.
Status NormalizePath(std::string_view client_path, VirtualPath* out);
Result<VirtualPath> NormalizePath(std::string_view client_path);

// The folder name as the client sees it: "/", "/IN", "/OUT".
std::string_view FolderPath(Folder folder);

}  // namespace fordeler
