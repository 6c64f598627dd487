// `zerotune report RUN_DIR... [--out FILE]`: the run report (report/html_report.h) of one run, or
// of several overlaid, from their output folders; a run still training is read as it stands.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "report/html_report.h"

namespace zerotune {

int cmd_report(int argc, char** argv, int first) {
  Args args("zerotune report",
            "zerotune report RUN_DIR... [--out FILE]\n\n"
            "Writes one self-contained HTML page (inline SVG charts; no JavaScript, nothing\n"
            "fetched) for the runs in the --output_dir folders RUN_DIR...: training loss (raw and\n"
            "smoothed), learning rate, gradient norm, tokens/s per step; eval loss, perplexity\n"
            "and accuracy per epoch; settings, model, memory per rank, wall time. Several runs\n"
            "share each chart, one colour per run. A run in progress is read as it stands.");
  args.option("--out|-o", "FILE", "the page to write", "RUN_DIR/report.html for one run");
  // Run folders are positional; the flags go to the parser.
  std::vector<std::string> dirs;
  std::vector<char*> flags = {argv[0]};
  for (int i = first; i < argc; ++i) {
    const bool takes_value = !std::strcmp(argv[i], "--out") || !std::strcmp(argv[i], "-o");
    if (argv[i][0] == '-') {
      flags.push_back(argv[i]);
      if (takes_value && i + 1 < argc) flags.push_back(argv[++i]);
    } else {
      dirs.emplace_back(argv[i]);
    }
  }
  if (!args.parse(static_cast<int>(flags.size()), flags.data(), 1)) return 0;
  ZT_CHECK(!dirs.empty(), "zerotune report: give at least one run folder (see --help)");
  std::string out = args.has("--out") ? args.get("--out") : "";
  if (out.empty()) {
    ZT_CHECK(dirs.size() == 1, "zerotune report: ", dirs.size(),
             " runs: say where their page goes with --out FILE");
    out = (std::filesystem::path(dirs[0]) / "report.html").string();
  }
  report::write_report(dirs, out);
  std::printf("wrote %s (%zu run%s)\n", out.c_str(), dirs.size(), dirs.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace zerotune
