#include "config/config.h"

namespace fordeler {

const Account* Config::FindAccount(const std::string& id) const {
  for (const auto& a : accounts) {
    if (a.id == id) return &a;
  }
  return nullptr;
}

const DataArea* Config::FindDataArea(const std::string& id) const {
  for (const auto& d : data_areas) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

std::string ConfigError::ToString() const {
  if (where.line > 0) return where.ToString() + ": " + message;
  return where.file + ": " + message;
}

}  // namespace fordeler
