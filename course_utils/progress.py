"""Progress of long fits, shown in the terminal that builds the book and never in the book.

When a fit misses the cache, :func:`course_utils.cache.cached_idata` samples inside
:func:`reporting`, which writes to the terminal which model is fitting, how far each
chain has got (warm-up, then draws) and an estimate of the time left, then how long the
fit took::

    [m_varying] fitting with nutpie: 4 chains x (1000 warm-up + 1000 draws)
    [m_varying] 41% | chain 1 1650/2000 | chain 2 1630/2000 | chain 3 0/2000 | ... | 0:45 elapsed, ~1:05 left
    [m_varying] done in 1:52

Where the terminal is. A chapter runs in a Jupyter kernel, whose ``sys.stderr`` goes into
the notebook and so into the book's HTML. ipykernel keeps a copy of the kernel's original
standard error, the terminal of ``make book`` (``sys.stderr.fileno()`` returns it):
progress goes there. In plain Python it goes to ``sys.stderr``. Set ``COURSE_PROGRESS``
to a file to append it there instead (e.g. ``/dev/tty``), or to ``off`` for silence.
Inside pytest the kernel keeps no such copy, and nothing is reported.

How it follows the chains. Through the samplers' public progress hooks: PyMC's
``pm.sample(callback=...)``, called after every draw (warm-up included), and nutpie's
``nutpie.sample(progress_callback=...)``, called every half second with each chain's
progress. While :func:`reporting` runs, :func:`hooks` gives the sampling code the keyword
arguments to pass (nothing when there is no terminal). They change how progress is
shown, never which draws are made, so the fit cache's keys leave them out.
"""

from __future__ import annotations

import contextvars
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["ENV_PROGRESS", "FitProgress", "hooks", "reporting"]

ENV_PROGRESS = "COURSE_PROGRESS"
_OFF = {"0", "off", "no", "false", "none"}


def _format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``.

    >>> _format_duration(75), _format_duration(3725), _format_duration(4.4)
    ('1:15', '1:02:05', '0:04')
    """
    seconds = round(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _terminal() -> TextIO | None:
    """The stream progress goes to, or None when there is none (see the module docs)."""
    setting = os.environ.get(ENV_PROGRESS, "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return open(setting, "a", buffering=1, encoding="utf-8", errors="replace")
    stream = sys.stderr
    if type(stream).__module__.startswith("ipykernel"):
        # Writing to the kernel's sys.stderr would put progress into the notebook.
        try:
            fd = stream.fileno()  # ipykernel's copy of the terminal's standard error
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
        return open(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    return stream


class FitProgress:
    """Counts each chain's iterations and writes one status line to ``stream``.

    On a terminal the line is rewritten in place (at most every ``interval`` seconds);
    in a log (a file, a pipe in CI) a new line is written every ``log_interval`` seconds.
    """

    def __init__(self, name: str, stream: TextIO, *, clock: Callable[[], float] = time.monotonic,
                 interval: float = 0.5, log_interval: float = 15.0):
        self.name = name
        self.stream = stream
        self.clock = clock
        self.live = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if self.live else log_interval
        self.started = clock()
        self.last_shown: float | None = None
        self.done: list[int] = []
        self.per_chain = 0
        self.first: tuple[float, int] | None = None  # (time, iterations) at the first update
        self._open_line = False
        # nutpie calls back from a thread of its own: one writer at a time, none after end().
        self._lock = threading.Lock()
        self._closed = False

    def _write(self, text: str, *, final: bool = False) -> None:
        if self._closed:
            return
        if self.live:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self._open_line = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def begin(self, sampler: str, chains: int, tune: int, draws: int) -> None:
        self.done = [0] * chains
        self.per_chain = tune + draws
        self.first = None
        self._write(f"[{self.name}] fitting with {sampler}: {chains} chains x ({tune} warm-up + {draws} draws)",
                    final=True)

    def advance(self, chain: int, done: int | None = None) -> None:
        """Chain ``chain`` (counted from 0) has made ``done`` iterations (default: one more)."""
        if chain >= len(self.done):
            self.done += [0] * (chain + 1 - len(self.done))
        self.done[chain] = self.done[chain] + 1 if done is None else done
        if self.first is None:
            self.first = (self.clock(), sum(self.done))
        self._maybe_show()

    def pymc_callback(self, trace, draw) -> None:
        """PyMC's ``callback``: one more iteration of chain ``draw.chain``."""
        self.advance(draw.chain)

    def nutpie_callback(self, chains) -> None:
        """nutpie's ``progress_callback`` (called from nutpie's own thread): every chain's
        finished iterations so far."""
        with self._lock:
            for chain, state in enumerate(chains):
                if chain >= len(self.done):
                    self.done.append(0)
                self.done[chain] = int(state.finished_draws)
            if self.first is None:
                self.first = (self.clock(), sum(self.done))
            self._maybe_show()

    def _maybe_show(self) -> None:
        now = self.clock()
        if self.last_shown is None or now - self.last_shown >= self.interval:
            self.last_shown = now
            self._write(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        total = self.per_chain * len(self.done)
        finished = sum(self.done)
        chains = " | ".join(f"chain {i + 1} {n}/{self.per_chain}" for i, n in enumerate(self.done))
        share = finished / total if total else 0.0
        return f"[{self.name}] {share:.0%} | {chains} | {_format_duration(elapsed)} elapsed, {self._left(now, total)}"

    def _left(self, now: float | None, total: int) -> str:
        """Time left at the rate since the first iteration (compiling and starting the
        chains are not sampling), once 1% of the iterations are done."""
        if self.first is None:
            return "time left: estimating"
        now = self.clock() if now is None else now
        since, made = now - self.first[0], sum(self.done) - self.first[1]
        if made < 0.01 * total or since <= 0:
            return "time left: estimating"
        return f"~{_format_duration(since / made * (total - sum(self.done)))} left"

    def end(self, ok: bool) -> None:
        elapsed = _format_duration(self.clock() - self.started)
        with self._lock:
            self._write(f"[{self.name}] {'done in' if ok else 'failed after'} {elapsed}", final=True)
            self._closed = True


# The fit being reported in this thread (or task), set by :func:`reporting`.
_CURRENT: contextvars.ContextVar[FitProgress | None] = contextvars.ContextVar("course_fit_progress", default=None)

#: How often nutpie calls back, in milliseconds.
NUTPIE_RATE_MS = 500


def hooks(sampler: str, *, chains: int, tune: int, draws: int) -> dict:
    """Keyword arguments that make ``sampler`` (``"pymc"`` or ``"nutpie"``) report the
    progress of the fit :func:`reporting` is reporting; ``{}`` when none is."""
    progress = _CURRENT.get()
    if progress is None:
        return {}
    progress.begin("nutpie" if sampler == "nutpie" else "PyMC", chains, tune, draws)
    if sampler == "nutpie":
        return {"progress_callback": progress.nutpie_callback, "progress_rate": NUTPIE_RATE_MS}
    return {"callback": progress.pymc_callback}


@contextmanager
def reporting(name: str) -> Iterator[FitProgress | None]:
    """Report the progress of the fit ``name`` made inside the ``with`` block.

    Yields the :class:`FitProgress`, or None when there is no terminal to report to.
    The sampling code asks :func:`hooks` for the sampler's progress arguments.
    """
    stream = _terminal()
    if stream is None:
        yield None
        return
    progress = FitProgress(name, stream)
    token = _CURRENT.set(progress)
    ok = False
    try:
        yield progress
        ok = True
    finally:
        _CURRENT.reset(token)
        progress.end(ok)
        if stream is not sys.stderr:
            stream.close()
