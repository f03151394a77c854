"""The Jinja2 environment every report is rendered with, number formats, and atomic writing.

Safety rests on three choices made here, once:

* every template is autoescaped (``autoescape=True`` for file and string templates alike), so
  a feature name or category value such as ``<script>alert(1)</script>`` is text, never markup;
* no report contains a ``<script>`` element, so the Content-Security-Policy can forbid scripts
  altogether. shap's force plot and lime's ``as_html`` put feature names into inline scripts;
  a hostile column name then runs in the auditor's browser. Here it cannot;
* the one ``<style>`` element is allowed by its sha256 hash rather than ``'unsafe-inline'``,
  and nothing loads from the network (``default-src 'none'``; images only as ``data:`` URLs).
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..exceptions import ConfigurationError
from ..output_files import write_target
from ..staging import write_atomic

_TEMPLATES = Path(__file__).with_name("templates")
_STYLE = "style.css.j2"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: autoescape everywhere, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=num, signed=signed, pct=pct, interval=interval)
    return env


@lru_cache(maxsize=1)
def stylesheet() -> tuple[Markup, str]:
    """The report CSS (trusted: shipped with the package) and its CSP source expression.

    Read as source, not rendered: autoescaping would turn quotes into entities, which a
    ``<style>`` element (raw text) does not decode.
    """
    source, _, _ = environment().loader.get_source(environment(), _STYLE)  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    return Markup(source), f"'sha256-{digest}'"


def content_security_policy() -> str:
    """The policy every report carries in a ``<meta http-equiv>`` tag.

    Directives that a meta tag cannot carry (``frame-ancestors``, ``report-uri``, ``sandbox``)
    are left out: browsers ignore them there and log an error saying so.
    """
    _, style_source = stylesheet()
    return (
        f"default-src 'none'; style-src {style_source}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def render(template: str, **context: Any) -> str:
    """Render ``template`` inside the common page (CSP, stylesheet) with ``context``."""
    css, _ = stylesheet()
    return (
        environment()
        .get_template(template)
        # The policy is our constant (no user text): marked safe so its quotes stay quotes.
        .render(csp=Markup(content_security_policy()), stylesheet=css, **context)
    )


# -- number formats: one place, so every figure in a report reads the same way -------------------
def num(x: Any, digits: int = 4) -> str:
    """``digits`` significant digits; ``n/a`` for None or NaN."""
    if x is None:
        return "n/a"
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def signed(x: Any, digits: int = 4) -> str:
    """Like :func:`num`, with an explicit sign (contributions)."""
    text = num(x, digits)
    if text in ("n/a", "0", "inf") or text.startswith("-"):
        return text
    return "+" + text


def pct(x: Any, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage."""
    if x is None or math.isnan(float(x)):
        return "n/a"
    return f"{100 * float(x):.{digits}f} %"


def interval(bounds: Any, digits: int = 4) -> str:
    """``[low, high]``; ``n/a`` when there is no interval (no standard errors)."""
    if bounds is None:
        return "n/a"
    low, high = bounds
    return f"[{num(low, digits)}, {num(high, digits)}]"


# -- writing -------------------------------------------------------------------------------------
def write_html(path: str | os.PathLike[str], html: str) -> Path:
    """Write ``html`` to ``path`` atomically.

    The text goes to a temporary file in the same folder, is flushed to disk, and replaces
    ``path`` in one ``os.replace``: a reader sees the old report or the new one, never half of
    one, and a crash (or an exception while writing) leaves the old file as it was and no
    temporary file behind.

    Parameters
    ----------
    path : str or PathLike
        The report file. Its folder must exist.
    html : str
        A complete document, e.g. from :func:`decision_report` or :func:`audit_report`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigurationError
        If ``html`` is not a string.
    OSError
        If the folder does not exist or is not writable (the old file is untouched).
    InputError
        If ``path`` is a folder, a device or a pipe rather than a file.
    """
    if not isinstance(html, str):
        raise ConfigurationError(f"html must be a str, got {type(html).__name__}")
    # A symlink is followed (the file it points to is replaced, the link stays) and a device
    # or pipe is refused: the one rule shared with every other output (output_files, staging).
    target = write_target(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write report {str(target)!r}: no folder {str(target.parent)!r}"
        )
    write_atomic(target, html)
    return target
