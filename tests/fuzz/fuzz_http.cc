// libFuzzer target: what an HTTP client controls on the status server before and after login.
// The input is "METHOD\nTARGET\nAUTHORIZATION": the method and request target go to the router
// over a real audit log (a delivered and a rejected transfer on one route), the Authorization
// header's value to basic authentication. Every reply must carry a real status and a body, and
// no header value may let a client log in but the configured user with its password.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/env.h"
#include "http/basic_auth.h"
#include "http/router.h"

namespace {

using namespace fordeler;

struct World {
  std::shared_ptr<const Config> config;
  std::unique_ptr<AuditStore> audit;
  std::unique_ptr<Router> router;
};

World* MakeWorld() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/fordeler-fuzz-http-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) std::abort();
  auto config = std::make_shared<Config>();
  config->storage.root = dir;
  config->server.time_zone = "UTC";
  Route route;
  route.id = "route-a";
  route.data_area = "oekonomi";
  route.sender = "kmd";
  route.authorities = {"*"};
  route.recipients = {"flis"};
  config->routes.push_back(route);
  auto* w = new World;
  w->config = config;
  auto store = AuditStore::Open(dir + "/audit.db", Env::Default());
  if (!store.ok()) std::abort();
  w->audit = std::move(*store);
  for (int i = 0; i < 2; ++i) {
    TransferRecord t;
    t.uuid = "0000000" + std::to_string(i) + "-0000-4000-8000-000000000000";
    t.sender = "kmd";
    t.name = "file-" + std::to_string(i) + ".csv";
    t.trigger_name = t.name + ".trigger";
    t.data_area = "oekonomi";
    t.route_ids = {"route-a"};
    t.received_at = std::chrono::system_clock::now();
    t.step = TransferStep::kDone;
    Batch batch;
    if (i == 0) {
      t.state = TransferState::kDelivered;
      batch.PutTransfer(t).AddEvent("delivered", t.uuid, "flis", "name=file-0.csv");
    } else {
      t.state = TransferState::kRejected;
      t.error_code = 1005;
      t.error_description = "size differs";
      batch.PutTransfer(t).AddEvent("rejected", t.uuid, "kmd", "code=1005");
    }
    if (!w->audit->Commit(std::move(batch)).ok()) std::abort();
  }
  StatusSources sources;
  sources.config = [config] { return std::shared_ptr<const Config>(config); };
  sources.audit = w->audit.get();
  w->router = std::make_unique<Router>(std::move(sources));
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = MakeWorld();
  // Few rounds, so that inputs naming the user do not make every run slow.
  static const BasicAuth auth(
      "operator",
      "$6$rounds=1000$fordelerfuzz$YxO4MGchBTWVwLrZPIC34/FHI4I1tZZSwYO9145X6nrHO45WK/"
      "9H8obZ6F.2WRWBt0WLEm2gaS1m/XTSJ8EET1");  // of "fuzz-password"
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t first = input.find('\n');
  std::string_view method = input.substr(0, first);
  std::string_view rest = first == std::string_view::npos ? "" : input.substr(first + 1);
  size_t second = rest.find('\n');
  std::string_view target = rest.substr(0, second);
  std::string_view authorization = second == std::string_view::npos ? "" : rest.substr(second + 1);

  HttpReply reply = world->router->Handle(method, target);
  if (reply.status < 200 || reply.status > 599) std::abort();
  if (reply.status != 204 && reply.status != 304 && reply.body.empty()) std::abort();
  if (auth.Allows(authorization)) {
    // Only "Basic " and base64 of exactly "operator:fuzz-password" may pass.
    std::string decoded;
    std::string_view b64 = authorization.substr(std::min<size_t>(6, authorization.size()));
    if (!DecodeBase64(b64, &decoded) || decoded != "operator:fuzz-password") std::abort();
  }
  return 0;
}
