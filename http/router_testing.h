// A status fixture for the http/ tests: a real audit log in a temporary directory holding two
// delivered transfers and one rejected one on route "route-a", and a Router over it.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "audit/audit_testing.h"
#include "http/router.h"

namespace fordeler::testing {

class StatusFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = std::make_shared<Config>();
    config->storage.root = dir_.File("");
    config->server.time_zone = "UTC";
    Route route;
    route.id = "route-a";
    route.data_area = "oekonomi";
    route.sender = "kmd";
    route.authorities = {"*"};
    route.recipients = {"flis"};
    config->routes.push_back(route);
    config_ = config;
    env_.Set(now_);
    auto store = AuditStore::Open(dir_.File("audit.db"), &env_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    audit_ = std::move(*store);
    for (int i = 0; i < 3; ++i) Add(i);
    StatusSources sources;
    sources.config = [this] { return config_; };
    sources.audit = audit_.get();
    sources.metrics = &metrics_;
    sources.active_sessions = [] { return size_t{7}; };
    sources.delivery_load = [] { return std::make_pair(size_t{12}, size_t{3}); };
    sources.now = [this] { return now_; };
    router_ = std::make_unique<Router>(std::move(sources));
  }

  void Add(int i) {
    TransferRecord t;
    t.uuid = "0000000" + std::to_string(i) + "-0000-4000-8000-000000000000";
    t.sender = "kmd";
    t.name = "secret-name-" + std::to_string(i) + ".csv";
    t.trigger_name = t.name + ".trigger";
    t.data_area = "oekonomi";
    t.route_ids = {"route-a"};
    t.received_at = now_ - std::chrono::minutes(1 + i);  // the rejected one is the oldest
    t.step = TransferStep::kDone;
    t.receipt_xml = "<receipt/>";
    t.size = 10;
    Batch batch;
    if (i < 2) {
      t.state = TransferState::kDelivered;
      DeliveryRecord d{t.uuid,        "flis",       t.name,       DeliveryState::kDelivered,
                       t.received_at, std::nullopt, std::nullopt, std::nullopt};
      batch.PutTransfer(t).PutDelivery(d).AddEvent("delivered", t.uuid, "flis", "name=x");
    } else {
      t.state = TransferState::kRejected;
      t.error_code = 1005;
      t.error_description = "size differs";
      batch.PutTransfer(t).AddEvent("rejected", t.uuid, "kmd", "code=1005");
    }
    ASSERT_TRUE(audit_->Commit(std::move(batch)).ok());
    uuids_.push_back(t.uuid);
  }

  const Router& router() const { return *router_; }

  TimePoint now_ = TimePoint(std::chrono::seconds(1'795'000'000));  // 2026-11-18 12:26 UTC
  TempDir dir_;
  FakeEnv env_;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<AuditStore> audit_;
  Metrics metrics_;
  std::unique_ptr<Router> router_;
  std::vector<std::string> uuids_;
};

}  // namespace fordeler::testing
