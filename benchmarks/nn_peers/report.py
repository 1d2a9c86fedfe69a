"""Markdown table of ``benchmarks/results/nn_peers.json`` (standard library only).

``python benchmarks/nn_peers/report.py [nn_peers.json]`` rewrites the ``.md`` beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LABELS = {
    "reference_if_ggn": "influence function, exact GGN (reference)",
    "reference_if_hessian": "influence function, exact Hessian (reference)",
    "kronfluence_ekfac": "kronfluence EK-FAC (mapped)",
    "kronfluence_ekfac_shipped": "kronfluence EK-FAC (as shipped)",
    "trak": "TRAK (traker)",
    "dattri_cg": "dattri IF CG",
    "dattri_lissa": "dattri IF LiSSA",
    "dattri_arnoldi": "dattri IF Arnoldi",
    "dattri_explicit_fc": "dattri IF explicit (fc only)",
}
PACKAGE = {"kronfluence": "kronfluence", "trak": "traker", "dattri": "dattri", "reference": "torch"}


def _version(name: str, versions: dict) -> str:
    if name.startswith("reference"):
        return "ours (torch.func)"
    pkg = PACKAGE[name.split("_")[0]]
    return f"{pkg} {versions.get(pkg, '?')}"


def markdown(res: dict) -> str:
    m = res["meta"]
    d = m["data"]
    # runs written before --model/--dataset/--device existed: the SmallCNN defaults on the CPU
    data_text = m.get("data_description", "the embedded ten-class digits (14x14)")
    train = m.get("train", {"batch_size": 32, "lr": 0.02})
    device = m.get("device", "cpu")
    lines = [
        "# Deep-model peers: influence approximations vs the exact slope of the training run",
        "",
        f"Model: {m['model']}. Data: {data_text}. Device: {device}.",
        "",
    ]
    if m.get("note"):
        lines += [f"Note: {m['note']}", ""]
    lines += [
        "BadNets all-to-one (target 0, 3x3 patch) "
        f"on 10 %: {d['n_train']} training rows ({d['n_poison']} poisoned, weight 0 at beta = 0), "
        f"{d['n_test_bd']} backdoor test images V_t. SGD batch {train['batch_size']}, lr "
        f"{train['lr']:g}, momentum 0.9, weight "
        "decay 5e-4, seed 0. Quantity: dL(V_t)/dbeta at beta = 0 (mean cross-entropy on V_t, "
        "nats per unit of beta); *exact* = `training_derivative` (forward mode through every SGD "
        "step). Peers: sum over the poisoned rows of their mapped dL/dw_j. rho = Spearman rank "
        "correlation of the per-point values with the exact `point_derivatives` on "
        f"{m['args']['points']} poisoned rows. Cost = wall time / one training run (`train` + "
        "`evaluate`) at the same budget, one timing each, torch on "
        f"{m['args']['threads']} thread(s), device {device}.",
        "",
        f"Run: {m['date']}, commit {str(m['git'].get('commit'))[:10]}, nproc {m['nproc']}, "
        f"load {m['loadavg'][0]:.1f}, wall {m.get('wall_seconds', 0):.0f} s; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "| epochs | estimator | version | dL/dbeta | rel. err. vs exact | rho (per point) | "
        "cost (runs) | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in res["runs"]:
        e = run["epochs"]
        ex = run["exact"]
        lines.append(
            f"| {e} | **exact** (forward mode) | ours | {ex['derivative']:.5g} | 0 | 1 | "
            f"{ex['ratio']:.2f} | {ex['seconds']:.1f} |"
        )
        pt = run["points"]
        lines.append(
            f"| {e} | exact per point ({len(pt['rows'])} rows, vmap chunk {pt['chunk_size']}) | "
            f"ours | sum {sum(pt['derivatives']):.4g} | - | 1 | {pt['ratio']:.2f} | "
            f"{pt['seconds']:.1f} |"
        )
        for fd in run["finite_differences"]:
            lines.append(
                f"| {e} | finite difference h = {fd['h']:g} | ours | {fd['derivative']:.5g} | "
                f"{fd['rel_err']:+.2e} | - | {fd['ratio']:.2f} (+1 shared) | {fd['seconds']:.1f} |"
            )
        for name, out in run["peers"].items():
            label, version = LABELS[name], _version(name, res["meta"]["versions"])
            if "error" in out:
                lines.append(f"| {e} | {label} | {version} | failed: {out['error']} | | | | |")
                continue
            lines.append(
                f"| {e} | {label} | {version} | {out['derivative']:.5g} | "
                f"{out['rel_err']:+.2e} | {out['spearman']:.3f} | {out['ratio']:.2f} | "
                f"{out['seconds']:.1f} |"
            )
    lines += ["", "Trained network at beta = 0 (per budget):", ""]
    for run in res["runs"]:
        b = run["beta0"]
        lines.append(
            f"- {run['epochs']} epochs: clean accuracy {b['clean_accuracy']:.3f}, backdoor loss "
            f"{b['backdoor_loss']:.3f}, attack success {b['backdoor_accuracy']:.3f}, one run "
            f"{run['train_seconds']:.1f} s"
        )
    lines += ["", "Conventions (how each peer's score is mapped to dL/dw_j):", ""]
    seen = set()
    for run in res["runs"]:
        for name, out in run["peers"].items():
            if name in seen or "convention" not in out:
                continue
            seen.add(name)
            lines.append(f"- {LABELS[name]}: {out['convention']}")
            if name == "trak":
                lines.append(
                    f"  (as shipped, with TRAK's normalisation kept, the {run['epochs']}-epoch "
                    f"slope would read {out['total_as_shipped_scale']:.4g})"
                )
    failures = [
        (run["epochs"], name, out["error"])
        for run in res["runs"]
        for name, out in run["peers"].items()
        if "error" in out
    ]
    if failures or m.get("not_run"):
        lines += ["", "Failures and peers not run:", ""]
        lines += [f"- {e} epochs, {LABELS[n]}: {err}" for e, n, err in failures]
        lines += [f"- {LABELS[n]}: not run by default: {why}" for n, why in m["not_run"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "results/nn_peers.json"
    res = json.loads(path.read_text())
    text = markdown(res)
    path.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
