"""bench/results/<date>-<scenario>.png: per metric family of a scenario, both brokers' medians
side by side per metric and case, min–max as error bars, the ratio under each pair."""
import math

from .brokers import BROKERS, COLOR, LABEL
from .machine import log
from .report import cases_of, ratio_text, summarise


def make_charts(outdir, stem, runs_data, order, P):
    from .scenarios import SCENARIOS, family_of
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not available: no charts (bench/run.sh installs it in .venv-bench)")
        return {}
    charts = {}
    for letter in order:
        sc = SCENARIOS[letter]
        per_rep = [r["scenarios"][letter] for r in runs_data if letter in r["scenarios"]]
        if not per_rep or not sc.charts:
            continue
        all_cases = cases_of(per_rep)
        for fam in sc.families:
            case_keys = [ck for ck in all_cases if family_of(ck) == fam]
            title = sc.title.format(**P)
            if len(sc.families) > 1:
                title = f"({letter}) " + sc.family_titles[fam].format(**P)
            fname = f"{stem}-{sc.chart_key(fam)}.png"
            if case_keys and chart(plt, matplotlib, outdir / fname, title, fam, case_keys,
                                   per_rep):
                charts[sc.chart_key(fam)] = fname
    return charts


def chart(plt, matplotlib, path, title, name, case_keys, per_rep):
    """One PNG: both brokers' medians per metric of the family, per case; False if none."""
    from .scenarios import CASE_LABEL, FAMILIES
    fam = FAMILIES[name]
    mdefs = {k: (label, unit, better, f) for k, label, unit, better, f in fam.metrics}
    keys = [k for k in fam.chart_metrics if k in mdefs]
    ncols = 3
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.9 * nrows), squeeze=False)
    for idx, key in enumerate(keys):
        ax = axes[idx // ncols][idx % ncols]
        label, unit, better, f = mdefs[key]
        width = 0.38
        ymax = 0
        for ci, ck in enumerate(case_keys):
            meds = {}
            for bi, br in enumerate(BROKERS):
                s = summarise([rep[br]["cases"].get(ck, {}).get(key) for rep in per_rep])
                if s is None:
                    continue
                meds[br] = s["median"]
                x = ci + (bi - 0.5) * width
                ax.bar(x, s["median"], width, color=COLOR[br],
                       label=LABEL[br] if ci == 0 else None,
                       yerr=[[s["median"] - s["min"]], [s["max"] - s["median"]]],
                       capsize=3, ecolor="#333333")
                ymax = max(ymax, s["max"])
            if len(meds) == 2:
                rt = ratio_text(meds["turnpike"], meds["mosquitto"], better)
                r = rt.split(" (")[0]
                txt = f"T/m {r}" if r not in ("–",) else "T/m –"
                colour = "#2a7a2a" if "Turnpike better" in rt else (
                    "#b03030" if "mosquitto better" in rt else "#444444")
                ax.annotate(txt, xy=(ci, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, -28 if len(case_keys) > 1 else -14),
                            textcoords="offset points", ha="center", va="top",
                            fontsize=9, color=colour, fontweight="bold")
        ax.set_title(f"{label}\n({unit + ', ' if unit else ''}"
                     f"{better + ' is better' if better in ('higher', 'lower') else 'for information'})",
                     fontsize=10)
        ax.set_xticks(range(len(case_keys)))
        if len(case_keys) > 1:
            ax.set_xticklabels([CASE_LABEL.get(c, c) for c in case_keys], fontsize=8)
        else:
            ax.set_xticklabels([""])
        ax.set_ylim(0, ymax * 1.12 if ymax > 0 else 1)
        ax.grid(axis="y", alpha=0.3)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"))
    for idx in range(len(keys), nrows * ncols):
        axes[idx // ncols][idx % ncols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"{title} — median of {len(per_rep)} run(s), bars: min–max; "
                 "T/m = Turnpike/mosquitto (green: Turnpike better, red: mosquitto better)",
                 fontsize=11, x=0.01, y=0.995, ha="left")
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.01, 0.965), ncol=2,
               fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
