// One line chart as inline SVG: axes with round-number ticks, a grid, and one polyline per series,
// so that a report reads in any browser without JavaScript or network. Every point is placed
// inside the plot area (`<rect class="plot-area">`); the tests read the SVG back to check it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerotune::report {

// How a series is drawn: a plain line, a faint thin line (raw values under their smoothed curve),
// or a line with a marker at every point (few points: one per epoch).
enum class SeriesStyle : uint8_t { line, faint, markers };

struct Series {
  std::string label;   // the run's name (and what the series is), in the SVG's <title>
  std::string colour;  // CSS colour
  SeriesStyle style = SeriesStyle::line;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite ones are left out
};

struct ChartSpec {
  std::string id;  // the figure's id, for links and tests
  std::string title, x_label, y_label;
  std::string note;        // under the chart, e.g. how a curve was smoothed
  bool integer_x = false;  // ticks on whole numbers only (epochs)
  std::vector<Series> series;
};

// `<figure class="chart" id=...>` holding the SVG and its caption. A chart without any finite
// point says "no data" in its plot area.
std::string render_chart(const ChartSpec& chart);

// Round tick values covering [lo, hi]: about `target` of them, at 1, 2 or 5 times a power of ten.
std::vector<double> nice_ticks(double lo, double hi, int target, bool integer_only);


// A number in at most `digits` significant digits, without trailing zeros ("0.0001", "2.5e+04").
std::string short_number(double x, int digits = 4);

}  // namespace zerotune::report
