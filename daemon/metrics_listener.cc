#include "daemon/metrics_listener.h"

namespace fordeler {

void MetricsListener::OnSessionEvent(const SessionEvent& event) {
  if (event.kind == SessionEvent::Kind::kLoginFailed) metrics_->CountAuthenticationFailure();
  if (event.kind == SessionEvent::Kind::kDownloaded && event.folder == Folder::kIn &&
      audit_ != nullptr) {
    // Before the pipeline records the pick-up: the delivery is still "delivered" here.
    auto delivery = audit_->FindDelivered(event.account, event.name);
    if (delivery.ok() && delivery->has_value()) {
      auto transfer = audit_->GetTransfer((*delivery)->transfer_uuid);
      if (transfer.ok() && transfer->has_value() && (*transfer)->size) {
        metrics_->AddBytesOut(*(*transfer)->size);
      }
    }
  }
  next_->OnSessionEvent(event);
}

}  // namespace fordeler
