"""A progress display for long runs: one row per stage with a bar, counts, elapsed and remaining time.

On a terminal the rows are drawn live with `rich`; when the output is not a terminal (CI, pipes, files) plain
lines replace them: one every ``interval`` seconds for each running stage, and one when a stage ends. The board
knows nothing about Dagster — ``aob_pipeline.runlog`` feeds it from a run's event stream, ``aob run`` from its
own callback — so it is tested directly.

    board = ProgressBoard(title="aob demo", stream=sys.stdout)
    board.add_stage("agents", "agents", total=2, unit="steps")
    with board:
        board.start("agents")
        board.set_count("agents", done=0, total=2886, unit="runs", detail="13 agents × 222 scenarios × 1 trial")
        board.set_count("agents", done=288)
        board.finish("agents")
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

Mode = Literal["auto", "live", "plain", "off"]


def format_seconds(seconds: float | None) -> str:
    """``H:MM:SS`` (``-:--:--`` when unknown)."""
    if seconds is None:
        return "-:--:--"
    minutes, secs = divmod(int(round(max(0.0, seconds))), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def runs_detail(agents: int, scenarios: int, runs: int) -> str:
    """'13 agents × 222 scenarios × 1 trial' — or '× 1-3 trials' when agents differ in their trial counts."""
    pairs = agents * scenarios
    if pairs and runs % pairs == 0:
        trials = runs // pairs
        tail = f"{trials} trial" + ("" if trials == 1 else "s")
    else:
        tail = "trials"
    return (f"{agents} agent{'' if agents == 1 else 's'} × {scenarios} scenario{'' if scenarios == 1 else 's'}"
            f" × {tail}")


@dataclass
class Stage:
    key: str
    label: str
    total: int = 0
    done: int = 0
    unit: str = "steps"
    detail: str = ""
    state: Literal["pending", "running", "done", "failed", "not run"] = "pending"
    started: float | None = None
    finished: float | None = None
    waiting: bool = False  # started, but none of its work is running now (e.g. a check runs after a later stage)
    samples: list = field(default_factory=list)  # (time, done) of the last minute, for the rate
    rate_estimate: bool = True  # counts of like items (runs): their rate predicts; steps of unlike length do not
    expected_left: float | None = None  # seconds of work left as of ``expected_at`` (e.g. from the last run)
    expected_at: float | None = None

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.finished if self.finished is not None else now) - self.started

    RATE_WINDOW = 60.0

    def record(self, now: float) -> None:
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.RATE_WINDOW:
            self.samples.pop(0)

    def remaining(self, now: float) -> float | None:
        """From the rate over the last minute of counts (slow starts such as loading models fade out), else the
        stage's average rate so far."""
        if self.state in ("done", "failed", "not run"):
            return 0.0
        if self.expected_left is not None and self.expected_at is not None:
            return max(0.0, self.expected_left - (now - self.expected_at)) if self.state == "running" else \
                self.expected_left
        if self.done <= 0 or self.total <= 0 or not self.rate_estimate:
            return None
        left = max(0, self.total - self.done)
        if len(self.samples) >= 2:
            (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
            if t1 - t0 >= 1.0 and d1 > d0:
                return left * (t1 - t0) / (d1 - d0)
        elapsed = self.elapsed(now)
        return elapsed / self.done * left if elapsed else None

    def counts(self) -> str:
        """'288/2,886 runs', or '8,658 materialisations planned' while the total is unknown."""
        if not self.total:
            return f"{self.done:,} {self.unit}"
        return f"{self.done:,}/{self.total:,} {self.unit}"


class ProgressBoard:
    """Stages with counts, drawn live (``mode='live'``), as plain lines (``'plain'``) or not at all (``'off'``);
    ``'auto'`` draws live when ``stream`` is a terminal, else plain lines. Thread-safe: counts may be fed from
    any thread."""

    def __init__(self, title: str = "", stream: IO[str] | None = None, mode: Mode = "auto", interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, redirect_output: bool = False):
        import sys

        self.title = title
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.clock = clock
        self.redirect_output = redirect_output
        self.stages: dict[str, Stage] = {}
        self._lock = threading.RLock()
        self._t0: float | None = None
        self._live: Live | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self.mode: Mode = self._resolve(mode)

    # ------------------------------------------------------------------ mode

    def _resolve(self, mode: Mode) -> Mode:
        if mode != "auto":
            return mode
        return "live" if is_terminal(self.stream) else "plain"

    # ------------------------------------------------------------------ stages

    def add_stage(self, key: str, label: str, total: int = 0, unit: str = "steps", detail: str = "",
                  rate_estimate: bool = True) -> Stage:
        """A row; ``rate_estimate=False`` when the counted items differ too much in length for their rate to
        predict the rest (a stage's steps): it then shows an estimate only from ``set_expected``."""
        with self._lock:
            stage = self.stages.get(key)
            if stage is None:
                stage = self.stages[key] = Stage(key, label, total=total, unit=unit, detail=detail,
                                                 rate_estimate=rate_estimate)
            return stage

    def sort_stages(self, rank: Callable[[str], int]) -> None:
        """Reorder the rows by ``rank(key)`` (stable)."""
        with self._lock:
            items = sorted(self.stages.items(), key=lambda kv: rank(kv[0]))
            self.stages.clear()
            self.stages.update(items)

    def start(self, key: str) -> None:
        with self._lock:
            stage = self.stages[key]
            if stage.state == "pending":
                stage.state, stage.started = "running", self.clock()

    def set_count(self, key: str, done: int | None = None, total: int | None = None, unit: str | None = None,
                  detail: str | None = None, rate_estimate: bool | None = None) -> None:
        with self._lock:
            stage = self.stages[key]
            if done is not None and stage.state == "pending":
                self.start(key)
            if total is not None:
                stage.total = total
            if done is not None:
                stage.done = min(done, stage.total) if stage.total else done
                stage.record(self.clock())
            if unit is not None:
                stage.unit = unit
            if detail is not None:
                stage.detail = detail
            if rate_estimate is not None:
                stage.rate_estimate = rate_estimate

    def set_expected(self, key: str, seconds: float | None) -> None:
        """Seconds of work left in the stage as of now (e.g. the last run's durations of its unfinished steps);
        the estimate then counts down. ``None`` goes back to estimating from the counts."""
        with self._lock:
            stage = self.stages[key]
            stage.expected_left, stage.expected_at = seconds, self.clock()

    def remaining(self) -> float | None:
        """Seconds left over all unfinished stages, when every one of them has an estimate."""
        now = self.clock()
        with self._lock:
            left = [s.remaining(now) for s in self.stages.values() if s.state in ("pending", "running")]
        known = [x for x in left if x is not None]
        if not left or len(known) < len(left):
            return None
        return sum(known)

    def set_waiting(self, key: str, waiting: bool) -> None:
        with self._lock:
            self.stages[key].waiting = waiting

    def advance(self, key: str, n: int = 1) -> None:
        with self._lock:
            stage = self.stages[key]
            self.set_count(key, done=stage.done + n)

    def finish(self, key: str, ok: bool = True) -> None:
        """The stage is over: counts complete when it succeeded; a plain line says so."""
        with self._lock:
            stage = self.stages[key]
            if stage.state in ("done", "failed", "not run"):
                return
            now = self.clock()
            if stage.started is None:
                stage.started = now
            stage.finished = now
            if ok and stage.total:
                stage.done = stage.total
            stage.state = "done" if ok else "failed"
            if self.mode == "plain":
                verdict = "done" if ok else "FAILED"
                self._write(f"{self._stamp(now)}  {stage.label}: {verdict}, {stage.counts()}"
                            f"{self._detail(stage)} in {format_seconds(stage.elapsed(now))}")

    def close_pending(self) -> None:
        """Stages that never ran (e.g. after a failure upstream) are marked 'not run'; running ones end."""
        with self._lock:
            for stage in self.stages.values():
                if stage.state == "pending":
                    stage.state = "not run"
                elif stage.state == "running":
                    self.finish(stage.key, ok=False)

    # ------------------------------------------------------------------ drawing

    def __enter__(self) -> ProgressBoard:
        self._t0 = self.clock()
        if self.mode == "live":
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._live = Live(get_renderable=self.render, console=console, refresh_per_second=4, transient=False,
                              redirect_stdout=self.redirect_output, redirect_stderr=self.redirect_output)
            self._live.start()
        elif self.mode == "plain":
            self._ticker = threading.Thread(target=self._tick, name="aob-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        with self._lock:
            self.close_pending()
        if self._live is not None:
            self._live.refresh()
            self._live.stop()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            for line in self.plain_lines():
                self._write(line)

    def plain_lines(self) -> list[str]:
        """One line per running stage: counts, percentage, elapsed and remaining time."""
        now = self.clock()
        lines = []
        with self._lock:
            for stage in self.stages.values():
                if stage.state != "running" or stage.waiting:
                    continue
                pct = f" ({100 * stage.done / stage.total:.0f}%)" if stage.total else ""
                left = stage.remaining(now)
                lines.append(f"{self._stamp(now)}  {stage.label}: {stage.counts()}{pct}{self._detail(stage)}, "
                             f"elapsed {format_seconds(stage.elapsed(now))}"
                             + (f", ~{format_seconds(left)} left" if left is not None else ""))
        return lines

    def render(self):
        """The live table, fitted to the terminal's width when drawn."""
        board = self

        class _View:
            def __rich_console__(self, console, options):
                yield board.table(options.max_width)

        return _View()

    def table(self, width: int = 120):
        """One row per stage: a mark, the stage, a bar, counts, elapsed and remaining time, what is counted (cut
        to fit ``width``; the other columns keep theirs)."""
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = self.clock()
        with self._lock:
            stages = [Stage(**vars(s)) for s in self.stages.values()]
        label_w = max((len(s.label) for s in stages), default=5)
        counts_w = max((len(s.counts()) for s in stages), default=5)
        fixed = [1, label_w, 24, counts_w, 7, 13]
        detail_w = width - sum(fixed) - len(fixed)  # one space between columns
        table = Table.grid(padding=(0, 1))
        justifies: tuple[JustifyMethod, ...] = ("left", "left", "left", "right", "right", "left")
        for justify, w in zip(justifies, fixed):
            table.add_column(justify=justify, no_wrap=True, min_width=w)
        table.add_column(justify="left", no_wrap=True)
        if self.title:
            total_left = self.remaining()
            table.title = Text(f"{self.title} — {format_seconds(now - (self._t0 or now))} elapsed"
                               + (f", ~{format_seconds(total_left)} left" if total_left else ""), style="bold")
            table.title_justify = "left"
        for stage in stages:
            failed = stage.state == "failed"
            mark: Text | Spinner | None = {"done": Text("✓", style="green"), "failed": Text("✗", style="bold red"),
                    "not run": Text("·", style="dim"), "pending": Text("·", style="dim")}.get(stage.state)
            if stage.state == "running":
                mark = Text("…", style="dim") if stage.waiting else Spinner("dots", style="cyan")
            style = "dim" if stage.state in ("pending", "not run") else ("red" if failed else "")
            left = stage.remaining(now)
            bar = ProgressBar(total=(stage.total or None) if stage.state == "running" else max(stage.total, 1),
                              completed=stage.done if stage.total or stage.state != "done" else 1, width=24,
                              complete_style="red" if failed else "bar.complete",
                              finished_style="red" if failed else "green")
            elapsed = format_seconds(stage.elapsed(now)) if stage.started is not None else ""
            remaining = f"~{format_seconds(left)} left" if stage.state == "running" and left is not None else ""
            if stage.state == "running" and stage.waiting:
                remaining = "waiting"
            if stage.state == "not run":
                remaining = "not run"
            table.add_row(mark, Text(stage.label, style=style or "bold"), bar,
                          Text(stage.counts() if stage.total or stage.done else "", style=style),
                          Text(elapsed, style="yellow"), Text(remaining, style="cyan" if left else "dim"),
                          Text(_cut(stage.detail, detail_w), style="dim"))
        return table

    def echo(self, line: str, fallback: IO[str] | None = None) -> None:
        """A line of other output: above the live rows, else to ``fallback`` (default: the board's stream)."""
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
            return
        stream = fallback if fallback is not None else self.stream
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    # ------------------------------------------------------------------ helpers

    def _stamp(self, now: float) -> str:
        return f"[{format_seconds(now - (self._t0 if self._t0 is not None else now))}]"

    @staticmethod
    def _detail(stage: Stage) -> str:
        return f" ({stage.detail})" if stage.detail else ""

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # the reader went away (e.g. `| head`): progress is not worth a crash
            pass


def _cut(text: str, width: int) -> str:
    if width <= 1:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def is_terminal(stream: IO[str]) -> bool:
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
