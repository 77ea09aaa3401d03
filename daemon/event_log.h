// EventLog: a FileEventListener that writes the file events the SFTP server reports to the log
// (uploads closed or changed, removals), one key=value line each; names are PrintableName in
// double quotes. Downloads are logged by the delivery pipeline, once it knows their transfer.
// fordelerd chains it in front of the delivery pipeline. Thread-safe.
#pragma once

#include "core/file_events.h"

namespace fordeler {

class EventLog : public FileEventListener {
 public:
  // `next` (may be null) receives every event after it was logged.
  explicit EventLog(FileEventListener* next = nullptr) : next_(next) {}
  // REQUIRES: called before any event arrives.
  void set_next(FileEventListener* next) { next_ = next; }
  void OnUploadClosed(const UploadClosed& event) override;
  void OnSessionEvent(const SessionEvent& event) override;

 private:
  FileEventListener* next_;
};

}  // namespace fordeler
