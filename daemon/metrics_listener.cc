#include "daemon/metrics_listener.h"

namespace fordeler {

void MetricsListener::OnSessionEvent(const SessionEvent& event) {
  if (event.kind == SessionEvent::Kind::kLoginFailed) metrics_->CountAuthenticationFailure();
  next_->OnSessionEvent(event);
}

}  // namespace fordeler
