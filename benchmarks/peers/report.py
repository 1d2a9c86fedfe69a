"""Merge the two peer runs into ``benchmarks/results/peers.{json,md}`` (standard library only).

Inputs: ``peers_torch.json`` (pyDVL and captum, from ``bench_torch_peers.py``) and
``peers_secml.json`` (from ``bench_secml.py``). Each holds, per C, the derivative of every variant,
the re-training references in both conventions, interleaved timings and their ratios to our
``backdoor_slope`` measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"

VARIANTS = {
    "shipped": "as shipped (scale + sign converted)",
    "fixed": "after convention fix",
}
FIXES = {
    "pydvl": "intercept re-parametrized b = s b' (s = {s:g}) so lam I leaves it ~unpenalized",
    "captum": "intercept re-parametrized b = s b' (s = {s:g}) so hessian_reg I leaves it "
    "~unpenalized",
    "secml": "theta0 of scikit-learn; H over the training set D; no regularizer term in the "
    "training gradients",
}
SHIPPED = {
    "pydvl": "lam I on all parameters (intercept penalized), model at the optimum of J + b^2/2",
    "captum": "hessian_reg I on all parameters (intercept penalized), model at the optimum of "
    "J + b^2/2",
    "secml": "secml's liblinear fit (intercept penalized, tol 1e-4); H at the test points; "
    "[w; 0] added to every training gradient; log2 loss",
}


ABLATIONS = {
    "secml_shipped": "as shipped",
    "ablation_shipped_fit_hessian_on_D_only": "H over D only",
    "ablation_shipped_fit_no_reg_term_only": "no [w; 0] term only",
    "ablation_shipped_fit_both_fixes": "both fixes, secml's own fit",
    "ablation_sklearn_theta_no_fix": "scikit-learn's theta0, no fix",
    "secml_fixed": "scikit-learn's theta0, both fixes",
}


def _fmt(r: dict | None) -> str:
    if not r:
        return "-"
    return f"{r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}]"


def _rows(peer: str, version: str, run: dict) -> list[dict]:
    rows = []
    for variant in VARIANTS:
        name = f"{peer}_{variant}"
        if name not in run["derivative"]:
            err = run.get("errors", {}).get(name, {}).get("error", "did not run")
            rows.append({"peer": peer, "version": version, "C": run["C"], "variant": variant,
                         "error": err})  # fmt: skip
            continue
        rel = run["rel_err_vs_retraining"]
        rows.append(
            {
                "peer": peer,
                "version": version,
                "C": run["C"],
                "variant": variant,
                "derivative": run["derivative"][name],
                "reference": run["reference"]["sklearn"]["derivative"],
                "rel_err_vs_retraining": rel[name],
                "rel_diff_to_ours": abs(run["derivative"][name] - run["derivative"]["ours"])
                / abs(run["derivative"]["ours"]),
                "rel_err_vs_retraining_own_convention": rel.get(f"{name}_vs_bias_reg_retraining"),
                "ratio_over_ours": run["ratio"].get(f"{name}/ours"),
                "ratio_over_ours_given_fit": run["ratio"].get(f"{name}/ours_given_fit"),
                "seconds_median": run["time"][name]["median"],
                "ours_seconds_median": run["time"]["ours"]["median"],
                "ours_given_fit_seconds_median": run["time"]["ours_given_fit"]["median"],
                "convention": FIXES[peer].format(s=run.get("bias_scale") or 0)
                if variant == "fixed"
                else SHIPPED[peer],
            }
        )
    return rows


def collect(torch_res: dict | None, secml_res: dict | None) -> dict:
    rows, ours, failures = [], [], []
    for res, peers in ((torch_res, ("pydvl", "captum")), (secml_res, ("secml",))):
        if res is None:
            failures.append({"peers": peers, "error": "result file missing"})
            continue
        if "error" in res:
            failures.append({"peers": peers, "error": res["error"]})
            continue
        versions = res["meta"]["versions"]
        for run in res["runs"]:
            if "error" in run:
                failures.append({"peers": peers, "C": run["C"], "error": run["error"]})
                continue
            ours.append(
                {
                    "env": "+".join(peers),
                    "C": run["C"],
                    "derivative": run["derivative"]["ours"],
                    "reference": run["reference"]["sklearn"]["derivative"],
                    "reference_error_estimate": run["reference"]["sklearn"]["error_estimate"],
                    "reference_bias_reg": run["reference"]["bias_reg"]["derivative"],
                    "rel_err_vs_retraining": run["rel_err_vs_retraining"]["ours"],
                    "seconds_median": run["time"]["ours"]["median"],
                    "given_fit_seconds_median": run["time"]["ours_given_fit"]["median"],
                    "repeats": run["time"]["ours"]["n"],
                }
            )
            for peer in peers:
                rows.extend(_rows(peer, versions.get(peer, "?"), run))
                for name, e in run.get("errors", {}).items():
                    failures.append({"peer": name, "C": run["C"], "error": e["error"]})
    return {"ours": ours, "peers": rows, "failures": failures}


def markdown(out: dict, torch_res: dict | None, secml_res: dict | None) -> str:
    lines = [
        "# Peers: the backdoor learning slope by influence-function libraries",
        "",
        "Logistic regression on MNIST 7 vs 1, BadNets 3x3, p = 0.1 (675 clean / 75 poison / "
        "250 backdoor test, 784 pixels). Derivative dL(V_t)/dbeta at 0 (DESIGN §4). "
        "Re-training reference: Richardson-extrapolated forward difference of "
        '`LogisticRegression(solver="newton-cholesky", tol=1e-13)` re-fits '
        "(h = 1e-6; scikit-learn's convention, intercept unpenalized). Time ratios: peer / ours, "
        "ratio of medians of interleaved repeats in one process, [min-max] of the per-round "
        "ratios, BLAS and torch on 1 thread. *ours* = `backdoor_slope(LogisticLearner(C), data)` "
        "including the fit at beta = 0; *ours, slope only* = the same on an already fitted model "
        "(peers are handed theta0, so this is like for like).",
        "",
    ]
    for res, label in ((torch_res, "pyDVL + captum"), (secml_res, "secml")):
        if res and "meta" in res:
            m = res["meta"]
            lines.append(
                f"- {label} run: {m['date']}, commit {str(m['git']['commit'])[:10]}, "
                f"nproc {m['nproc']}, wall {m.get('wall_seconds', float('nan')):.0f} s, "
                + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
            )
    lines += [
        "",
        "| peer | version | C | variant | time ratio peer/ours | peer/ours (slope only) | "
        "rel. err. vs re-training | rel. err. vs re-training in the peer's convention | "
        "rel. diff. to ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["peers"]:
        if "error" in r:
            lines.append(
                f"| {r['peer']} | {r['version']} | {r['C']:g} | {r['variant']} | "
                f"failed: {r['error']} | | | | |"
            )
            continue
        own = r["rel_err_vs_retraining_own_convention"]
        lines.append(
            f"| {r['peer']} | {r['version']} | {r['C']:g} | {VARIANTS[r['variant']]} | "
            f"{_fmt(r['ratio_over_ours'])} | {_fmt(r['ratio_over_ours_given_fit'])} | "
            f"{r['rel_err_vs_retraining']:.1e} | {'-' if own is None else f'{own:.1e}'} | "
            f"{r['rel_diff_to_ours']:.1e} |"
        )
    lines += [
        "",
        "Our own numbers in each process (the denominators):",
        "",
        "| process | C | derivative | re-training | its error estimate | rel. err. | "
        "ours (s, median) | slope only (s) | repeats |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in out["ours"]:
        lines.append(
            f"| {o['env']} | {o['C']:g} | {o['derivative']:.8g} | {o['reference']:.8g} | "
            f"{o['reference_error_estimate']:.1e} | {o['rel_err_vs_retraining']:.1e} | "
            f"{o['seconds_median']:.4f} | {o['given_fit_seconds_median']:.4f} | {o['repeats']} |"
        )
    for run in (torch_res or {}).get("runs", []):
        rel = run.get("rel_err_vs_retraining", {})
        key = "captum_shipped_projection_dim_50_vs_bias_reg_retraining"
        if key in rel:
            lines.append(
                f"\ncaptum at its default `projection_dim=50` (top 50 of 785 eigenpairs), C = "
                f"{run['C']:g}: rel. err. {rel[key]:.1e} vs re-training in its own convention "
                "(untimed)."
            )
    if secml_res and secml_res.get("runs"):
        lines += [
            "",
            "secml ablations (rel. err. vs re-training, untimed): what each convention costs",
            "",
            "| C | " + " | ".join(ABLATIONS.values()) + " |",
            "|---" * (len(ABLATIONS) + 1) + "|",
        ]
        for run in secml_res["runs"]:
            if "error" in run:
                continue
            rel = run["rel_err_vs_retraining"]
            lines.append(
                f"| {run['C']:g} | "
                + " | ".join(f"{rel.get(k, float('nan')):.1e}" for k in ABLATIONS)
                + " |"
            )
    lines += ["", "Conventions:", ""]
    seen = set()
    for r in out["peers"]:
        key = (r["peer"], r["variant"])
        if "convention" in r and key not in seen:
            seen.add(key)
            lines.append(f"- {r['peer']}, {r['variant']}: {r['convention']}")
    if out["failures"]:
        lines += ["", "Failures:", ""]
        lines += [f"- {json.dumps(f)}" for f in out["failures"]]
    return "\n".join(lines) + "\n"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--torch", type=Path, default=RESULTS / "peers_torch.json")
    p.add_argument("--secml", type=Path, default=RESULTS / "peers_secml.json")
    p.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    args = p.parse_args(argv)
    torch_res, secml_res = _load(args.torch), _load(args.secml)
    out = collect(torch_res, secml_res)
    out["sources"] = {"torch": str(args.torch), "secml": str(args.secml)}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    table = markdown(out, torch_res, secml_res)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
