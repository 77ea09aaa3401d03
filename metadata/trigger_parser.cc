#include "metadata/trigger_parser.h"

#include <pugixml.hpp>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metadata/xml_guard.h"
#include "metadata/xml_text.h"

// The decisions where contract §3 leaves room are listed in trigger_parser.h.

namespace fordeler {
namespace {

constexpr size_t kMaxSendersFileIdChars = 255;

bool Invalid(Rejection* why, std::string description) {
  why->code = ErrorCode::kTriggerInvalid;
  why->description = std::move(description);
  return false;
}

std::string_view Prefix(std::string_view qname) {
  const size_t colon = qname.find(':');
  return colon == std::string_view::npos ? std::string_view() : qname.substr(0, colon);
}

std::string_view LocalName(std::string_view qname) {
  const size_t colon = qname.find(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

// The namespace `prefix` ("" for the default namespace) is bound to at `node`; nullptr when it
// is bound nowhere (or the default namespace is undeclared).
const char* ResolvePrefix(pugi::xml_node node, std::string_view prefix) {
  const std::string attribute = prefix.empty() ? "xmlns" : "xmlns:" + std::string(prefix);
  for (; node && node.type() == pugi::node_element; node = node.parent()) {
    const pugi::xml_attribute declaration = node.attribute(attribute.c_str());
    if (declaration) return declaration.value();
  }
  return nullptr;
}

// True when `node` is the element `name` of contract §3: unqualified or in the SFTP namespace.
bool Is(pugi::xml_node node, std::string_view name) {
  if (node.type() != pugi::node_element || LocalName(node.name()) != name) return false;
  const std::string_view prefix = Prefix(node.name());
  if (prefix.empty()) return true;
  const char* ns = ResolvePrefix(node, prefix);
  return ns != nullptr && std::string_view(ns) == kSftpNamespace;
}

// Every child of `parent` that Is `name`, in document order.
std::vector<pugi::xml_node> Children(pugi::xml_node parent, std::string_view name) {
  std::vector<pugi::xml_node> found;
  for (pugi::xml_node child : parent.children()) {
    if (Is(child, name)) found.push_back(child);
  }
  return found;
}

// The one child `name` of `parent` in *out, left empty when there is none.
bool Unique(pugi::xml_node parent, std::string_view name, pugi::xml_node* out, Rejection* why) {
  const std::vector<pugi::xml_node> found = Children(parent, name);
  if (found.size() > 1) return Invalid(why, std::string(name) + " appears more than once");
  *out = found.empty() ? pugi::xml_node() : found.front();
  return true;
}

// The trimmed text of `node`, named `name` in descriptions.
bool TextOf(pugi::xml_node node, std::string_view name, std::string* out, Rejection* why) {
  std::string text;
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element) {
      return Invalid(why, std::string(name) + " must hold text, not elements");
    }
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
      text += child.value();
    }
  }
  *out = std::string(TrimXmlSpace(text));
  return true;
}

bool Required(pugi::xml_node parent, std::string_view name, std::string* out, Rejection* why) {
  pugi::xml_node node;
  if (!Unique(parent, name, &node, why)) return false;
  if (!node) return Invalid(why, std::string(name) + " is missing");
  if (!TextOf(node, name, out, why)) return false;
  if (out->empty()) return Invalid(why, std::string(name) + " is empty");
  return true;
}

bool Optional(pugi::xml_node parent, std::string_view name, std::optional<std::string>* out,
              Rejection* why) {
  pugi::xml_node node;
  std::string text;
  if (!Unique(parent, name, &node, why)) return false;
  if (node && !TextOf(node, name, &text, why)) return false;
  out->reset();
  if (!text.empty()) *out = std::move(text);
  return true;
}

bool ParseSize(const std::string& text, uint64_t* out, Rejection* why) {
  const std::string shown = "SizeInBytes \"" + Abbreviate(text) + "\"";
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Invalid(why, shown + " is not a whole number");
  }
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  if (error == std::errc::result_out_of_range) {
    return Invalid(why, shown + " is too large (at most 18446744073709551615)");
  }
  if (error != std::errc() || end != text.data() + text.size()) {
    return Invalid(why, shown + " is not a whole number");
  }
  return true;
}

// Sha256 is optional, but when given it must be 64 hex digits, even when empty.
bool ParseSha256(pugi::xml_node descriptor, std::optional<std::string>* out, Rejection* why) {
  pugi::xml_node node;
  std::string value;
  out->reset();
  if (!Unique(descriptor, "Sha256", &node, why)) return false;
  if (!node) return true;
  if (!TextOf(node, "Sha256", &value, why)) return false;
  const bool hex = std::all_of(value.begin(), value.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (value.size() != 64 || !hex) {
    return Invalid(why, "Sha256 \"" + Abbreviate(value) + "\" is not 64 hexadecimal digits");
  }
  std::transform(value.begin(), value.end(), value.begin(),
                 [](char c) { return (c >= 'A' && c <= 'F') ? static_cast<char>(c + 32) : c; });
  *out = std::move(value);
  return true;
}

bool ParseRecipients(pugi::xml_node descriptor, std::vector<std::string>* out, Rejection* why) {
  out->clear();
  for (pugi::xml_node node : Children(descriptor, "Recipients")) {
    std::string text;
    if (!TextOf(node, "Recipients", &text, why)) return false;
    if (text.empty()) {
      return Invalid(why, "Recipients number " + std::to_string(out->size() + 1) + " is empty");
    }
    out->push_back(std::move(text));
  }
  if (out->empty()) return Invalid(why, "Recipients is missing: name at least one recipient");
  return true;
}

bool ParseFileDescriptor(pugi::xml_node root, Trigger* out, Rejection* why) {
  pugi::xml_node descriptor;
  if (!Unique(root, "FileDescriptor", &descriptor, why)) return false;
  if (!descriptor) return Invalid(why, "FileDescriptor is missing");
  std::string size;
  if (!Required(descriptor, "FileName", &out->file_name, why) ||
      !Required(descriptor, "SizeInBytes", &size, why) ||
      !ParseSize(size, &out->size_in_bytes, why) ||
      !Required(descriptor, "Sender", &out->sender, why) ||
      !Optional(descriptor, "SendersFileId", &out->senders_file_id, why) ||
      !ParseRecipients(descriptor, &out->recipients, why) ||
      !ParseSha256(descriptor, &out->sha256, why)) {
    return false;
  }
  if (out->senders_file_id && CountCharacters(*out->senders_file_id) > kMaxSendersFileIdChars) {
    return Invalid(why, "SendersFileId is " +
                            std::to_string(CountCharacters(*out->senders_file_id)) +
                            " characters long; at most 255 are allowed");
  }
  return true;
}

bool ParseRouting(pugi::xml_node root, DynamicRoutingInfo* out, Rejection* why) {
  *out = DynamicRoutingInfo();
  pugi::xml_node content, info, list;
  if (!Unique(root, "FileContentDescriptor", &content, why)) return false;
  if (!content) return true;
  if (!Unique(content, "SFTPDynamicRoutingInfo", &info, why)) return false;
  if (!info) return true;
  if (!Optional(info, "InfRef", &out->inf_ref, why) ||
      !Optional(info, "SenderIt-system", &out->sender_it_system, why) ||
      !Optional(info, "SenderAuthority", &out->sender_authority, why) ||
      !Optional(info, "TransactionId", &out->transaction_id, why) ||
      !Optional(info, "SenderTimestamp", &out->sender_timestamp, why) ||
      !Optional(info, "RecipientIt-system", &out->recipient_it_system, why) ||
      !Optional(info, "RecipientAuthority", &out->recipient_authority, why) ||
      !Unique(info, "RouteParameterList", &list, why)) {
    return false;
  }
  for (pugi::xml_node node : Children(list, "RouteParameter")) {
    std::string text;
    if (!TextOf(node, "RouteParameter", &text, why)) return false;
    out->route_parameters.push_back(std::move(text));
  }
  return true;
}

// pugixml accepts an attribute given twice on one element; XML does not.
bool CheckDuplicateAttributes(const pugi::xml_document& document, Rejection* why) {
  std::vector<std::string_view> names;
  for (pugi::xml_node node = document.first_child(); node;) {
    names.clear();
    for (pugi::xml_attribute attribute : node.attributes()) names.push_back(attribute.name());
    std::sort(names.begin(), names.end());
    const auto duplicate = std::adjacent_find(names.begin(), names.end());
    if (duplicate != names.end()) {
      why->code = ErrorCode::kTriggerMalformed;
      why->description = "attribute " + Abbreviate(*duplicate) + " appears twice on element " +
                         Abbreviate(node.name());
      return false;
    }
    if (node.first_child()) {
      node = node.first_child();
      continue;
    }
    while (node && !node.next_sibling()) node = node.parent();
    if (node) node = node.next_sibling();
  }
  return true;
}

bool CheckRoot(pugi::xml_node root, Rejection* why) {
  const std::string_view name = root.name();
  if (LocalName(name) != "Trigger") {
    return Invalid(why, "the root element is " + Abbreviate(name) + ", not Trigger");
  }
  const std::string_view prefix = Prefix(name);
  const char* ns = ResolvePrefix(root, prefix);
  if (ns == nullptr && !prefix.empty()) {
    return Invalid(why, "the root element's prefix " + Abbreviate(prefix) + " is not declared");
  }
  if (ns == nullptr || *ns == '\0') {
    return Invalid(why, "the root element Trigger has no namespace; it must be in " +
                            std::string(kSftpNamespace));
  }
  if (std::string_view(ns) != kSftpNamespace) {
    return Invalid(why, "the root element Trigger is in namespace \"" + Abbreviate(ns) +
                            "\", not " + std::string(kSftpNamespace));
  }
  return true;
}

// For the receipt of a trigger that is well-formed but invalid (contract §5 echoes a
// SendersFileId "when the trigger had one"): the one FileDescriptor/SendersFileId under a root
// Trigger, its text trimmed and within the limit, matched by local names only, so that a trigger
// in a wrong namespace is answered with its id too. Nothing when anything about it is unclear.
std::optional<std::string> ReadableSendersFileId(pugi::xml_node root) {
  auto only = [](pugi::xml_node parent, std::string_view name) {
    pugi::xml_node found;
    for (pugi::xml_node child : parent.children()) {
      if (child.type() != pugi::node_element || LocalName(child.name()) != name) continue;
      if (found) return pugi::xml_node();  // twice: which one?
      found = child;
    }
    return found;
  };
  if (LocalName(root.name()) != "Trigger") return std::nullopt;
  const pugi::xml_node id = only(only(root, "FileDescriptor"), "SendersFileId");
  std::string text;
  Rejection ignored;
  if (!id || !TextOf(id, "SendersFileId", &text, &ignored) || text.empty() ||
      CountCharacters(text) > kMaxSendersFileIdChars) {
    return std::nullopt;
  }
  return text;
}

}  // namespace

bool ParseTrigger(std::string_view bytes, Trigger* out, Rejection* why) {
  if (!CheckTriggerBytes(bytes, why)) return false;
  const std::string_view body = StripUtf8Bom(bytes);
  pugi::xml_document document;
  const pugi::xml_parse_result parsed =
      document.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    why->code = ErrorCode::kTriggerMalformed;
    why->description = std::string("not well-formed XML: ") + parsed.description() +
                       " at byte offset " +
                       std::to_string(parsed.offset + (bytes.size() - body.size()));
    return false;
  }
  if (!CheckDuplicateAttributes(document, why)) return false;
  const pugi::xml_node root = document.document_element();
  Trigger trigger;
  if (!CheckRoot(root, why) || !ParseFileDescriptor(root, &trigger, why) ||
      !ParseRouting(root, &trigger.routing, why)) {
    out->senders_file_id = ReadableSendersFileId(root);
    return false;
  }
  *out = std::move(trigger);
  return true;
}

}  // namespace fordeler
