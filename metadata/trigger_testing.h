// Test helpers: building trigger documents for metadata/*_test.cc.
#pragma once

#include <string>

#include "metadata/trigger.h"

namespace fordeler::trigger_testing {

inline const std::string kNs = kSftpNamespace;

// The required FileDescriptor children, valid.
inline const std::string kDescriptor =
    "<FileName>x.csv</FileName><SizeInBytes>5</SizeInBytes><Sender>kmd</Sender>"
    "<Recipients>flis</Recipients>";

// A trigger with root ns2:Trigger, the given FileDescriptor content and what follows it.
inline std::string Doc(const std::string& descriptor, const std::string& after = "") {
  return "<ns2:Trigger xmlns:ns2=\"" + kNs + "\"><FileDescriptor>" + descriptor +
         "</FileDescriptor>" + after + "</ns2:Trigger>";
}

inline std::string Valid() { return Doc(kDescriptor); }

// Valid() with FileName's content replaced by `value` (raw XML).
inline std::string WithFileName(const std::string& value) {
  return Doc("<FileName>" + value +
             "</FileName><SizeInBytes>5</SizeInBytes><Sender>kmd</Sender>"
             "<Recipients>flis</Recipients>");
}

// Valid() with SizeInBytes' content replaced by `value` (raw XML).
inline std::string WithSize(const std::string& value) {
  return Doc("<FileName>x.csv</FileName><SizeInBytes>" + value +
             "</SizeInBytes><Sender>kmd</Sender><Recipients>flis</Recipients>");
}

}  // namespace fordeler::trigger_testing
