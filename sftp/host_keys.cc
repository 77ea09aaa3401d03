#include "sftp/host_keys.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string_view>

#include "config/ssh_public_key.h"
#include "sftp/ssh_server.h"

namespace fordeler {
namespace {

// libssh says only that a key could not be imported; the file's first lines tell the usual
// causes apart.
std::string WhyUnreadable(const std::string& path) {
  constexpr const char* kEncrypted =
      "is protected by a passphrase; fordelerd needs it without one (ssh-keygen -p -N '' -f FILE)";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string("cannot be read: ") + std::strerror(errno);
  std::string text(4096, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  std::string_view t = text;
  if (t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-")) {
    return "is a public key; host_keys names the private key (the file without .pub)";
  }
  if (t.find("ENCRYPTED") != std::string_view::npos) return kEncrypted;
  // The OpenSSH format's armour line (matched by its start; the file's first line).
  size_t body = t.find('\n');
  if (t.starts_with("-----BEGIN OPENSSH") && body != std::string_view::npos) {
    // openssh-key-v1: magic, then the cipher's name; "none" unless a passphrase protects it.
    std::string base64;
    for (char c : t.substr(body + 1, 200)) {
      if (c != '\n' && c != '\r') base64 += c;
    }
    base64.resize(base64.size() / 4 * 4);
    auto blob = Base64Decode(base64);
    constexpr std::string_view kMagic("openssh-key-v1\0\0\0\0\4none", 23);
    if (blob && blob->starts_with("openssh-key-v1") && !blob->starts_with(kMagic)) {
      return kEncrypted;
    }
  }
  return "is not a private key libssh can read (OpenSSH or PEM format, without a passphrase)";
}

}  // namespace

Status ImportHostKey(ssh_bind bind, const std::string& path) {
  auto refused = [&](const std::string& why) {
    return Status::InvalidArgument("host key " + path + " " + why);
  };
  ssh_key key = nullptr;
  // An empty passphrase, not none: with none, OpenSSL asks for one on the terminal.
  if (ssh_pki_import_privkey_file(path.c_str(), "", nullptr, nullptr, &key) != SSH_OK) {
    return refused(WhyUnreadable(path));
  }
  std::unique_ptr<ssh_key_struct, decltype(&ssh_key_free)> owned(key, &ssh_key_free);
  enum ssh_keytypes_e type = ssh_key_type(key);
  if (type != SSH_KEYTYPE_ED25519 && type != SSH_KEYTYPE_RSA) {
    return refused(std::string("is an ") + ssh_key_type_to_char(type) +
                   " key; fordelerd offers ssh-ed25519 and RSA (rsa-sha2-512, rsa-sha2-256) "
                   "host keys only");
  }
  if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
    return refused(std::string("is refused: ") + ssh_get_error(bind));
  }
  owned.release();  // the bind owns it now
  return Status::Ok();
}

std::string HostKeyProblem(const std::string& path) {
  std::unique_ptr<ssh_bind_struct, decltype(&ssh_bind_free)> bind(ssh_bind_new(), &ssh_bind_free);
  if (bind == nullptr) return "cannot be checked: out of memory";
  int rsa_min = SshAlgorithms::kRsaMinBits;
  if (ssh_bind_options_set(bind.get(), SSH_BIND_OPTIONS_RSA_MIN_SIZE, &rsa_min) != SSH_OK) {
    return std::string("cannot be checked: ") + ssh_get_error(bind.get());
  }
  Status s = ImportHostKey(bind.get(), path);
  if (s.ok()) return "";
  std::string prefix = "host key " + path + " ";
  return s.message().substr(prefix.size());
}

}  // namespace fordeler
