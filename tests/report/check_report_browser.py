#!/usr/bin/python3
"""The run report as a browser shows it. Trains two tiny runs (the trainer writes report.html
after every epoch), makes a third folder from the second with accuracy in its eval rows and a
metrics row still being written, and writes their overlay with `zerotune report`. Each page is
then read three ways: its SVG charts as XML (well-formed, one series per run and chart, two for
the loss), headless Chromium's DOM (no console message at all: the page has no script, so any
message is an error), and Chromium's screenshot (PNG), in which every plot area is found by its
frame and must hold each run's colour. Bad input is refused with one line naming the file and
line, and nothing is overwritten.

  check_report_browser.py --zerotune BIN --workdir DIR

Ends with `N passed, M failed`; exits 1 when anything failed. Where Chromium (Debian package
chromium) cannot start, the browser checks print SKIP and why; the others still run.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model, tree_digest  # noqa: E402

report = Report(58)
check = report.check

RUN_COLOURS = [(0x1f, 0x77, 0xb4), (0xd6, 0x27, 0x28), (0x2c, 0xa0, 0x2c)]  # the page's first three
FRAME = (0x99, 0x99, 0x99)  # the plot area's frame
SVG_NS = "{http://www.w3.org/2000/svg}"


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def last_line(r):
    lines = r.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def train(base, out, epochs, lr):
    r = run(base + ["--num-epochs", str(epochs), "--lr", lr, "--output_dir", out])
    check(r.returncode == 0, f"train {os.path.basename(out)}",
          r.stderr.strip()[-300:] if r.returncode else "")
    return r.returncode == 0


def with_accuracy_in_progress(src, dst):
    """A copy of run `src` as a run evaluated with --eval-accuracy, still writing a step row."""
    shutil.copytree(src, dst)
    rows = [json.loads(line) for line in open(f"{src}/metrics.jsonl") if line.strip()]
    # Its curves are moved off the copied run's, so that both colours show.
    moved = {"loss": 0.9, "lr": 0.5, "grad_norm": 1.3, "tokens_per_s": 0.6, "eval_loss": 0.95}
    with open(f"{dst}/metrics.jsonl", "w") as f:
        for row in rows:
            row = {k: v * moved[k] if k in moved and v is not None else v for k, v in row.items()}
            if row.get("type") == "eval":
                row = dict(row, perplexity=math.exp(row["eval_loss"]),
                           accuracy=0.125 * (row["epoch"] + 1), accuracy_examples=8)
            f.write(json.dumps(row) + "\n")
        f.write('{"type": "train", "step": 99, "lo')  # no newline: being written


def charts(page):
    """{figure id: [(class, points) per polyline]} from the page's SVG, parsed as XML."""
    out = {}
    for m in re.finditer(r'<figure class="chart" id="([^"]+)">(<svg.*?</svg>)', page, re.S):
        svg = ET.fromstring(m.group(2))  # raises on SVG that is not well-formed
        out[m.group(1)] = [(p.get("class"), p.get("points")) for p in svg.iter(f"{SVG_NS}polyline")]
    return out


def check_svg(name, page, runs, accuracy_runs):
    try:
        found = charts(page)
    except ET.ParseError as e:
        check(False, f"{name}: charts are well-formed SVG", str(e))
        return {}
    want = {"train-loss": 2 * runs, "lr": runs, "grad-norm": runs, "tokens-per-s": runs,
            "eval-loss": runs, "perplexity": runs}
    if accuracy_runs:
        want["accuracy"] = accuracy_runs
    got = {k: len(v) for k, v in found.items()}
    check(got == want, f"{name}: one series per run in each chart", f"{got} vs {want}")
    return found


def chromium_works(w):
    exe = shutil.which("chromium")
    if not exe:
        return None, "chromium is not installed (Debian package chromium; scripts/setup.sh)"
    try:
        r = run(chromium_cmd(exe, w) + ["--dump-dom", "about:blank"], timeout=120)
    except subprocess.TimeoutExpired:
        return None, "chromium did not answer in 120 s"
    if r.returncode != 0 or "<html" not in r.stdout:
        return None, f"chromium cannot start: {last_line(r)}"
    return exe, ""


def chromium_cmd(exe, w):
    # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={w}/chromium-profile"]


def console_messages(stderr):
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def render(exe, w, html, png):
    """(DOM, console messages, screenshot ok) of `html` in headless Chromium."""
    url = "file://" + os.path.abspath(html)
    dom = run(chromium_cmd(exe, w) + ["--dump-dom", url], timeout=180)
    shot = run(chromium_cmd(exe, w) + ["--window-size=1280,4000", f"--screenshot={png}", url],
               timeout=180)
    messages = console_messages(dom.stderr) + console_messages(shot.stderr)
    return dom.stdout, messages, shot.returncode == 0 and os.path.exists(png)


def plot_areas(pixels):
    """(top, bottom, left, right) of each plot area in the screenshot: pairs of long horizontal
    runs of the frame's grey with the same ends."""
    import numpy as np
    grey = (np.abs(pixels.astype(int) - np.array(FRAME)).max(axis=2) <= 8)
    edges = []
    for y in range(grey.shape[0]):
        row = np.concatenate(([0], grey[y].astype(np.int8), [0]))
        starts, ends = np.flatnonzero(np.diff(row) == 1), np.flatnonzero(np.diff(row) == -1)
        edges += [(y, s, e) for s, e in zip(starts, ends) if e - s >= 300]
    areas, used = [], set()
    for i, (y0, s0, e0) in enumerate(edges):
        if i in used:
            continue
        for j in range(i + 1, len(edges)):
            y1, s1, e1 = edges[j]
            if j not in used and abs(s1 - s0) <= 1 and abs(e1 - e0) <= 1 and y1 - y0 >= 100:
                areas.append((y0, y1, s0, e0))
                used.update((i, j))
                break
    return areas


def colour_pixels(area_pixels, colour):
    import numpy as np
    return int((np.abs(area_pixels.astype(int) - np.array(colour)).max(axis=2) <= 40).sum())


def empty_charts(png, colours_per_chart):
    """(plot areas found, the charts among them lacking one of their runs' colours: a line, not a
    stray pixel), or None where the PNG cannot be read."""
    try:
        import numpy as np
        from PIL import Image
    except ImportError as e:
        print(f"SKIP  PNG not inspected: {e} (python3-pil, python3-numpy)")
        return None
    pixels = np.asarray(Image.open(png).convert("RGB"))
    areas = plot_areas(pixels)
    empty = []
    for k, (top, bottom, left, right) in enumerate(areas):
        inside = pixels[top + 2:bottom - 1, left + 2:right - 2]
        counts = [colour_pixels(inside, c) for c in colours_per_chart(k)]
        if min(counts, default=0) < 30:
            empty.append(f"chart {k}: {counts}")
    return len(areas), empty


def check_screenshot(name, png, figures, colours_per_chart):
    found = empty_charts(png, colours_per_chart)
    if found is None:
        return
    areas, empty = found
    check(areas == figures, f"{name}: every chart's plot area found in the PNG",
          f"{areas} of {figures}")
    check(areas and not empty, f"{name}: no chart is empty in the PNG", "; ".join(empty))


def check_empty_chart_seen(z, exe, w, a):
    """A run without gradient norms: its page's third chart says "no data", and the PNG check
    must find it empty (the check can fail)."""
    probe = f"{w}/no-grad-norm"
    shutil.copytree(a, probe)
    rows = [json.loads(line) for line in open(f"{a}/metrics.jsonl") if line.strip()]
    with open(f"{probe}/metrics.jsonl", "w") as f:
        f.writelines(json.dumps({k: v for k, v in row.items() if k != "grad_norm"}) + "\n"
                     for row in rows)
    r = run([z, "report", probe])
    png = f"{w}/no-grad-norm.png"
    _, _, shot_ok = render(exe, w, f"{probe}/report.html", png)
    found = empty_charts(png, lambda k: RUN_COLOURS[:1]) if r.returncode == 0 and shot_ok else None
    if found is not None:
        check(found[0] == 6 and [e.split(":")[0] for e in found[1]] == ["chart 2"],
              "an empty chart is seen (the check can fail)", str(found))


def check_browser(exe, w, name, html, figures, colours_per_chart):
    png = f"{w}/{name}.png"
    dom, messages, shot_ok = render(exe, w, html, png)
    check(not messages, f"{name}: no console message", "; ".join(messages)[:300])
    check(dom.count('<figure class="chart"') == figures and "<polyline" in dom,
          f"{name}: Chromium's DOM holds the {figures} charts", str(dom.count("<figure")))
    check(shot_ok, f"{name}: screenshot written")
    if shot_ok:
        check_screenshot(name, png, figures, colours_per_chart)


def check_bad_input(z, w, a, b):
    r = run([z, "report", a, b])
    check(r.returncode == 1 and "--out" in last_line(r), "several runs need --out", last_line(r))
    r = run([z, "report", f"{w}/absent", "--out", f"{w}/absent.html"])
    check(r.returncode == 1 and f"{w}/absent" in last_line(r) and
          not os.path.exists(f"{w}/absent.html"), "a missing folder is named", last_line(r))
    bad = f"{w}/bad"
    shutil.copytree(a, bad)
    lines = open(f"{bad}/metrics.jsonl").read().splitlines(True)
    lines.insert(1, '{"type": "train", "step": }\n')
    open(f"{bad}/metrics.jsonl", "w").writelines(lines)
    before = tree_digest(bad)
    r = run([z, "report", bad])
    check(r.returncode == 1 and f"{bad}/metrics.jsonl:2:" in last_line(r) and
          len(r.stderr.strip().splitlines()) == 1 and tree_digest(bad) == before,
          "a bad row is named by file:line, report.html kept", last_line(r))


def main():
    _, z, w = check_args()
    try:
        data, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "setup", str(e))
        return report.finish()
    base = [z, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
            "--test_path", f"{data}/test.jsonl", "--special_token_path", f"{data}/tokens.json",
            "-bs", "4", "--eval-batch-size-per-device", "8", "--ctx-len", "192",
            "--warmup-steps", "2", "--seed", "7", "--packing"]
    a, b, c = f"{w}/lr-3e-3", f"{w}/lr-1e-3 <b>&", f"{w}/with-accuracy"
    if not (train(base, a, 3, "3e-3") and train(base, b, 2, "1e-3")):
        return report.finish()
    trainer_page = open(f"{a}/report.html").read()
    settings = json.load(open(f"{a}/settings.json"))
    check(settings.get("--lr") == "0.003" and settings.get("--num-epochs") == "3",
          "the trainer wrote settings.json", str(settings)[:200] if not settings else "")
    check_svg("trainer's page", trainer_page, 1, 0)
    with_accuracy_in_progress(b, c)
    overlay = f"{w}/overlay.html"
    r = run([z, "report", a, b, c, "--out", overlay])
    check(r.returncode == 0, "zerotune report of three runs", last_line(r))
    page = open(overlay).read() if r.returncode == 0 else ""
    check_svg("overlay", page, 3, 1)
    check("lr-1e-3 &lt;b&gt;&amp;" in page and "<b>&" not in page, "the run's name is escaped")
    check("still being written" in page, "the row being written is said")
    check_bad_input(z, w, a, b)

    exe, why = chromium_works(w)
    if not exe:
        print(f"SKIP  browser checks: {why}")
        return report.finish()
    probe = f"{w}/probe.html"
    open(probe, "w").write("<html><body><script>console.error('probe')</script></body></html>")
    _, messages, _ = render(exe, w, probe, f"{w}/probe.png")
    check(any("probe" in m for m in messages), "a console message is seen (the check can fail)")
    check_empty_chart_seen(z, exe, w, a)
    check_browser(exe, w, "trainer-page", f"{a}/report.html", 6, lambda k: RUN_COLOURS[:1])
    # Overlay: 4 training charts and 2 eval charts of all three runs, then the accuracy of the
    # third alone.
    check_browser(exe, w, "overlay", overlay, 7,
                  lambda k: RUN_COLOURS[2:] if k == 6 else RUN_COLOURS)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
