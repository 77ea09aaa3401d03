// Trigger: what a sender's trigger file says (contract §3), parsed and checked for form, not yet
// routed. Plain data; copyable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fordeler {

inline constexpr const char* kSftpNamespace =
    "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types";
inline constexpr size_t kMaxTriggerBytes = 64 * 1024;

// FileContentDescriptor/SFTPDynamicRoutingInfo: every child optional.
struct DynamicRoutingInfo {
  std::optional<std::string> inf_ref;
  std::optional<std::string> sender_it_system;
  std::optional<std::string> sender_authority;
  std::optional<std::string> transaction_id;
  std::optional<std::string> sender_timestamp;
  std::optional<std::string> recipient_it_system;
  std::optional<std::string> recipient_authority;
  std::vector<std::string> route_parameters;  // RouteParameterList/RouteParameter, in order
};

struct Trigger {
  std::string file_name;
  uint64_t size_in_bytes = 0;
  std::string sender;
  std::optional<std::string> senders_file_id;
  std::vector<std::string> recipients;  // 1..n, in order
  std::optional<std::string> sha256;    // fordeler's extension: 64 hex digits, stored lowercase
  DynamicRoutingInfo routing;           // empty when FileContentDescriptor is absent

  // Recipients is exactly "ROUTING_V1_0_0": dynamic routing (contract §4).
  bool IsDynamicRouting() const {
    return recipients.size() == 1 && recipients.front() == "ROUTING_V1_0_0";
  }
};

}  // namespace fordeler
