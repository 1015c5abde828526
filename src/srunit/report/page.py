"""The report page: scores tables, the page layout and CSS, ``render_report`` and ``build_report``."""

from __future__ import annotations

import contextlib
import logging
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from srunit._atomic import FolderWriter, check_umask
from srunit._outputs import OutputLock, disk_full, file_identity, guard_output, local_now
from srunit._reading import MAX_IMAGE_BYTES, read_bytes
from srunit._version import __version__
from srunit.checks import check_flag, check_not_one, check_path
from srunit.errors import ConfigError, DataError, SrunitError, shell_word
from srunit.eval.records import (
    FLIP_KEYS,
    HALLUCINATION_KEY,
    SEGMENTATION_KEYS,
    flat_scores,
    ground_truth_scores,
    in_percent,
)
from srunit.report.flips import grids_section
from srunit.report.markup import esc, img_tag, table
from srunit.report.plots import flips_section, iou_section, loss_section
from srunit.report.runs import (
    EXPECTED,
    Bench,
    BenchRow,
    Run,
    Study,
    finite_number,
    labelled_apart,
    load_item,
    runs_of,
)
from srunit.runtime.run_folder import RunFolder

log = logging.getLogger(__name__)

__all__ = ["REPORT_FILE", "render_report", "build_report"]

REPORT_FILE = "report.html"  # the report's default place: PATH/report.html of the run or bench folder it reports
HEADINGS = {"pixel_accuracy": "pixAcc %", "class_accuracy": "clsAcc %", "mean_iou": "mIoU %", "dist": "Dist",
            "directed_flip_rate": "Flip A\u2192B %", "flip_rate": "Flip %", HALLUCINATION_KEY: "hallucinated %"}


def _metric_columns(keys: Iterable[str]) -> list[str]:
    keys = set(keys)
    fixed = [k for k in (*SEGMENTATION_KEYS, "dist") if k in keys]
    acc = sorted((k for k in keys if k.startswith("acc_") and k[4:].isdigit()), key=lambda k: int(k[4:]))
    flips = [k for k in FLIP_KEYS if k in keys]
    return fixed + acc + flips + sorted(keys - set(fixed) - set(acc) - set(flips))


def _heading(key: str) -> str:
    return HEADINGS.get(key) or (f"Acc({key[4:]}) %" if key.startswith("acc_") else key)


def _fmt(key: str, value: Any) -> str:
    if not finite_number(value):
        return "&mdash;"
    return f"{100 * value if in_percent(key) else value:.2f}"


def _runs_section(runs: list[Run]) -> str:
    rows = [[esc(r.label), esc(r.method or "?"), f"<code>{esc(r.path)}</code>",
             f'<span class="stopped">{esc(r.steps_shown)}</span>' if r.stopped else esc(r.steps_shown)]
            for r in runs]
    return "<h2>Runs</h2>" + table(["run", "method", "folder", "steps"], rows, cls="runs")


def _spread(key: str, row: BenchRow) -> str:
    std = row.std.get(key)
    return "" if std is None or row.n < 2 else f" &plusmn; {_fmt(key, std)}"


def _bench_section(bench: Bench) -> str:
    s = bench.summary
    keys = s.get("metrics") or {k for row in bench.rows for k in row.mean}
    columns = _metric_columns(keys)
    rows = [[esc(row.method), esc(row.condition), esc(row.n)]
            + [_fmt(k, row.mean.get(k)) + _spread(k, row) for k in columns] for row in bench.rows]
    if bench.upper_bound:
        truth = ground_truth_scores(bench.upper_bound, columns)
        rows.append([f"<em>{esc(truth.get('label', 'upper bound'))}</em>", "", ""]
                    + [_fmt(k, truth.get(k)) for k in columns])
    parts = [f"<h2>Benchmark {esc(s.get('benchmark', ''))}</h2>", f"<p><code>{esc(bench.path)}</code></p>",
             table(["method", "condition", "n", *(_heading(k) for k in columns)], rows),
             "<p class=\"note\">mean &plusmn; sample std over n runs (seeds); accuracies in percent.</p>",
             _differences_table(s, columns), "<ul>"]
    for name in ("command", "machine"):
        if s.get(name):
            parts.append(f"<li>{name}: <code>{esc(s[name])}</code></li>")
    if isinstance(s.get("settings"), dict):
        settings = ", ".join(f"{k}={v}" for k, v in s["settings"].items())
        parts.append(f"<li>settings: <code>{esc(settings)}</code></li>")
    return "".join(parts) + "</ul>"


def _differences_table(summary: dict[str, Any], columns: list[str]) -> str:
    """Each method minus the baseline (each baseline in turn), paired by seed, with its interval; bold where it
    excludes 0."""
    diffs = summary.get("differences")
    if not isinstance(diffs, list) or not diffs:
        return ""

    def cell(d: Any, key: str) -> str:
        if not isinstance(d, dict) or not d.get("n"):
            return "&mdash;"
        mean = _fmt(key, d.get("mean"))
        text = f"{'+' if finite_number(d.get('mean')) and d['mean'] >= 0 else ''}{mean}"
        if d.get("low") is None and d.get("high") is None and d.get("n") == 1:  # one pair has no interval
            return text + " (1 pair)"
        text += f" [{_fmt(key, d.get('low'))}, {_fmt(key, d.get('high'))}]"
        return f"<strong>{text}</strong>" if d.get("established") else text

    confidence = summary.get("confidence", 0.95)  # None: not read (named under "Not read")
    interval = f"{round(100 * confidence)}% t interval" if finite_number(confidence) else "t interval"
    baselines = summary.get("baselines")
    baselines = baselines if isinstance(baselines, list) and baselines else [summary.get("baseline", "baseline")]
    parts = []
    for baseline in baselines:
        rows = [[esc(d.get("method", "?")), esc(d.get("condition", "")),
                 esc(len(d["seeds"])) if isinstance(d.get("seeds"), list) else ""]
                + [cell((d.get("metrics") or {}).get(k), k) for k in columns] for d in diffs
                if isinstance(d, dict) and d.get("baseline", summary.get("baseline")) == baseline]
        parts.append(f"<h3>Difference from {esc(baseline)}, paired by seed</h3>"
                     + table([f"method \u2212 {baseline}", "condition", "pairs", *(_heading(k) for k in columns)],
                             rows))
    return ("".join(parts) + f"<p class=\"note\">mean difference [{interval}] over the seeds both "
            "methods ran; <strong>bold</strong>: the interval excludes 0 (a difference at that confidence). Dist, "
            "the flip rates and the hallucinated share: lower is better.</p>")


def _samples_section(runs: list[Run]) -> str:
    """The latest training sample grid of each run that has no evaluation to show instead."""
    parts = []
    for run in runs:
        if run.scores:
            continue
        samples = RunFolder(run.path).sample_files()
        if samples:
            latest = samples[-1]
            try:
                grid = read_bytes(latest, "the sample grid", limit=MAX_IMAGE_BYTES)
            except DataError as e:  # a FIFO or device in its place, or a file no grid can be
                log.warning("%s; the run's samples are left out of the report", e)
                continue
            parts.append(f"<h3>{esc(run.label)}: <code>{esc(latest.name)}</code></h3>"
                         + img_tag(grid, f"{run.label} training samples"))
    if not parts:
        return ""
    note = ("<p class=\"note\">Runs without an evaluation: their latest training samples, one row per image, "
            "columns as the method shows them (real_A | fake_B | real_B ...). Evaluate a run with "
            "<code>srunit eval seg|paired --run RUN</code> to see its scores here.</p>")
    return "<h2>Latest samples</h2>" + note + "".join(parts)


def _warnings_section(runs: list[Run], extra: Sequence[str] = ()) -> str:
    warnings = [w for run in runs for w in run.warnings] + list(extra)
    if not warnings:
        return ""
    return "<h2>Not read</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul>"


def _scores_section(runs: list[Run]) -> str:
    flats = [(r, flat_scores(r.scores)) for r in runs if r.scores]
    scored = [(r, flat) for r, flat in flats if flat]
    if not scored:
        return ""
    columns = _metric_columns(k for _, flat in scored for k in flat)
    rows = [[esc(r.label + r.scores_note), esc(r.method or "?")] + [_fmt(k, flat.get(k)) for k in columns]
            for r, flat in scored]
    return "<h2>Evaluated runs</h2>" + table(["run", "method", *(_heading(k) for k in columns)], rows)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td:first-child, th:first-child, table.runs td { text-align: left; }
.stopped { color: #b45309; }
table.grid td { text-align: center; font-size: 0.85em; }
table.grid img { image-rendering: pixelated; display: block; margin: 0 auto 3px; }
table.grid div.caption { color: #666; font-size: 0.8em; margin-bottom: 4px; }
p.note { color: #555; font-size: 0.9em; }
div.wide { overflow-x: auto; max-width: 100%; }
img { max-width: 100%; height: auto; }
table.grid img { max-width: none; }
"""


def _storage(folder: Path, summary: dict[str, Any]) -> str:
    """study.json's storage: a URL, or a file of the tuning folder (its default storage) named relative to it."""
    storage = str(summary.get("storage", ""))
    return storage if not storage or "://" in storage else str(folder / storage)


def _study_section(study: Study) -> str:
    """A tuning study: its settings, its finished trials best first (with their parameters, objective and flip
    rates), the trials that did not finish, and Optuna's plots."""
    s = study.summary
    settings: dict[str, Any] = s["settings"] if isinstance(s.get("settings"), dict) else {}
    # load_study sets the objective and the direction it cannot read to None (named under "Not read")
    named = s.get("objective", "value")
    objective = "value" if named is None else str(named)
    ranked = named is not None and s.get("direction", "maximize") is not None
    lower = s.get("direction") == "minimize"
    trials = [t for t in s["trials"] if isinstance(t, dict)]
    finished = [t for t in trials if t.get("state") == "COMPLETE" and isinstance(t.get("value"), (int, float))]
    if ranked:
        finished.sort(key=lambda t: t["value"], reverse=not lower)
    keys = sorted({str(k) for t in finished for k in (t.get("params") or {})})
    extra = [k for k in ("mean_iou", "pixel_accuracy", "directed_flip_rate", "flip_rate") if k != objective]

    def param(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else esc(value)

    rows = []
    for t in finished:
        scores: dict[str, Any] = t["scores"] if isinstance(t.get("scores"), dict) else {}
        rows.append([esc(t.get("number")), esc(t.get("seed", "")), _fmt(objective, t["value"]),
                     *(_fmt(k, scores.get(k)) for k in extra), *(param((t.get("params") or {}).get(k)) for k in keys)])
    parts = [f"<h2>Tuning study {esc(s.get('study', ''))}</h2>", f"<p><code>{esc(study.path)}</code></p><ul>",
             f"<li>preset <code>{esc(settings.get('preset', '?'))}</code>, objective <code>"
             f"{esc(objective if named is not None else '(not read)')}</code> "
             f"({('lowest' if lower else 'highest') + ' is best' if ranked else 'best not known'}), "
             f"{esc(s.get('finished', len(finished)))} of "
             f"{esc(settings.get('trials', '?'))} trials finished, storage <code>{esc(_storage(study.path, s))}"
             f"</code></li>"]
    if isinstance(settings.get("space"), dict):
        try:
            from srunit.search import space_from_dict

            space = "; ".join(p.describe() for p in space_from_dict(settings["space"], "study.json"))
        except SrunitError:
            space = "; ".join(f"{k}: {v}" for k, v in settings["space"].items())
        parts.append(f"<li>search space: {esc(space)}</li>")
    parts.append("</ul>")
    parts.append(table(["trial", "seed", _heading(objective), *(_heading(k) for k in extra), *keys], rows))
    order = "best first" if ranked else "as study.json lists them"
    parts.append(f"<p class=\"note\">Finished trials, {order}; every score on the validation split.</p>")
    others = [t for t in trials if t.get("state") != "COMPLETE" and not t.get("over_budget")]
    if others:
        shown = ", ".join(f"{esc(t.get('number'))} ({esc(t.get('outcome') or str(t.get('state', '?')).lower())})"
                          for t in others)
        parts.append(f"<p class=\"note\">Not finished: {shown}.</p>")
    for name, png in study.plots.items():
        parts.append(f"<h3>{esc(name)}</h3>" + img_tag(png, f"study plot {name}"))
    return "".join(parts)


def render_report(items: Sequence[Run | Bench | Study], num_images: int = 6) -> str:
    """The report page for loaded runs, benches and tuning studies (see ``build_report``) as one HTML string."""
    check_not_one(items, "render_report: items", "loaded runs (srunit.report.load_run)")
    for item in items:  # a path was an AttributeError ('str' object has no attribute 'runs')
        if not isinstance(item, (Run, Bench, Study)):
            raise TypeError(f"render_report: items must be loaded Run, Bench or Study objects, got "
                            f"{type(item).__name__} {item!r:.80}; load a folder with srunit.report.load_run (or "
                            f"load_bench), or give paths to build_report")
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 0:
        raise ValueError(f"render_report: num_images must be an integer >= 0 (0: no image grids), got "
                         f"{num_images!r:.40}")
    items = labelled_apart(items)  # two runs of one folder name were both "c3" in every table, plot and grid
    studies = [item for item in items if isinstance(item, Study)]
    scored = [item for item in items if not isinstance(item, Study)]
    runs = [r for item in scored for r in runs_of(item)]
    generated = local_now().strftime("%Y-%m-%d %H:%M %Z")
    title = (f"<h1>srunit report</h1><p class=\"note\">generated {esc(generated)} by srunit "
             f"{esc(__version__)}</p>")
    # A benchmark's table comes first: with many methods and seeds the list of runs is long.
    body = [title, *(_study_section(s) for s in studies),
            *(_bench_section(item) for item in scored if isinstance(item, Bench)), _runs_section(runs) if runs else ""]
    body += [_scores_section(runs), iou_section(scored), flips_section(scored), loss_section(scored),
             grids_section(scored, num_images),
             _samples_section(runs),
             _warnings_section(runs, [w for item in items if isinstance(item, (Study, Bench)) for w in item.warnings])]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>srunit report</title>"
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(b for b in body if b) + "\n</body></html>\n")


def _distinct(folders: list[Path]) -> list[Path]:
    """``folders`` without those that are an earlier one (by identity: a link or another spelling of a folder already
    given), with a warning for each left out; a run given twice was shown twice."""
    seen: dict[tuple[int, int], Path] = {}
    kept = []
    for folder in folders:
        try:
            st = folder.stat()
        except OSError:  # load_item names what is wrong with it
            kept.append(folder)
            continue
        first = seen.setdefault((st.st_dev, st.st_ino), folder)
        if first is folder:
            kept.append(folder)
        elif str(folder) == str(first):  # `report runs/r1 runs/r1/`: both read as runs/r1
            log.warning("PATH %s is given twice; it is shown once", folder)
        else:
            log.warning("PATH %s is %s, given before; it is shown once", folder, first)
    return kept


def build_report(paths: Sequence[str | Path], out: str | Path | None = None, num_images: int = 6, *,
                 overwrite: bool = False) -> Path:
    """Write the HTML report of run folders and bench folders to ``out`` and return its path.

    Args:
        paths: run folders (metrics.jsonl and/or eval/scores.json) or bench folders (summary.json).
        out: the HTML file; default ``paths[0]/report.html`` when one path is given.
        num_images: images per translation grid (the first ones sorted by name); 0 for none.
        overwrite: replace an existing ``out`` (the default ``PATH/report.html`` is always rewritten).

    Raises:
        ConfigError: no path, several paths without ``out``, ``out`` is a folder, exists (without ``overwrite``)
            or is not named .html or .htm, ``num_images`` < 0.
        DataError: a path is not a run or bench folder, or a file in it is unreadable; ``out`` is inside
            a PATH (other than PATH/report.html) or a run folder; the disk is full.
    """
    check_not_one(paths, "build_report: paths", "run, bench or tuning folders")
    overwrite = check_flag(overwrite, "build_report: overwrite")
    if not isinstance(paths, Iterable):  # None, a number: Python's "'int' object is not iterable"
        raise TypeError(f"build_report: paths must be a list of run, bench or tuning folders, got "
                        f"{type(paths).__name__} {paths!r:.80}")
    folders = _distinct([check_path(p, f"build_report: paths[{i}]").expanduser() for i, p in enumerate(paths)])
    if not folders:
        raise ConfigError(f"no PATH given; {EXPECTED}")
    if out is not None:
        check_path(out, "build_report: out")
    check_umask("build_report")
    if isinstance(num_images, bool) or not isinstance(num_images, numbers.Integral):
        raise TypeError(f"build_report: num_images must be an integer >= 0, got {type(num_images).__name__} "
                        f"{num_images!r:.80}")
    if num_images < 0:
        raise ConfigError(f"--images must be >= 0, got {num_images}; pass 0 to leave out the image grids")
    if out is None:
        if len(folders) > 1:
            raise ConfigError(f"{len(folders)} PATHs given without --out; pass --out FILE.html for a report of "
                              f"several runs (PATH/report.html is the default for a single PATH only)")
        out, overwrite = folders[0] / REPORT_FILE, True  # the report's own place, rewritten each time
    if isinstance(out, str) and not out.strip():
        raise ConfigError("--out is an empty path; give the HTML file to write, e.g. report.html")
    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name such as {shell_word(out / REPORT_FILE)}")
    # Nothing in the folders read is written but their report.html.
    guard_output(out, "--out", inputs=[("PATH", f) for f in folders], overwrite=overwrite,
                 designated=[f / REPORT_FILE for f in folders])
    if out.suffix.lower() not in (".html", ".htm"):  # `--out rr.png` wrote an HTML page under an image's name
        named = f"ends in {out.suffix!r}" if out.suffix else "has no suffix"
        raise ConfigError(f"--out {out} {named}, but the report is an HTML page, which a browser opens by its .html "
                          f"suffix; name it {out.with_suffix('.html').name} (nothing was written)")
    # The folder of --out opened once, before anything is read (where it exists: one to be made is made once the
    # inputs are read): moved away and replaced by a link (to a folder of the user's) meanwhile, the report was
    # written through the link, replacing a report.html there.
    with contextlib.ExitStack() as opened:
        writer = opened.enter_context(FolderWriter(out.parent)) if out.parent.is_dir() else None
        read = [file_identity(f) for f in folders]
        items = [load_item(p) for p in folders]
        # Atomic: a browser reloading the report never sees half a file.
        with OutputLock(out, "--out"), disk_full(out, "--out"):
            writer = writer or opened.enter_context(FolderWriter(out.parent))
            # A folder name whose bytes are not UTF-8 (a lone surrogate in Python) is shown as its escape, not refused.
            page = render_report(items, num_images).encode("utf-8", "backslashreplace").decode("utf-8")
            for folder, identity in zip(folders, read):
                if file_identity(folder) != identity:  # part of it may have been read through a link swapped in
                    raise DataError(f"PATH {folder} was moved or replaced while the report read it: the report "
                                    f"stopped without writing {out}; run it again on the folder where it is now")
            writer.check_in_place("the report")
            writer.write_bytes(out.name, page.encode("utf-8"))
    return out
