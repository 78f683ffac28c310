"""The layout of the search report: the data ``nas.report.build_report`` gathers, as one HTML page.

Self-contained: the style sheet and a few lines of script are inline, every
picture is a data URI, and nothing is fetched (the page says so to the
browser too, with a content security policy that allows no network).
"""

from __future__ import annotations

import datetime
import html
import json
from typing import Any

SECTIONS = (
    ("glance", "At a glance"),
    ("rewards", "Rewards"),
    ("costs", "Accuracy and cost"),
    ("top", "Best architectures"),
    ("controller", "What the controller learned"),
    ("failures", "Failures"),
    ("config", "Frozen config"),
)

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #fafafa; }
header { background: #27364a; color: #fff; padding: 18px 32px 12px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .sub { color: #c9d3e0; font-size: 13px; }
nav { background: #fff; border-bottom: 1px solid #ddd; padding: 8px 32px; position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 18px; color: #27364a; text-decoration: none; font-weight: 600; }
main { padding: 8px 32px 40px; max-width: 1280px; }
section { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: 4px 22px 18px; margin: 18px 0; }
h2 { font-size: 19px; border-bottom: 2px solid #4C72B0; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.glance th { width: 210px; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
.note { color: #555; font-size: 13px; }
.empty { color: #777; font-style: italic; }
.pair { display: flex; flex-wrap: wrap; gap: 18px; }
.pair > div { flex: 1 1 520px; min-width: 0; }
.heat td { text-align: center; min-width: 38px; padding: 2px 4px; }
.heat td.na { background: #f3f3f3; color: #bbb; }
.heat th.row { white-space: nowrap; text-align: left; }
.arch { border-top: 1px solid #e2e2e2; margin-top: 18px; }
.downloads a { margin-right: 16px; }
pre { background: #f6f8fa; border: 1px solid #e2e2e2; padding: 10px; overflow: auto; font-size: 12px;
      max-height: 520px; }
details { margin: 4px 0; }
.error { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
#broken { background: #fde2e2; color: #8a1f1f; padding: 8px 32px; margin: 0; }
ul.changes li { margin: 2px 0; }
"""

# After loading, the page checks that every picture decoded: a broken one is a visible warning and a
# console error (which is what the tests look for), and <body data-images="N/M"> says how many did.
_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var bad = images.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
  document.body.setAttribute("data-images", (images.length - bad.length) + "/" + images.length);
  if (bad.length) {
    var p = document.getElementById("broken");
    p.textContent = bad.length + " picture(s) of this report did not load.";
    p.hidden = false;
    console.error("report: " + bad.length + " image(s) did not load");
  }
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] = frozenset(), cls: str = "") -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(_fmt(v))}</td>' if i in numeric else f"<td>{_e(_fmt(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _glance(g: dict[str, Any], generated: float) -> str:
    space = g["space"]
    best = (
        f"{g['best_reward']:.4f} (trial {g['best_trial']})"
        if g["best_reward"] is not None
        else "no completed trial yet"
    )
    in_flight = "in flight" if g["running_now"] else "interrupted (run again when the search continues)"
    rows = [
        ("experiment", g["experiment"]),
        ("algorithm", g["algorithm"]),
        ("search", f"{g['search_id']} in {g['workdir']}"),
        ("state", g["state"]),
        (
            "search space",
            f"{space['blocks']} scale-permuted blocks, {space['decisions']} decisions; "
            f"{space['total']:.3e} architectures ({space['total_windowed']:.3e} with parent window "
            f"{space['parent_window']})",
        ),
        ("reward", g["reward"]),
        (
            "trials",
            f"{g['completed'] + g['failed']} of {g['max_trials']} done: {g['completed']} completed "
            f"({g['reused']} reused an earlier result), {g['failed']} failed; {g['proposed']} proposed",
        ),
        ("running", f"{g['in_flight']} {in_flight}"),
        ("failed", f"{g['failed']} trials failed for good; {g['retried_attempts']} attempts failed and were retried"),
        ("best reward", best),
        ("elapsed", g["elapsed"]),
        ("ETA", g["eta"] + ("" if g["running_now"] else " (not running)")),
        (
            "device-hours",
            f"{g['device_hours']:.2f} (every attempt's run time x {g['devices_per_trial']:g} device(s) per trial)",
        ),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    stamp = datetime.datetime.fromtimestamp(generated).strftime("%Y-%m-%d %H:%M:%S")
    return f'<table class="glance"><tbody>{body}</tbody></table><p class="note">Report written {_e(stamp)}.</p>'


def _trade_offs(data: dict[str, Any]) -> str:
    parts = []
    for t in data["trade_offs"]:
        rows = [[r["trial_id"], r["value"], r["cost"], r["reward"]] for r in t["front"]]
        front = (
            _table(["trial", data["metric"], t["key"].replace("_", "-"), "reward"], rows, numeric={0, 1, 2, 3})
            if rows
            else '<p class="empty">no completed trial yet</p>'
        )
        target = (
            f'<p class="note">The dashed line is the cost-aware reward\'s target ({_e(t["target"])}); the '
            "thin curve, the accuracy that would earn the best reward so far at each cost.</p>"
            if t["target"] is not None
            else ""
        )
        parts.append(
            f"<div>{_img(t['image'], data['metric'] + ' against ' + t['key'])}{target}"
            f"<details><summary>Pareto front against {_e(t['unit'])}: {len(t['front'])} trials</summary>{front}"
            "</details></div>"
        )
    note = (
        '<p class="note">Each dot is a completed trial; the red staircase joins the Pareto front, the trials '
        "that no other trial beats on both accuracy and cost. #N marks the best architectures below.</p>"
    )
    return note + f'<div class="pair">{"".join(parts)}</div>'


def _architecture(a: dict[str, Any], metric: str) -> str:
    facts = [
        ("reward", _fmt(a["reward"])),
        ("mean reward of its trainings", _fmt(a["mean_reward"])),
        ("parameters", f"{a['params']:,}"),
        ("multiply-adds", f"{a['multiply_adds']:,} ({a['multiply_adds'] / 1e9:.2f}B)"),
        ("fingerprint", a["fingerprint"]),
        ("scaling", ", ".join(f"{k} {v}" for k, v in a["scaling"].items())),
    ] + [(k, _fmt(v)) for k, v in a["metrics"].items() if k not in ("params", "multiply_adds")]
    facts_html = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    runs = _table(
        ["trial", "seed", "attempts", "status", "reward", "reused from", "error"],
        [
            [r["trial_id"], r["seed"], r["attempts"], r["status"], r["reward"], r["reused_from"], r["error"] or ""]
            for r in a["runs"]
        ],
        numeric={0, 1, 2, 4},
    )
    blocks = _table(
        ["index", "level", "type", "parents", "output", "size", "channels", "params", "multiply-adds", "note"],
        [
            [
                b["index"],
                f"L{b['level']}",
                b["block_fn"],
                ", ".join(map(str, b["parents"])) or "stem",
                f"P{b['level']}" if b["is_output"] else "",
                b["size"],
                b["channels"],
                b["params"],
                b["multiply_adds"],
                "; ".join(
                    ([f"sums {', '.join(map(str, b['merged']))}"] if b["merged"] else [])
                    + ([] if b["live"] else ["dead: reaches no output, not built"])
                ),
            ]
            for b in a["blocks"]
        ],
        numeric={0, 5, 6, 7, 8},
    )
    links = "".join(f'<a download="{_e(name)}" href="{uri}">{_e(name)}</a>' for name, uri in a["downloads"])
    return (
        f'<div class="arch" id="rank{a["rank"]}"><h3>#{a["rank"]}: trial {a["trial_id"]}, reward {a["reward"]:.4f}</h3>'
        f"{_img(a['diagram'], 'architecture of trial ' + str(a['trial_id']))}"
        f'<div class="pair"><div><h4>Summary</h4><table class="glance"><tbody>{facts_html}</tbody></table>'
        f'<p class="downloads">Download: {links}</p></div>'
        f"<div><h4>Its rewards across attempts and seeds</h4>{runs}</div></div>"
        f"<details><summary>Blocks of the proxy model ({len(a['blocks'])} entries)</summary>{blocks}</details></div>"
    )


def _heat_colour(share: float) -> str:
    # White to the plots' blue; dark text on light cells.
    r, g, b = (int(255 + (c - 255) * share) for c in (0x2F, 0x5D, 0xA0))
    text = "#fff" if share > 0.55 else "#222"
    return f"background:rgb({r},{g},{b});color:{text}"


def _heatmap(h: Any) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in h.columns)
    rows = []
    for label, shares in zip(h.rows, h.shares):
        cells = "".join(
            '<td class="na">&ndash;</td>' if s is None else f'<td style="{_heat_colour(s)}">{round(100 * s)}</td>'
            for s in shares
        )
        rows.append(f'<tr><th class="row">{_e(label)}</th>{cells}</tr>')
    return f'<table class="heat"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _decisions(d: dict[str, Any]) -> str:
    if d["start"] is None:
        return f'<p class="empty">No decision statistics: {_e(d["how"])}.</p>'
    parts = [f'<p class="note">Shares in percent of each row: {_e(d["how"])}. A dash: not a choice there.</p>']
    if d["changes"]:
        items = "".join(f"<li>{_e(c)}</li>" for c in d["changes"])
        parts.append(f'<h4>What moved most</h4><ul class="changes">{items}</ul>')
    else:
        parts.append(
            '<p class="note">No row moved beyond chance from the start (by 10 percentage points and 4.5 standard '
            "errors).</p>"
        )
    for h0, h1 in zip(d["start"].heatmaps, d["now"].heatmaps):
        parts.append(
            f'<h4 class="heat-title" data-kind="{_e(h1.kind)}">{_e(h1.title[:1].upper() + h1.title[1:])}</h4>'
            f'<div class="pair"><div><p class="note">{_e(d["start"].label)}, {h0.samples} architectures</p>'
            f"{_heatmap(h0)}</div>"
            f'<div><p class="note">{_e(d["now"].label)}, {h1.samples} architectures</p>{_heatmap(h1)}</div></div>'
        )
    return "".join(parts)


def _failures(data: dict[str, Any]) -> str:
    if not data["failure_count"]:
        return '<p class="empty">No trial failed.</p>'
    kinds = _table(
        ["error (its first words)", "trials"], [[k or "(no message)", n] for k, n in data["failure_kinds"]], numeric={1}
    )
    shown = data["failures"]
    more = (
        f'<p class="note">The latest {len(shown)} of {data["failure_count"]} failed trials:</p>'
        if len(shown) < data["failure_count"]
        else ""
    )
    rows = []
    for f in shown:
        details = (
            f"<details><summary>the end of its error report</summary><pre>{_e(f['details'])}</pre></details>"
            if f["details"]
            else ""
        )
        rows.append(
            f'<tr><td class="num">{f["trial_id"]}</td><td class="num">{f["attempts"]}</td>'
            f'<td><div class="error">{_e(f["error"])}</div>{details}</td></tr>'
        )
    table = (
        '<table class="failures"><thead><tr><th class="num">trial</th><th class="num">attempts</th><th>error</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return f"{kinds}{more}{table}"


def _fidelity(f: dict[str, Any] | None) -> str:
    """The rungs of a multi-fidelity search (``nas.fidelity.summary``); empty at full fidelity."""
    if not f:
        return ""
    rows = [[r["rung"], f"{r['epochs']:g}", r["evaluated"], r["promoted"], r["stopped"]] for r in f["rungs"]]
    saving = f" ({f['saving']:.2f}x fewer)" if f["saving"] else ""
    rewards = ", ".join(f"{n} {k}" for k, n in sorted(f["rewards"].items())) or "none yet"
    return (
        f"<h3>Rungs (ASHA, reduction factor {f['reduction_factor']:g})</h3>"
        + _table(["rung", "epochs", "evaluated", "promoted", "stopped"], rows, numeric={0, 1, 2, 3, 4})
        + f'<p class="note">Epochs trained: {f["epochs_spent"]:g}, against {f["epochs_full"]:g} for the same '
        f"proposals at full fidelity{_e(saving)}. Rewards by source: {_e(rewards)}.</p>"
        + _img(f["image"], "metric per trial at each rung")
    )


def render(data: dict[str, Any]) -> str:
    """The report page."""
    g = data["glance"]
    top = data["top"]
    if top:
        top_html = (
            f'<p class="note">The {len(top)} best distinct architectures (of {data["top_requested"]} asked for), '
            "ranked by their best reward; each diagram shows the blocks in build order, their level, the "
            "cross-scale connections and the output blocks.</p>"
            + "".join(_architecture(a, data["metric"]) for a in top)
        )
    else:
        top_html = '<p class="empty">No completed trial yet.</p>'
    stats = (
        _img(data["stats_image"], "controller statistics")
        if data["stats_image"]
        else f'<p class="empty">No statistics over time: the {_e(g["algorithm"])} controller reported none '
        "(random search has none; the others report after each trial).</p>"
    )
    bodies = {
        "glance": _glance(g, data["generated"]),
        "rewards": _img(data["rewards_image"], "reward per trial")
        + '<p class="note">Reward of each trial, the best so far and a moving average; failed trials are '
        "crosses on the floor.</p>" + _fidelity(data.get("fidelity")),
        "costs": _trade_offs(data),
        "top": top_html,
        "controller": f"{stats}{_decisions(data['decisions'])}",
        "failures": _failures(data),
        "config": '<p class="note">The search\'s frozen config (config.json, with the defaults of keys it '
        "lacks), one key a line as --params_override names them.</p><pre>"
        + _e("\n".join(f"{k} = {json.dumps(v)}" for k, v in data["config"].items()))
        + "</pre>",
    }
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{bodies[sid]}</section>' for sid, title in SECTIONS)
    title = f"Search report: {g['experiment']} ({g['algorithm']})"
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f'<body><header><h1>{_e(title)}</h1><div class="sub">{_e(g["search_id"])} &middot; {_e(g["workdir"])} '
        f"&middot; {_e(g['state'])}</div></header>"
        f'<p id="broken" hidden></p><nav>{nav}</nav><main>{sections}</main>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
