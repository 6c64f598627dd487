// The report page: everything taken from a run is escaped, each chart has one series per run (two
// for the loss: raw and smoothed), and every point lands inside the plot area where the axes' own
// tick labels say its value is. The SVG is read back by plain string search over its tags and
// attributes, independently of the code that wrote it.
#include "report/html_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/text.h"
#include "report/svg_chart.h"

namespace zerotune::report {
namespace {

StepPoint step(int64_t s, double loss, double lr, double grad_norm, double tokens_per_s) {
  return StepPoint{s, 0, loss, lr, grad_norm, tokens_per_s, 1.0};
}

EpochPoint epoch(int64_t e, double eval_loss, double accuracy) {
  return EpochPoint{e, eval_loss, std::exp(eval_loss), accuracy, 10.0, 2.0, -1};
}

std::vector<RunData> two_runs() {
  RunData a, b;
  a.name = "alpha";
  a.dir = "runs/alpha";
  const double lr_a[] = {0.001, 0.002, 0.003, 0.002, 0.001};
  for (int64_t s = 1; s <= 5; ++s) {
    a.steps.push_back(step(s, 3.0 - 0.25 * s, lr_a[s - 1], 0.5 + 0.1 * s, 1000.0 + 10 * s));
  }
  a.epochs = {epoch(0, 2.5, 0.125), epoch(1, 2.0, 0.375), epoch(2, 1.75, 0.5)};
  b.name = "beta";
  b.dir = "runs/beta";
  for (int64_t s = 1; s <= 3; ++s) b.steps.push_back(step(s, 3.5 - 0.5 * s, 0.0005 * s, 2.0, 800));
  b.epochs = {epoch(0, 2.75, NAN)};
  return {a, b};
}

std::string chart_of(const std::string& page, const std::string& id) {
  const size_t begin = page.find("<figure class=\"chart\" id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  return page.substr(begin, page.find("</figure>", begin) - begin);
}

struct Rect {
  double x, y, w, h;
};

// The starts of the tags that begin with `prefix`, in document order.
std::vector<size_t> tags_starting(const std::string& svg, const std::string& prefix) {
  std::vector<size_t> starts;
  for (size_t at = svg.find(prefix); at != std::string::npos; at = svg.find(prefix, at + 1)) {
    starts.push_back(at);
  }
  return starts;
}

// The value of attribute `name` of the tag starting at `tag`, or "" when it has none.
std::string attribute(const std::string& svg, size_t tag, const std::string& name) {
  const size_t tag_end = svg.find('>', tag);
  const size_t at = svg.find(" " + name + "=\"", tag);
  if (at == std::string::npos || at > tag_end) return "";
  const size_t begin = at + name.size() + 3;
  return svg.substr(begin, svg.find('"', begin) - begin);
}

double number_attribute(const std::string& svg, size_t tag, const std::string& name) {
  const std::string value = attribute(svg, tag, name);
  EXPECT_FALSE(value.empty()) << name << " missing in " << svg.substr(tag, 120);
  return value.empty() ? NAN : std::stod(value);
}

Rect plot_area(const std::string& svg) {
  const std::vector<size_t> found = tags_starting(svg, "<rect class=\"plot-area\"");
  EXPECT_EQ(found.size(), 1u) << svg.substr(0, 300);
  if (found.empty()) return {NAN, NAN, NAN, NAN};
  const size_t tag = found.front();
  return {number_attribute(svg, tag, "x"), number_attribute(svg, tag, "y"),
          number_attribute(svg, tag, "width"), number_attribute(svg, tag, "height")};
}

using Points = std::vector<std::pair<double, double>>;

// "x1,y1 x2,y2 ..." as points.
Points parse_points(const std::string& text) {
  Points points;
  std::istringstream pairs(text);
  std::string pair;
  while (pairs >> pair) {
    const size_t comma = pair.find(',');
    EXPECT_NE(comma, std::string::npos) << pair;
    if (comma == std::string::npos) continue;
    points.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return points;
}

// Every polyline's points, in document order; `faint` counts the raw-loss lines.
std::vector<Points> polylines(const std::string& svg, int* faint = nullptr) {
  std::vector<Points> out;
  for (const size_t tag : tags_starting(svg, "<polyline class=\"series")) {
    if (faint && attribute(svg, tag, "class").find("faint") != std::string::npos) ++*faint;
    out.push_back(parse_points(attribute(svg, tag, "points")));
  }
  return out;
}

Points markers(const std::string& svg) {
  Points out;
  for (const size_t tag : tags_starting(svg, "<circle class=\"marker\"")) {
    out.emplace_back(number_attribute(svg, tag, "cx"), number_attribute(svg, tag, "cy"));
  }
  return out;
}

// An axis read from its tick labels: value = offset + scale * coordinate.
struct Axis {
  double offset = 0, scale = 0;
  double value(double coordinate) const { return offset + scale * coordinate; }
};

// `anchor` "end": the y axis's labels (their baseline sits 4 units below the tick); "middle": x.
Axis axis_from_ticks(const std::string& svg, const std::string& anchor) {
  std::vector<std::pair<double, double>> ticks;  // (coordinate, value)
  for (const size_t tag : tags_starting(svg, "<text x=")) {
    if (attribute(svg, tag, "text-anchor") != anchor || attribute(svg, tag, "class") != "tick") {
      continue;
    }
    const size_t label = svg.find('>', tag) + 1;
    const double coordinate = anchor == "end" ? number_attribute(svg, tag, "y") - 4
                                              : number_attribute(svg, tag, "x");
    ticks.emplace_back(coordinate, std::stod(svg.substr(label, svg.find('<', label) - label)));
  }
  EXPECT_GE(ticks.size(), 2u) << anchor;
  if (ticks.size() < 2) return {};
  const auto& [c0, v0] = ticks.front();
  const auto& [c1, v1] = ticks.back();
  Axis axis;
  axis.scale = (v1 - v0) / (c1 - c0);
  axis.offset = v0 - axis.scale * c0;
  return axis;
}

void expect_inside(const Points& points, const Rect& r, const std::string& what) {
  for (const auto& [x, y] : points) {
    EXPECT_GE(x, r.x) << what;
    EXPECT_LE(x, r.x + r.w) << what;
    EXPECT_GE(y, r.y) << what;
    EXPECT_LE(y, r.y + r.h) << what;
  }
}

// The points read back through the axes equal the data, within the SVG's 0.1-unit rounding.
void expect_values(const Points& drawn, const Points& data, const std::string& svg) {
  const Axis x = axis_from_ticks(svg, "middle"), y = axis_from_ticks(svg, "end");
  ASSERT_EQ(drawn.size(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    EXPECT_NEAR(x.value(drawn[i].first), data[i].first, std::fabs(x.scale) * 0.25) << i;
    EXPECT_NEAR(y.value(drawn[i].second), data[i].second, std::fabs(y.scale) * 0.25) << i;
  }
}

TEST(ReportPage, EachChartHasOneSeriesPerRunAndTheLossTwo) {
  const std::string page = render_report(two_runs(), "now");
  int faint = 0;
  EXPECT_EQ(polylines(chart_of(page, "train-loss"), &faint).size(), 4u);
  EXPECT_EQ(faint, 2);
  for (const char* id : {"lr", "grad-norm", "tokens-per-s", "eval-loss", "perplexity"}) {
    EXPECT_EQ(polylines(chart_of(page, id)).size(), 2u) << id;
  }
  // Only alpha was evaluated for accuracy: one line, a marker per epoch.
  const std::string accuracy = chart_of(page, "accuracy");
  EXPECT_EQ(polylines(accuracy).size(), 1u);
  EXPECT_EQ(markers(accuracy).size(), 3u);
  // Without any accuracy there is no accuracy chart.
  std::vector<RunData> runs = two_runs();
  for (RunData& run : runs) {
    for (EpochPoint& e : run.epochs) e.accuracy = NAN;
  }
  const std::string without = render_report(runs, "now");
  EXPECT_EQ(chart_of(without, "accuracy"), "");
  EXPECT_EQ(without.find("best accuracy"), std::string::npos);
  EXPECT_NE(chart_of(without, "perplexity"), "");
}

TEST(ReportPage, PointsSitInsideTheAxesWhereTheTicksSayTheyAre) {
  const std::vector<RunData> runs = two_runs();
  const std::string page = render_report(runs, "now");
  for (const char* id :
       {"train-loss", "lr", "grad-norm", "tokens-per-s", "eval-loss", "perplexity", "accuracy"}) {
    const std::string svg = chart_of(page, id);
    const Rect area = plot_area(svg);
    for (const Points& line : polylines(svg)) expect_inside(line, area, id);
    expect_inside(markers(svg), area, id);
  }
  const std::string lr = chart_of(page, "lr");
  const std::vector<Points> lines = polylines(lr);
  ASSERT_EQ(lines.size(), 2u);
  for (size_t r = 0; r < 2; ++r) {
    Points data;
    for (const StepPoint& p : runs[r].steps) data.emplace_back(p.step, p.lr);
    expect_values(lines[r], data, lr);
  }
  const std::string accuracy = chart_of(page, "accuracy");
  Points percent;
  for (const EpochPoint& e : runs[0].epochs) percent.emplace_back(e.epoch, 100 * e.accuracy);
  expect_values(polylines(accuracy).at(0), percent, accuracy);
}

TEST(ReportPage, TextFromTheRunIsEscaped) {
  std::vector<RunData> runs = two_runs();
  runs[0].name = "<b>\"x\"&'y'</b>";
  runs[0].settings = {{"--output_dir", "<script>alert(1)</script>"}};
  runs[0].notes = {"a note with <i>tags</i>"};
  runs[1].model = {{"model_type", "llama\"><svg onload=alert(2)>"}};
  const std::string page = render_report(runs, "<now>");
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<b>\"x"), std::string::npos);
  EXPECT_EQ(page.find("<i>"), std::string::npos);
  EXPECT_EQ(page.find("<svg onload"), std::string::npos);
  EXPECT_EQ(page.find("<now>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(page.find("&lt;b&gt;&#34;x&#34;&amp;&#39;y&#39;&lt;/b&gt;"), std::string::npos);
  // Self-contained: nothing is loaded from anywhere.
  for (const char* fetch : {" src=", " href=", "@import", "url("}) {
    EXPECT_EQ(page.find(fetch), std::string::npos) << fetch;
  }
}

// The runs table: alpha's best accuracy is its last epoch's 0.5, shown in percent; beta has none.
TEST(ReportPage, RunsTableShowsTheBestAccuracy) {
  const std::string page = render_report(two_runs(), "now");
  const size_t begin = page.find("<table id=\"runs\">");
  ASSERT_NE(begin, std::string::npos);
  const std::string table = page.substr(begin, page.find("</table>", begin) - begin);
  EXPECT_NE(table.find("<th>best accuracy (%)</th>"), std::string::npos);
  const size_t alpha = table.find("alpha"), beta = table.find("beta");
  ASSERT_LT(alpha, beta);
  // alpha's row: best eval loss 1.75, then best accuracy 50.
  EXPECT_NE(table.substr(alpha, beta - alpha)
                .find("<td class=\"num\">1.75</td><td class=\"num\">50</td>"),
            std::string::npos);
  EXPECT_NE(table.substr(beta).find("<td class=\"num\">2.75</td><td class=\"num\"></td>"),
            std::string::npos);
}

TEST(ReportPage, SettingsThatDifferBetweenRunsAreMarked) {
  std::vector<RunData> runs = two_runs();
  runs[0].settings = {{"--lr", "0.003"}, {"--seed", "7"}};
  runs[1].settings = {{"--lr", "0.001"}, {"--seed", "7"}};
  const std::string page = render_report(runs, "now");
  EXPECT_NE(page.find("<tr class=\"differs\"><th>--lr</th>"), std::string::npos);
  EXPECT_NE(page.find("<tr><th>--seed</th>"), std::string::npos);
}

TEST(ReportPage, AChartWithoutDataSaysSo) {
  std::vector<RunData> runs = two_runs();
  for (RunData& run : runs) {
    for (StepPoint& p : run.steps) p.grad_norm = NAN;
  }
  const std::string svg = chart_of(render_report(runs, "now"), "grad-norm");
  EXPECT_NE(svg.find("no data"), std::string::npos);
  EXPECT_TRUE(polylines(svg).empty());
}

// TensorBoard's debiased EMA written out as its weighted sum.
TEST(ReportPage, SmoothingIsTheDebiasedExponentialAverage) {
  const std::vector<double> values = {4.0, 3.0, NAN, 3.5, 1.0, 2.0};
  const double w = 0.8;
  const std::vector<double> smoothed = smooth_ema(values, w);
  std::vector<double> finite;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(smoothed[i]));
      continue;
    }
    finite.push_back(values[i]);
    const size_t n = finite.size();
    double sum = 0, weights = 0;
    for (size_t k = 0; k < n; ++k) {
      const double weight = std::pow(w, static_cast<double>(n - 1 - k)) * (1 - w);
      sum += weight * finite[k];
      weights += weight;
    }
    EXPECT_NEAR(smoothed[i], sum / weights, 1e-12) << i;
  }
  EXPECT_NEAR(loss_smoothing_weight(10), 1.0 - 2.0 / 3.0, 1e-12);      // span 2 at least
  EXPECT_NEAR(loss_smoothing_weight(5000), 1.0 - 2.0 / 101.0, 1e-12);  // span 100
}

// A long run's curve is thinned to at most 2000 points per series, and still ends at its last step.
TEST(ReportPage, LongRunsAreThinnedAndEndAtTheLastStep) {
  std::vector<RunData> runs = two_runs();
  runs.resize(1);
  runs[0].steps.clear();
  for (int64_t s = 1; s <= 5001; ++s) runs[0].steps.push_back(step(s, 1.0, 1e-3 * s, 1.0, 10.0));
  const std::string svg = chart_of(render_report(runs, "now"), "lr");
  const std::vector<Points> lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LE(lines[0].size(), 2001u);
  EXPECT_GE(lines[0].size(), 1000u);
  const Axis x = axis_from_ticks(svg, "middle"), y = axis_from_ticks(svg, "end");
  EXPECT_NEAR(x.value(lines[0].back().first), 5001, std::fabs(x.scale) * 0.25);
  EXPECT_NEAR(y.value(lines[0].back().second), 5.001, std::fabs(y.scale) * 0.25);
}

// Two folders with one name (a/out, b/out) appear under their paths, not twice as "out".
TEST(ReportPage, RunsSharingAFolderNameAreToldApartByPath) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / "zt-report-same-name";
  fs::remove_all(root);
  for (const char* parent : {"a", "b"}) {
    fs::create_directories(root / parent / "out");
    std::ofstream(root / parent / "out" / "metrics.jsonl")
        << R"({"type":"train","step":1,"loss":2.0,"lr":0.001})"
        << "\n";
  }
  const std::string a = (root / "a" / "out").string(), b = (root / "b" / "out").string();
  write_report({a, b}, (root / "page.html").string());
  std::ifstream in(root / "page.html");
  std::stringstream page;
  page << in.rdbuf();
  EXPECT_NE(page.str().find("<title>" + escape_markup(a) + "</title>"), std::string::npos);
  EXPECT_NE(page.str().find("<title>" + escape_markup(b) + "</title>"), std::string::npos);
}

TEST(ReportChart, TicksAreRoundAndCoverTheRange) {
  const double ranges[][2] = {{0.0, 1.0}, {0.00013, 0.0031}, {-3.2, 47.0}, {980, 1020}, {1, 18}};
  for (const auto& r : ranges) {
    const std::vector<double> ticks = nice_ticks(r[0], r[1], 5, false);
    ASSERT_GE(ticks.size(), 3u);
    EXPECT_LE(ticks.size(), 12u);
    EXPECT_LE(ticks.front(), r[0]);
    EXPECT_GE(ticks.back(), r[1]);
    const double step = ticks[1] - ticks[0];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
    EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-9 || std::fabs(mantissa - 2) < 1e-9 ||
                std::fabs(mantissa - 5) < 1e-9)
        << step;
  }
  for (const double t : nice_ticks(0, 3, 6, true)) EXPECT_EQ(t, std::round(t));
}

// A one-step run: its smoothed loss may differ from the raw loss in the last bit. The chart
// treats that as one value inside its axis, with a handful of ticks, and finishes.
TEST(ReportChart, ValuesOneRoundingApartDrawAsAFlatLine) {
  const double loss = 6.035790112710768, smoothed = std::nextafter(loss, 10.0);
  ChartSpec chart{"one-step", "loss", "step", "loss", "", false,
                  {Series{"raw", "#000", SeriesStyle::faint, {{1.0, loss}}},
                   Series{"smoothed", "#000", SeriesStyle::line, {{1.0, smoothed}}}}};
  const std::string svg = render_chart(chart);
  const Rect area = plot_area(svg);
  const Points drawn = polylines(svg)[0];
  ASSERT_EQ(drawn.size(), 1u);
  expect_inside(drawn, area, "the one point");
  EXPECT_GT(drawn[0].second, area.y + area.h / 4);  // well inside, not on an edge
  EXPECT_LT(drawn[0].second, area.y + area.h * 3 / 4);
  EXPECT_LE(tags_starting(svg, "<text x=").size(), 20u);
  EXPECT_EQ(nice_ticks(loss, smoothed, 5, false), (std::vector<double>{loss, smoothed}));
}

}  // namespace
}  // namespace zerotune::report
