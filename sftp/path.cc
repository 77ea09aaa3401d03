#include "sftp/path.h"

#include <cstdint>

namespace fordeler {

namespace {

// Splits at '/' and resolves "." / ".." lexically; keeps at most the first three components of
// the resolved stack exactly (anything deeper cannot exist) plus the true depth.
struct Resolved {
  std::string_view parts[3];
  size_t depth = 0;
};

void Push(Resolved* r, std::string_view part) {
  if (r->depth < 3) r->parts[r->depth] = part;
  ++r->depth;
}

Resolved Resolve(std::string_view path) {
  // Components deeper than 3 are only counted: popping back to depth <= 3 restores the kept ones,
  // because they never changed while deeper ones were pushed.
  Resolved r;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (r.depth > 0) --r.depth;  // clamp at "/"
      continue;
    }
    Push(&r, part);
  }
  return r;
}

}  // namespace

std::string_view FolderPath(Folder folder) {
  switch (folder) {
    case Folder::kIn:
      return "/IN";
    case Folder::kOut:
      return "/OUT";
    case Folder::kRoot:
      break;
  }
  return "/";
}

std::string VirtualPath::ToString() const {
  std::string s(FolderPath(folder));
  if (!name.empty()) s.append("/").append(name);
  return s;
}

Status NormalizePath(std::string_view client_path, VirtualPath* out) {
  if (client_path.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("path contains NUL");
  }
  Resolved r = Resolve(client_path);
  out->name.clear();
  out->folder = Folder::kRoot;
  if (r.depth == 0) return Status::Ok();
  if (r.parts[0] == "IN") {
    out->folder = Folder::kIn;
  } else if (r.parts[0] == "OUT") {
    out->folder = Folder::kOut;
  } else {
    return Status::NotFound("no such file");
  }
  if (r.depth > 2)
    return Status::NotFound("no such file (sub-folders are not part of the protocol)");
  if (r.depth == 2) out->name.assign(r.parts[1]);
  return Status::Ok();
}

Result<VirtualPath> NormalizePath(std::string_view client_path) {
  VirtualPath vp;
  Status s = NormalizePath(client_path, &vp);
  if (!s.ok()) return s;
  return vp;
}

}  // namespace fordeler
