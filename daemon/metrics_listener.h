// MetricsListener: a FileEventListener that counts, for /metrics, the failed authentications the
// SFTP server reports, then passes every event on. fordelerd chains it first. (The bytes of
// delivered files recipients download are counted by the delivery pipeline, which looks up the
// transfer behind a download on its workers, not on the session's thread.) Thread-safe.
#pragma once

#include "core/file_events.h"
#include "core/metrics.h"

namespace fordeler {

class MetricsListener : public FileEventListener {
 public:
  // REQUIRES: `metrics` and `next` outlive the listener.
  MetricsListener(Metrics* metrics, FileEventListener* next) : metrics_(metrics), next_(next) {}

  void OnUploadClosed(const UploadClosed& event) override { next_->OnUploadClosed(event); }
  void OnSessionEvent(const SessionEvent& event) override;

 private:
  Metrics* metrics_;
  FileEventListener* next_;
};

}  // namespace fordeler
