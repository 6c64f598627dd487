#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/text.h"

namespace zerotune::report {

namespace {

// The SVG's size and the plot area inside it, in SVG units.
constexpr double kWidth = 560, kHeight = 300;
constexpr double kLeft = 68, kRight = 532, kTop = 16, kBottom = 250;
// More points than this in one series are thinned to every k-th: a polyline wider than the chart
// in points shows nothing more, and a long run's page stays small.
constexpr size_t kMaxPointsPerSeries = 2000;

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

// Data coordinates to SVG coordinates.
struct Frame {
  Range x, y;
  double px(double v) const { return kLeft + (v - x.lo) / (x.hi - x.lo) * (kRight - kLeft); }
  double py(double v) const { return kBottom - (v - y.lo) / (y.hi - y.lo) * (kBottom - kTop); }
};

bool finite_point(const std::pair<double, double>& p) {
  return std::isfinite(p.first) && std::isfinite(p.second);
}

// A flat range is widened so that its one value sits in the middle of the axis. A range of a few
// parts in 1e9 counts as flat: a one-step run's smoothed loss can differ from the raw one in the
// last bit, and no tick labels could tell such ends apart.
void widen_flat(Range& r, bool integer_only) {
  const double scale = std::max(std::fabs(r.lo), std::fabs(r.hi));
  if (r.hi - r.lo > 1e-9 * scale) return;
  const double middle = 0.5 * (r.lo + r.hi);
  const double pad = integer_only ? 1.0 : (scale == 0.0 ? 1.0 : scale * 0.5);
  r.lo = middle - pad;
  r.hi = middle + pad;
}

// The axes' ranges: the data's, widened to the outer ticks so that every point is inside.
Frame frame_for(const ChartSpec& chart, std::vector<double>* x_ticks,
                std::vector<double>* y_ticks) {
  Frame f;
  for (const Series& s : chart.series) {
    for (const auto& p : s.points) {
      if (!finite_point(p)) continue;
      f.x.add(p.first);
      f.y.add(p.second);
    }
  }
  if (f.x.empty()) return f;
  widen_flat(f.x, chart.integer_x);
  widen_flat(f.y, false);
  *x_ticks = nice_ticks(f.x.lo, f.x.hi, 6, chart.integer_x);
  *y_ticks = nice_ticks(f.y.lo, f.y.hi, 5, false);
  f.y.lo = std::min(f.y.lo, y_ticks->front());
  f.y.hi = std::max(f.y.hi, y_ticks->back());
  // The x axis spans the data exactly (steps start at 1), its ticks those inside it.
  std::erase_if(*x_ticks, [&](double t) { return t < f.x.lo || t > f.x.hi; });
  return f;
}

std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string text_element(double x, double y, const char* anchor, const std::string& text,
                         const char* extra = "") {
  return "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" text-anchor=\"" + anchor + "\"" +
         extra + ">" + escape_markup(text) + "</text>";
}

std::string render_axes(const ChartSpec& chart, const Frame& f, const std::vector<double>& x_ticks,
                        const std::vector<double>& y_ticks) {
  std::string out = "<rect class=\"plot-area\" x=\"" + coord(kLeft) + "\" y=\"" + coord(kTop) +
                    "\" width=\"" + coord(kRight - kLeft) + "\" height=\"" + coord(kBottom - kTop) +
                    "\"/>";
  for (const double t : y_ticks) {
    const std::string y = coord(f.py(t));
    out += "<line class=\"grid\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kRight) + "\" y1=\"" +
           y + "\" y2=\"" + y + "\"/>";
    out += text_element(kLeft - 6, f.py(t) + 4, "end", short_number(t, 6), " class=\"tick\"");
  }
  for (const double t : x_ticks) {
    const std::string x = coord(f.px(t));
    out += "<line class=\"grid\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + coord(kTop) +
           "\" y2=\"" + coord(kBottom) + "\"/>";
    out += text_element(f.px(t), kBottom + 16, "middle", short_number(t, 6), " class=\"tick\"");
  }
  out += text_element((kLeft + kRight) / 2, kHeight - 12, "middle", chart.x_label,
                      " class=\"axis-label\"");
  out += "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(14 " +
         coord((kTop + kBottom) / 2) + ") rotate(-90)\">" + escape_markup(chart.y_label) + "</text>";
  return out;
}

std::string render_series(const Series& s, const Frame& f) {
  std::vector<std::pair<double, double>> points;
  for (const auto& p : s.points) {
    if (finite_point(p)) points.push_back(p);
  }
  if (points.empty()) return "";
  const size_t stride = (points.size() + kMaxPointsPerSeries - 1) / kMaxPointsPerSeries;
  std::string xy;
  for (size_t i = 0; i < points.size(); i += stride) {
    // The last point is always drawn, so that the curve ends where the run stands.
    const auto& p = i + stride >= points.size() ? points.back() : points[i];
    xy += (xy.empty() ? "" : " ") + coord(f.px(p.first)) + "," + coord(f.py(p.second));
  }
  const char* cls = s.style == SeriesStyle::faint ? "series faint" : "series";
  std::string out = "<g><title>" + escape_markup(s.label) + "</title><polyline class=\"" + cls +
                    "\" points=\"" + xy + "\" stroke=\"" + escape_markup(s.colour) + "\"/>";
  if (s.style == SeriesStyle::markers || points.size() == 1) {
    for (const auto& p : points) {
      out += "<circle class=\"marker\" cx=\"" + coord(f.px(p.first)) + "\" cy=\"" +
             coord(f.py(p.second)) + "\" r=\"3.5\" fill=\"" + escape_markup(s.colour) + "\"/>";
    }
  }
  return out + "</g>";
}

}  // namespace

std::string short_number(double x, int digits) {
  if (x == 0.0) return "0";  // also -0
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, x);
  return buf;
}

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer_only) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  // Below a part in 1e9 of the values there are no round numbers between the ends to show.
  if (hi - lo <= 1e-9 * std::max(std::fabs(lo), std::fabs(hi))) return {lo, hi};
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  if (integer_only) step = std::max(1.0, std::round(step));
  // Ticks k * step from the one at or below lo to the first at or above hi, counted in integers
  // so that a step below the values' resolution cannot stall the loop.
  const double k_first = std::floor(lo / step), k_end = std::ceil(hi / step + 0.999);
  if (!(k_end - k_first <= 4.0 * target + 4.0)) return {lo, hi};
  std::vector<double> ticks;
  for (double k = k_first; k < k_end; k += 1.0) ticks.push_back(k * step);
  return ticks;
}

std::string render_chart(const ChartSpec& chart) {
  std::vector<double> x_ticks, y_ticks;
  const Frame f = frame_for(chart, &x_ticks, &y_ticks);
  std::string svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
                    coord(kWidth) + " " + coord(kHeight) + "\" width=\"" + coord(kWidth) +
                    "\" height=\"" + coord(kHeight) + "\" role=\"img\" aria-label=\"" +
                    escape_markup(chart.title) + "\">";
  if (f.x.empty()) {
    svg += "<rect class=\"plot-area\" x=\"" + coord(kLeft) + "\" y=\"" + coord(kTop) +
           "\" width=\"" + coord(kRight - kLeft) + "\" height=\"" + coord(kBottom - kTop) + "\"/>";
    svg += text_element((kLeft + kRight) / 2, (kTop + kBottom) / 2, "middle", "no data",
                        " class=\"no-data\"");
  } else {
    svg += render_axes(chart, f, x_ticks, y_ticks);
    for (const Series& s : chart.series) svg += render_series(s, f);
    // The frame last, over grid lines and curves that reach the axes' ends.
    svg += "<rect class=\"plot-frame\" x=\"" + coord(kLeft) + "\" y=\"" + coord(kTop) +
           "\" width=\"" + coord(kRight - kLeft) + "\" height=\"" + coord(kBottom - kTop) + "\"/>";
  }
  svg += "</svg>";
  std::string caption = "<figcaption><b>" + escape_markup(chart.title) + "</b>";
  if (!chart.note.empty())
    caption += " <span class=\"note\">" + escape_markup(chart.note) + "</span>";
  return "<figure class=\"chart\" id=\"" + escape_markup(chart.id) + "\">" + svg + caption +
         "</figcaption></figure>\n";
}

}  // namespace zerotune::report
