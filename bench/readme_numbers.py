"""Print every number the README quotes from a default run (strength, claims, why and
mask-shape tables), so they can be regenerated after the code or the models change:
``python bench/readme_numbers.py [results/default]``."""

import sys

import pandas as pd

r = sys.argv[1] if len(sys.argv) > 1 else "results/default"
m = pd.read_parquet(f"{r}/metrics.parquet")
s = m[(m.experiment == "strength_sweep") & (m.variant == "baseline")]
print(
    s.groupby(["model", "strength"])[["mse_outside", "mse_outside_vae", "mse_outside_thesis"]]
    .mean()
    .round(1)
    .unstack(0)
    .to_string()
)
land = s[s.image == "landscape_1"].groupby(["model", "strength"])["mse_outside"].mean().round(1)
print(land.unstack(0).to_string())
band = s[s.strength > 0].groupby("model")["mse_outside_band"].mean().round(0)
print(band)
c = pd.read_parquet(f"{r}/claims.parquet")
for metric in ["mse_outside", "mse_outside_thesis"]:
    t = c[c.metric == metric].pivot(index="claim", columns="model", values="verdict")
    print(metric)
    print(t.to_string())
cc = c[c.metric == "mse_outside"]
for _, row in cc[cc.claim.isin([4, 5, 8])].iterrows():
    print(
        row.claim, row.model, row.verdict, f"{row.value:.3g} ({row.ci_low:.3g}-{row.ci_high:.3g})"
    )
w = pd.read_parquet(f"{r}/why.parquet")
pd.set_option("display.width", 250)
print(w.columns.tolist())
print(
    w[(w.analysis == "attribution") & (w.strength.isna())][
        ["model", "part", "value", "ci_low", "ci_high", "reference_mean"]
    ].to_string()
)
print(
    w[(w.analysis == "attribution")][["model", "strength", "part", "value"]]
    .pivot_table(index=["model", "strength"], columns="part", values="value")
    .round(3)
    .to_string()
)
print(
    w[(w.analysis == "variant_effect") & (w.strength.isna())][
        ["model", "variant", "quantity", "value", "ci_low", "ci_high", "reference_mean"]
    ].to_string()
)
print(
    w[(w.analysis == "seam_cost") & (w.strength.isna())][
        ["model", "variant", "quantity", "value", "ci_low", "ci_high"]
    ].to_string()
)
print(
    w[(w.analysis == "pass_growth") & (w.strength.isna())][
        ["model", "variant", "pass", "quantity", "value", "ci_low", "ci_high", "reference_mean"]
    ].to_string()
)
mech = m[m.experiment == "mechanism_sweep"]
print(
    mech.groupby(["model", "variant", "pass"])[
        ["mse_outside", "delta_e_outside", "ssim_outside", "seam_step_excess", "texture_spearman"]
    ]
    .mean()
    .round(3)
    .to_string()
)
print("texture_spearman per image (strength sweep, s>0):")
print(
    s[s.strength > 0]
    .groupby(["model", "image"])["texture_spearman"]
    .mean()
    .round(2)
    .unstack(0)
    .to_string()
)
run = r
f = pd.read_parquet(f"{run}/mask_shape.parquet")
m = pd.read_parquet(f"{run}/metrics.parquet")


def ci(v, lo, hi, d=2):
    if pd.isna(v):
        return "n/a"
    return f"{v:.{d}f} ({lo:.{d}f}–{hi:.{d}f})"


print("| | " + " | ".join(f"`{x}`" for x in f.model.unique()) + " |")
print("| --- |" + " --- |" * f.model.nunique())
for pred in ["area_frac", "edge_per_kept_px", "footprint_share"]:
    cells = []
    for _model, g in f.groupby("model", sort=False):
        r = g[(g.family == "all") & (g.predictor == pred)].iloc[0]
        cells.append(ci(r.r2, r.r2_low, r.r2_high))
    print(f"| R², {pred} | " + " | ".join(cells) + " |")
cells = []
for _model, g in f.groupby("model", sort=False):
    r = g[(g.family == "all") & (g.predictor == "footprint_share")].iloc[0]
    e = g[(g.family == "all") & (g.predictor == "edge_per_kept_px")].iloc[0]
    cells.append(
        ci(r.r2_minus_area, r.r2_minus_area_low, r.r2_minus_area_high)
        if pd.notna(r.r2_minus_area)
        else "edge: " + ci(e.r2_minus_area, e.r2_minus_area_low, e.r2_minus_area_high)
    )
print("| R² gain over area (footprint) | " + " | ".join(cells) + " |")
print(
    "| verdict | " + " | ".join(g.verdict.iloc[0] for _, g in f.groupby("model", sort=False)) + " |"
)
print()
for model in ["tiny4", "tiny4_study"]:
    g = f[(f.model == model) & (f.predictor == "footprint_share")]
    print(
        model,
        "slopes:",
        "; ".join(
            f"{r.family} {r.slope:,.0f} ({r.slope_low:,.0f}–{r.slope_high:,.0f})"
            for r in g.itertuples()
        ),
    )
s = m[m.experiment == "mask_shape_sweep"]
s = s.assign(fs=s.n_outside_footprint / s.n_outside, ek=s.perimeter_px / s.n_outside)
s = s.assign(group=s.mask_id.str.replace(r"-s\d+$", "", regex=True))
g = s.groupby(["model", "group"]).agg(
    area=("area_frac", "mean"),
    per=("perimeter_px", "mean"),
    fs=("fs", "mean"),
    ex=("excess_over_floor", "mean"),
    mse=("mse_outside", "mean"),
    floor=("mse_outside_vae", "mean"),
)
print(g.round(3).to_string())
print(
    "n images",
    s.image.nunique(),
    "seeds",
    sorted(s.seed.unique()),
    "strengths",
    sorted(s.strength.unique()),
)
