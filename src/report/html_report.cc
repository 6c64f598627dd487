#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "core/check.h"
#include "core/files.h"
#include "core/json.h"
#include "core/text.h"
#include "report/svg_chart.h"

namespace zerotune::report {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStyle = R"(<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f5f5f5}td.num{text-align:right}
td:first-child{white-space:nowrap}
tr.differs td{background:#fff7e0}.swatch{display:inline-block;width:12px;height:12px;
border-radius:2px;margin-right:6px;vertical-align:middle}.charts{display:flex;flex-wrap:wrap;
gap:12px}figure.chart{margin:0;border:1px solid #eee;padding:6px;width:560px}figcaption{font-size:13px}
.note{color:#666}svg.chart .plot-area{fill:#fff;stroke:#999;shape-rendering:crispEdges}
svg.chart .plot-frame{fill:none;stroke:#999;shape-rendering:crispEdges}
svg.chart .grid{stroke:#eee;shape-rendering:crispEdges}
svg.chart text{font-size:11px;fill:#444}svg.chart .series{fill:none;stroke-width:2}
svg.chart .series.faint{stroke-width:1;stroke-opacity:.35}svg.chart .no-data{font-size:14px;
fill:#999}.notes{color:#a60}
</style>)";

std::string number_cell(double v, int digits = 4) {
  return "<td class=\"num\">" + (std::isfinite(v) ? short_number(v, digits) : "") + "</td>";
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds)) return "";
  char buf[48];
  const long long t = std::llround(seconds);
  if (seconds < 60) {
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  } else if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds", t / 3600, t % 3600 / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", t / 60, t % 60);
  }
  return buf;
}

// Wall time of what metrics.jsonl records: each evaluated epoch's training and evaluation, then the
// steps of epochs not yet evaluated.
double wall_seconds(const RunData& run) {
  double total = 0.0;
  std::set<int64_t> evaluated;
  for (const EpochPoint& e : run.epochs) {
    evaluated.insert(e.epoch);
    for (const double t : {e.train_time_s, e.eval_time_s}) total += std::isfinite(t) ? t : 0.0;
  }
  for (const StepPoint& s : run.steps) {
    if (!evaluated.count(s.epoch) && std::isfinite(s.step_time_s)) total += s.step_time_s;
  }
  return total;
}

std::string swatch(size_t i) {
  return std::string("<span class=\"swatch\" style=\"background:") + run_colour(i) + "\"></span>";
}

std::string run_progress(const RunData& run) {
  const int64_t last_step = run.steps.empty() ? 0 : run.steps.back().step;
  std::string out = "step " + std::to_string(last_step);
  if (run.total_steps > 0) out += " of " + std::to_string(run.total_steps);
  out += ", " + std::to_string(run.epochs.size()) + " epochs evaluated";
  out += run.memory.rows.empty() ? " (in progress or stopped)" : " (ended)";
  return out;
}

bool any_accuracy(const std::vector<RunData>& runs) {
  for (const RunData& run : runs) {
    for (const EpochPoint& e : run.epochs) {
      if (std::isfinite(e.accuracy)) return true;
    }
  }
  return false;
}

std::string runs_table(const std::vector<RunData>& runs) {
  std::string out =
      "<table id=\"runs\"><tr><th>run</th><th>folder</th><th>progress</th><th>wall time</th>"
      "<th>last train loss</th><th>best eval loss</th>" +
      std::string(any_accuracy(runs) ? "<th>best accuracy (%)</th>" : "") + "<th>notes</th></tr>";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunData& run = runs[i];
    double best_eval = NAN, best_accuracy = NAN;
    for (const EpochPoint& e : run.epochs) {
      if (std::isfinite(e.eval_loss) && !(best_eval <= e.eval_loss)) best_eval = e.eval_loss;
      if (std::isfinite(e.accuracy) && !(best_accuracy >= e.accuracy)) best_accuracy = e.accuracy;
    }
    std::string notes;
    for (const std::string& note : run.notes) notes += (notes.empty() ? "" : "; ") + note;
    out += "<tr><td>" + swatch(i) + escape_markup(run.name) + "</td><td>" + escape_markup(run.dir) +
           "</td><td>" + escape_markup(run_progress(run)) + "</td><td>" +
           duration(wall_seconds(run)) + "</td>" +
           number_cell(run.steps.empty() ? NAN : run.steps.back().loss) + number_cell(best_eval) +
           (any_accuracy(runs) ? number_cell(100 * best_accuracy) : "") + "<td class=\"notes\">" +
           escape_markup(notes) + "</td></tr>";
  }
  return out + "</table>\n";
}

// One series per run of `field` over steps.
std::vector<Series> step_series(const std::vector<RunData>& runs,
                                const std::function<double(const StepPoint&)>& field) {
  std::vector<Series> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    Series s{runs[i].name, run_colour(i), SeriesStyle::line, {}};
    for (const StepPoint& p : runs[i].steps) s.points.emplace_back(p.step, field(p));
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<Series> epoch_series(const std::vector<RunData>& runs,
                                 const std::function<double(const EpochPoint&)>& field) {
  std::vector<Series> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    Series s{runs[i].name, run_colour(i), SeriesStyle::markers, {}};
    for (const EpochPoint& p : runs[i].epochs) s.points.emplace_back(p.epoch, field(p));
    out.push_back(std::move(s));
  }
  return out;
}

// Each run's raw loss (faint) under its smoothed loss.
ChartSpec loss_chart(const std::vector<RunData>& runs) {
  size_t longest = 0;
  for (const RunData& run : runs) longest = std::max(longest, run.steps.size());
  const double weight = loss_smoothing_weight(static_cast<int64_t>(longest));
  const double span = 2.0 / (1.0 - weight) - 1.0;
  ChartSpec chart{"train-loss",
                  "Training loss",
                  "step",
                  "loss",
                  "faint: each step's loss; solid: exponential moving average over a span of " +
                      short_number(span, 6) + " steps (weight " + short_number(weight, 3) +
                      ", debiased as TensorBoard's smoothing)",
                  false,
                  {}};
  for (size_t i = 0; i < runs.size(); ++i) {
    std::vector<double> losses;
    for (const StepPoint& p : runs[i].steps) losses.push_back(p.loss);
    const std::vector<double> smoothed = smooth_ema(losses, weight);
    Series raw{runs[i].name + " (raw)", run_colour(i), SeriesStyle::faint, {}};
    Series smooth{runs[i].name + " (smoothed)", run_colour(i), SeriesStyle::line, {}};
    for (size_t k = 0; k < losses.size(); ++k) {
      raw.points.emplace_back(runs[i].steps[k].step, losses[k]);
      smooth.points.emplace_back(runs[i].steps[k].step, smoothed[k]);
    }
    chart.series.push_back(std::move(raw));
    chart.series.push_back(std::move(smooth));
  }
  return chart;
}

std::string charts_section(const std::vector<RunData>& runs) {
  std::string out = "<h2>Training</h2><div class=\"charts\">";
  out += render_chart(loss_chart(runs));
  out += render_chart({"lr", "Learning rate", "step", "lr", "", false,
                       step_series(runs, [](const StepPoint& p) { return p.lr; })});
  out += render_chart({"grad-norm", "Gradient norm", "step", "global norm", "before clipping",
                       false, step_series(runs, [](const StepPoint& p) { return p.grad_norm; })});
  out += render_chart({"tokens-per-s", "Throughput", "step", "tokens/s", "", false,
                       step_series(runs, [](const StepPoint& p) { return p.tokens_per_s; })});
  out += "</div><h2>Evaluation (end of each epoch)</h2><div class=\"charts\">";
  out += render_chart({"eval-loss", "Eval loss", "epoch", "loss", "", true,
                       epoch_series(runs, [](const EpochPoint& p) { return p.eval_loss; })});
  out += render_chart({"perplexity", "Perplexity", "epoch", "perplexity", "exp(eval loss)", true,
                       epoch_series(runs, [](const EpochPoint& p) { return p.perplexity; })});
  if (any_accuracy(runs)) {
    out += render_chart({"accuracy", "Accuracy", "epoch", "accuracy (%)",
                         "exact match on the first test rows (--eval-accuracy)", true,
                         epoch_series(runs, [](const EpochPoint& p) { return 100 * p.accuracy; })});
  }
  return out + "</div>\n";
}

std::string epochs_table(const RunData& run, size_t index) {
  std::string out = "<h3>" + swatch(index) + escape_markup(run.name) +
                    "</h3><table class=\"epochs\"><tr><th>epoch</th><th>eval loss</th>"
                    "<th>perplexity</th><th>accuracy (%)</th><th>examples</th><th>train time</th>"
                    "<th>eval time</th></tr>";
  for (const EpochPoint& e : run.epochs) {
    out +=
        "<tr>" + number_cell(static_cast<double>(e.epoch)) + number_cell(e.eval_loss, 5) +
        number_cell(e.perplexity, 5) + number_cell(100 * e.accuracy) +
        number_cell(e.accuracy_examples >= 0 ? static_cast<double>(e.accuracy_examples) : NAN, 12) +
        "<td class=\"num\">" + duration(e.train_time_s) + "</td><td class=\"num\">" +
        duration(e.eval_time_s) + "</td></tr>";
  }
  if (run.epochs.empty()) out += "<tr><td colspan=\"7\">no epoch evaluated yet</td></tr>";
  return out + "</table>\n";
}

// One row per name (in first-seen order), one column per run; rows whose values differ between
// runs are marked.
std::string side_by_side(const std::vector<RunData>& runs, const char* id,
                         const std::function<const NamedValues&(const RunData&)>& values) {
  std::vector<std::string> names;
  for (const RunData& run : runs) {
    for (const auto& [name, value] : values(run)) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  std::string out = std::string("<table id=\"") + id + "\"><tr><th></th>";
  for (size_t i = 0; i < runs.size(); ++i)
    out += "<th>" + swatch(i) + escape_markup(runs[i].name) + "</th>";
  out += "</tr>";
  for (const std::string& name : names) {
    std::vector<std::string> cells;
    for (const RunData& run : runs) {
      const NamedValues& v = values(run);
      const auto it =
          std::find_if(v.begin(), v.end(), [&](const auto& kv) { return kv.first == name; });
      cells.push_back(it == v.end() ? "" : it->second);
    }
    const bool differs = std::set<std::string>(cells.begin(), cells.end()).size() > 1;
    out += std::string(differs ? "<tr class=\"differs\">" : "<tr>") + "<th>" + escape_markup(name) +
           "</th>";
    for (const std::string& cell : cells) out += "<td>" + escape_markup(cell) + "</td>";
    out += "</tr>";
  }
  if (names.empty()) out += "<tr><td>none recorded</td></tr>";
  return out + "</table>\n";
}

std::string mebibytes(int64_t bytes) {
  return short_number(static_cast<double>(bytes) / (1 << 20), 6);
}

std::string memory_table(const RunData& run, size_t index) {
  std::string out = "<h3>" + swatch(index) + escape_markup(run.name) + "</h3>";
  if (run.memory.rows.empty()) return out + "<p>memory.json is written when the run ends.</p>\n";
  out += "<p>" + escape_markup(run.memory.device) + ", ZeRO stage " +
         std::to_string(run.memory.zero_stage) +
         "; MiB per rank</p><table class=\"memory\"><tr><th></th>";
  const size_t ranks = run.memory.rows.front().second.size();
  for (size_t r = 0; r < ranks; ++r) out += "<th>rank " + std::to_string(r) + "</th>";
  out += "</tr>";
  for (const auto& [name, per_rank] : run.memory.rows) {
    out += "<tr><th>" + escape_markup(name) + "</th>";
    for (const int64_t bytes : per_rank) out += "<td class=\"num\">" + mebibytes(bytes) + "</td>";
    out += "</tr>";
  }
  return out + "</table>\n";
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

double loss_smoothing_weight(int64_t longest_run_steps) {
  const double span = std::max(2.0, static_cast<double>(longest_run_steps) / 50.0);
  return 1.0 - 2.0 / (span + 1.0);
}

std::vector<double> smooth_ema(const std::vector<double>& values, double weight) {
  std::vector<double> out(values.size(), NAN);
  double last = 0.0;
  int64_t counted = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    last = last * weight + (1.0 - weight) * values[i];
    ++counted;
    // Debiased: the average starts at 0, so divide by the weight the terms have so far.
    out[i] = last / (1.0 - std::pow(weight, static_cast<double>(counted)));
  }
  return out;
}

const char* run_colour(size_t i) {
  static constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                             "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kPalette[i % std::size(kPalette)];
}

std::string render_report(const std::vector<RunData>& runs, const std::string& written_at) {
  std::string title = "zerotune run report: ";
  for (size_t i = 0; i < runs.size(); ++i) title += (i ? ", " : "") + runs[i].name;
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
                    escape_markup(title) + "</title>" + kStyle + "</head><body>\n<h1>" +
                    escape_markup(title) + "</h1><p class=\"note\">Written " +
                    escape_markup(written_at) +
                    " from metrics.jsonl, settings.json, memory.json "
                    "and the newest checkpoint's config.json.</p>\n";
  out += runs_table(runs);
  out += charts_section(runs);
  out += "<h2>Epochs</h2>";
  for (size_t i = 0; i < runs.size(); ++i) out += epochs_table(runs[i], i);
  out += "<h2>Settings</h2>";
  out += side_by_side(runs, "settings",
                      [](const RunData& r) -> const NamedValues& { return r.settings; });
  out += "<h2>Model</h2>";
  out +=
      side_by_side(runs, "model", [](const RunData& r) -> const NamedValues& { return r.model; });
  out += "<h2>Memory per rank</h2>";
  for (size_t i = 0; i < runs.size(); ++i) out += memory_table(runs[i], i);
  return out + "</body></html>\n";
}

void write_report(const std::vector<std::string>& dirs, const std::string& out) {
  ZT_CHECK(!dirs.empty(), "no run folder given");
  std::vector<RunData> runs;
  for (const std::string& dir : dirs) runs.push_back(read_run(dir));
  // Runs whose folders share a name (a/out, b/out) are told apart by their paths.
  std::map<std::string, int> uses;
  for (const RunData& run : runs) ++uses[run.name];
  for (RunData& run : runs) {
    if (uses[run.name] > 1) run.name = run.dir;
  }
  write_file_atomically(out, render_report(runs, utc_now()));
}

bool write_run_report(const std::string& run_dir, const NamedValues& settings) {
  try {
    json::Value object = json::Value::object();
    for (const auto& [name, value] : settings) object.set(name, value);
    write_file_atomically((fs::path(run_dir) / "settings.json").string(), object.dump(2) + "\n");
    write_report({run_dir}, (fs::path(run_dir) / "report.html").string());
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zerotune train: warning: report.html not written: %s\n", e.what());
    return false;
  }
}

}  // namespace zerotune::report
