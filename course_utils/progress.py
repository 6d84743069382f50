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

How it follows the chains. PyMC's ``pm.sample`` calls a ``callback`` after every draw,
warm-up included; nutpie renders a progress template (every half second) and hands the
text to a function. :func:`reporting` wraps ``pymc.sample`` and ``nutpie.sample`` for
the length of one fit to pass those hooks in. They change how progress is shown, never
which draws are made, so the fit cache's keys leave them out.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["ENV_PROGRESS", "FitProgress", "format_duration", "reporting", "terminal"]

ENV_PROGRESS = "COURSE_PROGRESS"
_OFF = {"0", "off", "no", "false", "none"}


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``.

    >>> format_duration(75), format_duration(3725), format_duration(4.4)
    ('1:15', '1:02:05', '0:04')
    """
    seconds = round(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def terminal() -> TextIO | None:
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
        self.status = ""  # a sampler's own summary line (nutpie), used instead of counts
        self.first: tuple[float, int] | None = None  # (time, iterations) at the first update
        self._open_line = False

    def _write(self, text: str, *, final: bool = False) -> None:
        if self.live:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self._open_line = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def begin(self, sampler: str, chains: int, tune: int, draws: int) -> None:
        self.done = [0] * chains
        self.per_chain = tune + draws
        self.status = ""
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

    def show_status(self, status: str) -> None:
        self.status = status.strip()
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = self.clock()
        if self.last_shown is None or now - self.last_shown >= self.interval:
            self.last_shown = now
            self._write(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        if self.status:
            return f"[{self.name}] {self.status} | {format_duration(elapsed)} elapsed"
        total = self.per_chain * len(self.done)
        finished = sum(self.done)
        chains = " | ".join(f"chain {i + 1} {n}/{self.per_chain}" for i, n in enumerate(self.done))
        share = finished / total if total else 0.0
        return f"[{self.name}] {share:.0%} | {chains} | {format_duration(elapsed)} elapsed, {self._left(now, total)}"

    def _left(self, now: float | None, total: int) -> str:
        """Time left at the rate since the first iteration (compiling and starting the
        chains are not sampling), once 1% of the iterations are done."""
        if self.first is None:
            return "time left: estimating"
        now = self.clock() if now is None else now
        since, made = now - self.first[0], sum(self.done) - self.first[1]
        if made < 0.01 * total or since <= 0:
            return "time left: estimating"
        return f"~{format_duration(since / made * (total - sum(self.done)))} left"

    def end(self, ok: bool) -> None:
        elapsed = format_duration(self.clock() - self.started)
        self._write(f"[{self.name}] {'done in' if ok else 'failed after'} {elapsed}", final=True)


# nutpie's progress template (rendered by nutpie itself; the variables are nutpie's).
NUTPIE_TEMPLATE = (
    "{{ total_finished_draws }}/{{ total_draws }} iterations | chains"
    "{% for chain in chains %} {{ chain.finished_draws }}/{{ chain.total_draws }}"
    "{% if chain.tuning %} (warm-up){% endif %}{% if not loop.last %},{% endif %}{% endfor %}"
    "{% if time_remaining_estimate %} | ~{{ time_remaining_estimate }} left{% endif %}"
)


def _pymc_sample(original: Callable, progress: FitProgress) -> Callable:
    @functools.wraps(original)
    def sample(*args, **kwargs):
        # The course always passes chains, tune and draws; otherwise PyMC's defaults.
        cores = kwargs.get("cores") or min(4, os.cpu_count() or 1)
        chains = kwargs.get("chains") or max(2, cores)
        progress.begin("PyMC", chains, kwargs.get("tune", 1000), kwargs.get("draws", 1000))
        user_callback = kwargs.pop("callback", None)

        def callback(trace, draw):
            progress.advance(draw.chain)
            if user_callback is not None:
                user_callback(trace=trace, draw=draw)

        return original(*args, callback=callback, **kwargs)

    return sample


def _nutpie_sample(original: Callable, progress: FitProgress) -> Callable:
    from nutpie import _lib

    @functools.wraps(original)
    def sample(compiled_model, *args, **kwargs):
        chains, tune, draws = (kwargs.get(k) for k in ("chains", "tune", "draws"))
        # The course always passes them; otherwise nutpie's defaults (6 chains, 300 + 1000).
        progress.begin("nutpie", chains or 6, 300 if tune is None else tune, 1000 if draws is None else draws)
        cls = type(compiled_model)
        make_sampler = cls._make_sampler

        # nutpie's own progress type replaced by a callback; the arguments after it (the
        # trace store, and in nutpie 0.16.11 an extra callback and its rate) are passed on.
        def with_progress(self, settings, init_mean, cores, progress_type, *rest):
            progress_type = _lib.ProgressType.template_callback(500, NUTPIE_TEMPLATE, cores, progress.show_status)
            return make_sampler(self, settings, init_mean, cores, progress_type, *rest)

        cls._make_sampler = with_progress
        try:
            return original(compiled_model, *args, **{**kwargs, "progress_bar": False})
        finally:
            cls._make_sampler = make_sampler

    return sample


@contextmanager
def reporting(name: str) -> Iterator[FitProgress | None]:
    """Report the progress of the fit ``name`` made inside the ``with`` block.

    Yields the :class:`FitProgress`, or None when there is no terminal to report to
    (then the samplers are left as they are).
    """
    stream = terminal()
    if stream is None:
        yield None
        return
    import pymc

    progress = FitProgress(name, stream)
    patched = [(pymc, "sample", pymc.sample)]
    pymc.sample = _pymc_sample(pymc.sample, progress)
    try:
        import nutpie
    except ImportError:
        pass
    else:
        patched.append((nutpie, "sample", nutpie.sample))
        nutpie.sample = _nutpie_sample(nutpie.sample, progress)
    ok = False
    try:
        yield progress
        ok = True
    finally:
        for module, attr, original in patched:
            setattr(module, attr, original)
        progress.end(ok)
        if stream is not sys.stderr:
            stream.close()
