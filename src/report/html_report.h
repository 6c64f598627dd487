// The run report: one self-contained HTML page (inline CSS and SVG, no JavaScript, nothing
// fetched) over one or more run folders: training loss raw and smoothed, learning rate, gradient
// norm and tokens/s per step; eval loss, perplexity and accuracy per epoch; the settings, the
// model, memory per rank and wall time. Several runs share each chart, one colour per run.
#pragma once

#include <string>
#include <vector>

#include "report/run_data.h"

namespace zerotune::report {

// The training loss's smoothing: an exponential moving average over a span of S steps (weight
// 1 - 2/(S+1) on the past, debiased at the start as TensorBoard's smoothing is), S a fiftieth of
// the longest run's steps and at least 2: noisy per-step losses of long runs read as a trend while
// a short run's curve does not lag behind its raw values.
double loss_smoothing_weight(int64_t longest_run_steps);

// `values` smoothed; NaN entries stay NaN and do not move the average.
std::vector<double> smooth_ema(const std::vector<double>& values, double weight);

// The colour of the i-th run (a ten-colour palette, repeated past ten runs).
const char* run_colour(size_t i);

// The page for `runs`; `written_at` is shown as the time the page was made.
std::string render_report(const std::vector<RunData>& runs, const std::string& written_at);

// Reads every folder of `dirs` (all before writing anything) and writes the page to `out`
// atomically. Throws naming the file when a folder cannot be read.
void write_report(const std::vector<std::string>& dirs, const std::string& out);

// The trainer's call after every epoch (rank 0): `run_dir`/settings.json from `settings`, then
// `run_dir`/report.html. A report must never end a training run: an error becomes one warning
// line on stderr and the result is false.
bool write_run_report(const std::string& run_dir, const NamedValues& settings);

}  // namespace zerotune::report
