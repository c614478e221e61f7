"""Scripts the report pages share, kept once under ``reports/_assets/`` instead of in every page.

A chart's HTML loads plotly.js from a placeholder (`labkit.reports.price_chart.ASSET`); `link_assets`
points it at ``../_assets/plotly-<version>.min.js`` (every page lies one directory under
``reports/``) and puts that file there, copied from the installed plotly package. Nothing is
loaded from another host, and a page stays small. The versioned name lets pages rendered with an
older plotly keep theirs.
"""

from __future__ import annotations

from pathlib import Path

from labkit.reports.price_chart import ASSET

ASSETS = "_assets"  # the folder under reports/; it holds no sidecar, so the index never lists it


def plotly_asset_name() -> str:
    """Return the file name of the installed plotly.js: ``plotly-<version>.min.js``."""
    from plotly.offline import get_plotlyjs_version

    return f"plotly-{get_plotlyjs_version()}.min.js"


def link_assets(page: str, reports: Path) -> str:
    """Return `page` with its placeholder scripts pointed at ``reports/_assets/``, which gets them.

    A page without a chart is returned unchanged and writes nothing. The script is copied once,
    atomically (a temporary name, then a rename), so a page never points at half a file.
    """
    if ASSET not in page:
        return page
    name = plotly_asset_name()
    ensure_plotly(reports / ASSETS / name)
    return page.replace(ASSET, f"../{ASSETS}/{name}")


def ensure_plotly(target: Path) -> None:
    """Copy the installed plotly.min.js to `target` unless it is already there."""
    if target.is_file():
        return
    from importlib.resources import files

    from labkit._io import write_atomic

    script = files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, script, mode=0o644)  # a report is to be shared, its script too
