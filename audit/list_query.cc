#include "audit/list_query.h"

#include "audit/sql.h"

namespace fordeler {

void ListQuery::BindTo(Stmt& stmt) const {
  int i = 1;
  for (const auto& p : params) {
    if (const auto* text = std::get_if<std::string>(&p)) {
      stmt.Bind(i++, std::string_view(*text));
    } else {
      stmt.Bind(i++, std::get<int64_t>(p));
    }
  }
}

ListQuery BuildListQuery(const TransferFilter& filter) {
  ListQuery q;
  bool by_route = filter.route.has_value();
  q.sql = by_route ? sql::kSelectTransfersOfRoute : sql::kSelectTransferColumns;
  if (by_route) q.params.emplace_back(*filter.route);
  bool first = !by_route;
  auto where = [&](const char* fragment, std::string value) {
    q.sql += first ? " WHERE " : " AND ";
    q.sql += fragment;
    q.params.emplace_back(std::move(value));
    first = false;
  };
  if (filter.since) {
    where(by_route ? sql::kWhereRouteSince : sql::kWhereSince, FormatTime(*filter.since));
  }
  if (filter.state) where(sql::kWhereState, std::string(ToString(*filter.state)));
  if (filter.sender) where(sql::kWhereSender, *filter.sender);
  if (filter.data_area) where(sql::kWhereDataArea, *filter.data_area);
  q.sql += by_route ? sql::kRouteListTail : sql::kListTail;
  q.params.emplace_back(static_cast<int64_t>(filter.limit));
  return q;
}

}  // namespace fordeler
