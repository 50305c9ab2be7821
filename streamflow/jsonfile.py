"""Reading a JSON input file (plan, infrastructure, workflow) with one-line errors naming it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamflow.errors import StreamflowError


def read_json(path: str | Path, error: type[StreamflowError]) -> Any:
    """The parsed file; a missing, unreadable or malformed file raises `error` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
