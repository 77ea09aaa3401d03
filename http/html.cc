#include "http/html.h"

#include <algorithm>
#include <cctype>

#include "core/names.h"

namespace fordeler {
namespace {

// Colours with enough contrast for their text; the word is always shown beside the colour.
constexpr std::string_view kStyle = R"(
body{font-family:sans-serif;margin:1.5em;color:#1a1a1a;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.state{display:inline-block;padding:.1em .5em;border-radius:.3em;font-weight:bold}
.state-ok{background:#d7f0d7;color:#0b4d0b}
.state-late{background:#fff0c2;color:#6b4a00}
.state-missing{background:#ffd9b3;color:#7a2e00}
.state-failed{background:#f8c9c9;color:#7a0000}
.muted{color:#595959}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.5em}
svg .bar{fill:#2b6cb0}svg .axis{stroke:#888}svg text{font-size:10px;fill:#333}
nav a{margin-right:1em}
)";

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : ShowableText(text)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string HtmlPage(std::string_view title, std::string_view body) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  out += "<title>" + HtmlEscape(title) + "</title><style>";
  out += kStyle;
  out +=
      "</style></head><body>\n<nav><a href=\"/\">All routes</a>"
      "<a href=\"/api/routes\">JSON</a><a href=\"/metrics\">Metrics</a></nav>\n";
  out += body;
  out += "\n</body></html>\n";
  return out;
}

std::string StateBadge(const std::string& state) {
  std::string lower = state;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return "<span class=\"state state-" + HtmlEscape(lower) + "\" data-state=\"" + HtmlEscape(state) +
         "\">" + HtmlEscape(state) + "</span>";
}

std::string HtmlTime(const std::optional<TimePoint>& t) {
  if (!t) return "-";
  std::string text = FormatTime(*t);  // 2026-11-23T14:02:11.123Z
  if (text.size() >= 19) text = text.substr(0, 10) + " " + text.substr(11, 8) + "Z";
  return HtmlEscape(text);
}

std::string DeliveriesChart(const std::vector<DayCount>& days) {
  constexpr int kBar = 20, kGap = 4, kHeight = 120, kLeft = 30, kTop = 10, kBottom = 40;
  int64_t max = 1;
  for (const DayCount& d : days) max = std::max(max, d.count);
  int width = kLeft + static_cast<int>(days.size()) * (kBar + kGap) + kGap + 24;  // last label
  std::string out = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    std::to_string(width) + "\" height=\"" +
                    std::to_string(kTop + kHeight + kBottom) +
                    "\" role=\"img\" aria-label=\"Deliveries per day, last " +
                    std::to_string(days.size()) + " days\">";
  out += "<line class=\"axis\" x1=\"" + std::to_string(kLeft) + "\" y1=\"" +
         std::to_string(kTop + kHeight) + "\" x2=\"" + std::to_string(width) + "\" y2=\"" +
         std::to_string(kTop + kHeight) + "\"/>";
  out += "<text x=\"2\" y=\"" + std::to_string(kTop + 10) + "\">" + std::to_string(max) +
         "</text><text x=\"2\" y=\"" + std::to_string(kTop + kHeight) + "\">0</text>";
  for (size_t i = 0; i < days.size(); ++i) {
    const DayCount& d = days[i];
    int h = static_cast<int>(d.count * kHeight / max);
    if (d.count > 0 && h < 2) h = 2;
    int x = kLeft + kGap + static_cast<int>(i) * (kBar + kGap);
    out += "<rect class=\"bar\" data-day=\"" + HtmlEscape(d.day) + "\" data-count=\"" +
           std::to_string(d.count) + "\" x=\"" + std::to_string(x) + "\" y=\"" +
           std::to_string(kTop + kHeight - h) + "\" width=\"" + std::to_string(kBar) +
           "\" height=\"" + std::to_string(h) + "\"><title>" + HtmlEscape(d.day) + ": " +
           std::to_string(d.count) + "</title></rect>";
    if (i % 5 == 0 || i + 1 == days.size()) {
      out += "<text x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(kTop + kHeight + 14) +
             "\">" + HtmlEscape(d.day.substr(5)) + "</text>";
    }
  }
  out += "</svg>";
  return out;
}

}  // namespace fordeler
