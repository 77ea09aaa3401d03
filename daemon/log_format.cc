#include "daemon/log_format.h"

#include <string_view>

#include "core/names.h"

namespace fordeler {
namespace {

// %* : the message, as ShowableText.
class SafeMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string text = ShowableText(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SafeMessage>();
  }
};

}  // namespace

std::unique_ptr<spdlog::formatter> MakeLogFormatter(bool with_time) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<SafeMessage>('*').set_pattern(with_time ? "%Y-%m-%dT%H:%M:%S.%eZ %l %*"
                                                              : "%l %*");
  return formatter;
}

}  // namespace fordeler
