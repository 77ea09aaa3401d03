// fordeler_bench_fill_audit DB COUNT: writes COUNT transfers into the audit database DB (created
// if missing) through AuditStore, as a month of traffic looks: 10 routes of 5 senders to 2
// recipients each, received evenly over the last 30 days; 90% delivered (the last 2 days' not
// yet picked up), 8% rejected before routing, 2% that failed once (event `failed`) and were then
// delivered; 3 to 4 events per transfer and a login per 20 transfers. Delivered transfers have a
// digest, in their row and in their `delivered` events as fordelerd writes it (chain.h
// DigestFields). For bench/cli_queries.sh.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "audit/audit_store.h"
#include "audit/chain.h"
#include "core/env.h"
#include "core/sha256.h"

namespace {

using namespace fordeler;

std::string Uuid(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012d",
                static_cast<unsigned>(i * 2654435761u), i);
  return buf;
}

void AddTransfer(Batch& b, int i, int count, TimePoint now) {
  using std::chrono::milliseconds;
  auto age = milliseconds(int64_t{30} * 86'400'000 * (count - i) / count);
  int route = i % 10;
  TransferRecord t;
  t.uuid = Uuid(i);
  t.sender = "sender-" + std::to_string(route % 5);
  t.name = "extract_" + std::to_string(i) + ".csv";
  t.trigger_name = t.name + ".trigger";
  t.received_at = now - age;
  t.step = TransferStep::kDone;
  t.trigger_xml = "<Trigger/>";
  b.AddEvent("received", t.uuid, t.sender, "trigger=" + t.trigger_name);
  if (i % 100 < 8) {
    t.state = TransferState::kRejected;
    t.error_code = 2002;
    t.error_description = "no route";
    b.PutTransfer(t).AddEvent("rejected", t.uuid, t.sender, "code=2002");
    return;
  }
  t.state = TransferState::kDelivered;
  t.data_area = "area-" + std::to_string(route % 5);
  t.route_ids = {"route-" + std::to_string(route)};
  t.size = 1000;
  t.sha256 = ToHex(Sha256::Of(t.name));
  b.PutTransfer(t);
  if (i % 100 >= 98) b.AddEvent("failed", t.uuid, t.sender, "step=spooled");
  for (int r = 0; r < 2; ++r) {
    DeliveryRecord d;
    d.transfer_uuid = t.uuid;
    d.recipient = "recipient-" + std::to_string((route + r) % 4);
    d.name_in_in = t.name;
    d.delivered_at = t.received_at + milliseconds(50);
    bool fresh = age < std::chrono::hours(48);
    d.state = fresh ? DeliveryState::kDelivered : DeliveryState::kPickedUp;
    if (!fresh) d.picked_up_at = t.received_at + std::chrono::minutes(10);
    b.PutDelivery(d).AddEvent("delivered", t.uuid, d.recipient, "name=" + t.name + DigestFields(t));
  }
  if (i % 20 == 0) b.AddEvent("login", "", "recipient-" + std::to_string(i % 4), "address=::1");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fordeler_bench_fill_audit DB COUNT\n");
    return 2;
  }
  int count = std::atoi(argv[2]);
  auto store = AuditStore::Open(argv[1], Env::Default());
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  TimePoint now = Env::Default()->Now();
  for (int start = 0; start < count; start += 1000) {
    Batch b;
    for (int i = start; i < std::min(count, start + 1000); ++i) AddTransfer(b, i, count, now);
    Status s = (*store)->Commit(std::move(b));
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  (*store)->Close();
  return 0;
}
