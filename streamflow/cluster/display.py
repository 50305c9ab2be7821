"""Live progress of a run with rich: epochs done, records/s per operator, queue depths."""
from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamflow.progress import DONE


class LiveView:
    """A rich Live table on a terminal; a status line every few seconds otherwise."""

    def __init__(self, title: str, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.title = title
        self.quiet = quiet
        self.live: Live | None = None
        self._last_line = 0.0
        self._prev: dict[str, tuple[float, int]] = {}
        self._rates: dict[str, float] = {}

    def __enter__(self) -> "LiveView":
        self._last_line = time.monotonic()
        if self.console.is_terminal and not self.quiet:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def _rate(self, name: str, records: int, now: float) -> float:
        prev = self._prev.get(name)
        if prev is not None and now - prev[0] >= 0.5:
            self._rates[name] = (records - prev[1]) / (now - prev[0])
            self._prev[name] = (now, records)
        elif prev is None:
            self._prev[name] = (now, records)
        return self._rates.get(name, 0.0)

    def update(self, record: Any, observer: Any, elapsed: float, note: str = "") -> None:
        if self.quiet:
            return
        now = time.monotonic()
        totals = record.operator_totals()
        frontier = observer.frontier() if observer else 0
        epoch = "all" if frontier == DONE else (f"{int(frontier) - 1}" if frontier > 0 else "-")
        if self.live is None:
            if now - self._last_line >= 5.0:
                self._last_line = now
                moved = sum(t["records"] for t in totals.values())
                self.console.print(f"[{elapsed:6.1f}s] epochs done through {epoch}; "
                                   f"{moved:,} records handled {note}", highlight=False)
            return
        table = Table(title=f"{self.title}  {elapsed:.1f}s  epochs done through {epoch}  {note}",
                      title_justify="left")
        for col in ("operator", "workers", "records", "records/s", "queue"):
            table.add_column(col, justify="right" if col not in ("operator", "workers") else "left")
        for name, t in totals.items():
            counted = t["records_out"] if t["records"] == 0 else t["records"]
            table.add_row(name, ",".join(t["instances"]), f"{counted:,}",
                          f"{self._rate(name, counted, now):,.0f}", str(t["queue"]))
        self.live.update(Group(table, Text("")))
