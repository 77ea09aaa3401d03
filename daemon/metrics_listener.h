// MetricsListener: a FileEventListener that counts, for /metrics, what the SFTP server reports
// about sessions — failed authentications, and the bytes of delivered files recipients download
// (the size of the transfer behind IN/<name>, looked up in the audit log when the download is
// reported) — then passes every event on. fordelerd chains it first. Thread-safe.
#pragma once

#include "audit/audit_store.h"
#include "core/file_events.h"
#include "core/metrics.h"

namespace fordeler {

class MetricsListener : public FileEventListener {
 public:
  // REQUIRES: `metrics` and `next` outlive the listener.
  MetricsListener(Metrics* metrics, FileEventListener* next) : metrics_(metrics), next_(next) {}
  // REQUIRES: called before any event arrives; `audit` may be null (no bytes out then).
  void set_audit(AuditStore* audit) { audit_ = audit; }

  void OnUploadClosed(const UploadClosed& event) override { next_->OnUploadClosed(event); }
  void OnSessionEvent(const SessionEvent& event) override;

 private:
  Metrics* metrics_;
  FileEventListener* next_;
  AuditStore* audit_ = nullptr;
};

}  // namespace fordeler
