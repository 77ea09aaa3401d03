// Small helpers for the server-side HTML of the status page: escaping, the page frame with its
// inline style (no scripts, fonts or external resources: it works offline under a
// Content-Security-Policy of default-src 'none'), state badges and the deliveries chart.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/records.h"
#include "http/status_model.h"

namespace fordeler {

// Escapes & < > " ' for use in text and in quoted attribute values; what ShowableText escapes
// (bytes that are not UTF-8, control characters) is shown as "\\xNN".
std::string HtmlEscape(std::string_view text);
// A whole page: doctype, <head> with title and the inline style, <body> holding `body`.
std::string HtmlPage(std::string_view title, std::string_view body);
// <span class="state state-late">LATE</span>: the colour and the word.
std::string StateBadge(const std::string& state);
// "2026-11-23 14:02:11Z", or "-" when unset.
std::string HtmlTime(const std::optional<TimePoint>& t);
// A server-side SVG bar chart of deliveries per day. Each bar is a <rect class="bar"> with
// data-day and data-count attributes and a <title> for the tooltip.
std::string DeliveriesChart(const std::vector<DayCount>& days);

}  // namespace fordeler
